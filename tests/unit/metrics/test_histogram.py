"""Histogram mode: every approximation stays within the error bound it reports."""

from __future__ import annotations

import pytest
import torch

from zsad_bench.metrics import pixel_metrics
from zsad_bench.metrics.histogram import NOT_BINNED, HistogramPixelAccumulator


def _maps(seed: int, outlier: bool = False):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(16, 48, 48, generator=g)
    masks = torch.zeros(16, 48, 48, dtype=torch.bool)
    masks[:10, 5:15, 20:34] = True
    masks[:4, 40:, 0:3] = True  # a region on the border
    masks[2, 30, 30] = True  # a one-pixel region
    maps[masks] = (maps[masks] + 0.3 * torch.rand(int(masks.sum()), generator=g)).clamp(max=1.0)
    if outlier:
        maps[3, 0, 0] = 50.0  # outside the histogram range: clamped into the top bin
    return maps, masks


@pytest.mark.parametrize("bins", [16, 200, 4096, 65536])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("outlier", [False, True])
def test_auroc_and_aupro_within_reported_bounds(bins, seed, outlier):
    maps, masks = _maps(seed, outlier)
    exact = pixel_metrics(maps, masks)
    acc = HistogramPixelAccumulator(bins=bins)
    acc.update(maps[:9], masks[:9])
    acc.update(maps[9:], masks[9:])
    approx = acc.compute()
    for key in ("auroc", "aupro"):
        assert abs(approx[f"pixel_{key}"] - exact[key]) <= approx.error_bounds[f"pixel_{key}"] + 1e-12
    assert acc.clamped_pixels == (1 if outlier else 0)


def test_bounds_shrink_with_more_bins():
    maps, masks = _maps(0)
    bounds = []
    for bins in (64, 1024, 16384):
        acc = HistogramPixelAccumulator(bins=bins)
        acc.update(maps, masks)
        bounds.append(acc.compute().error_bounds["pixel_auroc"])
    assert bounds[0] > bounds[1] > bounds[2]


def test_separated_bins_are_exact_with_zero_auroc_bound():
    # Negatives at 0.1/0.3, positives at 0.7/0.9: no bin mixes them, so the binned AUROC is exact.
    maps = torch.tensor([[[0.1, 0.3, 0.7, 0.9]]])
    masks = torch.tensor([[[False, False, True, True]]])
    acc = HistogramPixelAccumulator(bins=10)
    acc.update(maps, masks)
    result = acc.compute()
    assert result["pixel_auroc"] == pytest.approx(1.0) and result.error_bounds["pixel_auroc"] == 0.0


def test_ap_and_f1_are_missing_with_reason():
    maps, masks = _maps(0)
    acc = HistogramPixelAccumulator()
    acc.update(maps, masks)
    result = acc.compute()
    assert result["pixel_ap"] is None and result.reasons["pixel_ap"] == NOT_BINNED
    assert result["pixel_f1_max"] is None


def test_merge_equals_one_accumulator():
    maps, masks = _maps(1)
    whole = HistogramPixelAccumulator(bins=512)
    whole.update(maps, masks)
    a, b = HistogramPixelAccumulator(bins=512), HistogramPixelAccumulator(bins=512)
    a.update(maps[:5], masks[:5])
    b.update(maps[5:], masks[5:])
    merged = a.merge(b).compute()
    expected = whole.compute()
    assert merged["pixel_auroc"] == pytest.approx(expected["pixel_auroc"], abs=1e-12)
    assert merged["pixel_aupro"] == pytest.approx(expected["pixel_aupro"], abs=1e-12)


def test_missing_levels_and_bad_arguments():
    maps, masks = _maps(0)
    acc = HistogramPixelAccumulator()
    acc.update(maps, None)
    assert acc.compute()["pixel_auroc"] is None
    normal_only = HistogramPixelAccumulator()
    normal_only.update(maps, torch.zeros_like(masks))
    assert normal_only.compute().reasons["pixel_aupro"] == "no anomalous pixels"
    with pytest.raises(ValueError, match="high > low"):
        HistogramPixelAccumulator(value_range=(1.0, 0.0))
