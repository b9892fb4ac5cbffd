"""ISIC 2016 (ISBI 2016 Part 1, lesion segmentation) test set: dermoscopic images, all anomalous.

Test (normal, anomalous) = (0, 379), pixel level only (reference/datasets.md section 2.2 #12). The
dataset comes as two archives, so ``SPEC.sources`` lists two parts ("part 1 of 2: images", "part 2 of
2: ground truth") that are both needed, extracted side by side. Two layouts are read:

* official zips: ``ISBI2016_ISIC_Part1_Test_Data/ISIC_*.jpg`` and
  ``ISBI2016_ISIC_Part1_Test_GroundTruth/ISIC_*_Segmentation.png``;
* AnomalyCLIP's copy: ``ISIC/skin/test/<any>/`` with the masks in
  ``ISIC/skin/ISBI2016_ISIC_Part1_Test_GroundTruth/``.

Every image is a lesion (defect type ``lesion``); masks are paired by name (suffix ``_Segmentation``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

_S3 = "https://isic-challenge-data.s3.amazonaws.com/2016/"
DATA = "ISBI2016_ISIC_Part1_Test_Data"
GROUND_TRUTH = "ISBI2016_ISIC_Part1_Test_GroundTruth"


MASK_SUFFIX = "_Segmentation"


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of the official folders, or of AnomalyCLIP's ``skin/`` folder, found anywhere under ``raw``."""
    gt_dir = find_dir(raw, lambda d: d.name == GROUND_TRUTH, f"ISIC mask folder {GROUND_TRUTH}", spec.id)
    masks = list_images(gt_dir)
    rows = []
    if (gt_dir.parent / "test").is_dir():  # AnomalyCLIP: skin/test/<any>/ beside the mask folder
        test_dir = gt_dir.parent / "test"
        folders = sorted(d for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
        rows += [
            row(raw, spec, "skin", image, split="test", defect_type="good", mask=None)
            for image in list_images(test_dir / "good")
        ]
        images = [image for d in folders if d.name != "good" for image in list_images(d)]
    else:
        data_dir = find_dir(raw, lambda d: d.name == DATA, f"ISIC image folder {DATA}", spec.id)
        images = list_images(data_dir)
    pairs = pair_masks_by_name(images, masks, mask_suffix=MASK_SUFFIX)
    rows += [
        row(raw, spec, "skin", image, split="test", defect_type="lesion", mask=mask)
        for image, mask in pairs.items()
    ]
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="isic",
    title="ISIC 2016 (ISBI 2016 Part 1 test)",
    domain="medical",
    modality="dermoscopic photography",
    licence="CC0 (medium confidence: paperswithcode mirror of the ISIC card)",
    citation=(
        "Gutman et al. Skin Lesion Analysis toward Melanoma Detection: A Challenge at the International "
        "Symposium on Biomedical Imaging (ISBI) 2016, hosted by the International Skin Imaging "
        "Collaboration (ISIC). arXiv:1605.01397."
    ),
    homepage="https://challenge.isic-archive.com/data/#2016",
    classes=(ClassSpec("skin", "skin"),),
    has_masks=True,
    sources=(
        Source(
            "https", _S3 + DATA + ".zip", filename=DATA + ".zip", note="part 1 of 2: images", group="isic-s3"
        ),
        Source(
            "https",
            _S3 + GROUND_TRUTH + ".zip",
            filename=GROUND_TRUTH + ".zip",
            note="part 2 of 2: ground truth",
            group="isic-s3",
        ),
        Source("gdrive", "1UeuKgF1QYfT1jTlYHjxKB3tRjrFHfFDR", note="AnomalyCLIP's copy"),
        Source("hf", "MedOtter/ISIC2016", note="contents not inspected"),
        Source("hf", "zs389/isic2016", note="contents not inspected"),
    ),
    expected_counts={"skin": (0, 379)},
    expected_total=(0, 379),
    converter=convert,
)
