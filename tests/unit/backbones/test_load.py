import subprocess
import sys

import pytest

from zsad_bench.backbones import load_backbone
from zsad_bench.errors import ZsadError


def _zsad(*args: str, env_extra: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), **env_extra}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run(
        [sys.executable, "-m", "zsad_bench.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_offline_uncached_weights_give_one_line_with_model_cache_and_command(tmp_path):
    proc = _zsad(
        "models", "download", "ViT-B-16-plus-240:laion400m_e31", "--quiet", env_extra={}, tmp_path=tmp_path
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error: ")
    assert "ViT-B-16-plus-240:laion400m_e31" in line
    assert str(tmp_path / "hf") in line
    assert "zsad models download" in line


def test_missing_local_weights_file(tmp_path):
    with pytest.raises(ZsadError, match="does not exist"):
        load_backbone(f"ViT-B-32:{tmp_path / 'nope.pt'}")


def test_unknown_tag_lists_known_tags():
    with pytest.raises(ZsadError, match="openai"):
        load_backbone("ViT-L-14-336:laion-made-up")


def test_unknown_architecture():
    with pytest.raises(ZsadError, match="unknown backbone architecture"):
        load_backbone("ViT-Z-99:random")


def test_local_weights_file_round_trip(tmp_path, tiny_backbone):
    # A real architecture loaded from a local file: random ViT-B-32 saved, then read back by path.
    import torch

    random = load_backbone("ViT-B-32:random")
    path = tmp_path / "vit-b-32.pt"
    torch.save(random.model.state_dict(), path)
    loaded = load_backbone(f"ViT-B-32:{path}")
    assert not loaded.random_weights
    assert all(
        torch.equal(a, b)
        for a, b in zip(random.model.state_dict().values(), loaded.model.state_dict().values(), strict=True)
    )
