"""CVC-ClinicDB (Bernal et al., CMIG 2015): colonoscopy frames with polyp masks, all anomalous.

Test (normal, anomalous) = (0, 612) (reference/datasets.md section 2.2 #13). Read from the figshare
"Polyp_DataSet_zip" folder ``CVC-ClinicDB/{images,masks}/N.png``; its sibling datasets are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._polyp import convert_images_masks, figshare_source
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``CVC-ClinicDB/{images,masks}`` found anywhere under ``raw``."""
    return convert_images_masks(raw, spec, ("CVC-ClinicDB",))


SPEC = DatasetSpec(
    id="cvc-clinicdb",
    title="CVC-ClinicDB",
    domain="medical",
    modality="colonoscopy (polyp)",
    licence="academic use with citation (unverified); Hugging Face copies are tagged CC BY 4.0",
    citation=(
        "Bernal, Sanchez, Fernandez-Esparrach, Gil, Rodriguez, Vilarino. WM-DOVA maps for accurate polyp "
        "highlighting in colonoscopy: Validation vs. saliency maps from physicians. CMIG 2015."
    ),
    homepage="https://polyp.grand-challenge.org/CVCClinicDB/",
    classes=(ClassSpec("colon", "colon"),),
    has_masks=True,
    sources=(
        figshare_source(),
        Source("hf", "berkaytrhn/cvc-clinicdb", note="file mirror; contents not inspected"),
        Source("hf", "MedOtter/CVC-ClinicDB", note="contents not inspected"),
        Source("hf", "Aeoo/CVC-ClinicDB", note="contents not inspected"),
    ),
    expected_counts={"colon": (0, 612)},
    expected_total=(0, 612),
    converter=convert,
)
