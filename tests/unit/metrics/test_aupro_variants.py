"""The ``anomalyclip-200`` AUPRO variant against a direct transcription of the research scripts' loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import auc

from zsad_bench.metrics import PixelAccumulator, pixel_metrics


def cal_pro_score_transcription(masks: np.ndarray, amaps: np.ndarray, max_step=200, expect_fpr=0.3) -> float:
    """reference/anomalyclip.md section 6, step by step: equal-width thresholds, masks relabelled (with
    8-connectivity) at every threshold, per-region overlap, FPR over normal pixels, keep FPR < limit,
    min-max rescale, sklearn's auc."""
    binary = np.zeros_like(amaps, dtype=bool)
    lo, hi = amaps.min(), amaps.max()
    delta = (hi - lo) / max_step
    pros, fprs = [], []
    for th in np.arange(lo, hi, delta):
        binary[amaps <= th], binary[amaps > th] = False, True
        overlaps = []
        for binary_map, mask in zip(binary, masks, strict=True):
            labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
            for region in range(1, n + 1):
                inside = labels == region
                overlaps.append(binary_map[inside].sum() / inside.sum())
        inverse = ~masks
        fprs.append(np.logical_and(inverse, binary).sum() / inverse.sum())
        pros.append(np.array(overlaps).mean())
    pros, fprs = np.array(pros), np.array(fprs)
    keep = fprs < expect_fpr
    fprs = fprs[keep]
    fprs = (fprs - fprs.min()) / (fprs.max() - fprs.min())
    return float(auc(fprs, pros[keep]))


def _maps(seed: int, n=8, size=24, outlier=False):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(0, n, 2):  # every other image is defective: one box, plus one on the border
        r, c = rng.integers(0, size - 6, 2)
        masks[i, r : r + rng.integers(2, 6), c : c + rng.integers(2, 6)] = True
        if i % 4 == 0:
            masks[i, 0:3, size - 2 :] = True
    noise = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 2, 2))
    maps = (0.5 * noise + masks * rng.uniform(0.2, 1.5)).astype(np.float32)
    if outlier:
        maps[1, 3, 3] = 50.0
    return maps, masks


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("outlier", [False, True])
def test_matches_the_transcription(seed, outlier):
    maps, masks = _maps(seed, outlier=outlier)
    expected = cal_pro_score_transcription(masks, maps)
    got = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks), aupro_variant="anomalyclip-200")
    assert got["aupro"] == pytest.approx(expected, abs=1e-9)


def test_quantised_maps_with_ties():
    maps, masks = _maps(5)
    maps = (np.round(maps * 8) / 8).astype(np.float32)
    expected = cal_pro_score_transcription(masks, maps)
    got = pixel_metrics(maps, masks, aupro_variant="anomalyclip-200")["aupro"]
    assert got == pytest.approx(expected, abs=1e-9)


def test_differs_from_exact_mvtec_and_outlier_hurts_it():
    maps, masks = _maps(3, n=10, size=32)
    exact = pixel_metrics(maps, masks)["aupro"]
    cflow = pixel_metrics(maps, masks, aupro_variant="anomalyclip-200")["aupro"]
    assert exact != cflow
    maps[1, 3, 3] = 50.0
    assert pixel_metrics(maps, masks)["aupro"] == pytest.approx(exact, abs=0.02)  # exact barely moves
    assert pixel_metrics(maps, masks, aupro_variant="anomalyclip-200")["aupro"] < cflow - 0.05


def test_accumulator_uses_the_variant_and_unknown_variant_is_rejected():
    maps, masks = _maps(0)
    acc = PixelAccumulator(aupro_variant="anomalyclip-200")
    acc.update(maps[:5], masks[:5])
    acc.update(maps[5:], masks[5:])
    assert acc.compute()["pixel_aupro"] == pytest.approx(cal_pro_score_transcription(masks, maps), abs=1e-9)
    with pytest.raises(ValueError, match="unknown AUPRO variant"):
        pixel_metrics(maps, masks, aupro_variant="cflow")


def test_constant_maps_are_missing_not_an_error():
    maps, masks = _maps(0)
    result = pixel_metrics(np.full_like(maps, 0.5), masks, aupro_variant="anomalyclip-200")
    assert result["aupro"] is None and "not constant" in result.reasons["aupro"]


def _float16_grid_maps(seed: int, n: int = 6, size: int = 32):
    """Weakly separated maps in [0, 1] (both ends present) on a coarse float16 grid: thousands of tied
    pixels, many of them a few float32 ulps above one of the 200 thresholds."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(0, n, 2):
        r, c = rng.integers(0, size - 8, 2)
        masks[i, r : r + rng.integers(3, 8), c : c + rng.integers(3, 8)] = True
    maps = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), sigma=(0, 1, 1)) + 0.25 * masks
    maps = (maps - maps.min()) / (maps.max() - maps.min())
    return (np.round(maps * 512) / 512).astype(np.float16).astype(np.float32), masks


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tied_float16_grid_scores_match_the_official_float64_thresholds(seed):
    maps, masks = _float16_grid_maps(seed)
    lo, hi = maps.min(), maps.max()
    thresholds = np.arange(lo, hi, (hi - lo) / 200)
    # the premise: float64 thresholds, some just below a score that rounding to float32 would land on
    assert thresholds.dtype == np.float64
    on_a_score = np.isin(thresholds.astype(np.float32), maps) & (thresholds.astype(np.float32) > thresholds)
    assert on_a_score.any()
    expected = cal_pro_score_transcription(masks, maps)
    got = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks), aupro_variant="anomalyclip-200")
    assert got["aupro"] == pytest.approx(expected, abs=1e-12)


def test_tied_scores_on_the_torch_sort_path(monkeypatch):
    from zsad_bench.metrics import curve

    monkeypatch.setattr(curve, "_sorted_keys", curve._sorted_keys_torch)
    maps, masks = _float16_grid_maps(3)
    expected = cal_pro_score_transcription(masks, maps)
    got = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks), aupro_variant="anomalyclip-200")
    assert got["aupro"] == pytest.approx(expected, abs=1e-12)


def test_floor_to_dtype_keeps_every_comparison():
    from zsad_bench.metrics.aupro import floor_to_dtype

    thresholds = np.arange(np.float32(0), np.float32(1), np.float32(1) / 200)
    floored = floor_to_dtype(thresholds, np.dtype(np.float32))
    assert floored.dtype == np.float32 and np.all(floored.astype(np.float64) <= thresholds)
    grid = np.linspace(0, 1, 4097, dtype=np.float32)
    assert np.array_equal(grid[:, None] > thresholds[None, :], grid[:, None] > floored[None, :])
