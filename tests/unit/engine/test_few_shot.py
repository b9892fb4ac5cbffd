"""`zsad run --shots K`: seeded normal references per class reach the detector and the result file."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
import torch
from click.testing import CliRunner

from zsad_bench.api import Detector, Prediction
from zsad_bench.cli import main
from zsad_bench.data.transforms import squash_transform
from zsad_bench.registry import MODELS


class MemoryDetector(Detector):
    """Anomaly = distance of each pixel to the mean reference image of the class."""

    name = "memory-toy"
    few_shot = True
    seen: ClassVar[dict[str, int]] = {}

    def __init__(self, image_size: int = 32) -> None:
        super().__init__()
        self._options = {"image_size": image_size}
        self.input_size = image_size
        self.memory: dict[str, torch.Tensor] = {}

    def transform(self):
        return squash_transform(self.input_size)

    def remember(self, class_name, images):
        self.memory[class_name] = images.mean(0)
        MemoryDetector.seen[class_name] = len(images)

    def forget(self):
        self.memory.clear()

    def forward(self, images, class_names):
        reference = torch.stack([self.memory[c] for c in class_names])
        maps = (images - reference).abs().mean(1)
        return Prediction(maps.flatten(1).amax(1), maps)


@pytest.fixture
def registered():
    MODELS.register("memory-toy", MemoryDetector)
    yield
    MODELS.reset()


def test_shots_are_drawn_per_class_and_recorded(registered, tmp_path):
    out = tmp_path / "r"
    args = ["run", "--model", "memory-toy", "--dataset", "synthetic", "--shots", "2", "--eval-size", "32",
            "--seed", "3", "--out", str(out), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert set(MemoryDetector.seen.values()) == {2} and len(MemoryDetector.seen) == 4
    record = json.loads((out / "memory-toy-2shot__synthetic.json").read_text())
    references = record["detector"]["few_shot"]["references"]
    assert record["shots"] == 2 and all(len(v) == 2 for v in references.values())
    assert all("/train/good/" in sample for ids in references.values() for sample in ids)
    again = tmp_path / "again"
    CliRunner().invoke(main, [*args[:-3], "--out", str(again), "--quiet"])
    assert (
        json.loads((again / "memory-toy-2shot__synthetic.json").read_text())["detector"]["few_shot"]
        == record["detector"]["few_shot"]
    )  # same seed, same references
    board = CliRunner().invoke(main, ["leaderboard", str(out)])
    assert "memory-toy (2-shot)" in board.stdout


def test_models_without_a_few_shot_mode_and_too_many_shots_are_refused(registered, tmp_path):
    result = CliRunner().invoke(main, ["run", "--model", "clip", "--dataset", "synthetic", "--shots", "1",
                                       "--out", str(tmp_path / "x")])  # fmt: skip
    assert result.exit_code == 2 and "no few-shot mode" in result.stderr
    args = [
        "run",
        "--model",
        "memory-toy",
        "--dataset",
        "synthetic",
        "--shots",
        "50",
        "--out",
        str(tmp_path / "y"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "--shots 50" in result.stderr
