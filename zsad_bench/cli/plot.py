"""``zsad plot RESULTS_DIR``: figures from a folder of result files (heatmap, bars, curves, qualitative)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from zsad_bench.cli._common import quiet_option, split_names


class _WarningLines(logging.Handler):
    """The plots' skip notices as ``warning: ...`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["heatmap", "bars", "curves", "qualitative", "all"]),
    default="all",
    show_default=True,
    help="Which figures: metric heatmap, per-class bars, ROC/PR/PRO curves, qualitative grids.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the figures.")
@click.option(
    "--metric",
    default="image_auroc",
    show_default=True,
    help="Metric of the heatmap and bars (e.g. pixel_aupro), or 'all' for one figure per metric.",
)
@click.option("--format", "formats", default="png,svg", show_default=True, help="png, svg and/or pdf.")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Images per class in the qualitative grids.",
)
@quiet_option
def plot(
    results_dir: Path, kind: str, out: Path, metric: str, formats: str, samples: int, quiet: bool
) -> None:
    """Draw figures from RESULTS_DIR into OUT/<kind>/ and print the paths written.

    Curves and qualitative grids read the prediction caches that 'zsad run' keeps; results without one
    are skipped with a warning.
    """
    from zsad_bench.report.figures import log as logger
    from zsad_bench.report.figures import plot as draw
    from zsad_bench.results.schema import read_results

    handler = _WarningLines(logging.WARNING)
    logger.addHandler(handler)
    # Its own level: 'zsad run' in the same process raises the root logger's to ERROR.
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        written = draw(
            read_results(results_dir),
            kind,
            out,
            metric=metric,
            formats=split_names(formats),
            samples=samples,
            results_dir=results_dir,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    if not quiet:
        for path in written:
            click.echo(str(path))
