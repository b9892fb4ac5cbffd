"""Figures from a folder of result files: metric heatmap, per-class bars, curves and qualitative grids.

Heatmap and bars read the stored metrics (the leaderboard's numbers, in percent); curves and qualitative
grids read the prediction caches (``zsad_bench.results.cache``), so they need no model. One module per
kind, each with a ``*_figure`` function that builds the matplotlib ``Figure`` and a ``plot_*`` function
that writes ``<out>/<kind>/<name>.<format>`` and returns the paths; what they share is public in
``common``. ``plot`` draws any or all kinds, as ``zsad plot`` does. What cannot be drawn (a result
without a prediction cache, a dataset not prepared locally) is skipped with a warning on ``log``; a call
that draws nothing raises ``ZsadError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from zsad_bench.errors import ZsadError
from zsad_bench.report.figures.bars import bars_figure, plot_bars
from zsad_bench.report.figures.common import FORMATS, Results, check_formats, check_metrics, load_results, log
from zsad_bench.report.figures.curves import curves_figure, plot_curves
from zsad_bench.report.figures.heatmap import heatmap_figure, plot_heatmap
from zsad_bench.report.figures.qualitative import plot_qualitative, qualitative_figure

__all__ = [
    "FORMATS",
    "KINDS",
    "bars_figure",
    "curves_figure",
    "heatmap_figure",
    "log",
    "plot",
    "plot_bars",
    "plot_curves",
    "plot_heatmap",
    "plot_qualitative",
    "qualitative_figure",
]

KINDS = ("heatmap", "bars", "curves", "qualitative")


def plot(
    results: Results,
    kind: str = "all",
    out: str | Path = "plots",
    *,
    metric: str = "image_auroc",
    formats: Sequence[str] = ("png", "svg"),
    samples: int = 4,
    results_dir: str | Path | None = None,
) -> list[Path]:
    """Every figure of ``kind`` (one of ``KINDS`` or ``all``); ``metric`` (or ``all``) for heatmap and bars.

    With ``all``, a kind that has nothing to draw is a warning; the call fails only if nothing is drawn.
    """
    if kind not in (*KINDS, "all"):
        raise ZsadError(f"unknown plot kind '{kind}'; choose from {', '.join(KINDS)} or all")
    metrics, formats = check_metrics(metric), check_formats(formats)
    runs, base = load_results(results, results_dir)
    makers: dict[str, Callable[[], list[Path]]] = {
        "heatmap": lambda: plot_heatmap(runs, metric, out, formats=formats),
        "bars": lambda: plot_bars(runs, metric, out, formats=formats),
        "curves": lambda: plot_curves(runs, out, formats=formats, results_dir=base),
        "qualitative": lambda: plot_qualitative(
            runs, out, samples=samples, formats=formats, results_dir=base
        ),
    }
    if kind != "all":
        return makers[kind]()
    written: list[Path] = []
    for name, make in makers.items():
        try:
            written += make()
        except ZsadError as exc:
            log.warning("no %s plots: %s", name, exc)
    if not written:
        raise ZsadError(f"nothing to plot from {len(runs)} result(s) with metric(s) {', '.join(metrics)}")
    return written
