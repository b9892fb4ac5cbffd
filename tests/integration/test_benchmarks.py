"""The inference benchmark runs (smoke test): both legs agree on AUROC and the report has its ratio."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inference.py"


def test_inference_benchmark_quick(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| anomalyclip | test-tiny | 224 |" in done.stdout
    assert "PASS" in done.stdout and "FAIL" not in done.stdout
    refused = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--write-results"], capture_output=True)
    assert refused.returncode == 2  # smoke figures never reach RESULTS.md
