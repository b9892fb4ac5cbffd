"""CVC-ColonDB (Bernal et al., Pattern Recognition 2012): colonoscopy frames with polyp masks, all anomalous.

Test (normal, anomalous) = (0, 380) (reference/datasets.md section 2.2 #14). Read from the figshare
"Polyp_DataSet_zip" folder ``CVC-ColonDB/{images,masks}/N.png``; its sibling datasets are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._polyp import FIGSHARE, convert_images_masks, figshare_source
from zsad_bench.data.spec import ClassSpec, DatasetSpec


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of ``CVC-ColonDB/{images,masks}`` found anywhere under ``raw``."""
    return convert_images_masks(raw, spec, ("CVC-ColonDB",))


SPEC = DatasetSpec(
    id="cvc-colondb",
    title="CVC-ColonDB",
    domain="medical",
    modality="colonoscopy (polyp)",
    licence="originally by request (PolypGen table)",
    citation=(
        "Bernal, Sanchez, Vilarino. Towards automatic polyp detection with a polyp appearance model. "
        "Pattern Recognition 2012."
    ),
    homepage=FIGSHARE,
    classes=(ClassSpec("colon", "colon"),),
    has_masks=True,
    sources=(figshare_source(),),
    expected_counts={"colon": (0, 380)},
    expected_total=(0, 380),
    converter=convert,
)
