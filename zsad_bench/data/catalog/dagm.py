"""DAGM 2007: 10 classes of synthetic greyscale textures with weak elliptical defect labels (Kaggle upload).

Test (normal, anomalous) = (6996, 1054): the paper's figure, not re-verified; it sums to 8050, the size of
the DAGM test half (reference/datasets.md section 2.2 #6). Per-class counts are not known.

Layout: ``DAGM_KaggleUpload/ClassN/{Train,Test}/NNNN.PNG`` with labels in ``{Train,Test}/Label/
NNNN_label.PNG`` (plus a ``Labels.txt`` there, ignored). As in AnomalyCLIP's ``DAGM.py``, an image is
anomalous exactly when its ``_label`` file exists; ``Test`` is the test split and ``Train`` the train split
(``DAGM.py`` writes capitalised keys that its loader never reads; the paper's counts are those of
``Test``). Labels are paired by name: a label without its image is an error.

AdaCLIP's Google Drive archive is not a source: ``dagm-pre.py`` merges ``Train`` and ``Test`` and
re-splits them, so its test set differs from AnomalyCLIP's (reference/datasets.md section 4).

Prompt names are the class names lower-cased (``class1``), the words AnomalyCLIP's loader passes on
(the CLIP tokenizer lower-cases anyway); the textures have no object name, and AnomalyCLIP itself ignores
class names (issue #10), so only baselines that put the name in their prompts see it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

CLASSES = tuple(f"Class{i}" for i in range(1, 11))
SPLITS = {"Train": "train", "Test": "test"}  # folder -> manifest split
LABEL_DIR = "Label"
LABEL_SUFFIX = "_label"
DEFECT = "defect"  # DAGM labels carry no defect type


def _class_rows(raw: Path, class_dir: Path, class_name: str, spec: DatasetSpec) -> list[dict[str, object]]:
    rows = []
    for folder, split in SPLITS.items():
        images = list_images(class_dir / folder)
        labels = list_images(class_dir / folder / LABEL_DIR)
        pairs = pair_masks_by_name(images, labels, mask_suffix=LABEL_SUFFIX, missing_ok=True)
        for image, mask in pairs.items():
            defect = "good" if mask is None else DEFECT
            rows.append(row(raw, spec, class_name, image, split=split, defect_type=defect, mask=mask))
    return rows


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every class folder found under ``raw`` (``<raw>/[DAGM_KaggleUpload/]ClassN/{Train,Test}``)."""
    root = find_dir(
        raw, lambda d: any((d / c / "Test").is_dir() for c in spec.class_names), "DAGM class folders", spec.id
    )
    rows = []
    for name in spec.class_names:
        if (root / name).is_dir():
            rows += _class_rows(raw, root / name, name, spec)
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="dagm",
    title="DAGM 2007 (Weakly Supervised Learning for Industrial Optical Inspection)",
    domain="industrial",
    modality="synthetic greyscale textures",
    licence="unclear (HCI page says 'publicly available'; Kaggle licence unverified)",
    citation="Weakly Supervised Learning for Industrial Optical Inspection. DAGM 2007 competition dataset.",
    homepage="https://www.kaggle.com/datasets/mhskjelvareid/dagm-2007-competition-dataset-optical-inspection",
    classes=tuple(ClassSpec(c, c.lower()) for c in CLASSES),
    has_masks=True,
    sources=(
        Source(
            "kaggle",
            "mhskjelvareid/dagm-2007-competition-dataset-optical-inspection",
            note="needs a Kaggle account or API token; extracts to DAGM_KaggleUpload/",
        ),
    ),
    expected_total=(6996, 1054),
    converter=convert,
)
