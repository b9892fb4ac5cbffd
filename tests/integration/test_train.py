"""`zsad train` then `zsad run --checkpoint`, and the protocol's refusal to evaluate on training data;
training on several auxiliary datasets at once and the method's own training defaults."""

import dataclasses
import json

import pytest
from click.testing import CliRunner

from zsad_bench.api import Detector, TrainConfig
from zsad_bench.cli import main
from zsad_bench.data.synthetic import SPEC
from zsad_bench.engine.checkpoint import train_checkpoint
from zsad_bench.registry import DATASETS


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


# -- several auxiliary datasets trained on together (AdaCLIP's MVTec AD + CVC-ColonDB) -----------------
@pytest.fixture(scope="module")
def pair_checkpoint(tmp_path_factory, session_data_root):
    """CoOp trained once on synthetic + synthetic-b (the same textures drawn from another seed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSAD_DATA", str(session_data_root))
        patch.setenv("HF_HUB_OFFLINE", "1")
        DATASETS.register(
            "synthetic-b", dataclasses.replace(SPEC, id="synthetic-b", builder_options={"seed": 7})
        )
        ckpt = tmp_path_factory.mktemp("pair") / "ckpt"
        args = [
            "train",
            "coop",
            "--dataset",
            "synthetic",
            "--dataset",
            "synthetic-b",
            "--backbone",
            "test-tiny",
        ]
        args += ["-o", "image_size=64", "-o", "n_ctx=2", "--epochs", "1", "--lr", "0.002", "--out", str(ckpt)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        yield ckpt, result.stderr
        DATASETS.reset()


def test_two_datasets_train_as_one_and_record_each(pair_checkpoint):
    ckpt, log = pair_checkpoint
    assert (
        "training coop on synthetic+synthetic-b (test split, 128 images: synthetic 64, synthetic-b 64" in log
    )
    record = json.loads((ckpt / "train.json").read_text())
    classes = ["checker", "dots", "stripes", "weave"]
    assert record["dataset"] == "synthetic+synthetic-b" and record["classes"] == classes
    assert record["datasets"] == [
        {"id": "synthetic", "images": 64, "classes": classes},
        {"id": "synthetic-b", "images": 64, "classes": classes},
    ]
    # what the user passed (--lr) and, for what it did not, TrainConfig's (CoOp has no defaults of its own)
    assert (record["config"]["lr"], record["config"]["batch_size"]) == (0.002, 8)
    assert json.loads((ckpt / "config.json").read_text())["trained_on"] == "synthetic+synthetic-b"


@pytest.mark.parametrize("target", ["synthetic", "synthetic-b"])
def test_the_guard_refuses_each_training_dataset(pair_checkpoint, target, tmp_path):
    ckpt, _ = pair_checkpoint
    args = [
        "run",
        "--model",
        "coop",
        "--checkpoint",
        str(ckpt),
        "--dataset",
        target,
        "--out",
        str(tmp_path / "r"),
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "was trained on synthetic+synthetic-b" in refused.stderr
    assert "evaluate it on any dataset but synthetic or synthetic-b" in refused.stderr
    assert not (tmp_path / "r").exists()


def test_the_methods_own_training_defaults_apply_unless_given(tmp_path, monkeypatch):
    from zsad_bench.baselines.coop import CoOp

    monkeypatch.setattr(CoOp, "train_defaults", classmethod(lambda cls: {"lr": 0.02, "batch_size": 32}))
    out = tmp_path / "ckpt"
    args = ["train", "coop", "--dataset", "synthetic", "--backbone", "test-tiny", "-o", "image_size=64"]
    args += ["-o", "n_ctx=2", "--epochs", "1", "--batch-size", "16", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "train.json").read_text())["config"]
    assert (config["lr"], config["batch_size"]) == (0.02, 16)  # the method's lr; the user's batch size


@pytest.mark.parametrize(
    ("datasets", "words"),
    [
        (["synthetic+synthetic"], "auxiliary data 'synthetic+synthetic' names a dataset twice"),
        (["synthetic+nope"], "unknown dataset 'nope'"),
        (["synthetic+"], "has an empty dataset id"),
    ],
)
def test_bad_auxiliary_data_is_one_line(datasets, words, tmp_path):
    args = ["train", "coop", "--backbone", "test-tiny", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(main, [*args, *(x for d in datasets for x in ("--dataset", d))])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "c").exists()
