"""The metric heatmap: method × dataset, one metric's dataset means in percent, with a ``mean`` column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS, get_metric
from zsad_bench.report.figures.common import (
    Results,
    check_formats,
    check_metrics,
    load_results,
    log,
    matplotlib_figure,
    note_random_weights,
    save,
)
from zsad_bench.report.tables import MEAN_ROW, MISSING, leaderboard
from zsad_bench.results.schema import RunResult

__all__ = ["heatmap_figure", "plot_heatmap"]


def heatmap_figure(results: Sequence[RunResult], metric: str = "image_auroc") -> Any:
    """Method × dataset heatmap of the dataset means of ``metric`` in percent, with a ``mean`` column.

    Cells a result does not define are hatched and show "–". Raises ZsadError when no cell is defined.
    """
    from matplotlib.patches import Rectangle

    sns, Figure = matplotlib_figure()
    (metric,) = check_metrics(metric)
    table = leaderboard(results, [metric])[metric].unstack("dataset")
    datasets = sorted(c for c in table.columns if c != MEAN_ROW)
    table = table[datasets + ([MEAN_ROW] if MEAN_ROW in table.columns else [])]
    table = table.loc[sorted(table.index)]
    if table.isna().all().all():
        raise ZsadError(f"no result defines {metric} (every dataset mean is missing)")
    title = get_metric(metric).title
    rows, cols = table.shape
    width = max(5.0, 2.6 + 1.05 * cols + 0.06 * max(len(m) for m in table.index))
    fig = Figure(figsize=(width, max(2.6, 1.4 + 0.5 * rows)), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        table,
        ax=ax,
        annot=True,
        fmt=".1f",
        cmap="viridis",
        linewidths=1,
        linecolor="white",
        cbar_kws={"label": f"{title} (%)"},
    )
    for i, j in zip(*np.nonzero(table.isna().to_numpy()), strict=True):
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.8", lw=0))
        ax.text(j + 0.5, i + 0.5, MISSING, ha="center", va="center", color="0.3")
    if MEAN_ROW in table.columns:
        ax.axvline(cols - 1, color="white", lw=4)
    ax.set_title(f"{title} (%) — mean over classes")
    ax.set_xlabel("dataset")
    ax.set_ylabel("method")
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=30 if cols > 4 else 0)
    note_random_weights(fig, results)
    return fig


def plot_heatmap(
    results: Results,
    metric: str = "image_auroc",
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """``<out>/heatmap/<metric>.<format>``, one per metric (``metric="all"``: those any result defines)."""
    runs, _ = load_results(results, None)
    formats = check_formats(formats)
    written: list[Path] = []
    for name in check_metrics(metric):
        try:
            fig = heatmap_figure(runs, name)
        except ZsadError as exc:
            if metric != "all":
                raise
            log.warning("heatmap of %s skipped: %s", name, exc)
            continue
        written += save(fig, Path(out) / "heatmap" / name, formats)
    if not written:
        raise ZsadError(f"no result defines any of {', '.join(METRIC_KEYS)}")
    return written
