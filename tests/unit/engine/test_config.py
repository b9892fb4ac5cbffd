"""``EvalConfig`` (checked when made, frozen), ``evaluate(..., config=)``, and ``zsad run``'s ``RunRequest``
producing a result that is complete when built: few-shot count, prediction-cache folder, provenance."""

import dataclasses
import json

import pytest
from zsad_bench.baselines.clip import CLIP

from zsad_bench import load_dataset
from zsad_bench.engine import EvalConfig, evaluate
from zsad_bench.engine.runner import RunRequest, execute
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default

EVAL = 32


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "batch size"),
        ({"batch_size": "big"}, "batch size"),
        ({"num_workers": -1}, "loader workers"),
        ({"precision": "fp16"}, "precision 'fp16'"),
        ({"ci": 1.5}, "confidence level"),
        ({"protocol": dataclasses.replace(default, pixel_mode="sparse")}, "pixel_mode"),
    ],
)
def test_a_bad_setting_fails_when_the_config_is_made(changes, message):
    with pytest.raises(ZsadError, match=message):
        EvalConfig(**changes)


def test_config_is_frozen_and_normalised():
    config = EvalConfig(batch_size="16", num_workers="AUTO")
    assert config.batch_size == 16 and config.num_workers == "auto"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 4  # type: ignore[misc]


@pytest.fixture(scope="module")
def clip():
    return CLIP(backbone="test-tiny", image_size=64).eval()


def test_config_keyword_equals_settings_keywords(clip, session_data_root):
    data = load_dataset("synthetic", transform=clip.transform(), mask_size=EVAL, root=session_data_root)
    protocol = default.with_overrides(eval_size=EVAL)
    config = EvalConfig(protocol=protocol, batch_size=4, progress=False, seed=3)
    by_config = evaluate(clip, data, config=config)
    by_keywords = evaluate(clip, data, protocol, batch_size=4, progress=False, seed=3)
    assert by_config.per_class == by_keywords.per_class and by_config.seed == 3
    assert by_config.dataset == "synthetic"  # from the dataset's own spec
    assert by_config.timings["batch_size"] == 4 and by_config.timings["precision"] == "fp32"
    # the public entry records the same provenance as `zsad run`
    assert by_config.data["manifest_sha256"] and by_config.detector["backbone_weights_sha256"]
    with pytest.raises(TypeError):
        evaluate(clip, data, protocol, batch_sise=4)


def test_run_request_result_is_complete_when_written(tmp_path):
    protocol = default.with_overrides(eval_size=EVAL)
    evaluation = EvalConfig(protocol=protocol, device="cpu", batch_size=8, progress=False)
    request = RunRequest(["clip"], ["synthetic"], tmp_path / "out", evaluation, "test-tiny", quiet=True)
    (path,) = execute(dataclasses.replace(request, options={"image_size": 64}))
    raw = json.loads(path.read_text())
    assert path.name == "clip__synthetic.json" and raw["shots"] == 0
    # relative to the results folder, so the folder can move with its predictions
    assert raw["predictions"]["folder"] == "predictions/clip__synthetic"
    assert (tmp_path / "out" / raw["predictions"]["folder"] / "index.json").is_file()
    assert raw["protocol"]["eval_size"] == EVAL and raw["timings"]["batch_size"] == 8
