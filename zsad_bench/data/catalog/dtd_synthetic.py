"""DTD-Synthetic (Aota et al., WACV 2023): synthetic defects on 12 DTD textures, in the MVTec layout.

Test (normal, anomalous) = (357, 947): the paper's figure, not re-verified (reference/datasets.md
section 2.2 #7); per-class counts are not known. Layout ``<Class>/{train/good, test/{good,<defect>},
ground_truth/<defect>}`` as assumed by AnomalyCLIP's ``DTD.py``; issue #45 reports that the authors'
download does not parse with that script as-is, and the mask names were not checked. So masks are paired
by name either MVTec-style (``000.png`` <-> ``000_mask.png``) or, when no mask of a class is named
``*_mask``, by identical stem (``000.png`` <-> ``000.png``); anything else is an error naming the file.

Prompt names are the class names with ``_`` as a space, lower-cased (``woven 001``): the words the
reference loaders pass on (AnomalyCLIP itself ignores class names, issue #10), so baseline prompts stay
comparable with the published numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import convert_mvtec_like
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

# AnomalyCLIP's order (generate_dataset_json/DTD.py).
CLASSES = (
    "Woven_001", "Woven_127", "Woven_104", "Stratified_154", "Blotchy_099", "Woven_068", "Woven_125",
    "Marbled_078", "Perforated_037", "Mesh_114", "Fibrous_183", "Matted_069",
)  # fmt: skip

DRIVE_FOLDER = "10OyPzvI3H6llCZBxKxFlKWt1Pw1tkMK1"


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every class folder found under ``raw`` (``<raw>/[DTD-Synthetic/]<Class>/...``); masks named
    ``000_mask.png`` or like their image, detected per class (issue #45: the release does not parse as-is)."""
    return convert_mvtec_like(raw, spec, "DTD-Synthetic class folders", mask_suffix=None)


SPEC = DatasetSpec(
    id="dtd-synthetic",
    title="DTD-Synthetic",
    domain="industrial",
    modality="synthetic defects on DTD texture photographs",
    licence="unverified (the base DTD is a research dataset)",
    citation=(
        "Aota, Tong, Okatani. Zero-shot versus Many-shot: Unsupervised Texture Anomaly Detection. WACV 2023."
    ),
    homepage=f"https://drive.google.com/drive/folders/{DRIVE_FOLDER}",
    classes=tuple(ClassSpec(c, c.replace("_", " ").lower()) for c in CLASSES),
    has_masks=True,
    sources=(
        Source("gdrive", DRIVE_FOLDER, note="Drive folder: download in a browser (the authors' release)"),
        Source("gdrive", "1em51XXz5_aBNRJlJxxv3-Ed1dO9H3QgS", note="AdaCLIP's archive (counts not verified)"),
    ),
    expected_total=(357, 947),
    converter=convert,
)
