"""AnomalyCLIP's ``meta.json``: read one into manifest rows, and write one for a prepared dataset.

The format (reference/anomalyclip.md section 8): ``{"train"|"test": {cls: [{img_path, mask_path, cls_name,
specie_name, anomaly}]}}``; ``mask_path`` is ``""`` where there is no mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from zsad_bench.atomic import atomic_write
from zsad_bench.data.manifest import read_manifest
from zsad_bench.data.spec import DatasetSpec
from zsad_bench.errors import ZsadError

__all__ = ["export_meta", "rows_from_meta"]


def rows_from_meta(meta: dict[str, Any], spec: DatasetSpec, base: Path) -> pd.DataFrame:
    """Manifest rows from an AnomalyCLIP/AdaCLIP ``meta.json`` whose paths are relative to ``base``.

    Both splits are read; DAGM's generator writes ``Train``/``Test`` keys, which are accepted too. An
    absolute path is accepted only inside ``base``. ``mask_path == ""`` means no mask (normal images, and
    anomalous images of classification-only datasets).
    """
    rows = []
    splits = {key.lower(): value for key, value in meta.items() if key.lower() in ("train", "test")}
    if not splits:
        raise ZsadError(
            "meta.json has neither a 'test' nor a 'train' section; is it an AnomalyCLIP meta.json?"
        )
    for split, classes in splits.items():
        for class_name, entries in classes.items():
            for entry in entries:
                try:
                    image = _meta_path(entry["img_path"], base)
                    mask = _meta_path(entry["mask_path"], base) if entry.get("mask_path") else None
                    label = int(entry["anomaly"])
                except KeyError as exc:
                    raise ZsadError(f"meta.json entry {entry} lacks the key {exc}") from exc
                defect = "good" if label == 0 else (entry.get("specie_name") or "anomaly")
                rows.append(
                    {
                        "sample_id": image,
                        "split": split,
                        "class_name": entry.get("cls_name", class_name),
                        "prompt_name": spec.prompt_name(entry.get("cls_name", class_name)),
                        "defect_type": "anomaly" if label and defect == "good" else defect,
                        "label": label,
                        "image_path": image,
                        "mask_path": mask if label == 1 else None,
                    }
                )
    if not rows:
        raise ZsadError("meta.json lists no images")
    return pd.DataFrame(rows)


def _meta_path(path: str, base: Path) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(base.resolve()).as_posix()
        except ValueError as exc:
            raise ZsadError(
                f"meta.json path {path} is outside the meta.json folder {base.resolve()}; regenerate it "
                f"with relative paths"
            ) from exc
    return candidate.as_posix()


def export_meta(folder: Path, target: Path | None = None) -> Path:
    """Write an AnomalyCLIP-style ``meta.json`` (relative paths) for a prepared dataset folder."""
    table = read_manifest(folder)
    meta: dict[str, dict[str, list[dict[str, Any]]]] = {"train": {}, "test": {}}
    for item in table.itertuples(index=False):
        meta[item.split].setdefault(item.class_name, []).append(
            {
                "img_path": item.image_path,
                "mask_path": item.mask_path or "",
                "cls_name": item.class_name,
                "specie_name": item.defect_type,
                "anomaly": int(item.label),
            }
        )
    return atomic_write(target or folder / "meta.json", json.dumps(meta, indent=2))
