"""``zsad datasets list | info ID``."""

from __future__ import annotations

import click


@click.group()
def datasets() -> None:
    """Registered datasets: what they are and whether they are prepared here."""


@datasets.command("list")
def list_() -> None:
    """Id, domain, classes, images, licence and whether each dataset is prepared under the data root."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, is_prepared
    from zsad_bench.data.manifest import read_info
    from zsad_bench.registry import DATASETS

    root = data_root()
    rows = []
    for entry in DATASETS.entries():
        spec = get_dataset_spec(entry.name)
        folder = root / spec.id
        prepared = is_prepared(folder)
        images = "-"
        if prepared:
            images = str(read_info(folder).get("n_samples", "-"))
        state = "yes" if prepared else ("generated on use" if spec.builder else "no")
        rows.append(
            (
                spec.id,
                spec.domain,
                str(len(spec.classes)),
                images,
                "yes" if spec.has_masks else "no",
                spec.licence,
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
    """Facts about one dataset: classes, sources, citation, and local state."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, is_prepared

    spec = get_dataset_spec(dataset_id)
    folder = data_root() / spec.id
    click.echo(f"{spec.id}: {spec.title}")
    click.echo(f"domain: {spec.domain} ({spec.modality}); masks: {'yes' if spec.has_masks else 'no'}")
    click.echo(f"licence: {spec.licence}")
    click.echo(f"citation: {spec.citation}")
    if spec.homepage:
        click.echo(f"homepage: {spec.homepage}")
    click.echo("classes: " + ", ".join(f"{c.name} ('{c.prompt_name}')" for c in spec.classes))
    for source in spec.sources:
        click.echo(f"source: {source.kind} {source.location}")
    click.echo(f"folder: {folder} ({'prepared' if is_prepared(folder) else 'not prepared'})")
