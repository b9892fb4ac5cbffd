"""Prediction cache: lossless round trip, resuming skips finished classes, keys keep runs apart."""

import pytest
import torch
from zsad_bench.baselines.clip import CLIP

from zsad_bench import load_dataset
from zsad_bench.engine import evaluate
from zsad_bench.engine.scoring import score_cached
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default
from zsad_bench.results.cache import PredictionCache, cache_key

EVAL = 32


class CountingCLIP(CLIP):
    """CLIP that counts the images it scores."""

    seen = 0

    def forward(self, images, class_names):
        CountingCLIP.seen += len(images)
        return super().forward(images, class_names)


@pytest.fixture(scope="module")
def model():
    return CountingCLIP(backbone="test-tiny", image_size=64).eval()


@pytest.fixture(scope="module")
def dataset(model):
    return load_dataset("synthetic", transform=model.transform(), mask_size=EVAL)


def test_round_trip_is_lossless(tmp_path):
    cache = PredictionCache(tmp_path / "c", key="k")
    maps = torch.rand(5, 8, 8)
    masks = torch.rand(5, 8, 8) > 0.7
    cache.add("metal nut/x", maps[:2], torch.rand(2), torch.tensor([0, 1]), masks[:2], ["a", "b"])
    cache.add("metal nut/x", maps[2:], torch.rand(3), torch.tensor([1, 1, 0]), masks[2:], ["c", "d", "e"])
    cache.finish("metal nut/x")
    loaded = PredictionCache.open(tmp_path / "c").load("metal nut/x")
    assert torch.equal(loaded.maps, maps) and torch.equal(loaded.masks, masks)
    assert loaded.labels.tolist() == [0, 1, 1, 1, 0] and loaded.sample_ids == list("abcde")
    assert PredictionCache.open(tmp_path / "c").classes() == ["metal nut/x"]


def test_resume_scores_cached_classes_without_running_the_model(model, dataset, tmp_path):
    protocol = default.with_overrides(eval_size=EVAL)
    key = cache_key(model.config(), "manifest", EVAL)
    cache = PredictionCache(tmp_path / "preds", key)
    CountingCLIP.seen = 0
    first = evaluate(model, dataset, protocol, cache=cache, progress=False)
    assert CountingCLIP.seen == len(dataset)
    # Simulate an interruption: the last class's file never got written.
    last = dataset.classes[-1]
    (tmp_path / "preds" / f"{last}.safetensors").unlink()
    CountingCLIP.seen = 0
    second = evaluate(model, dataset, protocol, cache=cache, progress=False)
    assert CountingCLIP.seen == len(dataset.class_indices[last])
    assert second.per_class == first.per_class
    assert second.timings["classes_from_cache"] == dataset.classes[:-1]


def test_a_different_key_never_reuses_files(model, dataset, tmp_path):
    protocol = default.with_overrides(eval_size=EVAL)
    evaluate(model, dataset, protocol, cache=PredictionCache(tmp_path / "p", "key-a"), progress=False)
    other = PredictionCache(tmp_path / "p", "key-b")
    assert not any(other.has(c) for c in dataset.classes)
    CountingCLIP.seen = 0
    evaluate(model, dataset, protocol, cache=other, progress=False)
    assert CountingCLIP.seen == len(dataset)
    assert not PredictionCache(tmp_path / "p", "key-a").valid()


def test_score_cached_reproduces_and_changes_variant(model, dataset, tmp_path):
    protocol = default.with_overrides(eval_size=EVAL)
    cache = PredictionCache(tmp_path / "s", "key")
    result = evaluate(model, dataset, protocol, cache=cache, progress=False)
    same = score_cached(result, cache, protocol)
    assert same.per_class == result.per_class and same.mean == result.mean
    cflow = score_cached(result, cache, protocol.with_overrides(aupro_variant="anomalyclip-200"), ci=0.9)
    assert cflow.metric_variants["aupro"] == "anomalyclip-200"
    assert cflow.mean["pixel_aupro"] != result.mean["pixel_aupro"]
    assert cflow.mean["pixel_auroc"] == result.mean["pixel_auroc"]
    assert cflow.confidence_intervals["level"] == 0.9
    assert set(cflow.confidence_intervals["mean"]) == {"image_auroc", "image_ap", "image_f1_max"}
    with pytest.raises(ZsadError, match="needs a new 'zsad run'"):
        score_cached(result, cache, protocol.with_overrides(eval_size=64))


def test_histogram_mode_reports_bounds_and_leaves_ap_missing(model, dataset):
    protocol = default.with_overrides(eval_size=EVAL, pixel_mode="histogram", histogram_bins=4096)
    exact = evaluate(model, dataset, default.with_overrides(eval_size=EVAL), progress=False)
    approx = evaluate(model, dataset, protocol, progress=False)
    for name in dataset.classes:
        for key in ("pixel_auroc", "pixel_aupro"):
            bound = approx.error_bounds[name][key]
            assert abs(approx.per_class[name][key] - exact.per_class[name][key]) <= bound + 1e-12
        assert approx.per_class[name]["pixel_ap"] is None
        assert "histogram" in approx.missing[name]["pixel_ap"]
    assert approx.metric_variants["pixel_mode"] == "histogram"
    assert approx.metric_variants["histogram_bins"] == 4096
