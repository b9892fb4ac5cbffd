"""Dataset downloads without a network: every source fails at once, and the one line says "offline"."""

from __future__ import annotations

import logging
import time

import pytest

from zsad_bench.data.catalog.mvtec_ad import SPEC
from zsad_bench.data.sources import fetch_any
from zsad_bench.errors import ZsadError


def _fetch_all(tmp_path, caplog) -> tuple[str, float]:
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    with pytest.raises(ZsadError) as info:
        fetch_any(SPEC.sources, tmp_path / "dl", dataset_id=SPEC.id, progress=False)
    return str(info.value), time.monotonic() - start


def test_every_source_unreachable_fails_fast_in_one_offline_line(tmp_path, no_network, caplog):
    # MVTec AD lists https, hf (one file: the Hub client retried it for ~25 s) and gdrive sources.
    assert {s.kind for s in SPEC.sources} >= {"https", "hf", "gdrive"}
    message, seconds = _fetch_all(tmp_path, caplog)
    assert seconds < 5, f"took {seconds:.1f} s"
    assert "\n" not in message and "Retrying" not in caplog.text
    assert message.startswith("cannot download 'mvtec-ad': offline, no source could be reached")
    assert "'zsad datasets prepare mvtec-ad --from PATH'" in message
    assert "huggingface.co" in no_network and no_network.count("huggingface.co") <= 2  # one request


def test_hf_hub_offline_never_asks_the_hub(tmp_path, no_network, monkeypatch, caplog):
    import huggingface_hub

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Hub was asked although HF_HUB_OFFLINE is set")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", never)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    message, seconds = _fetch_all(tmp_path, caplog)
    assert seconds < 5 and "offline (HF_HUB_OFFLINE is set" in message and "None" not in message


def test_a_source_that_answers_is_not_offline(tmp_path, no_network, monkeypatch):
    # Kaggle without credentials fails for another reason: the line lists the reasons, not "offline".
    from zsad_bench.data.spec import Source

    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "none"))
    sources = [Source("https", "https://example.org/x.zip"), Source("kaggle", "owner/data")]
    with pytest.raises(ZsadError) as info:
        fetch_any(sources, tmp_path / "dl", dataset_id="x", progress=False)
    message = str(info.value)
    assert message.startswith("could not download 'x' (https example.org/x.zip: unreachable")
    assert "Kaggle credentials missing" in message
