"""Golden numbers: ``zsad demo`` and a ``zsad run`` of every built-in detector on the synthetic set give
the numbers stored in ``golden/`` (captured before the restructuring of issue 12; a refactor must not
move them). Tiny random-weight backbone, CPU, fp32, seed 0: deterministic on any machine.

To re-capture after a change that is meant to move the numbers, run this module with
``ZSAD_UPDATE_GOLDEN=1`` and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main

GOLDEN = Path(__file__).parent / "golden"
MODELS = ["anomalyclip", "clip", "clip-ac", "winclip", "april-gan", "coop"]
TOLERANCE = 1e-6


def _numbers(folder: Path) -> dict[str, dict]:
    """Per result file: the per-class and mean metrics, the counts and the confidence intervals."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text())
        out[path.stem] = {
            "per_class": raw["per_class"],
            "mean": raw["mean"],
            "counts": raw["counts"],
            "confidence_intervals": raw.get("confidence_intervals"),
        }
    return out


def _check(name: str, numbers: dict[str, dict]) -> None:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("ZSAD_UPDATE_GOLDEN"):
        path.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    stored = json.loads(path.read_text())
    assert sorted(numbers) == sorted(stored)
    _close(numbers, stored, name)


def _close(got: object, want: object, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, (int, float)) and math.isclose(got, want, abs_tol=TOLERANCE), (
            where,
            got,
            want,
        )
    else:
        assert got == want, (where, got, want)


@pytest.mark.slow
def test_run_every_detector_matches_golden(tmp_path: Path) -> None:
    args = ["run", "--model", ",".join(MODELS), "--dataset", "synthetic", "--backbone", "test-tiny"]
    args += ["-o", "image_size=64", "--eval-size", "64", "--device", "cpu", "--batch-size", "16"]
    args += ["--num-workers", "0", "--no-cache", "--out", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    numbers = _numbers(tmp_path)
    assert sorted(numbers) == sorted(f"{m}__synthetic" for m in MODELS)
    _check("run_synthetic", numbers)


def test_demo_matches_golden(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    _check("demo", _numbers(tmp_path))


@pytest.mark.slow
def test_run_of_the_2024_methods_matches_golden(tmp_path: Path) -> None:
    # AdaCLIP (untrained prompts: random init, seeded) and MuSc, captured when they were added (issue 14)
    args = ["run", "--model", "adaclip,musc", "--dataset", "synthetic", "--backbone", "test-tiny"]
    args += ["-o", "image_size=64", "--eval-size", "64", "--device", "cpu", "--batch-size", "16"]
    args += ["--num-workers", "0", "--no-cache", "--out", str(tmp_path), "--quiet", "--seed", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    numbers = _numbers(tmp_path)
    assert sorted(numbers) == ["adaclip__synthetic", "musc-transductive__synthetic"]
    _check("run_synthetic_2024", numbers)
