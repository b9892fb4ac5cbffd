"""ROC, PR and PRO curves of one class, read off the exact ranking curve the metrics use.

The points are the vertices of the exact curves (``zsad_bench.metrics.curve``): the ROC polyline whose
trapezoid area is the AUROC with ties counted 1/2, the step-wise precision-recall curve whose area is
sklearn's AP, and the MVTec PRO-vs-FPR polyline up to the FPR limit whose area divided by the limit is
the AUPRO. No sklearn, no binning: the numbers in the legends are the stored metrics of an exact run.
Pixel-level when the class has ground-truth masks; image-level ROC and PR (no PRO) when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from zsad_bench.metrics.curve import Curve, binary_curve, curve_from_ids
from zsad_bench.metrics.regions import label_regions_counted

__all__ = [
    "ClassCurves",
    "class_curves",
    "downsample",
    "pr_points",
    "pro_points",
    "roc_points",
]

MAX_POINTS = 2000


@dataclass(frozen=True)
class ClassCurves:
    """The exact curves of one detector on one class (full resolution; ``downsample`` before plotting).

    roc: (false positive rate, true positive rate), from (0, 0) to (1, 1).
    pr: (recall, precision), to be drawn as steps ("steps-pre"): precision holds left of each point.
    pro: (false positive rate, per-region overlap) up to ``fpr_limit``; None at image level.
    """

    level: str  # "pixel" or "image"
    roc: tuple[np.ndarray, np.ndarray]
    pr: tuple[np.ndarray, np.ndarray]
    pro: tuple[np.ndarray, np.ndarray] | None
    auroc: float
    ap: float
    aupro: float | None
    prevalence: float
    fpr_limit: float


def roc_points(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) through every tie block: flat to the block's start, then diagonal across the block.

    The diagonal across a block's tied negatives is what counts ties 1/2, so the trapezoid area of this
    polyline is exactly ``curve.auroc()``.
    """
    tp, fp, fp_above = (curve.tp.numpy(), curve.fp.numpy(), curve.fp_above.numpy())
    tp_before = np.concatenate(([0], tp[:-1]))
    x = np.concatenate(([0], np.stack([fp_above, fp], 1).reshape(-1), [curve.n_neg])) / curve.n_neg
    y = np.concatenate(([0], np.stack([tp_before, tp], 1).reshape(-1), [curve.n_pos])) / curve.n_pos
    return _drop_repeats(x, y)


def pr_points(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) at each tie block, with recall 0 prepended at the first block's precision.

    Drawn as "steps-pre" the area under it is sklearn's AP, Σ_k (R_k − R_{k−1})·P_k.
    """
    tp, fp = curve.tp.numpy().astype(np.float64), curve.fp.numpy().astype(np.float64)
    recall, precision = tp / curve.n_pos, tp / (tp + fp)
    return np.concatenate(([0.0], recall)), np.concatenate((precision[:1], precision))


def pro_points(curve: Curve, fpr_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) of the MVTec definition, cut at ``fpr_limit`` with PRO interpolated there.

    The same polyline ``Curve.weighted_auc`` integrates: its trapezoid area / ``fpr_limit`` is the AUPRO.
    """
    assert curve.wsum is not None
    fp, fp_above = curve.fp.numpy(), curve.fp_above.numpy()
    pro = np.minimum(curve.wsum.numpy(), 1.0)
    x_block = np.minimum(fp / curve.n_neg, 1.0)
    x_start = np.minimum(fp_above / curve.n_neg, 1.0)
    pro_before = np.concatenate(([0.0], pro[:-1]))
    x = np.concatenate(([0.0], np.stack([x_start, x_block], 1).reshape(-1), [1.0]))
    y = np.concatenate(([0.0], np.stack([pro_before, pro], 1).reshape(-1), [1.0]))
    n_in = int(np.searchsorted(x, fpr_limit, side="right"))
    if x[n_in - 1] < fpr_limit:  # a point beyond the limit exists: the polyline ends at x = 1
        x0, x1, y0, y1 = x[n_in - 1], x[n_in], y[n_in - 1], y[n_in]
        x = np.append(x[:n_in], fpr_limit)
        y = np.append(y[:n_in], y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0))
    else:
        x, y = x[:n_in], y[:n_in]
    return _drop_repeats(x, y)


def _drop_repeats(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove points equal to their predecessor (empty blocks); the polyline and its area are unchanged."""
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = (np.diff(x) != 0) | (np.diff(y) != 0)
    return x[keep], y[keep]


def class_curves(
    maps: torch.Tensor,
    masks: torch.Tensor | None,
    scores: torch.Tensor,
    labels: torch.Tensor,
    fpr_limit: float = 0.3,
) -> ClassCurves | None:
    """The curves of one class: pixel level from maps (N, S, S) and masks (N, S, S) bool, or -- when
    ``masks`` is None -- image level from scores (N,) and labels (N,). None when the class lacks positives
    or negatives at that level (no curve exists)."""
    if masks is None:
        positive = labels.reshape(-1).bool()
        n_pos = int(positive.sum())
        if n_pos in (0, positive.numel()):
            return None
        curve = binary_curve(scores.reshape(-1).float(), positive)
        return ClassCurves(
            "image",
            roc_points(curve),
            pr_points(curve),
            None,
            curve.auroc(),
            curve.average_precision(),
            None,
            n_pos / positive.numel(),
            fpr_limit,
        )
    regions, n_regions = label_regions_counted(masks.bool())
    ids = regions.reshape(-1).to(torch.int64)
    sizes = torch.bincount(ids)
    if n_regions == 0 or int(sizes[0]) == 0:
        return None
    # The PRO weight of a pixel of region r is 1/(|r|·R), as in zsad_bench.metrics.pixel.
    weight_of_id = torch.where(sizes > 0, 1.0 / (sizes.to(torch.float64) * n_regions), 0.0)
    weight_of_id[0] = 0.0
    curve = curve_from_ids(maps.reshape(-1), ids, weight_of_id)
    return ClassCurves(
        level="pixel",
        roc=roc_points(curve),
        pr=pr_points(curve),
        pro=pro_points(curve, fpr_limit),
        auroc=curve.auroc(),
        ap=curve.average_precision(),
        aupro=curve.weighted_auc(fpr_limit),
        prevalence=curve.n_pos / (curve.n_pos + curve.n_neg),
        fpr_limit=fpr_limit,
    )


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` vertices, evenly spaced along the polyline's length (both ends kept).

    Spacing by arc length rather than by index keeps the points where the curve moves: an exact pixel
    ROC has most of its vertices crowded in a corner.
    """
    n = len(x)
    if n <= max_points:
        return x, y
    span_x, span_y = np.ptp(x) or 1.0, np.ptp(y) or 1.0
    length = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x) / span_x, np.diff(y) / span_y))))
    picks = np.searchsorted(length, np.linspace(0.0, length[-1], max_points - 1), side="left")
    keep = np.unique(np.concatenate((np.minimum(picks, n - 1), [0, n - 1])))
    return x[keep], y[keep]
