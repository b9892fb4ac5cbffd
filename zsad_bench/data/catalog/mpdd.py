"""MPDD (Jezek et al., ICUMT 2021): 6 classes of painted metal parts, in the MVTec layout.

Test (normal, anomalous) = (176, 282) (reference/datasets.md section 2.2 #3, counted from AA-CLIP's
``MPDD/full-shot.jsonl``). Masks ``ground_truth/<defect>/NNN_mask.png``, paired by name.

The official release is a SharePoint folder (``SHAREPOINT``) that cannot be fetched without a browser,
so the download source is AdaCLIP's Google Drive copy (already in the MVTec layout); a manual download
of the SharePoint folder converts the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import convert_mvtec_like
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

CLASSES = ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes")

SHAREPOINT = (
    "https://vutbr-my.sharepoint.com/:f:/g/personal/xjezek16_vutbr_cz/"
    "EhHS_ufVigxDo3MC6Lweau0BVMuoCmhMZj6ddamiQ7-FnA?e=oHKCxI"
)


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every class folder found under ``raw`` (``<raw>/[MPDD/]<cls>/{train,test,ground_truth}``)."""
    return convert_mvtec_like(raw, spec, "MPDD class folders")


SPEC = DatasetSpec(
    id="mpdd",
    title="MPDD (Metal Parts Defect Detection)",
    domain="industrial",
    modality="RGB photography (metal parts)",
    licence="CC BY-NC-SA 4.0",
    citation=(
        "Jezek, Jonak, Burget, Dvorak, Skotak. Deep learning-based defect detection of metal parts: "
        "evaluating current methods in complex conditions. ICUMT 2021."
    ),
    homepage="https://github.com/stepanje/MPDD",
    classes=tuple(ClassSpec(c, c.replace("_", " ")) for c in CLASSES),
    has_masks=True,
    sources=(
        Source(
            "gdrive",
            "1cLkZs8pN8onQzfyNskeU_836JLjrtJz1",
            note=(
                f"AdaCLIP's copy (split not re-verified); the official release is the SharePoint folder "
                f"{SHAREPOINT}, which needs a browser (then use 'prepare --from')"
            ),
        ),
    ),
    expected_counts={
        "bracket_black": (32, 47),
        "bracket_brown": (26, 51),
        "bracket_white": (30, 30),
        "connector": (30, 14),
        "metal_plate": (26, 71),
        "tubes": (32, 69),
    },
    expected_total=(176, 282),
    converter=convert,
)
