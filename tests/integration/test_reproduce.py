"""`zsad reproduce` on two synthetic datasets with the tiny backbone: dry run, full run, and resuming after a
simulated interruption without redoing finished work."""

from __future__ import annotations

import dataclasses

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
