"""VisA (Zou et al., ECCV 2022): 12 industrial classes, split by the official ``split_csv/1cls.csv``.

Test (normal, anomalous) = (962, 1200), counted from ``1cls.csv`` (reference/datasets.md section 2.2 #2).
The CSV lists every image with its split, its label (``normal``/``anomaly``) and, for anomalies, its
mask, all relative to the VisA root; AnomalyCLIP's ``visa.py`` reads the same columns, so the raw
``<cls>/Data/Images/...`` layout is used as shipped (no ``visa_pytorch`` reorganisation as in anomalib).
The CSV names no defect type, so anomalous rows get ``anomaly``. Masks are class-ID PNGs (any non-zero
pixel is anomalous); loading binarises them.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, row
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source
from zsad_bench.errors import ZsadError

CLASSES = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2",
    "pcb3", "pcb4", "pipe_fryum",
)  # fmt: skip

SPLIT_CSV = PurePosixPath("split_csv/1cls.csv")
CSV_COLUMNS = ("object", "split", "label", "image", "mask")
LABELS = {"normal": "good", "anomaly": "anomaly"}  # CSV label -> defect_type


def _read_split_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise ZsadError(
            f"{path} lacks column(s) {', '.join(missing)}; expected the official VisA split file with "
            f"columns {', '.join(CSV_COLUMNS)}"
        )
    return table


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every image listed in ``split_csv/1cls.csv`` of the VisA root found under ``raw``."""
    root = find_dir(raw, lambda d: (d / SPLIT_CSV).is_file(), "VisA root (split_csv/1cls.csv)", spec.id)
    csv_path = root / SPLIT_CSV
    known = set(spec.class_names)
    rows = []
    for rec in _read_split_csv(csv_path).itertuples(index=False):
        where = f"{csv_path}, image '{rec.image}'"
        if rec.object not in known:
            raise ZsadError(f"{where}: unknown object '{rec.object}'; expected one of {sorted(known)}")
        if rec.split not in ("train", "test"):
            raise ZsadError(f"{where}: split '{rec.split}' is neither 'train' nor 'test'")
        if rec.label not in LABELS:
            raise ZsadError(f"{where}: label '{rec.label}' is neither 'normal' nor 'anomaly'")
        mask = None
        if rec.label == "anomaly":
            if not rec.mask:
                raise ZsadError(f"{where}: anomalous image has an empty mask column")
            mask = root.joinpath(*PurePosixPath(rec.mask).parts)
            if not mask.is_file():
                raise ZsadError(
                    f"mask {mask} (listed in {csv_path} for image '{rec.image}') does not exist; "
                    f"re-extract the VisA archive"
                )
        image = root.joinpath(*PurePosixPath(rec.image).parts)
        rows.append(
            row(raw, spec, rec.object, image, split=rec.split, defect_type=LABELS[rec.label], mask=mask)
        )
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="visa",
    title="VisA (Visual Anomaly)",
    domain="industrial",
    modality="RGB photography",
    licence="CC BY 4.0 (spot-diff LICENSE-DATASET; anomalib's docstring says CC BY-NC-SA)",
    citation=(
        "Zou, Jeong, Pemula, Zhang, Dabeer. SPot-the-Difference Self-Supervised Pre-training for Anomaly "
        "Detection and Segmentation. ECCV 2022."
    ),
    homepage="https://github.com/amazon-science/spot-diff",
    classes=tuple(ClassSpec(c, c.replace("_", " ")) for c in CLASSES),
    has_masks=True,
    sources=(
        Source(
            "https",
            "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
            sha256="2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362",
            filename="VisA_20220922.tar",
            note="official archive (the one anomalib pins)",
        ),
        Source("hf", "hdtech/visual_anomaly_dataset", note="zip copy (1.91 GB); contents not inspected"),
        Source(
            "gdrive",
            "1U0MZVro5yGgaHNQ8kWb3U1a0Qlz4HiHI",
            note="AdaCLIP's copy (VisA_20220922 with split_csv/); contents not verified",
        ),
    ),
    expected_counts={
        "candle": (100, 100),
        "capsules": (60, 100),
        "cashew": (50, 100),
        "chewinggum": (50, 100),
        "fryum": (50, 100),
        "macaroni1": (100, 100),
        "macaroni2": (100, 100),
        "pcb1": (100, 100),
        "pcb2": (100, 100),
        "pcb3": (101, 100),
        "pcb4": (101, 100),
        "pipe_fryum": (50, 100),
    },
    expected_total=(962, 1200),
    converter=convert,
)
