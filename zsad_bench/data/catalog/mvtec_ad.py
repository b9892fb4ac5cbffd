"""MVTec AD (Bergmann et al., CVPR 2019): 15 industrial classes in the MVTec layout.

Test (normal, anomalous) = (467, 1258); per-class counts from the official test split
(reference/datasets.md section 2.2 #1). Masks ``ground_truth/<defect>/NNN_mask.png``, paired by name.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import convert_mvtec_like
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

CLASSES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill", "screw",
    "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every class folder found under ``raw`` (``<raw>/[mvtec_anomaly_detection/]<cls>/...``)."""
    return convert_mvtec_like(raw, spec, "MVTec AD class folders")


SPEC = DatasetSpec(
    id="mvtec-ad",
    title="MVTec AD",
    domain="industrial",
    modality="RGB photography (some greyscale classes)",
    licence="CC BY-NC-SA 4.0",
    citation=(
        "Bergmann, Fauser, Sattlegger, Steger. MVTec AD - A Comprehensive Real-World Dataset for "
        "Unsupervised Anomaly Detection. CVPR 2019."
    ),
    homepage="https://www.mvtec.com/company/research/datasets/mvtec-ad",
    classes=tuple(ClassSpec(c, c.replace("_", " ")) for c in CLASSES),
    has_masks=True,
    sources=(
        Source(
            "https",
            "https://www.mydrive.ch/shares/150996/b52ecdcbf521176e9db9c731f2304b27/download/420938113-1629960298/"
            "mvtec_anomaly_detection.tar.xz",
            sha256="cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
            filename="mvtec_anomaly_detection.tar.xz",
            note="the mirror anomalib pins; same archive as the form on mvtec.com",
        ),
        Source(
            "hf",
            "ProgrammerGnome/MVTecAD",
            filename="mvtec_anomaly_detection.tar.xz",
            note="Hugging Face copy of the original tar.xz",
        ),
        Source("gdrive", "12IukAqxOj497J4F0Mel-FvaONM030qwP", note="AdaCLIP's processed copy"),
    ),
    expected_counts={
        "bottle": (20, 63),
        "cable": (58, 92),
        "capsule": (23, 109),
        "carpet": (28, 89),
        "grid": (21, 57),
        "hazelnut": (40, 70),
        "leather": (32, 92),
        "metal_nut": (22, 93),
        "pill": (26, 141),
        "screw": (41, 119),
        "tile": (33, 84),
        "toothbrush": (12, 30),
        "transistor": (60, 40),
        "wood": (19, 60),
        "zipper": (32, 119),
    },
    converter=convert,
)
