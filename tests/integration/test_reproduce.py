"""`zsad reproduce` on two synthetic datasets with the tiny backbone: dry run, full run, and resuming after a
simulated interruption without redoing finished work; a training pair of two datasets (adaclip-paper)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.data.synthetic import SPEC
from zsad_bench.protocols import Protocol, TrainingPair
from zsad_bench.registry import DATASETS, PROTOCOLS

PROTOCOL = Protocol(
    name="tiny-paper",
    eval_size=32,
    training=(TrainingPair("synthetic", ("synthetic-b",)), TrainingPair("synthetic-b", ("synthetic",))),
)
ARGS = ["reproduce", "tiny-paper", "--models", "anomalyclip,clip", "--backbone", "test-tiny"]
ARGS += ["-o", "image_size=64", "--epochs", "1", "--quiet"]


@pytest.fixture
def registered():
    DATASETS.register("synthetic-b", dataclasses.replace(SPEC, id="synthetic-b", builder_options={"seed": 7}))
    PROTOCOLS.register("tiny-paper", PROTOCOL)
    yield
    DATASETS.reset()
    PROTOCOLS.reset()


def test_dry_run_lists_units(registered, tmp_path):
    result = CliRunner().invoke(main, [*ARGS, "--out", str(tmp_path / "r"), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "[to do] train anomalyclip on synthetic -> " in lines[0]
    assert sum("evaluate" in line for line in lines) == 4  # anomalyclip x 2 targets, clip x 2 datasets
    assert lines[-1].startswith("6 units, 6 to do; 0 dataset(s) to download first")


def test_full_run_then_resume_after_interruption(registered, tmp_path, monkeypatch):
    from zsad_bench.engine import reproduce as module

    out = tmp_path / "r"
    ran: list[str] = []
    real = module._evaluate

    def flaky(unit, *args, **kwargs):
        ran.append(f"{unit.model}:{unit.dataset}")
        if len(ran) == 2:
            raise KeyboardInterrupt  # the user stops the run during the second evaluation
        return real(unit, *args, **kwargs)

    monkeypatch.setattr(module, "_evaluate", flaky)
    first = CliRunner().invoke(main, [*ARGS, "--out", str(out)])
    assert first.exit_code == 2 and "run the same command again to resume" in first.stderr
    checkpoint = out / "checkpoints" / "anomalyclip__synthetic" / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns

    ran.clear()
    monkeypatch.setattr(
        module, "_evaluate", lambda unit, *a, **k: (ran.append(unit.model), real(unit, *a, **k))
    )
    second = CliRunner().invoke(main, [*ARGS, "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert len(ran) == 3  # the first evaluation is not redone
    assert checkpoint.stat().st_mtime_ns == stamp  # nor is the training
    assert sorted(p.name for p in (out / "results").glob("*.json")) == [
        "anomalyclip__synthetic-b.json",
        "anomalyclip__synthetic.json",
        "clip__synthetic-b.json",
        "clip__synthetic.json",
    ]
    board = (out / "leaderboard.md").read_text()
    assert "synthetic-b" in board and "anomalyclip (random weights)" in board
    assert (out / "leaderboard.html").is_file() and (out / "leaderboard.tex").is_file()
    assert any((out / "plots" / "heatmap").glob("*.png")) and any((out / "plots" / "curves").glob("*.svg"))
    third = CliRunner().invoke(main, [*ARGS, "--out", str(out), "--dry-run"])
    assert "6 units, 0 to do" in third.stdout


# -- a training pair of two auxiliary datasets (AdaCLIP's protocol) --------------------------------------
def test_adaclip_paper_dry_run_trains_on_each_pair_of_datasets(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "adaclip-paper", "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    checkpoint = tmp_path / "checkpoints" / "adaclip__mvtec-ad+cvc-colondb"
    assert lines[0] == f"[to do] train adaclip on mvtec-ad+cvc-colondb -> {checkpoint}"  # the default model
    assert (
        lines[1]
        == f"[to do] evaluate adaclip on visa with {checkpoint} -> {tmp_path}/results/adaclip__visa.json"
    )
    assert lines[13].startswith("[to do] train adaclip on visa+cvc-clinicdb -> ")
    assert [line.split()[5] for line in lines[14:16]] == ["mvtec-ad", "cvc-colondb"]
    downloads = [line.rsplit(" ", 1)[1] for line in lines if line.startswith("download first")]
    assert len(downloads) == 14 and {"mvtec-ad", "cvc-colondb", "visa", "cvc-clinicdb"} <= set(downloads)
    assert lines[-1] == "16 units, 16 to do; 14 dataset(s) to download first"


def _small(name: str, seed: int) -> None:
    options = {"seed": seed, "n_train": 0, "n_test_normal": 2, "n_test_anomalous": 3}  # 20 images
    DATASETS.register(name, dataclasses.replace(SPEC, id=name, builder_options=options))


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, session_data_root):
    """One reproduction of a protocol whose training pair is two datasets: AdaCLIP (tiny backbone)
    trained on small-a + small-b, evaluated on small-c; then a dry run of the finished folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSAD_DATA", str(session_data_root))
        patch.setenv("HF_HUB_OFFLINE", "1")
        for name, seed in (("small-a", 3), ("small-b", 4), ("small-c", 5)):
            _small(name, seed)
        pair = TrainingPair("small-a+small-b", ("small-c",))
        PROTOCOLS.register("tiny-pair", Protocol(name="tiny-pair", eval_size=32, training=(pair,)))
        out = tmp_path_factory.mktemp("pair") / "r"
        args = [
            "reproduce",
            "tiny-pair",
            "--models",
            "adaclip",
            "--backbone",
            "test-tiny",
            "-o",
            "image_size=64",
        ]
        args += ["--epochs", "1", "--out", str(out), "--quiet"]
        first = CliRunner().invoke(main, args)
        again = CliRunner().invoke(main, [*args, "--dry-run"])
        yield out, first, again
        DATASETS.reset()
        PROTOCOLS.reset()


def test_a_pair_of_datasets_reproduces_end_to_end(pair_run):
    out, first, again = pair_run
    assert first.exit_code == 0, first.output
    checkpoint = out / "checkpoints" / "adaclip__small-a+small-b"
    record = json.loads((checkpoint / "train.json").read_text())
    assert record["dataset"] == "small-a+small-b" and record["feature_cache"] is False  # prompts in the tower
    assert [(d["id"], d["images"]) for d in record["datasets"]] == [("small-a", 20), ("small-b", 20)]
    assert (record["config"]["batch_size"], record["config"]["lr"]) == (
        1,
        0.01,
    )  # AdaCLIP's own train.sh values
    assert json.loads((checkpoint / "config.json").read_text())["trained_on"] == "small-a+small-b"
    result = json.loads((out / "results" / "adaclip__small-c.json").read_text())
    assert result["dataset"] == "small-c" and result["protocol"]["training"][0]["aux"] == "small-a+small-b"
    assert "small-c" in (out / "leaderboard.md").read_text()
    assert again.exit_code == 0 and again.stdout.splitlines()[-1].startswith("2 units, 0 to do")
