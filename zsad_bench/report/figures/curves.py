"""ROC, PR and PRO curves from the prediction caches: one figure per class, one line per model.

Curves are exact (``zsad_bench.report.figures.curve_points``): the numbers in the legends are the stored
metrics of an exact run; each plotted line keeps at most ``max_points`` vertices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError
from zsad_bench.report.figures.common import (
    Results,
    by_dataset,
    check_formats,
    load_results,
    log,
    matplotlib_figure,
    open_caches,
    palette,
    safe_name,
    save,
)
from zsad_bench.report.figures.curve_points import MAX_POINTS, ClassCurves, class_curves, downsample
from zsad_bench.report.tables import MISSING, model_label

__all__ = ["curves_figure", "plot_curves"]


def plot_curves(
    results: Results,
    out: str | Path = "plots",
    *,
    formats: Sequence[str] = ("png", "svg"),
    results_dir: str | Path | None = None,
    max_points: int = MAX_POINTS,
) -> list[Path]:
    """``<out>/curves/<dataset>__<class>.<format>``: ROC, PR and PRO panels with one line per model.

    A cache folder stored relative to the results folder is resolved against ``results_dir``, by default
    the folder ``results`` was read from.
    """
    runs, base = load_results(results, results_dir)
    formats, colors = check_formats(formats), palette(runs)
    written: list[Path] = []
    for dataset, group in by_dataset(runs).items():
        caches = open_caches(group, base, "curves")
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
                        model_label(result),
                        dataset,
                        class_name,
                    )
                    continue
                curves[model_label(result)] = curve
            if curves:
                fig = curves_figure(curves, f"{dataset} / {class_name}", colors, max_points)
                stem = Path(out) / "curves" / f"{safe_name(dataset)}__{safe_name(class_name)}"
                written += save(fig, stem, formats)
    if not written:
        raise ZsadError(
            "nothing to plot: no result has a usable prediction cache (run 'zsad run' with --cache)"
        )
    return written


def curves_figure(
    curves: Mapping[str, ClassCurves],
    title: str,
    colors: Mapping[str, Any] | None = None,
    max_points: int = MAX_POINTS,
) -> Any:
    """A figure with ROC, PR and PRO panels (axes labelled "roc", "pr", "pro"), one line per model.

    curves: model label -> its curves on one class (all of one level). Legends give AUROC, AP, AUPRO in
    percent. The PRO panel spans FPR 0 to the AUPRO integration limit; at image level it says why it is
    empty.
    """
    sns, Figure = matplotlib_figure()
    with sns.axes_style("whitegrid"):
        fig = Figure(figsize=(13.5, 4.4), layout="constrained")
        roc_ax, pr_ax, pro_ax = fig.subplots(1, 3)
    palette = dict(colors or {})
    first = next(iter(curves.values()))
    for ax, name in ((roc_ax, "roc"), (pr_ax, "pr"), (pro_ax, "pro")):
        ax.set_label(name)
    roc_ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="chance")
    pr_ax.axhline(first.prevalence, ls="--", lw=0.8, color="0.6", label=f"chance ({first.prevalence:.3f})")
    for label, c in curves.items():
        color = palette.get(label)
        roc_ax.plot(
            *downsample(*c.roc, max_points), lw=1.4, color=color, label=f"{label} (AUROC {_pct(c.auroc)})"
        )
        pr_ax.plot(
            *downsample(*c.pr, max_points),
            lw=1.4,
            color=color,
            drawstyle="steps-pre",
            label=f"{label} (AP {_pct(c.ap)})",
        )
        if c.pro is not None:
            pro_ax.plot(
                *downsample(*c.pro, max_points),
                lw=1.4,
                color=color,
                label=f"{label} (AUPRO@{c.fpr_limit:g} {_pct(c.aupro)})",
            )
    level = "Pixel" if first.level == "pixel" else "Image"
    roc_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
    roc_ax.set_title(f"{level} ROC")
    pr_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision")
    pr_ax.set_title(f"{level} precision–recall")
    pro_ax.set(xlim=(0, first.fpr_limit), ylim=(0, 1.01), xlabel="false positive rate (pixels)")
    pro_ax.set(ylabel="per-region overlap")
    pro_ax.set_title(f"PRO up to FPR {first.fpr_limit:g} (the AUPRO range)")
    if first.level == "pixel":
        pro_ax.legend(loc="lower right", fontsize="small")
    else:
        pro_ax.text(
            0.5,
            0.5,
            "no ground-truth masks:\nno PRO curve",
            ha="center",
            va="center",
            transform=pro_ax.transAxes,
            color="0.4",
        )
    roc_ax.legend(loc="lower right", fontsize="small")
    pr_ax.legend(loc="upper right", fontsize="small")
    fig.suptitle(title)
    return fig


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"
