"""AUPRO (MVTec definition) against an independent slow oracle and hand-worked cases."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.ndimage
import torch

from zsad_bench.metrics import pixel_metrics

LIMITS = (0.3, 0.05, 1.0)


def pro_curve_oracle(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PRO curve straight from the definition, one threshold at a time (slow; small inputs only).

    For every distinct score t (descending), a pixel is predicted anomalous when score >= t;
    PRO(t) = mean over the 8-connected regions of every image of the fraction of the region predicted;
    FPR(t) = predicted normal pixels / all normal pixels. (0, 0) first, (1, 1) last.
    """
    maps = np.asarray(maps, np.float64)
    masks = np.asarray(masks, bool)
    regions = []
    for i in range(len(masks)):
        labelled, n = scipy.ndimage.label(masks[i], structure=np.ones((3, 3), dtype=int))
        regions += [(i, labelled == k) for k in range(1, n + 1)]
    normal = ~masks
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        predicted = maps >= t
        pros.append(float(np.mean([predicted[i][region].mean() for i, region in regions])))
        fprs.append(float((predicted & normal).sum() / normal.sum()))
    fprs.append(1.0)
    pros.append(1.0)
    return np.array(fprs), np.array(pros)


def area_oracle(fprs: np.ndarray, pros: np.ndarray, limit: float) -> float:
    """Trapezoids segment by segment, each clipped to [0, limit] (PRO linearly interpolated), / limit."""
    area = 0.0
    for x0, y0, x1, y1 in zip(fprs[:-1], pros[:-1], fprs[1:], pros[1:], strict=True):
        if x0 >= limit:
            break
        if x1 <= limit:
            area += np.trapezoid([y0, y1], [x0, x1])
        else:
            y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += np.trapezoid([y0, y_limit], [x0, limit])
    return area / limit


def aupro_oracle(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    return area_oracle(*pro_curve_oracle(maps, masks), limit)


def test_oracle_integration_matches_numpy_trapezoid_without_clipping(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=3, n=4, res=12)
    fprs, pros = pro_curve_oracle(maps, masks)
    assert area_oracle(fprs, pros, 1.0) == pytest.approx(np.trapezoid(pros, fprs), abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
def test_aupro_matches_oracle(make_maps: Callable, map_case: dict, seed: int) -> None:
    maps, masks = make_maps(seed=seed, n=6, res=16, **map_case)
    fprs, pros = pro_curve_oracle(maps, masks)
    for limit in LIMITS:
        expected = area_oracle(fprs, pros, limit)
        got = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks), fpr_limit=limit)["aupro"]
        assert got == pytest.approx(expected, abs=1e-12), f"fpr_limit={limit}"


def test_aupro_matches_oracle_on_heavy_ties_64px(make_maps: Callable) -> None:
    # Larger maps but only 17 distinct scores, so the oracle stays fast.
    maps, masks = make_maps(seed=5, n=8, res=64, quantise=16)
    fprs, pros = pro_curve_oracle(maps, masks)
    for limit in LIMITS:
        got = pixel_metrics(maps, masks, fpr_limit=limit)["aupro"]
        assert got == pytest.approx(area_oracle(fprs, pros, limit), abs=1e-12)


