"""Accumulators: batches and merged shards give the same numbers as one pass over everything."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import numpy as np
import pytest
import torch

from zsad_bench.metrics import (
    ImageAccumulator,
    PixelAccumulator,
    image_metrics,
    label_regions,
    pixel_metrics,
    pixel_metrics_from_regions,
)
from zsad_bench.metrics.regions import label_masks
from zsad_bench.metrics.table import result_keys

IMAGE = result_keys("image")  # the accumulators emit result keys, the pure functions names
PIXEL = result_keys("pixel")
PIXEL_KEYS = tuple(PIXEL.values())
IMAGE_KEYS = tuple(IMAGE.values())


def _close(a: dict, b: dict, tol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=tol), key


# ---------------------------------------------------------------- image


def _image_data(seed: int = 0, n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.random(n) < 0.5)
    scores = torch.from_numpy(np.round(rng.random(n) + 0.3 * labels.numpy(), 2).astype(np.float32))
    return scores, labels


def _image_accumulator(scores: torch.Tensor, labels: torch.Tensor) -> ImageAccumulator:
    acc = ImageAccumulator()
    acc.update(scores, labels)
    return acc


def test_image_batches_equal_one_call() -> None:
    scores, labels = _image_data()
    acc = ImageAccumulator()
    for s, y in zip(scores.split(7), labels.split(7), strict=True):
        acc.update(s, y)
    assert acc.compute() == image_metrics(scores, labels).renamed(IMAGE)
    assert acc.n_images == 60
    assert acc.n_anomalous == int(labels.sum())
    assert acc.n_normal == 60 - int(labels.sum())


def test_image_merge_of_halves_equals_everything() -> None:
    scores, labels = _image_data(1)
    full, first, second = ImageAccumulator(), ImageAccumulator(), ImageAccumulator()
    full.update(scores, labels)
    first.update(scores[:25], labels[:25])
    second.update(scores[25:], labels[25:].numpy().astype(int))
    assert first.merge(second) is first
    assert first.compute() == full.compute()
    # The other order pools the same images: equal up to float64 summation order.
    reverse = _image_accumulator(scores[25:], labels[25:]).merge(_image_accumulator(scores[:25], labels[:25]))
    _close(reverse.compute(), full.compute(), 1e-12)


def test_image_missing_levels() -> None:
    acc = ImageAccumulator()
    assert acc.compute().reasons == dict.fromkeys(IMAGE_KEYS, "no images")
    acc.update(torch.tensor([0.1, 0.9]), torch.tensor([False, False]))
    result = acc.compute()
    assert dict(result) == dict.fromkeys(IMAGE_KEYS)
    assert set(result.reasons.values()) == {"class has no anomalous images"}


def test_image_update_stores_the_tensors_passed_without_a_copy() -> None:
    scores, labels = torch.tensor([0.1, 0.9]), torch.tensor([False, True])
    acc = ImageAccumulator()
    acc.update(scores, labels)
    assert acc.scores[0] is scores and acc.labels[0] is labels  # no copy at update
    # the documented way to reuse a buffer: pass a clone, then the buffer is the caller's again
    buffer, acc = torch.tensor([0.1, 0.9]), ImageAccumulator()
    acc.update(buffer.clone(), labels.clone())
    buffer.fill_(0.5)
    labels.fill_(False)
    assert acc.compute()["image_auroc"] == 1.0


def test_image_slices_stay_views_and_merge_keeps_the_chunks() -> None:
    scores = torch.tensor([0.1, 0.9, 0.3, 0.7])
    labels = torch.tensor([False, True, False, True])
    first, second = ImageAccumulator(), ImageAccumulator()
    first.update(scores[:2], labels[:2])
    second.update(scores[2:], labels[2:])
    assert second.scores[0].data_ptr() == scores.data_ptr() + 2 * scores.element_size()  # same memory
    first.merge(second)
    assert first.scores[1] is second.scores[0] and len(second.scores) == 1
    assert first.to("cpu").scores[1] is second.scores[0]  # already there: .to keeps the tensor
    whole = ImageAccumulator()
    whole.update(scores, labels)
    assert first.compute() == whole.compute()


def test_image_label_values_and_nan_are_checked_at_compute() -> None:
    acc = ImageAccumulator()
    acc.update(torch.tensor([0.1, 0.9]), torch.tensor([0, 2]))  # attribute checks pass: no kernel yet
    with pytest.raises(ValueError, match="binary"):
        acc.compute()
    acc = ImageAccumulator()
    acc.update(torch.tensor([0.1, float("nan")]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        acc.compute()
    with pytest.raises(ValueError, match="dimension"):  # shapes and dtypes still fail at update
        ImageAccumulator().update(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="shape"):
        ImageAccumulator().update(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="real"):
        ImageAccumulator().update(torch.zeros(2, dtype=torch.complex64), torch.zeros(2))


def test_image_mixed_dtypes_convert_as_each_update_would() -> None:
    # int64 scores alone become float64; cat's promotion with float32 would give float32
    acc = ImageAccumulator()
    acc.update(torch.tensor([0, 3]), torch.tensor([0, 1]))
    acc.update(torch.tensor([1.5, 2.5], dtype=torch.float32), torch.tensor([False, True]))
    acc.update(torch.tensor([0.25, 4.0], dtype=torch.bfloat16), torch.tensor([0.0, 1.0]))
    scores, labels = acc.tensors()
    assert scores.dtype == torch.float64 and labels.dtype == torch.bool
    assert scores.tolist() == [0.0, 3.0, 1.5, 2.5, 0.25, 4.0]
    assert labels.tolist() == [False, True, False, True, False, True]
    assert acc.compute() == image_metrics(scores, labels).renamed(IMAGE)


def test_image_float32_with_float64_and_bool_scores_give_what_each_update_would() -> None:
    # float32 and float64 take the fast path, which compute concatenates without converting one by one
    acc = ImageAccumulator()
    acc.update(torch.tensor([0.5, 0.25], dtype=torch.float32), torch.tensor([1, 0]))
    acc.update(torch.tensor([0.1, 0.75], dtype=torch.float64), torch.tensor([0.0, 1.0]))
    assert acc.converted_updates == 0
    scores, _ = acc.tensors()
    assert scores.dtype == torch.float64 and scores.tolist() == [0.5, 0.25, 0.1, 0.75]
    # bool scores are converted (to float64, as alone): the chunks are then converted one by one
    acc.update(torch.tensor([True, False]), torch.tensor([True, False]))
    assert acc.converted_updates == 1
    assert acc.tensors()[0].dtype == torch.float64 and acc.compute()["image_auroc"] == 1.0


def test_image_numpy_inputs_are_copied_and_inference_tensors_kept() -> None:
    scores = np.array([0.1, 0.9], dtype=np.float32)  # numpy memory stays the caller's: copied
    acc = ImageAccumulator()
    acc.update(scores, np.array([0, 1]))
    scores[:] = 0.5
    assert acc.compute()["image_auroc"] == 1.0
    with torch.inference_mode():  # kept by reference like any tensor; compute's result is ordinary
        made = torch.tensor([0.1, 0.9]), torch.tensor([False, True])
    acc = ImageAccumulator()
    acc.update(*made)
    assert acc.scores[0] is made[0]
    assert acc.compute()["image_auroc"] == 1.0
    kept, _ = acc.tensors()
    assert not kept.is_inference()
    kept.add_(1.0)  # an in-place op outside inference mode, which an inference tensor would refuse
    assert made[0].tolist() == pytest.approx([0.1, 0.9])


def test_image_update_detaches_tensors_that_require_grad() -> None:
    scores = torch.tensor([0.1, 0.9], requires_grad=True)
    acc = ImageAccumulator()
    acc.update(scores, torch.tensor([False, True]))
    assert not acc.scores[0].requires_grad
    assert acc.compute()["image_auroc"] == 1.0


# ---------------------------------------------------------------- pixel


def test_pixel_batches_equal_one_call(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=12, res=32, one_pixel=True)
    acc = PixelAccumulator()
    for start in range(0, 12, 5):
        acc.update(torch.from_numpy(maps[start : start + 5]), torch.from_numpy(masks[start : start + 5]))
    assert acc.n_images == 12
    assert acc.n_pixels == 12 * 32 * 32
    assert acc.n_regions == int(label_regions(torch.from_numpy(masks)).max())
    _close(acc.compute(), pixel_metrics(maps, masks).renamed(PIXEL), 1e-12)


@pytest.mark.parametrize("fpr_limit", [0.3, 0.05])
def test_pixel_merge_of_halves_equals_everything(make_maps: Callable, fpr_limit: float) -> None:
    maps, masks = make_maps(seed=1, n=12, res=32, quantise=16)
    full = PixelAccumulator(fpr_limit)
    full.update(maps, masks)
    first, second = PixelAccumulator(fpr_limit), PixelAccumulator(fpr_limit)
    first.update(maps[:5], masks[:5])
    second.update(maps[5:], masks[5:])
    n_second = second.n_regions
    assert first.merge(second) is first
    assert first.n_regions == full.n_regions
    assert first.compute() == full.compute()  # same pixels in the same order: bit-identical
    assert second.n_regions == n_second  # the merged-in accumulator is unchanged

    reverse = PixelAccumulator(fpr_limit)
    reverse.update(maps[5:], masks[5:])
    other = PixelAccumulator(fpr_limit)
    other.update(maps[:5], masks[:5])
    _close(reverse.merge(other).compute(), full.compute(), 1e-12)


def test_pixel_merge_renumbers_regions() -> None:
    # Each shard has one region with id 1; merged, they must be two regions (R = 2), not one.
    masks = torch.zeros(1, 1, 3, dtype=torch.bool)
    masks[0, 0, 0] = True
    a, b = PixelAccumulator(), PixelAccumulator()
    a.update(torch.tensor([[[0.9, 0.2, 0.2]]]), masks)
    b.update(torch.tensor([[[0.1, 0.2, 0.2]]]), masks)
    a.merge(b)
    assert a.n_regions == 2
    assert a.compute()["pixel_aupro"] == pytest.approx(0.5, abs=1e-15)  # found in one image of two


def test_pixel_batches_of_different_sizes_are_pooled(make_maps: Callable) -> None:
    small, small_masks = make_maps(seed=2, n=3, res=16)
    large, large_masks = make_maps(seed=3, n=2, res=32)
    acc = PixelAccumulator()
    acc.update(small, small_masks)
    acc.update(large, large_masks)
    scores = torch.cat([torch.from_numpy(small).reshape(-1), torch.from_numpy(large).reshape(-1)])
    small_regions = label_regions(torch.from_numpy(small_masks)).reshape(-1)
    large_regions = label_regions(torch.from_numpy(large_masks)).reshape(-1)
    large_regions = torch.where(large_regions > 0, large_regions + int(small_regions.max()), 0)
    regions = torch.cat([small_regions, large_regions])
    assert acc.compute() == pixel_metrics_from_regions(scores, regions).renamed(PIXEL)


def test_pixel_masks_none_is_missing() -> None:
    acc = PixelAccumulator()
    acc.update(torch.rand(2, 4, 4), None)
    acc.update(torch.rand(3, 4, 4), None)
    result = acc.compute()
    assert acc.n_images == 5
    assert dict(result) == dict.fromkeys(PIXEL_KEYS)
    assert result.reasons == dict.fromkeys(PIXEL_KEYS, "no ground-truth masks")


def test_pixel_mixing_masks_and_none_is_an_error() -> None:
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    acc = PixelAccumulator()
    acc.update(torch.rand(2, 4, 4), masks)
    with pytest.raises(ValueError, match="masks=None"):
        acc.update(torch.rand(2, 4, 4), None)
    acc = PixelAccumulator()
    acc.update(torch.rand(2, 4, 4), None)
    with pytest.raises(ValueError, match="masks=None"):
        acc.update(torch.rand(2, 4, 4), masks)
    with_masks = PixelAccumulator()
    with_masks.update(torch.rand(2, 4, 4), masks)
    with pytest.raises(ValueError, match="masks=None"):
        acc.merge(with_masks)


def test_pixel_missing_levels() -> None:
    acc = PixelAccumulator()
    assert set(acc.compute().reasons.values()) == {"no images"}
    acc.update(torch.rand(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.bool))
    result = acc.compute()
    assert dict(result) == dict.fromkeys(PIXEL_KEYS)
    assert set(result.reasons.values()) == {"no anomalous pixels"}


def test_pixel_empty_accumulators_merge_into_anything(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=4, res=16)
    acc = PixelAccumulator()
    acc.update(maps, masks)
    expected = acc.compute()
    assert PixelAccumulator().merge(acc).merge(PixelAccumulator()).compute() == expected


def test_pixel_merge_needs_the_same_limit() -> None:
    with pytest.raises(ValueError, match="fpr_limit"):
        PixelAccumulator(0.3).merge(PixelAccumulator(0.05))


def test_pixel_keeps_float32_and_stores_the_maps_passed() -> None:
    maps = (0.5 + torch.arange(64, dtype=torch.float32) * 2**-20).reshape(1, 8, 8)
    masks = (torch.arange(64) >= 32).reshape(1, 8, 8)
    acc = PixelAccumulator()
    acc.update(maps.clone(), masks)  # the documented way to reuse a buffer
    maps.fill_(0.0)
    assert acc.compute()["pixel_auroc"] == 1.0  # float32 kept: 2**-20 steps above 0.5 still rank
    acc = PixelAccumulator()
    acc.update(maps, masks)
    assert acc.scores[0].data_ptr() == maps.data_ptr()  # a flat view of the maps passed, no copy


def test_pixel_labelled_ids_are_kept_by_reference(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=8, n=4, res=16)
    labelled = label_masks(torch.from_numpy(masks))
    acc = PixelAccumulator()
    acc.update(torch.from_numpy(maps), labelled)
    expected = pixel_metrics(maps, masks).renamed(PIXEL)
    assert acc.compute() == expected
    acc = PixelAccumulator()
    acc.update(torch.from_numpy(maps), labelled)
    assert acc.regions[0].data_ptr() == labelled.ids.data_ptr()


def test_pixel_nan_is_caught_at_compute_and_half_maps_upcast_there() -> None:
    maps = torch.rand(2, 4, 4)
    maps[1, 2, 2] = float("nan")
    acc = PixelAccumulator()
    acc.update(maps, torch.rand(2, 4, 4) > 0.5)
    with pytest.raises(ValueError, match="NaN"):
        acc.compute()
    half = torch.tensor([[[0.1, 0.9]]], dtype=torch.bfloat16)
    acc = PixelAccumulator()
    acc.update(half, torch.tensor([[[False, True]]]))
    assert acc.scores[0].dtype == torch.bfloat16  # kept as given until compute
    assert acc.compute()["pixel_auroc"] == 1.0
    assert acc.scores[0].dtype == torch.float32


def test_pixel_compute_lets_the_inputs_go(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=9, n=4, res=16)
    acc, refs = PixelAccumulator(), []
    for i in range(4):
        batch = torch.from_numpy(maps[i : i + 1]).clone()
        refs.append(weakref.ref(batch))
        acc.update(batch, torch.from_numpy(masks[i : i + 1]))
        del batch
    gc.collect()
    assert all(ref() is not None for ref in refs)  # held by reference until compute
    acc.compute()
    gc.collect()
    assert all(ref() is None for ref in refs)  # the concatenation replaced them: their memory is free


def test_compute_twice_gives_the_same_result(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=4, res=16)
    acc = PixelAccumulator()
    acc.update(maps[:2], masks[:2])
    acc.update(maps[2:], masks[2:])
    first = acc.compute()
    assert acc.compute() == first


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_accumulators_match_cpu(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=0, n=12, res=64, quantise=16)
    cpu, gpu = PixelAccumulator(), PixelAccumulator()
    cpu.update(maps, masks)
    gpu.update(torch.from_numpy(maps).cuda(), torch.from_numpy(masks).cuda())
    assert gpu.scores[0].device.type == "cuda"
    _close(gpu.compute(), cpu.compute(), 1e-12)
    images_cpu, images_gpu = ImageAccumulator(), ImageAccumulator()
    scores, labels = _image_data()
    images_cpu.update(scores, labels)
    images_gpu.update(scores.cuda(), labels.cuda())
    _close(images_gpu.compute(), images_cpu.compute(), 1e-12)
