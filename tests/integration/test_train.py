"""`zsad train` then `zsad run --checkpoint`, and the protocol's refusal to evaluate on training data."""

import json

from click.testing import CliRunner

from zsad_bench.cli import main


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
    assert len(lines) == 1 and "not a readable AnomalyCLIP checkpoint" in lines[0]
