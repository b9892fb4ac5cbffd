"""Endo: the EndoTect 2020 segmentation test set (Hicks et al., ICPR 2020 workshops), all anomalous.

Test (normal, anomalous) = (0, 200) (reference/datasets.md section 2.2 #16): polyp images in
``EndoTect_2020_Segmentation_Test_Dataset/images`` with masks of the same stem (the extension may
differ) in ``masks/``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._polyp import convert_images_masks
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``EndoTect_2020_Segmentation_Test_Dataset/{images,masks}`` found anywhere under ``raw``
    (any folder whose name starts with ``EndoTect`` or ``Endo``, or ``raw`` itself)."""
    return convert_images_masks(raw, spec, ("EndoTect", "Endo"), prefix=True)


SPEC = DatasetSpec(
    id="endo",
    title="Endo (EndoTect 2020 segmentation test)",
    domain="medical",
    modality="GI endoscopy (polyp)",
    licence="unverified",
    citation=(
        "Hicks et al. The EndoTect 2020 Challenge: Evaluation and Comparison of Classification, "
        "Segmentation and Inference Time for Endoscopy. ICPR 2020 workshops."
    ),
    homepage="https://endotect.com",
    classes=(ClassSpec("colon", "colon"),),
    has_masks=True,
    sources=(Source("gdrive", "1LNpLkv5ZlEUzr_RPN5rdOHaqk0SkZa3m", note="AnomalyCLIP's copy"),),
    expected_counts={"colon": (0, 200)},
    expected_total=(0, 200),
    converter=convert,
)
