"""A detector shipped by a separate, pip-installed distribution shows up in `zsad models list` and runs; its
typed option is listed by `zsad models info`, validated by `-o` and recorded in the result."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PLUGIN_SOURCE = '''
"""An outside plugin: anomaly = local gradient magnitude of the grey image, raised to a power."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zsad_bench.api import Detector, Prediction
from zsad_bench.data.transforms import squash_transform
from zsad_bench.options import DetectorOptions, option


@dataclass(frozen=True)
class EdgeOptions(DetectorOptions):
    image_size: int = option(32, "square input side in pixels", min=8)
    power: float = option(1.0, "exponent applied to the gradient magnitude", above=0)


class EdgeDetector(Detector):
    name = "edge-plugin"
    trainable = False
    Options = EdgeOptions

    def __init__(self, options=None, **overrides):
        super().__init__(options, **overrides)
        self.input_size = self.options.image_size

    def transform(self):
        return squash_transform(self.input_size)

    def forward(self, images, class_names):
        grey = images.mean(1, keepdim=True)
        gx = F.pad(grey[..., :, 1:] - grey[..., :, :-1], (0, 1))
        gy = F.pad(grey[..., 1:, :] - grey[..., :-1, :], (0, 0, 0, 1))
        maps = (gx**2 + gy**2).sqrt()[:, 0] ** self.options.power
        return Prediction(image_scores=maps.flatten(1).amax(1), anomaly_maps=maps)


class Clash(EdgeDetector):
    name = "clip"
'''


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _build_wheel(folder: Path) -> Path:
    """A minimal but valid wheel of the distribution `zsad-plugin-demo` (no build backend needed)."""
    dist = "zsad_plugin_demo-0.1.dist-info"
    files = {
        "zsad_plugin_demo/__init__.py": PLUGIN_SOURCE.encode(),
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: zsad-plugin-demo\nVersion: 0.1\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": (
            b"[zsad_bench.models]\n"
            b"edge-plugin = zsad_plugin_demo:EdgeDetector\n"
            b"clip = zsad_plugin_demo:Clash\n"
        ),
    }
    record = "\n".join([_record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / "zsad_plugin_demo-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist}/RECORD", record)
    return wheel


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    wheel = _build_wheel(work)
    site = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return site


def _zsad(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "zsad_bench.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_plugin_is_listed_with_its_distribution(plugin_site):
    proc = _zsad(plugin_site, "models", "list")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("edge-plugin"))
    assert "zsad-plugin-demo" in line and "zsad_plugin_demo:EdgeDetector" in line


def test_name_clash_keeps_the_builtin_and_warns(plugin_site):
    proc = _zsad(plugin_site, "models", "list")
    clip_line = next(line for line in proc.stdout.splitlines() if line.startswith("clip "))
    assert "zsad_bench.baselines.clip:CLIP" in clip_line
    assert "registered by both" in proc.stderr and "zsad-plugin-demo" in proc.stderr


def test_plugin_runs_through_zsad_run(plugin_site, tmp_path):
    out = tmp_path / "results"
    proc = _zsad(
        plugin_site,
        "run",
        "--model",
        "edge-plugin",
        "--dataset",
        "synthetic",
        "--eval-size",
        "32",
        "-o",
        "power=2",
        "--out",
        str(out),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "edge-plugin__synthetic.json").read_text())
    assert result["model"] == "edge-plugin"
    assert result["detector"]["config"] == {"name": "edge-plugin", "image_size": 32, "power": 2.0}
    board = _zsad(plugin_site, "leaderboard", str(out))
    assert "edge-plugin" in board.stdout


def test_plugin_option_is_listed_by_models_info(plugin_site):
    proc = _zsad(plugin_site, "models", "info", "edge-plugin")
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.split()[:2] == ["name", "type"])
    assert header.split() == ["name", "type", "default", "allowed", "help"]
    row = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["power"])
    assert row.split()[:4] == ["power", "float", "1.0", ">"] and "exponent applied to the gradient" in row


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("power=-1", "option power of model 'edge-plugin' must be a number (> 0), got '-1'"),
        ("power=strong", "option power of model 'edge-plugin' must be a number (> 0), got 'strong'"),
        ("image_size=4", "option image_size of model 'edge-plugin' must be an integer (>= 8), got '4'"),
        ("sigma=2", "model 'edge-plugin' has no option 'sigma'; options: image_size, power"),
        ("backbone=x", "option 'backbone' cannot be set with -o; use --backbone"),
    ],
)
def test_plugin_option_is_validated_by_dash_o(plugin_site, tmp_path, option, message):
    out = tmp_path / "results"
    args = ["run", "--model", "edge-plugin", "--dataset", "synthetic", "-o", option, "--out", str(out)]
    proc = _zsad(plugin_site, *args)
    assert proc.returncode == 2, proc.stderr
    # the rest of stderr is the name-clash warning of the other entry point (test above)
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [f"error: {message}"]
    assert "Traceback" not in proc.stderr
    assert not out.exists()
