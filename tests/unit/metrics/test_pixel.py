"""Pixel AUROC, AP and F1-max against scikit-learn on synthetic maps; missing levels; precision kept."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from zsad_bench.metrics import label_regions, pixel_metrics, pixel_metrics_from_regions

KEYS = ("auroc", "ap", "f1_max", "aupro")


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_on_synthetic_maps(
    make_maps: Callable, sklearn_reference: Callable, map_case: dict, seed: int
) -> None:
    maps, masks = make_maps(seed=seed, n=12, res=64, **map_case)
    assert not masks[0].any() and masks.any()  # normal images with all-zero masks are part of the class
    result = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks))
    assert list(result) == list(KEYS)
    assert result.reasons == {}
    reference = sklearn_reference(maps, masks)
    for key in ("auroc", "ap", "f1_max"):
        assert result[key] == pytest.approx(reference[key], abs=1e-12), key
    assert 0.0 < result["aupro"] < 1.0


def test_numpy_and_torch_inputs_agree(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=4, n=4, res=32)
    assert pixel_metrics(maps, masks) == pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks))


def test_non_zero_mask_values_are_anomalous(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=4, n=4, res=32)
    as_uint8 = masks.astype(np.uint8) * 255
    assert pixel_metrics(maps, as_uint8) == pixel_metrics(maps, masks)


def test_precomputed_regions_give_the_same_result(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=2, n=6, res=32, one_pixel=True)
    regions = label_regions(torch.from_numpy(masks))
    assert pixel_metrics_from_regions(torch.from_numpy(maps), regions) == pixel_metrics(maps, masks)
    # Any shape works once regions are given: the pixels are pooled.
    flat = pixel_metrics_from_regions(torch.from_numpy(maps).reshape(-1), regions.reshape(-1).long())
    assert flat == pixel_metrics(maps, masks)


def test_float32_maps_are_not_downcast() -> None:
    # 64 scores 2**-20 apart: distinct in float32, but one or two values in bf16/fp16. Anomalous = top half.
    maps = (0.5 + torch.arange(64, dtype=torch.float32) * 2**-20).reshape(1, 8, 8)
    masks = (torch.arange(64) >= 32).reshape(1, 8, 8)
    assert len(torch.unique(maps.to(torch.bfloat16))) <= 2
    result = pixel_metrics(maps, masks)
    assert result["auroc"] == 1.0
    assert result["ap"] == 1.0
    assert result["aupro"] == 1.0


def test_float64_maps_are_used_as_they_are() -> None:
    maps = (0.5 + torch.arange(16, dtype=torch.float64) * 1e-12).reshape(1, 4, 4)
    masks = (torch.arange(16) >= 8).reshape(1, 4, 4)
    assert pixel_metrics(maps, masks)["auroc"] == 1.0


def test_bf16_maps_are_upcast(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=4, res=32)
    bf16 = torch.from_numpy(maps).to(torch.bfloat16)
    assert pixel_metrics(bf16, masks) == pixel_metrics(bf16.float(), masks)


def test_masks_none_is_missing_with_reason(make_maps: Callable) -> None:
    maps, _ = make_maps(seed=0, n=2, res=16)
    result = pixel_metrics(maps, None)
    assert dict(result) == dict.fromkeys(KEYS)
    assert result.reasons == dict.fromkeys(KEYS, "no ground-truth masks")


def test_no_anomalous_pixels_is_missing_with_reason(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=2, res=16)
    result = pixel_metrics(maps, np.zeros_like(masks))
    assert dict(result) == dict.fromkeys(KEYS)
    assert result.reasons == dict.fromkeys(KEYS, "no anomalous pixels")
    assert all(value != 0.0 for value in result.values())


def test_no_normal_pixels_keeps_ap_and_f1(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=2, res=16)
    result = pixel_metrics(maps, np.ones_like(masks))
    # sklearn's average_precision_score is 1.0 without negatives; a ROC has no FPR axis.
    assert result == {"auroc": None, "ap": 1.0, "f1_max": 1.0, "aupro": None}
    assert result.reasons == {"auroc": "no normal pixels", "aupro": "no normal pixels"}


def test_bad_inputs_are_rejected() -> None:
    maps = torch.rand(2, 4, 4)
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, 0, 0] = True
    with pytest.raises(ValueError, match="shape"):
        pixel_metrics(maps, masks[:, :3])
    with pytest.raises(ValueError, match="dimension"):
        pixel_metrics(maps[0], masks[0])
    with pytest.raises(ValueError, match="fpr_limit"):
        pixel_metrics(maps, masks, fpr_limit=0.0)
    with pytest.raises(ValueError, match="fpr_limit"):
        pixel_metrics(maps, masks, fpr_limit=1.5)
    maps[1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pixel_metrics(maps, masks)
    with pytest.raises(ValueError, match="int32 or int64"):
        pixel_metrics_from_regions(torch.rand(2, 4, 4), masks)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(make_maps: Callable, map_case: dict) -> None:
    maps, masks = make_maps(seed=0, n=12, res=64, **map_case)
    cpu = pixel_metrics(torch.from_numpy(maps), torch.from_numpy(masks))
    gpu = pixel_metrics(torch.from_numpy(maps).cuda(), torch.from_numpy(masks).cuda())
    for key in KEYS:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-12), key
