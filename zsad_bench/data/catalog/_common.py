"""What the dataset converters share: finding the data inside a raw folder, listing images, building rows.

A converter is ``convert(raw: Path, spec: DatasetSpec) -> pandas.DataFrame`` returning one row per image
with the manifest columns (``MANIFEST_COLUMNS``), ``image_path``/``mask_path`` relative to ``raw`` in
POSIX form and ``sample_id == image_path``. It never reads pixels and never pairs masks by position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from zsad_bench.data.manifest import MANIFEST_COLUMNS
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import DatasetSpec
from zsad_bench.errors import ZsadError

__all__ = [
    "IMAGE_SUFFIXES",
    "convert_mvtec_like",
    "detect_mask_suffix",
    "find_dir",
    "frame",
    "list_images",
    "mvtec_layout",
    "relative",
    "row",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_MAX_DEPTH = 6


def relative(path: Path, raw: Path) -> str:
    """``path`` relative to ``raw``, with forward slashes (the manifest's path form)."""
    return path.relative_to(raw).as_posix()


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by extension, case-insensitive, hidden files skipped), sorted."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def find_dir(raw: Path, accept: Callable[[Path], bool], what: str, dataset_id: str) -> Path:
    """The shallowest folder under ``raw`` (``raw`` itself included) for which ``accept`` is true.

    Archives extract with or without a top folder (``mvtec_anomaly_detection/bottle`` or ``bottle``), and
    users point ``--from`` at either level; this finds the data wherever it is. Hidden folders and
    ``__MACOSX`` are skipped. Raises ZsadError naming what was looked for.
    """
    level = [raw]
    for _ in range(_MAX_DEPTH + 1):
        for folder in level:
            if accept(folder):
                return folder
        level = sorted(
            child
            for folder in level
            for child in folder.iterdir()
            if child.is_dir() and not child.name.startswith((".", "__MACOSX"))
        )
        if not level:
            break
    raise ZsadError(
        f"no {what} found under {raw}; point 'zsad datasets prepare {dataset_id} --from' at the folder "
        f"the official archive extracts into (or at the archive itself)"
    )


def row(
    raw: Path,
    spec: DatasetSpec,
    class_name: str,
    image: Path,
    *,
    split: str,
    defect_type: str,
    mask: Path | None,
) -> dict[str, object]:
    """One manifest row; label is 0 exactly when ``defect_type == 'good'``."""
    image_path = relative(image, raw)
    return {
        "sample_id": image_path,
        "split": split,
        "class_name": class_name,
        "prompt_name": spec.prompt_name(class_name),
        "defect_type": defect_type,
        "label": 0 if defect_type == "good" else 1,
        "image_path": image_path,
        "mask_path": relative(mask, raw) if mask is not None else None,
    }


def frame(rows: Iterable[dict[str, object]], dataset_id: str, raw: Path) -> pd.DataFrame:
    """Rows -> DataFrame with exactly the manifest columns; an empty result is an error."""
    table = pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))
    if table.empty:
        raise ZsadError(f"no images of dataset '{dataset_id}' found under {raw}")
    return table


def detect_mask_suffix(class_dir: Path, ground_truth: str = "ground_truth") -> str:
    """``_mask`` when a mask of the class is named MVTec-style (``000_mask.png``), else ``""`` (same stem)."""
    folder = class_dir / ground_truth
    defects = [d for d in folder.iterdir() if d.is_dir()] if folder.is_dir() else []
    return "_mask" if any(m.stem.endswith("_mask") for d in defects for m in list_images(d)) else ""


def mvtec_layout(
    raw: Path,
    class_dir: Path,
    class_name: str,
    spec: DatasetSpec,
    *,
    normal: str = "good",
    mask_suffix: str | None = "_mask",
    ground_truth: str = "ground_truth",
    splits: tuple[str, ...] = ("train", "test"),
) -> list[dict[str, object]]:
    """Rows of one class in the MVTec layout: ``<class>/{train,test}/<defect>/`` with masks in
    ``<class>/ground_truth/<defect>/`` paired by name (``000.png`` <-> ``000_mask.png``). The folder named
    ``normal`` (``good``; BTAD says ``ok``) holds the normal images; its defect type is recorded as ``good``.
    ``mask_suffix=None`` detects the naming per class (``detect_mask_suffix``).
    """
    if mask_suffix is None:
        mask_suffix = detect_mask_suffix(class_dir, ground_truth)
    rows = []
    for split in splits:
        split_dir = class_dir / split
        if not split_dir.is_dir():
            continue
        for defect_dir in sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            images = list_images(defect_dir)
            if defect_dir.name == normal:
                rows += [
                    row(raw, spec, class_name, img, split=split, defect_type="good", mask=None)
                    for img in images
                ]
                continue
            masks = list_images(class_dir / ground_truth / defect_dir.name)
            pairs = pair_masks_by_name(images, masks, mask_suffix=mask_suffix)
            rows += [
                row(raw, spec, class_name, img, split=split, defect_type=defect_dir.name, mask=mask)
                for img, mask in pairs.items()
            ]
    return rows


def convert_mvtec_like(
    raw: Path, spec: DatasetSpec, what: str, *, normal: str = "good", mask_suffix: str | None = "_mask"
) -> pd.DataFrame:
    """The whole converter of a dataset shipped in the MVTec layout: find the folder holding the class
    folders (wherever the archive put it), then ``mvtec_layout`` for each class of the spec found there."""
    root = find_dir(raw, lambda d: any((d / c / "test").is_dir() for c in spec.class_names), what, spec.id)
    rows = []
    for name in spec.class_names:
        if (root / name).is_dir():
            rows += mvtec_layout(raw, root / name, name, spec, normal=normal, mask_suffix=mask_suffix)
    return frame(rows, spec.id, raw)
