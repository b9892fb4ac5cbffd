"""Offline, uncached weights fail within seconds in one line that says "offline", without the Hub client's
retries (about a minute of "Retrying in 8s" lines before)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.backbones import download_weights
from zsad_bench.cli import main
from zsad_bench.errors import ZsadError

SPEC = "ViT-L-14-336-quickgelu:openai"  # clip's default backbone


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache that holds nothing, whatever the machine has cached."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module", autouse=True)
def _imported() -> None:
    """Import what the command imports before timing it: the time asserted is the failure's, not torch's."""
    import open_clip  # noqa: F401

    from zsad_bench._factory import model_class

    model_class("clip")


def _download_clip(caplog: pytest.LogCaptureFixture) -> tuple[object, float]:
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    result = CliRunner().invoke(main, ["models", "download", "clip", "-q"])
    return result, time.monotonic() - start


def _check_one_offline_line(result: object, seconds: float, caplog: pytest.LogCaptureFixture) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert seconds < 5, f"took {seconds:.1f} s"
    assert "Retrying" not in result.output and "Retrying" not in caplog.text
    assert "Traceback" not in result.output
    line = lines[0]
    assert line.startswith("error: ") and "offline" in line and SPEC in line
    assert "zsad models download" in line and "None" not in line
    return line


def test_models_download_with_hf_hub_offline_fails_at_once(empty_hub_cache, monkeypatch, caplog):
    import huggingface_hub

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Hub was asked although HF_HUB_OFFLINE is set")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", never)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    result, seconds = _download_clip(caplog)
    line = _check_one_offline_line(result, seconds, caplog)
    assert "HF_HUB_OFFLINE is set" in line and str(empty_hub_cache) in line


def test_models_download_without_network_fails_at_once(empty_hub_cache, no_network, caplog):
    result, seconds = _download_clip(caplog)
    line = _check_one_offline_line(result, seconds, caplog)
    assert "cannot reach huggingface.co" in line
    # one request (the Hub's transport may try a connection twice), not the client's retries of two files
    assert set(no_network) == {"huggingface.co"} and len(no_network) <= 2


def test_a_reachable_hub_is_not_called_offline(empty_hub_cache, monkeypatch):
    # An HTTP answer (here: the download itself failing with a server error) is not "offline".
    import huggingface_hub
    import open_clip.pretrained
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *args, **kwargs: None)

    def server_error(cfg: object, *args: object, **kwargs: object) -> str:
        raise RuntimeError("500 Server Error")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", server_error)
    with pytest.raises(ZsadError, match="could not download the weights") as info:
        download_weights(SPEC)
    assert "offline" not in str(info.value) and "500 Server Error" in str(info.value)


def test_first_run_of_the_readme_fails_offline_in_one_line(empty_hub_cache, no_network, tmp_path, caplog):
    # The README's first `zsad run` (clip at its default backbone), weights not cached, no network.
    caplog.set_level(logging.INFO)
    out = tmp_path / "results"
    start = time.monotonic()
    result = CliRunner().invoke(
        main, ["run", "--model", "clip", "--dataset", "synthetic", "--out", str(out), "-q"]
    )
    seconds = time.monotonic() - start
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "offline" in lines[0] and SPEC in lines[0], result.stderr
    assert "Retrying" not in result.output and "Retrying" not in caplog.text
    assert seconds < 30, f"took {seconds:.1f} s"  # the synthetic dataset may be generated first
    assert not any(out.glob("*.json"))
