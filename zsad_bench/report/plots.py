"""Figures from a folder of result files: metric heatmap, per-class bars, curves and qualitative grids.

Heatmap and bars read the stored metrics (the leaderboard's numbers, in percent); curves and qualitative
grids read the prediction caches (``zsad_bench.results.cache``), so they need no model. Each ``plot_*``
function writes ``<out>/<kind>/<name>.<format>`` and returns the paths; each ``*_figure`` function builds
the matplotlib ``Figure`` without writing it. Figures are plain ``matplotlib.figure.Figure`` objects
(never registered with pyplot), so nothing leaks and no display is needed. What cannot be drawn (a
result without a prediction cache, a dataset not prepared locally) is skipped with a warning on the
``zsad_bench.report.plots`` logger; a call that draws nothing raises ``ZsadError``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsad_bench.errors import ZsadError
from zsad_bench.report.leaderboard import MEAN_ROW, leaderboard
from zsad_bench.results.schema import METRICS, RunResult, read_results

__all__ = [
    "FORMATS",
    "KINDS",
    "METRIC_TITLES",
    "bars_figure",
    "heatmap_figure",
    "plot",
    "plot_bars",
    "plot_curves",
    "plot_heatmap",
]

KINDS = ("heatmap", "bars", "curves", "qualitative")
FORMATS = ("png", "svg", "pdf")
METRIC_TITLES = {
    "image_auroc": "Image AUROC",
    "image_ap": "Image AP",
    "image_f1_max": "Image F1-max",
    "pixel_auroc": "Pixel AUROC",
    "pixel_ap": "Pixel AP",
    "pixel_f1_max": "Pixel F1-max",
    "pixel_aupro": "Pixel AUPRO",
}
log = logging.getLogger(__name__)

Results = Sequence[RunResult] | str | Path


# -- the entry point ---------------------------------------------------------------------------------
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
    metrics, formats = _metrics(metric), _formats(formats)
    runs, base = _load(results, results_dir)
    makers: dict[str, Callable[[], list[Path]]] = {
        "heatmap": lambda: plot_heatmap(runs, metric, out, formats=formats),
        "bars": lambda: plot_bars(runs, metric, out, formats=formats),
        "curves": lambda: plot_curves(runs, out, formats=formats, results_dir=base),
        "qualitative": lambda: _qualitative(runs, out, samples, formats, base),
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


# -- heatmap -----------------------------------------------------------------------------------------
def heatmap_figure(results: Sequence[RunResult], metric: str = "image_auroc") -> Any:
    """Method × dataset heatmap of the dataset means of ``metric`` in percent, with a ``mean`` column.

    Cells a result does not define are hatched and show "–". Raises ZsadError when no cell is defined.
    """
    from matplotlib.patches import Rectangle

    sns, Figure = _matplotlib()
    (metric,) = _metrics(metric)
    table = leaderboard(results, [metric])[metric].unstack("dataset")
    datasets = sorted(c for c in table.columns if c != MEAN_ROW)
    table = table[datasets + ([MEAN_ROW] if MEAN_ROW in table.columns else [])]
    table = table.loc[sorted(table.index)]
    if table.isna().all().all():
        raise ZsadError(f"no result defines {metric} (every dataset mean is missing)")
    title = METRIC_TITLES[metric]
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
        ax.text(j + 0.5, i + 0.5, "–", ha="center", va="center", color="0.3")
    if MEAN_ROW in table.columns:
        ax.axvline(cols - 1, color="white", lw=4)
    ax.set_title(f"{title} (%) — mean over classes")
    ax.set_xlabel("dataset")
    ax.set_ylabel("method")
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=30 if cols > 4 else 0)
    _note_random_weights(fig, results)
    return fig


def plot_heatmap(
    results: Results,
    metric: str = "image_auroc",
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """``<out>/heatmap/<metric>.<format>``, one per metric (``metric="all"``: those any result defines)."""
    runs, _ = _load(results, None)
    formats = _formats(formats)
    written: list[Path] = []
    for name in _metrics(metric):
        try:
            fig = heatmap_figure(runs, name)
        except ZsadError as exc:
            if metric != "all":
                raise
            log.warning("heatmap of %s skipped: %s", name, exc)
            continue
        written += _save(fig, Path(out) / "heatmap" / name, formats)
    if not written:
        raise ZsadError(f"no result defines any of {', '.join(METRICS)}")
    return written


# -- per-class bars ----------------------------------------------------------------------------------
def bars_figure(
    results: Sequence[RunResult], metric: str = "image_auroc", colors: dict[str, Any] | None = None
) -> Any:
    """Per-class bars of one dataset's results: classes (then ``mean``) on x, ``metric`` in %, hue = model.

    colors: model label -> colour (default: one per model of ``results``). Raises ZsadError when the
    results span several datasets or none defines ``metric``.
    """
    import pandas as pd

    sns, Figure = _matplotlib()
    (metric,) = _metrics(metric)
    datasets = {r.dataset for r in results}
    if len(datasets) != 1:
        raise ZsadError(f"per-class bars take the results of one dataset, got {', '.join(sorted(datasets))}")
    rows = []
    for r in results:
        for name, values in [*sorted(r.per_class.items()), (MEAN_ROW, r.mean)]:
            value = values.get(metric)
            rows.append(
                {"class": name, "method": _label(r), "value": np.nan if value is None else 100 * value}
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
        palette=colors or _palette(results),
        errorbar=None,
        ax=ax,
    )
    ax.set(ylim=(0, 100), xlabel="class", ylabel=f"{METRIC_TITLES[metric]} (%)")
    ax.set_title(f"{METRIC_TITLES[metric]} (%) per class — {results[0].dataset}")
    ax.tick_params(axis="x", labelrotation=45 if len(classes) > 6 else 0)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title="method", frameon=False)
    _note_random_weights(fig, results)
    return fig


def plot_bars(
    results: Results,
    metric: str = "image_auroc",
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """``<out>/bars/<dataset>__<metric>.<format>``: one figure per dataset and metric."""
    runs, _ = _load(results, None)
    formats, colors = _formats(formats), _palette(runs)
    written: list[Path] = []
    for dataset, group in _by_dataset(runs).items():
        for name in _metrics(metric):
            try:
                fig = bars_figure(group, name, colors)
            except ZsadError as exc:
                log.warning("bars of %s skipped: %s", dataset, exc)
                continue
            written += _save(fig, Path(out) / "bars" / f"{_safe(dataset)}__{name}", formats)
    if not written:
        raise ZsadError(f"no result defines {metric} for any class")
    return written


# -- curves --------------------------------------------------------------------------------------------
def plot_curves(
    results: Results,
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
    results_dir: str | Path | None = None,
    max_points: int = 2000,
) -> list[Path]:
    """``<out>/curves/<dataset>__<class>.<format>``: ROC, PR and PRO panels with one line per model.

    Curves are exact, from the prediction caches (a cache folder stored relative to the results folder
    is resolved against ``results_dir``, by default the folder ``results`` was read from); each plotted
    line keeps at most ``max_points`` vertices (``zsad_bench.report.curves``).
    """
    from zsad_bench.report.curves import class_curves, curves_figure

    runs, base = _load(results, results_dir)
    formats, colors = _formats(formats), _palette(runs)
    written: list[Path] = []
    for dataset, group in _by_dataset(runs).items():
        caches = _caches(group, base, "curves")
        for class_name in sorted(set().union(*(classes for _, _, classes in caches))):
            curves = {}
            for result, cache, classes in caches:
                if class_name not in classes:
                    continue
                p = cache.load(class_name)
                fpr_limit = float(result.protocol.get("fpr_limit", 0.3))
                curve = class_curves(p.maps, p.masks, p.scores, p.labels, fpr_limit)
                if curve is None:
                    log.warning(
                        "curves: %s on %s/%s skipped: the class lacks anomalous or normal samples",
                        _label(result),
                        dataset,
                        class_name,
                    )
                    continue
                curves[_label(result)] = curve
            if curves:
                fig = curves_figure(curves, f"{dataset} / {class_name}", colors, max_points)
                written += _save(
                    fig, Path(out) / "curves" / f"{_safe(dataset)}__{_safe(class_name)}", formats
                )
    if not written:
        raise ZsadError(
            "nothing to plot: no result has a usable prediction cache (run 'zsad run' with --cache)"
        )
    return written


def _qualitative(
    runs: list[RunResult], out: Path, samples: int, formats: Sequence[str], base: Path
) -> list[Path]:
    from zsad_bench.report.qualitative import plot_qualitative  # imports this module's helpers

    return plot_qualitative(runs, out, samples=samples, formats=formats, results_dir=base)


def _matplotlib() -> tuple[Any, Any]:
    """seaborn and ``Figure``, with the Agg backend chosen if pyplot is not imported yet.

    The figures here never go through pyplot, so they render without a display either way; choosing Agg
    only before pyplot's first import leaves the backend of an interactive session alone.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import seaborn as sns
    from matplotlib.figure import Figure

    return sns, Figure


