"""``zsad datasets list | info ID | download ID | prepare ID --from PATH | verify ID | export-meta ID``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zsad_bench.cli._common import info as say
from zsad_bench.cli._common import quiet_option

if TYPE_CHECKING:
    from zsad_bench.data.prepare import PrepareReport
    from zsad_bench.data.spec import DatasetSpec


@click.group()
def datasets() -> None:
    """The 17 datasets of the AnomalyCLIP paper (+ synthetic): download, prepare, verify, export."""


def _short_licence(licence: str) -> str:
    return licence.split(" (")[0].split(";")[0]


def _expected_images(spec: DatasetSpec) -> int | None:
    if spec.expected_total is not None:
        return int(sum(spec.expected_total))
    counts = spec.expected_counts
    return int(sum(sum(c) for c in counts.values())) if counts else None


@datasets.command("list")
def list_() -> None:
    """Id, domain, classes, test images, masks, licence, and whether it is prepared here."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, is_prepared
    from zsad_bench.data.manifest import read_info
    from zsad_bench.errors import ZsadError
    from zsad_bench.registry import DATASETS

    root = data_root()
    rows = []
    for entry in DATASETS.entries():
        spec = get_dataset_spec(entry.name)
        folder = root / spec.id
        if is_prepared(folder):
            try:
                images, state = str(read_info(folder).get("n_samples", "?")), "yes"
            except ZsadError:  # one damaged dataset must not hide the others
                images, state = "?", "corrupt: re-run prepare --force"
        else:
            expected = _expected_images(spec)
            images = f"{expected} expected" if expected else "-"
            state = "generated on use" if spec.builder else "no"
        rows.append(
            (
                spec.id,
                spec.domain,
                str(len(spec.classes)),
                images,
                "yes" if spec.has_masks else "no",
                _short_licence(spec.licence),
                state,
            )
        )
    header = ("id", "domain", "classes", "images", "masks", "licence", "prepared")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"\ndata root: {root} (set ZSAD_DATA to move it)")


@datasets.command("info")
@click.argument("dataset_id")
def info(dataset_id: str) -> None:
    """Facts about one dataset: classes, expected counts, sources, licence, citation, local state."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, is_prepared
    from zsad_bench.data.manifest import read_info
    from zsad_bench.errors import ZsadError

    spec = get_dataset_spec(dataset_id)
    folder = data_root() / spec.id
    click.echo(f"{spec.id}: {spec.title}")
    click.echo(f"domain: {spec.domain} ({spec.modality}); masks: {'yes' if spec.has_masks else 'no'}")
    click.echo(f"licence: {spec.licence}")
    click.echo(f"citation: {spec.citation}")
    if spec.homepage:
        click.echo(f"homepage: {spec.homepage}")
    click.echo("classes (test normal / anomalous expected):")
    for c in spec.classes:
        expected = spec.expected_counts.get(c.name)
        counts = f"{expected[0]} / {expected[1]}" if expected else "?"
        click.echo(f"  {c.name} ('{c.prompt_name}'): {counts}")
    if spec.expected_total:
        click.echo(f"total expected: {spec.expected_total[0]} / {spec.expected_total[1]}")
    for source in spec.sources:
        extra = f" ({source.note})" if source.note else ""
        click.echo(f"source: {source.kind} {source.location}{extra}")
    if is_prepared(folder):
        try:
            record = read_info(folder)
        except ZsadError as exc:  # the facts above are still worth showing
            click.echo(f"prepared: corrupt ({exc})")
            return
        click.echo(f"prepared: {folder} ({record.get('n_samples')} images, from {record.get('origin', '?')})")
        for line in record.get("count_differences", []):
            click.echo(f"  count differs: {line}")
    else:
        click.echo(f"prepared: no ({folder})")


def _report(report: PrepareReport, quiet: bool) -> None:
    say(f"prepared {report.folder}: {report.images} images", quiet)
    for line in report.differences:
        # never silent: a count that differs from the paper's is printed even with --quiet
        click.echo(f"warning: count differs from the expected one: {line}", err=True)


def _limit_options(command: Any) -> Any:
    """``--max-extract-size`` and ``--max-extract-ratio``: what an archive may unpack to (zip bombs)."""
    command = click.option(
        "--max-extract-ratio",
        type=float,
        help="Refuse an archive that unpacks to more than this many times its size (default 100; "
        "env ZSAD_MAX_EXTRACT_RATIO).",
    )(command)
    return click.option(
        "--max-extract-size",
        metavar="SIZE",
        help="Refuse an archive that unpacks to more than SIZE (bytes, or e.g. 200G; default 64G; "
        "env ZSAD_MAX_EXTRACT_SIZE).",
    )(command)


@datasets.command("download")
@click.argument("dataset_id")
@click.option("--force", is_flag=True, help="Replace a dataset that is already prepared.")
@_limit_options
@quiet_option
def download(
    dataset_id: str, force: bool, max_extract_size: str | None, max_extract_ratio: float | None, quiet: bool
) -> None:
    """Fetch a dataset from its first working source (resumable, checksummed) and prepare it."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data.limits import ExtractLimits
    from zsad_bench.data.prepare import download_dataset

    spec = get_dataset_spec(dataset_id)
    limits = ExtractLimits.resolve(max_extract_size, max_extract_ratio)
    _report(download_dataset(spec, force=force, progress=not quiet, limits=limits), quiet)