def test_hand_worked_1x6() -> None:
    # Row of 6 pixels, mask [1 0 0 1 1 0]: region A = {0} (1 px), region B = {3, 4} (2 px), R = 2;
    # normal pixels {1, 2, 5}. Scores [0.9, 0.6, 0.2, 0.6, 0.8, 0.4].
    #   t = 0.9: A detected            -> PRO = (1 + 0)/2   = 0.5,  FPR = 0
    #   t = 0.8: half of B             -> PRO = (1 + 1/2)/2 = 0.75, FPR = 0
    #   t = 0.6: px 1 (normal), px 3 (B), one tie block -> PRO = 1, FPR = 1/3
    #   t = 0.4: px 5 -> FPR = 2/3;  t = 0.2: px 2 -> FPR = 1
    # Curve: (0,0) (0,.5) (0,.75) (1/3,1) (2/3,1) (1,1) (1,1).
    #   limit 0.3:  PRO(0.3) = 0.75 + 0.25·0.3/(1/3) = 0.975; area = 0.3·(0.75 + 0.975)/2 = 0.25875 -> 0.8625
    #   limit 0.05: PRO(0.05) = 0.7875; area = 0.05·(0.75 + 0.7875)/2 = 0.0384375 -> 0.76875
    #   limit 1:    (1/3)·(0.75 + 1)/2 + (2/3)·1 = 7/24 + 16/24 = 23/24
    maps = torch.tensor([[[0.9, 0.6, 0.2, 0.6, 0.8, 0.4]]])
    masks = torch.tensor([[[1, 0, 0, 1, 1, 0]]], dtype=torch.bool)
    assert pixel_metrics(maps, masks, fpr_limit=0.3)["aupro"] == pytest.approx(0.8625, abs=1e-12)
    assert pixel_metrics(maps, masks, fpr_limit=0.05)["aupro"] == pytest.approx(0.76875, abs=1e-12)
    assert pixel_metrics(maps, masks, fpr_limit=1.0)["aupro"] == pytest.approx(23 / 24, abs=1e-12)
    for limit in LIMITS:
        assert aupro_oracle(maps.numpy(), masks.numpy(), limit) == pytest.approx(
            pixel_metrics(maps, masks, fpr_limit=limit)["aupro"], abs=1e-12
        )


def test_hand_worked_diagonal_region_is_one_region() -> None:
    # 2x4 mask with (0,0) and (1,1) touching at a corner (one 8-connected region A, |A| = 2) and (0,3)
    # alone (region B). Only (0,0) scores above the normal pixels: PRO = (1/2 + 0)/2 = 0.25 until FPR = 1.
    # (4-connectivity would give 3 regions and PRO = 1/3.) Curve (0,0) (0,.25) (1,.25) (1,1) -> AUPRO 0.25.
    masks = torch.tensor([[[1, 0, 0, 1], [0, 1, 0, 0]]], dtype=torch.bool)
    maps = torch.tensor([[[0.9, 0.5, 0.5, 0.1], [0.5, 0.1, 0.5, 0.5]]])
    for limit in LIMITS:
        assert pixel_metrics(maps, masks, fpr_limit=limit)["aupro"] == pytest.approx(0.25, abs=1e-15)


def test_regions_of_different_images_count_separately() -> None:
    # The same one-pixel region in two images: R = 2; finding it in one image only gives PRO = 1/2.
    masks = torch.zeros(2, 1, 3, dtype=torch.bool)
    masks[:, 0, 0] = True
    maps = torch.tensor([[[0.9, 0.2, 0.2]], [[0.1, 0.2, 0.2]]])
    # Curve: (0,0) (0,.5) (1,.5) (1,1) -> 0.5 for every limit.
    assert pixel_metrics(maps, masks)["aupro"] == pytest.approx(0.5, abs=1e-15)


def test_region_size_does_not_weigh() -> None:
    # A 1-pixel region found and a 9-pixel region missed average to PRO = 1/2, whatever the sizes.
    masks = torch.zeros(1, 5, 8, dtype=torch.bool)
    masks[0, 0, 0] = True
    masks[0, 2:5, 4:7] = True
    maps = torch.full((1, 5, 8), 0.5)
    maps[0, 0, 0] = 1.0
    maps[0, 2:5, 4:7] = 0.0
    assert pixel_metrics(maps, masks)["aupro"] == pytest.approx(0.5, abs=1e-15)


def test_perfect_and_inverted_maps() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, 2:4, 2:5] = True
    masks[1, 6:, 0] = True
    perfect = masks.float() + 0.1
    for limit in LIMITS:
        assert pixel_metrics(perfect, masks, fpr_limit=limit)["aupro"] == 1.0
    # Every normal pixel above every anomalous one: PRO stays 0 until FPR = 1. A real 0, not a missing value.
    assert pixel_metrics(1.0 - perfect, masks)["aupro"] == 0.0


def test_limit_between_tie_block_points_interpolates() -> None:
    # One tie block holding all pixels: the curve is (0,0) -> (1,1); AUPRO up to any limit is limit/2.
    masks = torch.tensor([[[1, 0, 1, 0, 0]]], dtype=torch.bool)
    maps = torch.zeros(1, 1, 5)
    for limit in LIMITS:
        assert pixel_metrics(maps, masks, fpr_limit=limit)["aupro"] == pytest.approx(limit / 2, abs=1e-15)
