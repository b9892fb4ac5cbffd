"""Fixtures shared by every test: an isolated data root and hub cache, the tiny backbone, synthetic data."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root per test session, so the synthetic dataset is generated once."""
    return tmp_path_factory.mktemp("zsad-data")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, session_data_root: Path) -> None:
    # Never read or write the user's data root; never reach the network for weights.
    monkeypatch.setenv("ZSAD_DATA", str(session_data_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def tiny_backbone():
    from zsad_bench.backbones import load_backbone

    return load_backbone("test-tiny")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Online mode (HF_HUB_OFFLINE unset), but no host name resolves: a machine without network. Returns
    the host names something tried to resolve."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked: list[str] = []

    def unresolvable(host: object, *args: object, **kwargs: object) -> object:
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    return asked
