"""``torchrun -m zsad_bench.cli run``: two gloo processes write one result, equal to a one-process run."""

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from zsad_bench.cli import main

ARGS = [
    "run",
    "--model",
    "clip",
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


def test_torchrun_run_writes_one_result_equal_to_a_single_process(tmp_path, session_data_root):
    single = tmp_path / "single"
    assert CliRunner().invoke(main, [*ARGS, "--out", str(single)]).exit_code == 0
    sharded = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSAD_DATA": str(session_data_root), "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    done = subprocess.run(
        [*launcher, "-m", "zsad_bench.cli", *ARGS, "--out", str(sharded)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in sharded.glob("*.json")) == ["clip__synthetic.json"]
    one = json.loads((single / "clip__synthetic.json").read_text())
    two = json.loads((sharded / "clip__synthetic.json").read_text())
    assert two["timings"]["ranks"] == 2 and one["timings"]["ranks"] == 1
    assert two["per_class"] == one["per_class"] and two["counts"] == one["counts"]
    cached = sorted(p.name for p in (sharded / "predictions" / "clip__synthetic").iterdir())
    assert cached == sorted(p.name for p in (single / "predictions" / "clip__synthetic").iterdir())
