"""Br35H (Kaggle "Br35H :: Brain Tumor Detection 2020"): brain MRI slices with or without a tumour.

Test (normal, anomalous) = (1500, 1500), image level only (reference/datasets.md section 2.2 #10).
Layout ``{yes,no,pred}/*.jpg``: ``no`` is normal, ``yes`` anomalous (defect type ``tumor``). The
``pred/`` folder holds 60 unlabelled images and is excluded (AnomalyCLIP's ``br35.py`` would count it
as anomalous; the paper's counts exclude it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``no/`` and ``yes/`` found anywhere under ``raw``; ``pred/`` and anything else is ignored."""
    root = find_dir(
        raw, lambda d: (d / "no").is_dir() and (d / "yes").is_dir(), "Br35H folders no/ and yes/", spec.id
    )
    rows = [
        row(raw, spec, "brain", image, split="test", defect_type=defect, mask=None)
        for folder, defect in (("no", "good"), ("yes", "tumor"))
        for image in list_images(root / folder)
    ]
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="br35h",
    title="Br35H",
    domain="medical",
    modality="brain MRI (tumour)",
    licence="unverified",
    citation="Hamada. Br35H :: Brain Tumor Detection 2020. Kaggle dataset, 2020.",
    homepage="https://www.kaggle.com/datasets/ahmedhamada0/brain-tumor-detection",
    classes=(ClassSpec("brain", "brain"),),
    has_masks=False,
    sources=(
        Source("gdrive", "1l9XODMBm4X23K70LtpxAxgoaBbNzr4Nc", note="AnomalyCLIP's copy"),
        Source("kaggle", "ahmedhamada0/brain-tumor-detection"),
    ),
    expected_counts={"brain": (1500, 1500)},
    expected_total=(1500, 1500),
    converter=convert,
)