@datasets.command("prepare")
@click.argument("dataset_id")
@click.option(
    "--from",
    "sources",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="The folder an official archive extracts into, the archive itself, or a meta.json "
    "(repeat for datasets shipped in several archives or folders: they are placed side by side, and "
    "each must hold some of the dataset's files).",
)
@click.option(
    "--link", is_flag=True, help="Symlink the folder instead of copying it (keep it in place; not archives)."
)
@click.option("--force", is_flag=True, help="Replace a dataset that is already prepared.")
@_limit_options
@quiet_option
def prepare(
    dataset_id: str,
    sources: tuple[Path, ...],
    link: bool,
    force: bool,
    max_extract_size: str | None,
    max_extract_ratio: float | None,
    quiet: bool,
) -> None:
    """Build the manifest of a dataset you already have (folder, archive or AnomalyCLIP meta.json)."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data.limits import ExtractLimits
    from zsad_bench.data.prepare import prepare_dataset

    spec = get_dataset_spec(dataset_id)
    limits = ExtractLimits.resolve(max_extract_size, max_extract_ratio)
    report = prepare_dataset(spec, list(sources), link=link, force=force, progress=not quiet, limits=limits)
    _report(report, quiet)


@datasets.command("verify")
@click.argument("dataset_id")
@quiet_option
def verify(dataset_id: str, quiet: bool) -> None:
    """Check that every image decodes, every mask exists, decodes and pairs, and the counts match."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, ensure_prepared
    from zsad_bench.data.verify import verify_dataset

    spec = get_dataset_spec(dataset_id)
    folder = ensure_prepared(spec, data_root())
    problems = verify_dataset(spec, folder, progress=not quiet)
    for line in problems:
        click.echo(line)
    if problems:
        click.echo(f"error: {len(problems)} problem(s) in {spec.id} ({folder})", err=True)
        raise SystemExit(1)
    say(f"{spec.id}: all images and masks decode and pair; counts match", quiet)


@datasets.command("export-meta")
@click.argument("dataset_id")
@click.option("--out", type=click.Path(path_type=Path), help="Where to write (default: <dataset>/meta.json).")
def export_meta(dataset_id: str, out: Path | None) -> None:
    """Write an AnomalyCLIP-style meta.json (paths relative to the dataset folder)."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, ensure_prepared
    from zsad_bench.data.meta import export_meta as write

    spec = get_dataset_spec(dataset_id)
    click.echo(write(ensure_prepared(spec, data_root()), out))
