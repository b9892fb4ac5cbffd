"""Kvasir-SEG (Jha et al., MMM 2020): GI endoscopy images with polyp masks, all anomalous.

Test (normal, anomalous) = (0, 1000) (reference/datasets.md section 2.2 #15). Two layouts: the Simula
zip ``Kvasir-SEG/{images,masks}/*.jpg`` (its ``kavsir_bboxes.json`` is not used) and the figshare
"Polyp_DataSet_zip" folder ``Kvasir/{images,masks}/*.png`` (its sibling datasets are ignored).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._polyp import convert_images_masks, figshare_source
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``Kvasir-SEG/{images,masks}`` or ``Kvasir/{images,masks}`` found anywhere under ``raw``."""
    return convert_images_masks(raw, spec, ("Kvasir-SEG", "Kvasir"))


SPEC = DatasetSpec(
    id="kvasir",
    title="Kvasir-SEG",
    domain="medical",
    modality="GI endoscopy (polyp)",
    licence="research and education use (Simula terms; unverified)",
    citation=(
        "Jha, Smedsrud, Riegler, Halvorsen, de Lange, Johansen, Johansen. Kvasir-SEG: A Segmented Polyp "
        "Dataset. MMM 2020."
    ),
    homepage="https://datasets.simula.no/kvasir-seg/",
    classes=(ClassSpec("colon", "colon"),),
    has_masks=True,
    sources=(
        Source(
            "https",
            "https://datasets.simula.no/downloads/kvasir-seg.zip",
            filename="kvasir-seg.zip",
            note="original Simula zip (about 46 MB)",
        ),
        figshare_source(),
        Source("hf", "MedOtter/kvasir-seg", note="contents not inspected"),
        Source("hf", "MedOtter/KvasirSEG", note="contents not inspected"),
        Source("hf", "kowndinya23/Kvasir-SEG", note="contents not inspected"),
        Source("hf", "mzschwartz88/seg-seg", note="contents not inspected"),
    ),
    expected_counts={"colon": (0, 1000)},
    expected_total=(0, 1000),
    converter=convert,
)
