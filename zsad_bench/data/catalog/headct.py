"""HeadCT (Kaggle "Head CT - hemorrhage"): brain CT slices, 100 normal and 100 with haemorrhage.

Test (normal, anomalous) = (100, 100), image level only (reference/datasets.md section 2.2 #8). Two
layouts are read:

* Kaggle: ``head_ct/head_ct/NNN.png`` + ``labels.csv`` with columns ``id`` and `` hemorrhage`` (the real
  header has a space before ``hemorrhage``); id ``7`` is ``007.png``, ``hemorrhage`` 1 is anomalous.
* AnomalyCLIP's copy: ``HeadCT_anomaly_detection/brain/test/{good,<anomalous folder>}``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source
from zsad_bench.errors import ZsadError

LABELS = "labels.csv"


def _kaggle_images(folder: Path) -> Path | None:
    """The image folder belonging to ``folder/labels.csv`` (``head_ct/head_ct``, ``head_ct`` or beside it)."""
    if not (folder / LABELS).is_file():
        return None
    for candidate in (folder / "head_ct" / "head_ct", folder / "head_ct", folder):
        if list_images(candidate):
            return candidate
    return None


def _anomalyclip_layout(raw: Path, class_dir: Path, spec: DatasetSpec) -> list[dict[str, object]]:
    rows = []
    for split in ("train", "test"):
        split_dir = class_dir / split
        if not split_dir.is_dir():
            continue
        for defect_dir in sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            rows += [
                row(raw, spec, "brain", image, split=split, defect_type=defect_dir.name, mask=None)
                for image in list_images(defect_dir)
            ]
    return rows


def _read_labels(path: Path) -> dict[str, int]:
    """``labels.csv`` -> zero-padded file stem -> 0/1, whatever the spacing of its header."""
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError) as exc:
        raise ZsadError(f"cannot read {path} ({exc}); re-extract the Kaggle archive") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "id" not in table.columns or "hemorrhage" not in table.columns:
        raise ZsadError(f"{path} needs columns 'id' and 'hemorrhage', found {list(table.columns)}")
    labels: dict[str, int] = {}
    for ident, flag in zip(table["id"], table["hemorrhage"], strict=True):
        try:
            key, value = f"{int(ident):03d}", int(flag)
        except (TypeError, ValueError):
            raise ZsadError(f"{path}: row id={ident!r} hemorrhage={flag!r} is not two integers") from None
        if value not in (0, 1):
            raise ZsadError(f"{path}: id {ident} has hemorrhage={flag!r}; expected 0 or 1")
        if key in labels:
            raise ZsadError(f"{path}: id {ident} appears twice")
        labels[key] = value
    return labels


def _kaggle_layout(raw: Path, root: Path, images_dir: Path, spec: DatasetSpec) -> list[dict[str, object]]:
    labels = _read_labels(root / LABELS)
    images = {image.stem: image for image in list_images(images_dir)}
    unlabelled = sorted(images.keys() - labels.keys())
    if unlabelled:
        raise ZsadError(f"image {images[unlabelled[0]]} has no row in {root / LABELS}")
    missing = sorted(labels.keys() - images.keys())
    if missing:
        raise ZsadError(f"{root / LABELS} lists id {missing[0]} but {images_dir} has no {missing[0]}.png")
    defect = {0: "good", 1: "hemorrhage"}
    return [
        row(raw, spec, "brain", image, split="test", defect_type=defect[labels[stem]], mask=None)
        for stem, image in images.items()
    ]


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of the Kaggle layout or of AnomalyCLIP's ``brain/test/`` copy, whichever is shallower."""
    root = find_dir(
        raw,
        lambda d: (d / "brain" / "test").is_dir() or _kaggle_images(d) is not None,
        "HeadCT labels.csv with head_ct/ images, or AnomalyCLIP's brain/test/ folder",
        spec.id,
    )
    images_dir = None if (root / "brain" / "test").is_dir() else _kaggle_images(root)
    if images_dir is None:
        rows = _anomalyclip_layout(raw, root / "brain", spec)
    else:
        rows = _kaggle_layout(raw, root, images_dir, spec)
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="headct",
    title="HeadCT",
    domain="medical",
    modality="brain CT (hemorrhage)",
    licence="unverified (Kaggle)",
    citation="Kitamura. Head CT - hemorrhage. Kaggle dataset felipekitamura/head-ct-hemorrhage.",
    homepage="https://www.kaggle.com/datasets/felipekitamura/head-ct-hemorrhage",
    classes=(ClassSpec("brain", "brain"),),
    has_masks=False,
    sources=(
        Source("gdrive", "1lSAUkgZXUFwTqyexS8km4ZZ3hW89i5aS", note="AnomalyCLIP's copy"),
        Source("kaggle", "felipekitamura/head-ct-hemorrhage"),
    ),
    expected_counts={"brain": (100, 100)},
    expected_total=(100, 100),
    converter=convert,
)
