"""``--backbone test-tiny`` runs every registered detector at its default options: the tiny backbone comes
in the patch size that divides the detector's input (518 = 14 x 37 for the ViT-L/14 methods; WinCLIP's
240 = 8 x 30 keeps the 8-pixel one)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench._factory import list_models, model_class
from zsad_bench.cli import main


@pytest.mark.slow
def test_every_detector_runs_on_test_tiny_at_its_default_options(tmp_path: Path):
    models = list_models()
    args = ["run", "--model", ",".join(models), "--dataset", "synthetic", "--backbone", "test-tiny"]
    args += ["--eval-size", "32", "--batch-size", "16", "--device", "cpu", "--num-workers", "0"]
    result = CliRunner().invoke(main, [*args, "--no-cache", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in models:
        suffix = "-transductive" if model_class(name).transductive else ""
        record = json.loads((tmp_path / f"{name}{suffix}__synthetic.json").read_text())
        default = model_class(name).Options()
        detector = record["detector"]
        assert detector["input_size"] == default.image_size == detector["config"]["image_size"]
        patch = next(p for p in (8, 14, 16) if default.image_size % p == 0)
        assert detector["backbone"] == ("test-tiny:random" if patch == 8 else f"test-tiny-{patch}:random")
        assert record["random_weights"] is True
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in record["mean"].values()), record["mean"]
