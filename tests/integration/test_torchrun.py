"""``torchrun`` with gloo processes: ``zsad run`` writes one result equal to a one-process run, and ``zsad
reproduce`` trains on rank 0 alone while the others wait, then evaluates sharded, with the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main

ARGS = [
    "run",
    "--dataset",
    "synthetic",
    "--backbone",
    "test-tiny",
    "-o",
    "image_size=64",
    "--eval-size",
    "32",
    "--batch-size",
    "1",
    "--device",
    "cpu",
    "-q",
]


@pytest.mark.parametrize(("model", "stem"), [("clip", "clip"), ("musc", "musc-transductive")])
def test_torchrun_run_writes_one_result_equal_to_a_single_process(tmp_path, session_data_root, model, stem):
    # MuSc is transductive: each rank scores whole classes (a class is never split across ranks)
    args = [*ARGS, "--model", model]
    single = tmp_path / "single"
    assert CliRunner().invoke(main, [*args, "--out", str(single)]).exit_code == 0
    sharded = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSAD_DATA": str(session_data_root), "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    done = subprocess.run(
        [*launcher, "-m", "zsad_bench.cli", *args, "--out", str(sharded)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in sharded.glob("*.json")) == [f"{stem}__synthetic.json"]
    one = json.loads((single / f"{stem}__synthetic.json").read_text())
    two = json.loads((sharded / f"{stem}__synthetic.json").read_text())
    assert two["timings"]["ranks"] == 2 and one["timings"]["ranks"] == 1
    assert two["per_class"] == one["per_class"] and two["counts"] == one["counts"]
    cached = sorted(p.name for p in (sharded / "predictions" / f"{model}__synthetic").iterdir())
    assert cached == sorted(p.name for p in (single / "predictions" / f"{model}__synthetic").iterdir())


def _torchrun(nproc: int, args: list[str], data_root: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSAD_DATA": str(data_root), "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    done = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_torchrun_reproduce_trains_once_and_matches_one_process(tmp_path, session_data_root):
    worker = str(Path(__file__).with_name("_reproduce_worker.py"))
    _torchrun(1, [worker, str(tmp_path / "one")], session_data_root)
    _torchrun(2, [worker, str(tmp_path / "two")], session_data_root)
    one, two = tmp_path / "one", tmp_path / "two"
    names = sorted(p.name for p in (one / "results").glob("*.json"))
    assert len(names) == 4 and sorted(p.name for p in (two / "results").glob("*.json")) == names
    for name in names:
        a = json.loads((one / "results" / name).read_text())
        b = json.loads((two / "results" / name).read_text())
        assert b["timings"]["ranks"] == 2 and a["per_class"] == b["per_class"], name
    # two trainings (one per auxiliary dataset), each by rank 0 alone, the other rank waiting
    assert (tmp_path / "one.trained").read_text().split() == ["0", "0"]
    assert (tmp_path / "two.trained").read_text().split() == ["0", "0"]
    for folder in ("anomalyclip__synthetic", "anomalyclip__synthetic-b"):  # trained once, identically
        weights = [(root / "checkpoints" / folder / "model.safetensors").read_bytes() for root in (one, two)]
        assert weights[0] == weights[1]
    assert (two / "leaderboard.md").is_file()
