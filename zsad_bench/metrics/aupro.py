"""AUPRO variants, each a function of the exact curve of one class (so no variant re-sorts or re-labels).

- ``mvtec`` (default): the official MVTec definition -- the exact PRO-vs-FPR curve over every distinct
  threshold, integrated up to the FPR limit with the PRO value interpolated there, divided by the limit
  (reference/metrics.md section 1.1).
- ``anomalyclip-200``: the CFlow-style approximation of the AnomalyCLIP and APRIL-GAN test scripts
  (reference/metrics.md section 1.3, reference/anomalyclip.md section 6): 200 equal-width score thresholds
  ``numpy.arange(min, max, (max - min) / 200)``, a pixel counts when ``score > t``, keep the thresholds
  with FPR < limit, min-max rescale the kept FPRs to [0, 1], trapezoid area. Use it to compare with the
  papers' tables; it is biased (about -0.5 pt on ordinary maps, tens of points with one outlier pixel).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zsad_bench.metrics.curve import Curve

__all__ = ["AUPRO_VARIANTS", "anomalyclip_aupro", "check_aupro_variant", "floor_to_dtype", "mvtec_aupro"]


def mvtec_aupro(curve: Curve, fpr_limit: float) -> float:
    """The exact MVTec AUPRO of a curve whose weights are the PRO weights 1/(|r|·R)."""
    return curve.weighted_auc(fpr_limit)


def anomalyclip_aupro(curve: Curve, fpr_limit: float, max_step: int = 200) -> float:
    """The AnomalyCLIP/APRIL-GAN ``cal_pro_score`` value, read off the exact curve.

    FPR(t) and PRO(t) for ``score > t`` are binary searches in the class's sorted scores (kept by the
    curve): 200 searches instead of 200 passes over the pixels with the masks relabelled each time. Raises
    ValueError when the reference would divide by zero or average nothing (constant maps, fewer than two
    thresholds with FPR below the limit).
    """
    if curve.wsum is None:
        raise ValueError("undefined metric: AUPRO needs the PRO weights")
    if curve.n_neg == 0:
        raise ValueError("undefined metric: AUPRO needs normal pixels")
    lo, hi = curve.min_score, curve.max_score
    if not hi > lo:
        raise ValueError("undefined metric: anomalyclip-200 AUPRO needs maps that are not constant")
    # The reference's thresholds exactly: ``(max - min) / max_step`` in the maps' dtype (float32 under
    # numpy 2's promotion rules), then ``numpy.arange``, which returns float64 (sometimes max_step + 1
    # values); its ``amaps > th`` then compares the float32 scores with those float64 values.
    thresholds = np.arange(lo, hi, (hi - lo) / max_step)
    fp, pro = curve.count_above(floor_to_dtype(thresholds, np.asarray(lo).dtype))
    fpr = fp / curve.n_neg
    keep = fpr < fpr_limit
    if int(keep.sum()) < 2 or fpr[keep].max() == fpr[keep].min():
        raise ValueError(
            "undefined metric: anomalyclip-200 AUPRO needs two thresholds with different FPRs below "
            f"{fpr_limit}"
        )
    x = (fpr[keep] - fpr[keep].min()) / (fpr[keep].max() - fpr[keep].min())
    y = pro[keep]
    # sklearn.metrics.auc on a non-increasing x integrates with direction -1: the area is positive.
    return float(-np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))


def floor_to_dtype(thresholds: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest value of ``dtype`` at or below each threshold.

    For scores ``s`` of ``dtype``, ``s > floor(t)`` holds exactly when ``s > t`` does, so counting above
    the floored thresholds in the scores' own dtype reproduces a comparison against the float64 ``t``.
    Rounding to nearest instead moves a threshold that lies just below a score onto it, and that score is
    then no longer counted above: with scores on a coarse grid (float16 maps, ties) that moved AUPRO by
    up to 1e-4.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if dtype == np.float64:
        return thresholds
    rounded = thresholds.astype(dtype)
    above = rounded.astype(np.float64) > thresholds
    return np.where(above, np.nextafter(rounded, np.asarray(-np.inf, dtype=dtype)), rounded)


AUPRO_VARIANTS: dict[str, Callable[[Curve, float], float]] = {
    "mvtec": mvtec_aupro,
    "anomalyclip-200": anomalyclip_aupro,
}


def check_aupro_variant(name: str) -> str:
    if name not in AUPRO_VARIANTS:
        raise ValueError(f"unknown AUPRO variant '{name}'; choose from {', '.join(AUPRO_VARIANTS)}")
    return name
