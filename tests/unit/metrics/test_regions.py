"""Connected ground-truth regions: 8-connectivity, ids unique across the batch, int32 on the masks' device."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from zsad_bench.metrics import label_regions


def test_diagonal_neighbours_are_one_region() -> None:
    masks = torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 0]]], dtype=torch.bool)
    regions = label_regions(masks)
    assert regions.tolist() == [[[1, 0, 0], [0, 1, 0], [0, 0, 0]]]


def test_pixels_two_apart_are_two_regions() -> None:
    masks = torch.tensor([[[1, 0, 1]]], dtype=torch.bool)
    assert label_regions(masks).tolist() == [[[1, 0, 2]]]


def test_region_touching_the_border_and_a_ring() -> None:
    masks = torch.zeros(1, 6, 6, dtype=torch.bool)
    masks[0, 0, :] = True  # along the top border
    masks[0, :, 5] = True  # down the right border, joined to the top row
    masks[0, 2:5, 0:3] = True
    masks[0, 3, 1] = False  # a ring with a hole is still one region
    regions = label_regions(masks)
    assert int(regions.max()) == 2
    assert set(regions[0, 0].tolist()) == {1}
    assert set(regions[0, :, 5].tolist()) == {1}
    assert set(regions[0][masks[0] & (regions[0] != 1)].tolist()) == {2}


def test_ids_are_unique_across_the_batch_and_match_scipy() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((5, 20, 20)) < 0.15
    masks[2] = False  # a normal image in the middle
    regions = label_regions(torch.from_numpy(masks))
    assert regions.dtype == torch.int32
    assert regions.shape == masks.shape
    offset = 0
    for i in range(len(masks)):
        expected, n = scipy.ndimage.label(masks[i], structure=np.ones((3, 3), dtype=int))
        got = regions[i].numpy()
        np.testing.assert_array_equal(got, np.where(expected > 0, expected + offset, 0))
        offset += n
    assert int(regions.max()) == offset
    assert set(np.unique(regions.numpy())) == set(range(offset + 1))


def test_accepts_numpy_and_non_bool_masks() -> None:
    masks = np.array([[[0, 255], [255, 0]]], dtype=np.uint8)
    regions = label_regions(masks)
    assert isinstance(regions, torch.Tensor)
    assert regions.tolist() == [[[0, 1], [1, 0]]]


def test_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        label_regions(torch.zeros(4, 4, dtype=torch.bool))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stays_on_the_masks_device() -> None:
    masks = torch.zeros(2, 4, 4, dtype=torch.bool, device="cuda")
    masks[1, 1, 1] = True
    regions = label_regions(masks)
    assert regions.device == masks.device
    assert int(regions.sum()) == 1


def _random_masks(seed: int, n: int = 6, size: int = 24) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    masks = rng.random((n, size, size)) > 0.93
    masks[1] = False  # a normal image between anomalous ones
    return torch.from_numpy(masks)


@pytest.mark.parametrize("seed", range(4))
def test_label_masks_counts_each_images_regions(seed: int) -> None:
    from zsad_bench.metrics.regions import label_masks

    masks = _random_masks(seed)
    labelled = label_masks(masks)
    eight = np.ones((3, 3), dtype=bool)
    expected = [scipy.ndimage.label(m.numpy(), structure=eight)[1] for m in masks]
    assert labelled.per_image.tolist() == expected and labelled.n_regions == sum(expected)
    assert torch.equal(labelled.ids, label_regions(masks)) and torch.equal(labelled.masks(), masks)
    for start, stop in [(0, 6), (2, 5), (3, 4), (5, 6), (4, 4)]:
        part = labelled.rows(start, stop)  # renumbered from 1, as if the slice had been labelled alone
        assert torch.equal(part.ids, label_regions(masks[start:stop]))
        assert part.per_image.tolist() == expected[start:stop]


@pytest.mark.parametrize("histogram", [False, True])
def test_accumulators_take_labelled_masks_with_identical_results(histogram: bool) -> None:
    from zsad_bench.metrics import PixelAccumulator
    from zsad_bench.metrics.histogram import HistogramPixelAccumulator
    from zsad_bench.metrics.regions import label_masks

    masks = _random_masks(7)
    maps = torch.rand(masks.shape) + masks * 0.3
    maps = maps / maps.max()
    make = HistogramPixelAccumulator if histogram else PixelAccumulator
    plain, labelled = make(), make()
    for start, stop in [(0, 2), (2, 5), (5, 6)]:
        plain.update(maps[start:stop], masks[start:stop])
        labelled.update(maps[start:stop], label_masks(masks).rows(start, stop))
    assert dict(plain.compute()) == dict(labelled.compute())
    with pytest.raises(ValueError, match="shape"):
        make().update(maps[:2], label_masks(masks[:3]))