def _load(results: Results, results_dir: str | Path | None) -> tuple[list[RunResult], Path]:
    """The results and the folder their cache paths are relative to."""
    if isinstance(results, str | Path):
        return read_results(results), Path(results_dir or results)
    runs = list(results)
    if not runs:
        raise ZsadError("no results to plot")
    return runs, Path(results_dir) if results_dir is not None else Path.cwd()


def _metrics(metric: str) -> list[str]:
    if metric == "all":
        return list(METRICS)
    if metric not in METRICS:
        raise ZsadError(f"unknown metric '{metric}'; choose from {', '.join(METRICS)} or all")
    return [metric]


def _formats(formats: Sequence[str]) -> list[str]:
    chosen = [f.lower().lstrip(".") for f in formats]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ZsadError(
            f"unknown image format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return chosen


def _by_dataset(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (r.dataset, _label(r))):
        groups.setdefault(r.dataset, []).append(r)
    return groups


def _caches(results: Sequence[RunResult], base: Path, kind: str) -> list[tuple[RunResult, Any, set[str]]]:
    """(result, PredictionCache, its classes) for each result whose cache exists and is its own; warns
    for the rest."""
    from zsad_bench.results.cache import PredictionCache

    found = []
    for r in results:
        if not r.predictions.get("folder"):
            log.warning(
                "%s: %s on %s skipped: it has no prediction cache (run without --no-cache)",
                kind,
                _label(r),
                r.dataset,
            )
            continue
        folder = Path(r.predictions["folder"])
        try:
            cache = PredictionCache.open(folder if folder.is_absolute() else base / folder)
        except ZsadError as exc:
            log.warning("%s: %s on %s skipped: %s", kind, _label(r), r.dataset, exc)
            continue
        if cache.key != r.predictions.get("key"):
            log.warning(
                "%s: %s on %s skipped: its prediction cache belongs to another run",
                kind,
                _label(r),
                r.dataset,
            )
            continue
        found.append((r, cache, set(cache.classes())))
    return found


def _label(result: RunResult) -> str:
    """The model as the leaderboard names it."""
    return f"{result.label} (random weights)" if result.random_weights else result.label


def _palette(results: Sequence[RunResult]) -> dict[str, Any]:
    """One colour per model, the same in every figure of these results."""
    import seaborn as sns

    labels = sorted({_label(r) for r in results})
    return dict(
        zip(labels, sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels)), strict=True)
    )


def _note_random_weights(fig: Any, results: Sequence[RunResult]) -> None:
    if any(r.random_weights for r in results):
        fig.supxlabel(
            "(random weights): untrained test weights, the numbers mean nothing", fontsize="x-small"
        )


def _safe(name: str) -> str:
    """A file-name part: anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "_"


def _save(fig: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib

    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # A fixed hash salt and no dates make the SVG and PDF bytes reproducible.
    no_date = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
    with matplotlib.rc_context({"svg.hashsalt": "zsad-bench"}):
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=150, metadata=no_date.get(fmt))
            paths.append(path)
            # The layout is in figure fractions, the same for every format: solve it once, not per format.
            fig.set_layout_engine("none")
    return paths
