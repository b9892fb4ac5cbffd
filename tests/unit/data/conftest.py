"""Fixtures of the data tests: a small synthetic dataset built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsad_bench.data.synthetic import build

SMALL = {"seed": 3, "image_size": 48, "n_train": 2, "n_test_normal": 3, "n_test_anomalous": 4}


@pytest.fixture(scope="session")
def small_params() -> dict[str, int]:
    """The ``build`` arguments of ``small_synthetic``."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared synthetic dataset (4 classes, 48 px); treat it as read-only."""
    folder = tmp_path_factory.mktemp("synthetic-small")
    build(folder, **SMALL)
    return folder
