"""Datasets: specs, manifests, the torch ``AnomalyDataset``, transforms and the synthetic generator.

Importing this package does not import torch; ``AnomalyDataset``, ``squash_transform`` and ``load_mask``
are loaded on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsad_bench.atomic import atomic_folder
from zsad_bench.data.manifest import (
    data_root,
    is_prepared,
    manifest_sha256,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source
from zsad_bench.errors import ZsadError

if TYPE_CHECKING:
    from zsad_bench.data.dataset import AnomalyDataset
    from zsad_bench.data.transforms import load_mask, squash_transform

__all__ = [
    "AnomalyDataset",
    "ClassSpec",
    "DatasetSpec",
    "Source",
    "data_root",
    "ensure_prepared",
    "is_prepared",
    "load_mask",
    "manifest_sha256",
    "pair_masks_by_name",
    "read_manifest",
    "squash_transform",
    "validate_manifest",
    "write_manifest",
]

_LAZY = {
    "AnomalyDataset": "zsad_bench.data.dataset",
    "load_mask": "zsad_bench.data.transforms",
    "squash_transform": "zsad_bench.data.transforms",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ensure_prepared(spec: DatasetSpec, root: str | Path | None = None) -> Path:
    """The folder ``root/spec.id`` of a prepared dataset, building it first when the spec has a builder.

    ``root`` defaults to ``data_root()``. A builder writes into a hidden staging folder (``atomic_folder``)
    which is renamed into place only once it holds a manifest, so an interrupted build never looks
    prepared; when another process finishes first, its folder is kept. Raises ``ZsadError`` with the
    commands to run for a dataset that is not prepared and has no builder.
    """
    base = Path(root) if root is not None else data_root()
    folder = base / spec.id
    if is_prepared(folder):
        return folder
    if spec.builder is None:
        raise ZsadError(
            f"dataset '{spec.id}' is not prepared under {folder}; run 'zsad datasets download {spec.id}' "
            f"or 'zsad datasets prepare {spec.id} --from PATH'"
        )
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if is_prepared(folder):  # another process finished building it just now
            return folder
        raise ZsadError(
            f"{folder} exists but holds no prepared dataset (no manifest.parquet and dataset.json); "
            f"remove it and run again to rebuild '{spec.id}'"
        )
    try:
        with atomic_folder(folder, replace=False) as tmp:  # fills an empty folder, never a full one
            spec.builder(tmp, **spec.builder_options)
            if not is_prepared(tmp):
                name = f"{spec.builder.__module__}:{spec.builder.__qualname__}"
                raise ZsadError(f"builder '{name}' of dataset '{spec.id}' wrote no manifest into {tmp}")
    except FileExistsError as exc:
        if not is_prepared(folder):  # not a concurrent build that finished first
            raise ZsadError(f"cannot move the built dataset '{spec.id}' into {folder} ({exc})") from exc
    return folder
