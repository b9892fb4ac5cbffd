"""`zsad train` then `zsad run --checkpoint`, and the protocol's refusal to evaluate on training data."""

import json

import pytest
from click.testing import CliRunner

from zsad_bench.api import Detector, TrainConfig
from zsad_bench.cli import main
from zsad_bench.engine.checkpoint import train_checkpoint


def test_train_then_run_with_the_checkpoint(tmp_path):
    runner = CliRunner()
    ckpt = tmp_path / "ckpt"
    result = runner.invoke(
        main,
        [
            "train",
            "anomalyclip",
            "--dataset",
            "synthetic",
            "--backbone",
            "test-tiny",
            "-o",
            "image_size=64",
            "--epochs",
            "2",
            "--out",
            str(ckpt),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((ckpt / "train.json").read_text())
    assert len(record["epoch_losses"]) == 2 and record["feature_cache"] is True
    assert record["model"] == "anomalyclip" and record["dataset"] == "synthetic" and record["split"] == "test"
    assert record["classes"] == ["checker", "dots", "stripes", "weave"] and record["config"]["epochs"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # written whole, no staging folder left
    config = json.loads((ckpt / "config.json").read_text())
    assert config["trained_on"] == "synthetic" and config["backbone"] == "test-tiny"

    # the same data it was trained on is refused
    out = tmp_path / "results"
    refused = runner.invoke(
        main,
        [
            "run",
            "--model",
            "anomalyclip",
            "--checkpoint",
            str(ckpt),
            "--dataset",
            "synthetic",
            "--eval-size",
            "64",
            "--out",
            str(out),
        ],
    )
    assert refused.exit_code == 2 and "trained on synthetic" in refused.stderr
    assert not out.exists()

    again = runner.invoke(
        main,
        ["train", "anomalyclip", "--dataset", "synthetic", "--backbone", "test-tiny", "--out", str(ckpt)],
    )
    assert again.exit_code == 2 and "already holds a checkpoint" in again.stderr


def test_training_free_model_and_bad_checkpoint_are_refused(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "clip", "--dataset", "synthetic", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "training-free" in result.stderr
    bad = tmp_path / "epoch_15.pth"
    bad.write_bytes(b"garbage")
    result = runner.invoke(
        main,
        [
            "run",
            "--model",
            "anomalyclip",
            "--backbone",
            "test-tiny",
            "--checkpoint",
            str(bad),
            "--dataset",
            "synthetic",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"checkpoint {bad} is not a checkpoint of tensors" in lines[0]


def test_train_refuses_a_folder_that_holds_something(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    args = ["train", "coop", "--dataset", "synthetic", "--backbone", "test-tiny", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "exists and is not an empty folder" in result.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_a_failure_while_writing_leaves_no_checkpoint(tmp_path, monkeypatch):
    def broken_save(self, path):
        (path / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Detector, "save", broken_save)
    out = tmp_path / "ckpt"
    with pytest.raises(OSError, match="disk full"):
        train_checkpoint(
            "coop", "synthetic", out, TrainConfig(device="cpu"), epochs=1, backbone="test-tiny",
            options={"image_size": "64", "n_ctx": 2},
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []
