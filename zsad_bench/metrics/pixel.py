"""Pixel-level metrics of one class: AUROC, AP, F1-max and AUPRO, exact, from ONE sort of all its pixels.

AUPRO is the MVTec definition (reference/metrics.md §1.1): PRO(t) is the mean over the R connected
ground-truth regions of all images of the class (8-connectivity) of the fraction of the region with
score >= t; FPR(t) is over all normal pixels (mask == 0) of all images, anomalous images included. PRO is
then the TPR of a weighted ROC in which every pixel of region r weighs 1/(|r|·R), so it falls out of the
same sorted order and cumulative sums as pixel AUROC, AP and F1-max: no threshold loop, no binning
(binned AP is off by 0.02 pt even with 4096 bins, §2.3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zsad_bench.metrics._inputs import as_masks, as_scores, check_no_nan
from zsad_bench.metrics.aupro import check_aupro_variant
from zsad_bench.metrics.curve import curve_from_ids
from zsad_bench.metrics.from_curve import CurveOptions, curve_metrics
from zsad_bench.metrics.regions import label_regions_counted
from zsad_bench.metrics.result import MetricResult
from zsad_bench.metrics.table import level_names

__all__ = ["NO_MASKS", "check_fpr_limit", "pixel_metrics", "pixel_metrics_from_regions"]

NO_MASKS = "no ground-truth masks"


def check_fpr_limit(fpr_limit: float) -> float:
    """``fpr_limit`` as a float in (0, 1], or ValueError."""
    fpr_limit = float(fpr_limit)
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    return fpr_limit


def pixel_metrics(
    maps: Tensor | Any,
    masks: Tensor | Any | None,
    fpr_limit: float = 0.3,
    *,
    aupro_variant: str = "mvtec",
) -> MetricResult:
    """Pixel AUROC, AP, F1-max and AUPRO (integrated to ``fpr_limit``, divided by it) of one class.

    maps: (N, H, W) anomaly maps (tensor or numpy array). float32 and float64 are used as they are, never
        downcast; float16/bfloat16 are upcast to float32.
    masks: (N, H, W) ground truth, bool (non-zero = anomalous), on any device; ``None`` when the dataset
        has no masks, which makes all four metrics missing.
    aupro_variant: ``mvtec`` (exact, default) or ``anomalyclip-200`` (the papers' approximation); see
        ``zsad_bench.metrics.aupro``.
    Runs on the maps' device. Memory: see ``pixel_metrics_from_regions`` (about 40 B/px at peak).
    """
    fpr_limit = check_fpr_limit(fpr_limit)
    check_aupro_variant(aupro_variant)
    scores = as_scores(maps, "maps", ndim=3)
    if masks is None:
        return MetricResult.missing(level_names("pixel"), NO_MASKS)
    gt = as_masks(masks, "masks", scores.shape)
    regions, _ = label_regions_counted(gt)
    return pixel_metrics_from_regions(
        scores, regions.to(scores.device), fpr_limit, aupro_variant=aupro_variant
    )


def pixel_metrics_from_regions(
    maps: Tensor, regions: Tensor, fpr_limit: float = 0.3, *, aupro_variant: str = "mvtec"
) -> MetricResult:
    """The pure core of ``pixel_metrics``, given region ids instead of masks (so nothing is relabelled).

    maps: (N, H, W) floating scores (any shape; it is flattened).
    regions: int32/int64 of the same shape and device; 0 = normal pixel, k > 0 = pixel of region k. Ids
        must be unique across images (as ``label_regions`` makes them) and should be dense (1..R): the
        region sizes come from ``torch.bincount``, of length max id + 1.
    Memory on the device, in bytes per pixel: 4 (sorted float32 scores) + 8 (int64 order, freed after the
    gather) + 4 (sorted region ids) + 1 (labels) + 8 (int64 cumsum) + 8 (float64 weights) + 8 (float64
    cumsum) + up to 3 × 8 for the tie-block ends and the per-block counts: ≈ 40–60 B/px beyond the inputs.
    """
    fpr_limit = check_fpr_limit(fpr_limit)
    if regions.shape != maps.shape:
        raise ValueError(f"regions must have the maps' shape {tuple(maps.shape)}, got {tuple(regions.shape)}")
    if regions.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"regions must be int32 or int64 ids, got {regions.dtype}")
    scores = maps.reshape(-1)
    ids = regions.reshape(-1).to(scores.device)
    check_no_nan(scores, "anomaly maps")
    if scores.numel() == 0:
        return MetricResult.missing(level_names("pixel"), "no pixels")
    if int(ids.min()) < 0:
        raise ValueError("region ids must be >= 0 (0 = normal pixel)")

    sizes = torch.bincount(ids)  # sizes[0] = normal pixels, sizes[k] = |region k|
    n_neg = int(sizes[0])
    if n_neg == scores.numel():
        return MetricResult.missing(level_names("pixel"), "no anomalous pixels")
    n_regions = int(torch.count_nonzero(sizes[1:]))
    # Per-region PRO weight 1/(|r|·R); gaps in the ids (size 0) never get looked up.
    weight_of_id = torch.where(sizes > 0, 1.0 / (sizes.to(torch.float64) * n_regions), 0.0)
    weight_of_id[0] = 0.0

    curve = curve_from_ids(scores, ids, weight_of_id)
    options = CurveOptions(fpr_limit, check_aupro_variant(aupro_variant))
    return curve_metrics(curve, "pixel", options, no_negatives="no normal pixels")
