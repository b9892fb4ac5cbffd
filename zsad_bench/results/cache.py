"""The prediction cache: a detector's outputs on a dataset, per class, kept so metrics can be recomputed
(another AUPRO variant, confidence intervals) without the model, and so an interrupted run resumes.

Layout: ``<folder>/index.json`` (the cache key and what it was made from) and one
``<class>.safetensors`` per finished class holding ``maps`` (N, S, S) float32 at the evaluation size --
lossless, exactly what the metrics saw -- ``scores`` (N,) float32, ``labels`` (N,) uint8 and ``masks``
(bit-packed, absent for datasets without masks); the sample ids are in the file's metadata. A class file
is written atomically once the class is complete, so a file that exists is whole.

The key hashes the detector's configuration and weights, the manifest and the evaluation size: a cache
made by another model, other weights, other data or another size is never used.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zsad_bench.atomic import atomic_write
from zsad_bench.errors import ZsadError

if TYPE_CHECKING:
    from zsad_bench.results.schema import RunResult

__all__ = ["ClassPredictions", "PredictionCache", "cache_key", "open_predictions"]

INDEX = "index.json"


def cache_key(detector: dict[str, Any], manifest_sha256: str, eval_size: int) -> str:
    """sha256 over what determines the predictions (timings and file paths excluded)."""
    payload = json.dumps(
        {"detector": detector, "manifest_sha256": manifest_sha256, "eval_size": eval_size},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ClassPredictions:
    """Everything the metrics of one class need. maps: (N, S, S) float32; masks: (N, S, S) bool or None."""

    maps: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    sample_ids: list[str]


def _file_name(class_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", class_name) + ".safetensors"


class PredictionCache:
    """One (detector, dataset, evaluation size) cache folder."""

    def __init__(self, folder: str | Path, key: str, meta: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.key = key
        self.meta = dict(meta or {})
        self._buffers: dict[
            str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]
        ] = {}
        self._ids: dict[str, list[str]] = {}

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path) -> PredictionCache:
        """An existing cache folder, for re-scoring."""
        folder = Path(folder)
        try:
            index = json.loads((folder / INDEX).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ZsadError(
                f"no readable prediction cache in {folder} ({exc}); re-run 'zsad run' to create it"
            ) from exc
        return cls(folder, index["key"], index.get("meta", {}))

    def prepare(self) -> None:
        """Create the folder and its index (removing another key's class files) before any class is
        written; ``finish`` does it too, but a sharded run calls this once on rank 0 first."""
        self._write_index()

    def _write_index(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self.folder / INDEX
        if index.exists():
            stored = json.loads(index.read_text())
            if stored.get("key") == self.key:
                return
            # Another detector/data/size wrote here before: its class files must not be reused.
            for stale in self.folder.glob("*.safetensors"):
                stale.unlink()
        atomic_write(index, json.dumps({"key": self.key, "meta": self.meta}, indent=2, default=str).encode())

    # -- reading ------------------------------------------------------------------------------------
    def valid(self) -> bool:
        try:
            return json.loads((self.folder / INDEX).read_text()).get("key") == self.key
        except (OSError, json.JSONDecodeError):
            return False

    def has(self, class_name: str) -> bool:
        return self.valid() and (self.folder / _file_name(class_name)).is_file()

    def classes(self) -> list[str]:
        from safetensors import safe_open

        names = []
        for path in sorted(self.folder.glob("*.safetensors")):
            with safe_open(str(path), framework="pt") as handle:
                names.append((handle.metadata() or {}).get("class_name", path.stem))
        return names

    def load(self, class_name: str) -> ClassPredictions:
        from safetensors import SafetensorError, safe_open

        path = self.folder / _file_name(class_name)
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        except (OSError, SafetensorError) as exc:
            raise ZsadError(f"cached predictions {path} are unreadable ({exc}); re-run 'zsad run'") from exc
        maps = tensors["maps"]
        masks = None
        if "masks" in tensors:
            bits = np.unpackbits(tensors["masks"].numpy(), count=maps.numel())
            masks = torch.from_numpy(bits.astype(bool).reshape(maps.shape))
        return ClassPredictions(
            maps=maps,
            scores=tensors["scores"],
            labels=tensors["labels"].to(torch.int64),
            masks=masks,
            sample_ids=json.loads(meta.get("sample_ids", "[]")),
        )

    # -- writing ------------------------------------------------------------------------------------
    def add(
        self,
        class_name: str,
        maps: torch.Tensor,
        scores: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor | None,
        sample_ids: list[str],
    ) -> None:
        """Buffer one batch of a class on the CPU (maps stay float32)."""
        self._buffers.setdefault(class_name, []).append(
            (
                maps.detach().float().cpu(),
                scores.detach().float().cpu(),
                labels.detach().cpu().to(torch.uint8),
                None if masks is None else masks.detach().cpu().bool(),
            )
        )
        self._ids.setdefault(class_name, []).extend(sample_ids)

    def take(self, class_name: str) -> tuple[list[Any], list[str]]:
        """Remove and return the buffered part of a class (CPU tensors and ids), e.g. to send it to the
        rank that writes the class."""
        return self._buffers.pop(class_name, []), self._ids.pop(class_name, [])

    def put(self, class_name: str, parts: list[tuple[list[Any], list[str]]]) -> None:
        """Buffer parts returned by ``take`` (on any rank), in order, after what is already buffered."""
        for chunks, ids in parts:
            self._buffers.setdefault(class_name, []).extend(chunks)
            self._ids.setdefault(class_name, []).extend(ids)

    def finish(self, class_name: str) -> None:
        """Write the buffered class as one file, atomically, and free the buffer."""
        from safetensors.torch import save

        chunks = self._buffers.pop(class_name)
        ids = self._ids.pop(class_name)
        maps = torch.cat([c[0] for c in chunks])
        tensors = {
            "maps": maps.contiguous(),
            "scores": torch.cat([c[1] for c in chunks]),
            "labels": torch.cat([c[2] for c in chunks]),
        }
        if chunks[0][3] is not None:
            packed = np.packbits(torch.cat([c[3] for c in chunks]).numpy().reshape(-1))
            tensors["masks"] = torch.from_numpy(packed)
        self._write_index()
        data = save(tensors, metadata={"class_name": class_name, "sample_ids": json.dumps(ids)})
        atomic_write(self.folder / _file_name(class_name), data)


def open_predictions(result: RunResult, results_folder: str | Path) -> PredictionCache:
    """The prediction cache a result file points to, for ``zsad score`` and the figures alike.

    The result's ``predictions`` record names the cache folder (relative to ``results_folder``, the
    folder the result file was read from, unless absolute) and the key it was written under. A result
    run with ``--no-cache``, an unreadable folder or a folder another run has since overwritten is a
    one-line ZsadError saying to re-run, so no number is ever recomputed from someone else's predictions.
    """
    record = result.predictions or {}
    if not record.get("folder"):
        raise ZsadError(
            f"{result.filename} has no prediction cache (it was run with --no-cache); re-run 'zsad run'"
        )
    folder = Path(record["folder"])
    cache = PredictionCache.open(folder if folder.is_absolute() else Path(results_folder) / folder)
    if cache.key != record.get("key"):
        raise ZsadError(
            f"the prediction cache of {result.filename} belongs to another run; re-run 'zsad run'"
        )
    return cache
