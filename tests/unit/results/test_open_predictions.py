"""open_predictions: the one way `zsad score` and the figures find a result's prediction cache."""

import pytest
import torch

from zsad_bench.errors import ZsadError
from zsad_bench.results.cache import PredictionCache, open_predictions
from zsad_bench.results.schema import RunResult


def _cache(folder, key="k1"):
    cache = PredictionCache(folder, key)
    maps = torch.rand(2, 4, 4)
    cache.add("c", maps, maps.amax((1, 2)), torch.tensor([0, 1]), maps > 0.5, ["a.png", "b.png"])
    cache.finish("c")
    return cache


def _result(predictions):
    return RunResult(model="clip", dataset="d", per_class={}, mean={}, predictions=predictions)


def test_a_relative_folder_is_resolved_against_the_results_folder(tmp_path):
    _cache(tmp_path / "results" / "predictions" / "clip__d")
    cache = open_predictions(_result({"folder": "predictions/clip__d", "key": "k1"}), tmp_path / "results")
    assert cache.folder == tmp_path / "results" / "predictions" / "clip__d"
    assert cache.classes() == ["c"] and cache.load("c").sample_ids == ["a.png", "b.png"]


def test_an_absolute_folder_is_used_as_is(tmp_path):
    _cache(tmp_path / "elsewhere")
    record = {"folder": str(tmp_path / "elsewhere"), "key": "k1"}
    assert open_predictions(_result(record), tmp_path / "results").folder == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, r"^clip__d\.json has no prediction cache \(it was run with --no-cache\); re-run 'zsad run'$"),
        ({"key": "k1"}, "has no prediction cache"),
        ({"folder": "gone", "key": "k1"}, "^no readable prediction cache in .*gone"),
        ({"folder": "c", "key": "other"}, r"^the prediction cache of clip__d\.json belongs to another run"),
    ],
)
def test_what_cannot_be_used_is_one_line_saying_to_rerun(tmp_path, record, message):
    _cache(tmp_path / "c")
    with pytest.raises(ZsadError, match=message) as error:
        open_predictions(_result(record), tmp_path)
    assert "\n" not in str(error.value) and "re-run 'zsad run'" in str(error.value)
