"""Per-class bars: one dataset's classes (then ``mean``) on x, one metric in percent, one hue per model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import get_metric
from zsad_bench.report.figures.common import (
    Results,
    by_dataset,
    check_formats,
    check_metrics,
    load_results,
    log,
    matplotlib_figure,
    note_random_weights,
    palette,
    safe_name,
    save,
)
from zsad_bench.report.tables import MEAN_ROW, model_label
from zsad_bench.results.schema import RunResult

__all__ = ["bars_figure", "plot_bars"]


def bars_figure(
    results: Sequence[RunResult], metric: str = "image_auroc", colors: dict[str, Any] | None = None
) -> Any:
    """Per-class bars of one dataset's results: classes (then ``mean``) on x, ``metric`` in %, hue = model.

    colors: model label -> colour (default: one per model of ``results``). Raises ZsadError when the
    results span several datasets or none defines ``metric``.
    """
    import pandas as pd

    sns, Figure = matplotlib_figure()
    (metric,) = check_metrics(metric)
    datasets = {r.dataset for r in results}
    if len(datasets) != 1:
        raise ZsadError(f"per-class bars take the results of one dataset, got {', '.join(sorted(datasets))}")
    rows = []
    for r in results:
        for name, values in [*sorted(r.per_class.items()), (MEAN_ROW, r.mean)]:
            value = values.get(metric)
            rows.append(
                {"class": name, "method": model_label(r), "value": np.nan if value is None else 100 * value}
            )
    frame = pd.DataFrame(rows)
    if frame["value"].isna().all():
        raise ZsadError(f"no result on {datasets.pop()} defines {metric}")
    classes = [c for c in dict.fromkeys(frame["class"]) if c != MEAN_ROW] + [MEAN_ROW]
    methods = sorted(dict.fromkeys(frame["method"]))
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(max(6.0, 2.5 + 0.22 * len(classes) * len(methods)), 4.2), layout="constrained")
        ax = fig.subplots()
    sns.barplot(
        frame,
        x="class",
        y="value",
        hue="method",
        order=classes,
        hue_order=methods,
        palette=colors or palette(results),
        errorbar=None,
        ax=ax,
    )
    title = get_metric(metric).title
    ax.set(ylim=(0, 100), xlabel="class", ylabel=f"{title} (%)")
    ax.set_title(f"{title} (%) per class — {results[0].dataset}")
    ax.tick_params(axis="x", labelrotation=45 if len(classes) > 6 else 0)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title="method", frameon=False)
    note_random_weights(fig, results)
    return fig


def plot_bars(
    results: Results,
    metric: str = "image_auroc",
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """``<out>/bars/<dataset>__<metric>.<format>``: one figure per dataset and metric."""
    runs, _ = load_results(results, None)
    formats, colors = check_formats(formats), palette(runs)
    written: list[Path] = []
    for dataset, group in by_dataset(runs).items():
        for name in check_metrics(metric):
            try:
                fig = bars_figure(group, name, colors)
            except ZsadError as exc:
                log.warning("bars of %s skipped: %s", dataset, exc)
                continue
            written += save(fig, Path(out) / "bars" / f"{safe_name(dataset)}__{name}", formats)
    if not written:
        raise ZsadError(f"no result defines {metric} for any class")
    return written
