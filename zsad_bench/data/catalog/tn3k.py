"""TN3K (Gong et al., ISBI 2021): thyroid ultrasound images with nodule masks, all anomalous.

Test (normal, anomalous) = (0, 614), pixel level only (reference/datasets.md section 2.2 #17); the
benchmark uses the test split. Layout ``tn3k/{test-image,test-mask,trainval-image,trainval-mask}/NNNN.jpg``
(the Google Drive zip adds a ``Thyroid Dataset/`` parent): ``test-*`` gives split ``test``, ``trainval-*``
(2879 images, when present) split ``train``; masks have the image's name. ``label4test.csv`` and
``tn3k-trainval-fold*.json`` are not used.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source
from zsad_bench.errors import ZsadError

_RAW = "https://github.com/haifangong/TRFE-Net-for-thyroid-nodule-segmentation/raw/main/picture/"


SPLITS = (("test", "test"), ("train", "trainval"))


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``test-image``/``test-mask`` (and ``trainval-*`` beside them) found anywhere under ``raw``."""
    root = find_dir(
        raw,
        lambda d: (d / "test-image").is_dir() and (d / "test-mask").is_dir(),
        "TN3K folders test-image/ and test-mask/",
        spec.id,
    )
    rows = []
    for split, prefix in SPLITS:
        image_dir, mask_dir = root / f"{prefix}-image", root / f"{prefix}-mask"
        if not image_dir.is_dir() and not mask_dir.is_dir():
            continue
        if not (image_dir.is_dir() and mask_dir.is_dir()):
            present, absent = (image_dir, mask_dir) if image_dir.is_dir() else (mask_dir, image_dir)
            raise ZsadError(f"{present} has no companion folder {absent.name}/ beside it; extract both parts")
        pairs = pair_masks_by_name(list_images(image_dir), list_images(mask_dir), mask_suffix="")
        rows += [
            row(raw, spec, "thyroid", image, split=split, defect_type="nodule", mask=mask)
            for image, mask in pairs.items()
        ]
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="tn3k",
    title="TN3K (test split)",
    domain="medical",
    modality="thyroid ultrasound",
    licence="none stated for the data (the code is MIT)",
    citation=(
        "Gong, Chen, Wang, Xie, Mao, Yu, Chen, Li. Multi-Task Learning for Thyroid Nodule Segmentation "
        "with Thyroid Region Prior. ISBI 2021."
    ),
    homepage="https://github.com/haifangong/TRFE-Net-for-thyroid-nodule-segmentation",
    classes=(ClassSpec("thyroid", "thyroid"),),
    has_masks=True,
    sources=(
        Source(
            "https",
            _RAW + "test-image.part1.rar",
            filename="test-image.part1.rar",
            note="part 1 of 3: test images, multi-part RAR (needs unrar); test split only",
            group="trfe-net-github",
        ),
        Source(
            "https",
            _RAW + "test-image.part2.rar",
            filename="test-image.part2.rar",
            note="part 2 of 3: test images, multi-part RAR (needs unrar)",
            group="trfe-net-github",
        ),
        Source(
            "https",
            _RAW + "test-mask.rar",
            filename="test-mask.rar",
            note="part 3 of 3: test masks, RAR (needs unrar)",
            group="trfe-net-github",
        ),
        Source("gdrive", "1reHyY5eTZ5uePXMVMzFOq5j3eFOSp50F", note="the TRFE-Net authors' copy (all splits)"),
    ),
    expected_counts={"thyroid": (0, 614)},
    expected_total=(0, 614),
    converter=convert,
)
