"""ClassScorer: a composition of accumulators whose to / merge / reset are the base's, emitting result keys;
summarise reads the table, confidence intervals included."""

from __future__ import annotations

import pickle

import pytest
import torch

from zsad_bench.engine.scoring import ClassScorer, summarise
from zsad_bench.metrics.table import IMAGE_METRICS, METRIC_KEYS
from zsad_bench.protocols import default as default_protocol


def _batch(seed: int, n: int = 6, res: int = 16) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, res, res, dtype=torch.bool)
    masks[: n // 2, 3:8, 4:9] = True
    maps = torch.rand(n, res, res, generator=g) + 0.5 * masks
    labels = masks.flatten(1).any(1).to(torch.int64)
    scores = maps.flatten(1).amax(1)
    return scores, labels, maps, masks


@pytest.mark.parametrize("pixel_mode", ["exact", "histogram"])
def test_merged_shards_equal_one_scorer(pixel_mode: str) -> None:
    protocol = default_protocol.with_overrides(pixel_mode=pixel_mode)
    whole, first, second = (ClassScorer(protocol, (0.0, 1.5)) for _ in range(3))
    a, b = _batch(0), _batch(1)
    whole.update(*a)
    whole.update(*b)
    first.update(*a)
    second.update(*b)
    # as the sharded loop does: to the CPU, through pickle (the gather), merged in rank order
    shard = pickle.loads(pickle.dumps(second.to("cpu")))
    merged = first.to("cpu").merge(shard).compute()
    expected = whole.compute()
    assert merged.values.keys() == set(METRIC_KEYS)
    for key, value in expected.values.items():
        assert merged.values[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
    assert merged.counts == expected.counts and first.n_images == 12


def test_reset_and_merge_are_the_base_class_methods() -> None:
    scorer = ClassScorer(default_protocol)
    assert "merge" not in ClassScorer.__dict__ and "to" not in ClassScorer.__dict__
    assert "reset" not in ClassScorer.__dict__
    scorer.update(*_batch(2))
    assert scorer.reset() is scorer and scorer.n_images == 0 and scorer.pixel.n_images == 0


def test_summarise_uses_result_keys_for_values_reasons_and_intervals() -> None:
    scorer = ClassScorer(default_protocol)
    scorer.update(*_batch(3))
    normal_only = ClassScorer(default_protocol)
    scores, labels, maps, masks = _batch(4)
    normal_only.update(scores, torch.zeros_like(labels), maps, torch.zeros_like(masks))
    fields = summarise({"a": scorer.compute(), "b": normal_only.compute()}, ci=0.9, ci_replicates=20)
    assert list(fields["mean"]) == list(METRIC_KEYS)
    assert set(fields["missing"]["b"]) == set(METRIC_KEYS)
    intervals = fields["confidence_intervals"]
    assert set(intervals["mean"]) == set(intervals["per_class"]["a"]) == set(IMAGE_METRICS)
    assert intervals["per_class"]["b"] == dict.fromkeys(IMAGE_METRICS)
