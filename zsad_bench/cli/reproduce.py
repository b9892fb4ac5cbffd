"""``zsad reproduce PROTOCOL``: train where the protocol says, evaluate every target, render the tables."""

from __future__ import annotations

from pathlib import Path

import click

from zsad_bench.atomic import atomic_write
from zsad_bench.cli._common import batch_options, info, parse_options, quiet_option, split_names


@click.command()
@click.argument("protocol")
@click.option(
    "--models",
    help="Comma-separated model names. Default: the protocol's paper models (anomalyclip-paper: anomalyclip, "
    "clip, clip-ac, winclip, april-gan, coop; adaclip-paper: adaclip).",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reproduction"), show_default=True)
@click.option(
    "--dry-run", is_flag=True, help="List every unit and what must be downloaded first; run nothing."
)
@click.option(
    "--backbone", help="MODEL[:PRETRAINED] overriding every model's default (e.g. for a smoke run)."
)
@click.option("--epochs", type=click.IntRange(min=1), help="Override the models' training epochs.")
@click.option("--seed", type=int, default=111, show_default=True)
@click.option("--device", default="auto", show_default=True)
@batch_options
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Option for every model.")
@quiet_option
def reproduce(
    protocol: str,
    models: str | None,
    out: Path,
    dry_run: bool,
    backbone: str | None,
    epochs: int | None,
    seed: int,
    device: str,
    batch_size: int | str,
    num_workers: int | str,
    options: tuple[str, ...],
    quiet: bool,
) -> None:
    """Run PROTOCOL (e.g. anomalyclip-paper) end to end into OUT; rerunning resumes where it stopped."""
    from zsad_bench._factory import get_protocol
    from zsad_bench.engine.reproduce import missing_datasets, plan, run_plan
    from zsad_bench.errors import ZsadError

    spec = get_protocol(protocol)
    names = split_names(models) if models is not None else list(spec.models)
    if not names:
        raise ZsadError(
            "--models names no model; pass e.g. --models anomalyclip"
            if models is not None
            else f"protocol '{spec.name}' names no models of its own; pass --models, e.g. anomalyclip"
        )
    parsed = parse_options(options, names, backbone)  # a bad -o fails before any unit runs
    units = plan(spec, names, out)
    if dry_run:
        for unit in units:
            click.echo(unit.describe())
        missing = missing_datasets(units)
        for dataset in missing:
            click.echo(f"download first: zsad datasets download {dataset}")
        pending = sum(not u.done for u in units)
        click.echo(f"{len(units)} units, {pending} to do; {len(missing)} dataset(s) to download first")
        return
    try:
        ran = run_plan(
            units,
            spec,
            backbone=backbone,
            options=parsed,
            epochs=epochs,
            seed=seed,
            device=device,
            batch_size=batch_size,
            num_workers=num_workers,
            quiet=quiet,
            on_unit=lambda u: info(u.describe(), quiet),
        )
    except KeyboardInterrupt:
        raise ZsadError(f"interrupted; run the same command again to resume ({out})") from None
    from zsad_bench.engine.distributed import current

    if not current().main:  # under torchrun, rank 0 reports and renders
        return
    info(f"{len(ran)} unit(s) run, {len(units) - len(ran)} already done", quiet)
    for path in render(out / "results", out):
        info(f"wrote {path}", quiet)


def render(results: Path, out: Path) -> list[Path]:
    """The leaderboard in every format the report module knows, and the plots where they are available."""
    from zsad_bench.errors import ZsadError
    from zsad_bench.report import leaderboard, read_results, render

    table = leaderboard(read_results(results))
    written = []
    for fmt in ("md", "csv", "latex", "html"):
        try:
            text = render(table, fmt)
        except ZsadError:  # a format this version does not render
            continue
        path = out / f"leaderboard.{'tex' if fmt == 'latex' else fmt}"
        written.append(atomic_write(path, text))
    from zsad_bench.report import figures as plots

    try:
        written += plots.plot(read_results(results), "all", out / "plots", results_dir=results)
    except ZsadError as exc:  # nothing drawable (e.g. no prediction caches): the tables still stand
        click.echo(f"warning: no plots ({exc})", err=True)
    return written
