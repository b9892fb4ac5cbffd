"""BrainMRI (Kaggle "Brain MRI Images for Brain Tumor Detection"): brain MRI slices with or without a tumour.

Test (normal, anomalous) = (98, 155), image level only (reference/datasets.md section 2.2 #9). The
Kaggle zip holds ``brain_tumor_dataset/{no,yes}`` and a duplicate ``no/``, ``yes/`` at its top level;
only ``brain_tumor_dataset/`` is read (the top-level pair only when that folder is absent), so no image
is counted twice. ``no`` is normal; ``yes`` is anomalous with defect type ``tumor``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

NESTED = "brain_tumor_dataset"


def _has_no_yes(folder: Path) -> bool:
    return (folder / "no").is_dir() and (folder / "yes").is_dir()


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``brain_tumor_dataset/{no,yes}`` (else of a bare ``{no,yes}`` pair) under ``raw``."""
    found = find_dir(
        raw,
        lambda d: _has_no_yes(d / NESTED) or _has_no_yes(d),
        f"BrainMRI folders {NESTED}/no and {NESTED}/yes",
        spec.id,
    )
    root = found / NESTED if _has_no_yes(found / NESTED) else found
    rows = [
        row(raw, spec, "brain", image, split="test", defect_type=defect, mask=None)
        for folder, defect in (("no", "good"), ("yes", "tumor"))
        for image in list_images(root / folder)
    ]
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="brainmri",
    title="BrainMRI",
    domain="medical",
    modality="brain MRI (tumour)",
    licence="unverified",
    citation="Chakrabarty. Brain MRI Images for Brain Tumor Detection. Kaggle dataset, 2019.",
    homepage="https://www.kaggle.com/datasets/navoneel/brain-mri-images-for-brain-tumor-detection",
    classes=(ClassSpec("brain", "brain"),),
    has_masks=False,
    sources=(
        Source("kaggle", "navoneel/brain-mri-images-for-brain-tumor-detection"),
        Source("hf", "Mahadih534/brain-tumor-dataset", note="zip copy (about 15.8 MB); no=98, yes=155"),
        Source("hf", "Mahadih534/brain-tumor-MRI-dataset", note="contents not inspected"),
        Source("hf", "miladfa7/Brain-MRI-Images-for-Brain-Tumor-Detection", note="contents not inspected"),
    ),
    expected_counts={"brain": (98, 155)},
    expected_total=(98, 155),
    converter=convert,
)
