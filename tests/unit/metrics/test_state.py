"""The accumulator base: declared state gives ``to`` / ``merge`` / ``reset``; many small updates give
exactly what one big update gives; the metric table decides every key."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pytest
import torch

from zsad_bench.metrics import Accumulator, ImageAccumulator, PixelAccumulator, image_metrics, pixel_metrics
from zsad_bench.metrics.from_curve import CURVE_METRICS
from zsad_bench.metrics.histogram import HistogramPixelAccumulator
from zsad_bench.metrics.table import METRICS, level_names, result_keys


class _Counter(Accumulator):
    """A toy accumulator with one state of each kind."""

    settings = ("tag",)

    def __init__(self, tag: str = "a") -> None:
        super().__init__()
        self.tag = tag
        self.add_state("chunks", [], "cat")
        self.add_state("total", 0, "sum")
        self.add_state("histogram", None, "sum")
        self.add_state("child", ImageAccumulator(), "merge")

    def update(self, values: torch.Tensor) -> None:
        self.chunks.append(values.clone())
        self.total += values.numel()
        self.accumulate("histogram", torch.bincount(values, minlength=4))
        self.child.update(values.float(), values > 1)


def test_toy_state_merges_moves_and_resets_generically() -> None:
    a, b = _Counter(), _Counter()
    a.update(torch.tensor([0, 1, 2]))
    b.update(torch.tensor([3, 3]))
    b.update(torch.tensor([1]))
    assert a.merge(b) is a
    assert torch.equal(a.concatenated("chunks"), torch.tensor([0, 1, 2, 3, 3, 1]))
    assert a.chunks == [a.concatenated("chunks")]  # concatenated once, kept
    assert a.total == 6 and a.histogram.tolist() == [1, 2, 1, 2]
    assert a.child.n_images == 6
    assert len(b.chunks) == 2 and b.total == 3 and b.histogram.tolist() == [0, 1, 0, 2]  # b unchanged
    assert a.to("cpu") is a and a.chunks[0].device.type == "cpu"
    assert a.reset() is a
    assert (a.chunks, a.total, a.histogram, a.child.n_images) == ([], 0, None, 0)
    empty = _Counter()
    assert empty.merge(b).histogram is not b.histogram  # a merged-in tensor is never aliased


def test_merge_checks_type_and_settings() -> None:
    with pytest.raises(TypeError, match="cannot merge ImageAccumulator into _Counter"):
        _Counter().merge(ImageAccumulator())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tag 'a' and 'b'"):
        _Counter("a").merge(_Counter("b"))
    with pytest.raises(ValueError, match="aupro_variant"):
        PixelAccumulator(aupro_variant="mvtec").merge(PixelAccumulator(aupro_variant="anomalyclip-200"))
    with pytest.raises(ValueError, match="bins"):
        HistogramPixelAccumulator(bins=16).merge(HistogramPixelAccumulator(bins=32))


def test_bad_declarations_are_rejected() -> None:
    acc = Accumulator()
    with pytest.raises(ValueError, match="starts as"):
        acc.add_state("x", [1], "cat")
    with pytest.raises(ValueError, match="'sum' state"):
        acc.add_state("x", "zero", "sum")
    with pytest.raises(ValueError, match="reduce must be"):
        acc.add_state("x", 0, "max")  # type: ignore[arg-type]


# ---------------------------------------------------------------- small updates == one update, exactly


def test_image_32_score_updates_equal_one_update_exactly() -> None:
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.random(5000).astype(np.float32))
    labels = torch.from_numpy(rng.random(5000) < 0.3)
    small, big = ImageAccumulator(), ImageAccumulator()
    for s, y in zip(scores.split(32), labels.split(32), strict=True):
        small.update(s, y.to(torch.int64))  # 0/1 labels, as the loader gives them
    big.update(scores, labels)
    assert small.compute() == big.compute()
    assert small.compute().keys() == big.compute().keys()
    assert torch.equal(small.tensors()[0], scores) and torch.equal(small.tensors()[1], labels)


def test_pixel_one_map_updates_equal_one_update_exactly(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=4, n=10, res=24, quantise=32)
    small, big = PixelAccumulator(), PixelAccumulator()
    for i in range(10):
        small.update(maps[i : i + 1], masks[i : i + 1])
    big.update(maps, masks)
    assert small.n_regions == big.n_regions
    assert small.compute() == big.compute()
    assert small.compute() == big.compute()  # again, from the consolidated state


def test_pixel_merge_after_compute_keeps_region_ids_unique(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=5, n=8, res=24)
    whole, first, second = PixelAccumulator(), PixelAccumulator(), PixelAccumulator()
    whole.update(maps, masks)
    first.update(maps[:3], masks[:3])
    first.update(maps[3:5], masks[3:5])
    first.compute()  # consolidates its chunks
    second.update(maps[5:], masks[5:])
    second.compute()
    assert first.merge(second).compute() == whole.compute()


def test_histogram_small_updates_equal_one_update(make_maps: Callable) -> None:
    maps, masks = make_maps(seed=6, n=9, res=24)
    small, big = HistogramPixelAccumulator(bins=256), HistogramPixelAccumulator(bins=256)
    for i in range(0, 9, 2):
        small.update(maps[i : i + 2], masks[i : i + 2])
    big.update(maps, masks)
    # integer bin counts are exact; the float64 PRO sums may differ by the order of additions
    assert torch.equal(small.neg, big.neg) and torch.equal(small.pos, big.pos)
    for key, value in big.compute().items():
        assert small.compute()[key] == pytest.approx(value, abs=1e-12), key


def test_reset_returns_to_a_fresh_accumulator(make_maps: Callable) -> None:
    images = ImageAccumulator()
    images.update(torch.rand(6), torch.tensor([0, 1, 0, 1, 1, 0]))
    images.compute()
    assert images.reset().compute() == ImageAccumulator().compute()
    maps, masks = make_maps(seed=7, n=4, res=16)
    for make in (PixelAccumulator, lambda: HistogramPixelAccumulator(bins=64)):
        acc = make()
        acc.update(maps, masks)
        acc.compute()
        assert acc.reset().compute() == make().compute()
        acc.update(torch.rand(2, 16, 16), None)  # reset forgot that earlier batches had masks
        assert set(acc.compute().reasons.values()) == {"no ground-truth masks"}


def test_merging_masks_with_no_masks_is_an_error() -> None:
    with_masks, without = HistogramPixelAccumulator(bins=8), HistogramPixelAccumulator(bins=8)
    with_masks.update(torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool))
    without.update(torch.rand(1, 4, 4), None)
    with pytest.raises(ValueError, match="masks=None"):
        with_masks.merge(without)


def test_update_copies_numpy_but_keeps_tensors() -> None:
    scores = np.array([0.1, 0.9], dtype=np.float32)  # numpy: copied, its memory stays the caller's
    acc = ImageAccumulator()
    acc.update(scores, np.array([0, 1]))
    scores[:] = 0.5
    assert acc.compute()["image_auroc"] == 1.0
    maps = torch.tensor([[[0.1, 0.9]]], dtype=torch.bfloat16)
    pixels = PixelAccumulator()
    pixels.update(maps, torch.tensor([[[False, True]]]))
    assert pixels.scores[0].data_ptr() == maps.data_ptr()  # tensors: by reference, converted at compute


def test_kept_tensors_follow_merge_and_reset() -> None:
    a, b = ImageAccumulator(), ImageAccumulator()
    sa, sb = torch.tensor([0.1, 0.9]), torch.tensor([0.2, 0.8])
    a.update(sa, torch.tensor([0, 1]))
    b.update(sb, torch.tensor([0, 1]))
    a.merge(b)
    assert len(a.scores) == 2 and a.scores[0] is sa and a.scores[1] is sb
    assert len(b.scores) == 1 and b.scores[0] is sb  # b's list stays b's
    assert a.tensors()[0].tolist() == pytest.approx([0.1, 0.9, 0.2, 0.8])  # one chunk now, a new tensor ...
    assert b.scores[0] is sb  # ... and b's are not
    a.reset()
    assert a.scores == [] and a.compute() == ImageAccumulator().compute()
    a.update(sa, torch.tensor([0, 1]))
    assert a.tensors()[0] is sa  # a single float32 chunk needs neither a copy nor a conversion


# ---------------------------------------------------------------- the table decides the keys


def test_every_table_row_has_a_curve_function_and_keys_follow_the_table(make_maps: Callable) -> None:
    assert all(m.name in CURVE_METRICS for m in METRICS)
    assert tuple(image_metrics([0.2, 0.8], [0, 1])) == level_names("image")
    maps, masks = make_maps(seed=0, n=3, res=16)
    assert tuple(pixel_metrics(maps, masks)) == level_names("pixel")
    images = ImageAccumulator()
    images.update(torch.tensor([0.2, 0.8]), torch.tensor([0, 1]))
    assert tuple(images.compute()) == tuple(result_keys("image").values())
    for acc in (PixelAccumulator(), HistogramPixelAccumulator(bins=64)):
        acc.update(maps, masks)
        assert tuple(acc.compute()) == tuple(result_keys("pixel").values())
    with pytest.raises(ValueError, match="unknown metric level"):
        result_keys("region")


def test_a_pickled_accumulator_computes_the_same() -> None:
    scores = torch.rand(4)
    acc = ImageAccumulator()
    acc.update(scores[:2], torch.tensor([0, 1]))
    acc.update(scores[2:], torch.tensor([0, 1]))
    copy = pickle.loads(pickle.dumps(acc))
    assert copy.compute() == acc.compute()
    assert torch.equal(copy.tensors()[0], scores)
