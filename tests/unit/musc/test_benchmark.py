"""benchmarks/musc.py runs (smoke test on two tiny classes): the table, the fit and the extrapolation."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "musc.py"


def test_musc_benchmark_runs_on_tiny_classes(tmp_path):
    args = [sys.executable, str(SCRIPT), "--device", "cpu", "--sizes", "3,5", "--image-size", "32"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| n | time (s) |" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| 3 |", "| 5 |"))]
    assert len(rows) == 2
    assert "Extrapolated to n = 3000" in done.stdout
    refused = subprocess.run([*args[:4], "--sizes", "1,4"], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "at least 2 images" in refused.stderr
