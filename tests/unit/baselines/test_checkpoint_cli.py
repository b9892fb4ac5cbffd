"""``zsad run --checkpoint MODEL=PATH``: each model its own checkpoint, recorded in its own result; bad
checkpoints refused in one line before the first unit runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from zsad_bench.baselines.coop import CoOp

from zsad_bench.anomalyclip import AnomalyCLIP
from zsad_bench.cli import main

FAST = ["--dataset", "synthetic", "--eval-size", "32", "--batch-size", "16", "--device", "cpu"]
FAST += ["--num-workers", "0", "--no-cache", "-q"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    folders = {"anomalyclip": root / "ac", "coop": root / "co"}
    AnomalyCLIP(backbone="test-tiny", image_size=64).save(folders["anomalyclip"])
    CoOp(backbone="test-tiny", image_size=64).save(folders["coop"])
    return folders


def _refused(args: list[str], out: Path) -> str:
    result = CliRunner().invoke(main, [*args, *FAST, "--out", str(out)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()  # refused before any unit ran: nothing written, not even the folder
    return lines[0]


def test_each_model_gets_and_records_its_own_checkpoint(tmp_path, checkpoints):
    out = tmp_path / "out"
    args = ["run", "--model", "anomalyclip,coop"]
    args += [
        "--checkpoint",
        f"coop={checkpoints['coop']}",
        "--checkpoint",
        f"anomalyclip={checkpoints['anomalyclip']}",
    ]
    result = CliRunner().invoke(main, [*args, *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name, folder in checkpoints.items():
        detector = json.loads((out / f"{name}__synthetic.json").read_text())["detector"]
        weights = (folder / "model.safetensors").read_bytes()
        assert detector["checkpoint"] == str(folder)
        assert detector["checkpoint_sha256"] == hashlib.sha256(weights).hexdigest()
        assert detector["config"]["image_size"] == 64  # the checkpoint's stored options


def test_a_bare_path_with_several_models_is_refused(tmp_path, checkpoints):
    line = _refused(
        ["run", "--model", "anomalyclip,coop", "--checkpoint", str(checkpoints["coop"])], tmp_path / "o"
    )
    assert line == (
        f"error: --checkpoint {checkpoints['coop']} does not say which model it is for; with several models "
        f"write --checkpoint MODEL=PATH, once per model (anomalyclip, coop)"
    )
    line = _refused(
        ["run", "--model", "coop", "--checkpoint", f"april-gan={checkpoints['coop']}"], tmp_path / "o"
    )
    assert line == "error: --checkpoint names model 'april-gan', which is not run (--model coop)"


def test_another_models_checkpoint_is_one_line(tmp_path, checkpoints):
    line = _refused(
        ["run", "--model", "anomalyclip", "--checkpoint", str(checkpoints["coop"])], tmp_path / "o"
    )
    assert line == (
        f"error: checkpoint {checkpoints['coop'] / 'config.json'} was written for model 'coop', not "
        f"'anomalyclip'; pass a checkpoint of 'anomalyclip' or run the model it was written for"
    )


@pytest.mark.parametrize(
    ("file", "content", "says"),
    [
        ("config.json", "", "is empty"),
        ("config.json", '{"name": "coop", "backbone": "test-t', "is not JSON (Unterminated string"),
        (
            "config.json",
            '{"name": "coop", "backbone": "test-tiny", "image_size": 7}',
            "must be a multiple of a test-tiny patch size",
        ),
        ("config.json", '{"name": "coop", "n_ctx": -1}', "option n_ctx of checkpoint "),
        ("model.safetensors", "", "is empty; re-run 'zsad train'"),
        ("model.safetensors", "half", "is truncated or not safetensors"),
    ],
)
def test_a_broken_checkpoint_of_the_second_model_fails_before_the_first_runs(
    tmp_path, checkpoints, file, content, says
):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoints["coop"], broken)
    target = broken / file
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if content == "half" else content.encode())
    args = ["run", "--model", "anomalyclip,coop"]
    args += ["--checkpoint", f"anomalyclip={checkpoints['anomalyclip']}", "--checkpoint", f"coop={broken}"]
    line = _refused(args, tmp_path / "out")
    if file == "model.safetensors" or "option" in says or "multiple" in says:
        assert says in line, line
    else:
        assert line.startswith(f"error: checkpoint {target} {says}"), line
    if "multiple" in says:
        assert line.startswith("error: option image_size of model 'coop'"), line
