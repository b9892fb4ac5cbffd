"""The result file: written atomically with the umask's modes, checked when read (one line naming the file
and the field), and the prediction cache's files written the same way."""

import json
import os
import stat

import pytest
import torch
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.results.cache import PredictionCache
from zsad_bench.results.schema import RunResult, read_results


def _result() -> RunResult:
    values = {"image_auroc": 0.75, "image_ap": 0.5, "pixel_aupro": None}
    return RunResult(
        model="clip",
        dataset="synthetic",
        per_class={"stripes": dict(values)},
        mean=dict(values),
        missing={"stripes": {"pixel_aupro": "no masks"}},
        counts={"stripes": {"normal": 3, "anomalous": 2}},
        seed=0,
    )


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_result_file_is_world_readable_under_umask_022(tmp_path, umask_022):
    path = _result().write(tmp_path / "results")
    assert _mode(path) == 0o644  # -rw-r--r--, as a plain open() would make it
    assert [p.name for p in path.parent.iterdir()] == ["clip__synthetic.json"]  # no temporary left


def test_prediction_cache_files_follow_the_umask(tmp_path, umask_022):
    cache = PredictionCache(tmp_path / "preds", "key")
    cache.add("stripes", torch.rand(2, 4, 4), torch.rand(2), torch.tensor([0, 1]), None, ["a", "b"])
    cache.finish("stripes")
    assert sorted(p.name for p in cache.folder.iterdir()) == ["index.json", "stripes.safetensors"]
    assert {_mode(p) for p in cache.folder.iterdir()} == {0o644}


def test_round_trip_keeps_every_field(tmp_path):
    result = _result()
    assert RunResult.read(result.write(tmp_path)) == result


def _bad(raw):
    for name in ("model", "dataset", "per_class", "mean"):
        yield f"missing {name}", {k: v for k, v in raw.items() if k != name}, name
    yield "null dataset", {**raw, "dataset": None}, "'dataset' is null"
    yield "wrong type", {**raw, "seed": "zero"}, "field 'seed'"
    yield "bool for int", {**raw, "shots": True}, "field 'shots'"
    yield "list for dict", {**raw, "counts": [1, 2]}, "field 'counts'"
    yield "nested type", {**raw, "counts": {"stripes": {"normal": "3"}}}, "field 'counts.stripes.normal'"
    per_class = {"stripes": {**raw["per_class"]["stripes"], "image_auroc": "high"}}
    yield "non-numeric metric", {**raw, "per_class": per_class}, "'per_class.stripes.image_auroc'"
    per_class = {"stripes": {**raw["per_class"]["stripes"], "image_ap": 1.5}}
    yield "metric above 1", {**raw, "per_class": per_class}, "'per_class.stripes.image_ap' is 1.5, outside"
    yield "metric below 0", {**raw, "mean": {**raw["mean"], "image_auroc": -0.1}}, "'mean.image_auroc'"
    yield "percent, not fraction", {**raw, "mean": {**raw["mean"], "image_auroc": 75}}, "'mean.image_auroc'"


@pytest.mark.parametrize("case", list(_bad(_result().to_dict())), ids=lambda c: c[0])
def test_a_malformed_result_is_one_line_naming_file_and_field(tmp_path, case):
    _, raw, field = case
    path = tmp_path / "clip__synthetic.json"
    path.write_text(json.dumps(raw))
    if "model" not in raw or "per_class" not in raw:  # not recognisable as a result file at all
        field = "not a zsad-bench result file"
    with pytest.raises(ZsadError) as caught:
        RunResult.read(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and field in message


def test_nan_in_a_result_file_is_refused(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_result().to_dict()).replace("0.75", "NaN", 1))
    with pytest.raises(ZsadError, match="outside"):
        RunResult.read(path)


def test_older_files_without_optional_fields_still_read(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"model": "m", "dataset": "d", "per_class": {}, "mean": {}}))
    assert RunResult.read(path).shots == 0


def test_leaderboard_of_a_malformed_file_is_one_error_line(tmp_path):
    raw = _result().to_dict()
    raw["mean"]["image_auroc"] = 97.5
    (tmp_path / "clip__synthetic.json").write_text(json.dumps(raw))
    with pytest.raises(ZsadError, match=r"mean\.image_auroc"):
        read_results(tmp_path)
    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "mean.image_auroc" in lines[0], result.stderr
