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

__all__ = ["AUPRO_VARIANTS", "anomalyclip_aupro", "check_aupro_variant", "mvtec_aupro"]


def mvtec_aupro(curve: Curve, fpr_limit: float) -> float:
    """The exact MVTec AUPRO of a curve whose weights are the PRO weights 1/(|r|·R)."""
    return curve.weighted_auc(fpr_limit)


def anomalyclip_aupro(curve: Curve, fpr_limit: float, max_step: int = 200) -> float:
    """The AnomalyCLIP/APRIL-GAN ``cal_pro_score`` value, read off the exact curve.

    For a threshold t, the pixels with ``score > t`` are those of every tie block whose score exceeds
    t, so FPR(t) and PRO(t) are the exact curve's cumulative counts at the last such block: 200 binary
    searches instead of 200 passes over the pixels with the masks relabelled each time. Raises
    ValueError when the reference would divide by zero or average nothing (constant maps, fewer than two
    thresholds with FPR below the limit).
    """
    if curve.wsum is None:
        raise ValueError("undefined metric: AUPRO needs the PRO weights")
    if curve.n_neg == 0:
        raise ValueError("undefined metric: AUPRO needs normal pixels")
    thresholds_desc = curve.thresholds.cpu().numpy()
    lo, hi = thresholds_desc[-1], thresholds_desc[0]  # numpy scalars of the maps' dtype, as in the script
    if not hi > lo:
        raise ValueError("undefined metric: anomalyclip-200 AUPRO needs maps that are not constant")
    # The reference builds its thresholds with numpy.arange on the maps' dtype (float32), which sometimes
    # yields max_step + 1 values; calling the same function reproduces that exactly.
    thresholds = np.arange(lo, hi, (hi - lo) / max_step)
    ascending = thresholds_desc[::-1]
    # number of distinct scores strictly above each threshold = index of the last block end with s > t
    above = len(ascending) - np.searchsorted(ascending, thresholds, side="right")
    fp = np.concatenate(([0], curve.fp.cpu().numpy()))[above]
    pro = np.concatenate(([0.0], curve.wsum.cpu().numpy()))[above]
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


AUPRO_VARIANTS: dict[str, Callable[[Curve, float], float]] = {
    "mvtec": mvtec_aupro,
    "anomalyclip-200": anomalyclip_aupro,
}


def check_aupro_variant(name: str) -> str:
    if name not in AUPRO_VARIANTS:
        raise ValueError(f"unknown AUPRO variant '{name}'; choose from {', '.join(AUPRO_VARIANTS)}")
    return name
