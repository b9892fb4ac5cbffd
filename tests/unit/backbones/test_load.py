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


class _Payload:
    """A pickle that would create a file when unpickled by a trusting loader."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_weights(kind: str, path, marker) -> None:
    import pickle

    import torch

    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickled code":
        path.write_bytes(pickle.dumps({"visual.proj": _Payload(marker)}, protocol=2))
    elif kind == "truncated":
        torch.save({"visual.proj": torch.zeros(64, 64)}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "a list":
        torch.save([torch.zeros(2)], path)


@pytest.mark.parametrize("kind", ["random bytes", "text", "empty", "pickled code", "truncated", "a list"])
def test_a_weights_file_that_is_not_a_state_dict_is_one_line(tmp_path, kind):
    path, marker = tmp_path / "weights.pt", tmp_path / "pwned"
    _bad_weights(kind, path, marker)
    with pytest.raises(ZsadError) as exc:
        load_backbone(f"ViT-B-32:{path}")
    line = str(exc.value)
    assert "\n" not in line and len(line) < 300, line
    assert line.startswith(f"weights file {path} is not a state dict of tensors (")
    assert line.endswith("pass a .pt, .pth, .bin or .safetensors file of ViT-B-32 weights")
    if kind == "empty":
        assert "(the file is empty)" in line
    if kind == "pickled code":
        assert "refused by the safe loader; nothing in it ran" in line
    assert not marker.exists()  # nothing pickled ran


def test_a_state_dict_of_another_architecture_says_it_does_not_fit(tmp_path, tiny_backbone):
    import torch

    path = tmp_path / "tiny.pt"
    torch.save(tiny_backbone.model.state_dict(), path)
    with pytest.raises(ZsadError) as exc:
        load_backbone(f"ViT-B-32:{path}")
    line = str(exc.value)
    assert "\n" not in line
    assert line.startswith(f"weights file {path} does not fit ViT-B-32 (")
