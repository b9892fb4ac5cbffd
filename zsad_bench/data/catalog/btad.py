"""BTAD (Mishra et al., ISIE 2021): 3 industrial products ``01``-``03``, MVTec layout with ``ok``/``ko``.

Test (normal, anomalous) = (451, 290) (reference/datasets.md section 2.2 #4, counted from AA-CLIP's
``BTAD/full-shot.jsonl``). The zip extracts to ``BTech_Dataset_transformed/<01|02|03>/{train/ok,
test/{ok,ko}, ground_truth/ko}``; the normal folder ``ok`` is recorded as defect type ``good``.

Images are ``.bmp`` in some classes and masks ``.png`` (or ``.bmp``), so masks are paired by file stem,
never by extension or sorted position: ``test/ko/0000.bmp`` <-> ``ground_truth/ko/0000.png``. Copies
that renamed the masks MVTec-style (``0000_mask.png``) are recognised too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import convert_mvtec_like
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

CLASSES = ("01", "02", "03")


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows for every product folder under ``raw`` (``<raw>/[BTech_Dataset_transformed/]<01|02|03>``);
    the normal folder is ``ok``; masks are ``.png`` beside ``.bmp`` images, paired by stem."""
    return convert_mvtec_like(raw, spec, "BTAD product folders", normal="ok", mask_suffix=None)


SPEC = DatasetSpec(
    id="btad",
    title="BTAD (beanTech Anomaly Detection)",
    domain="industrial",
    modality="RGB photography",
    licence="CC BY-SA 4.0 (VT-ADL README; anomalib says CC BY-NC-SA 4.0)",
    citation=(
        "Mishra, Verk, Fornasier, Piciarelli, Foresti. VT-ADL: A Vision Transformer Network for Image "
        "Anomaly Detection and Localization. ISIE 2021."
    ),
    homepage="https://github.com/pankajmishra000/VT-ADL",
    # AnomalyCLIP and AdaCLIP pass the bare product numbers to their prompts; kept for parity.
    classes=tuple(ClassSpec(c, c) for c in CLASSES),
    has_masks=True,
    sources=(
        Source(
            "https",
            "https://avires.dimi.uniud.it/papers/btad/btad.zip",
            sha256="461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a",
            filename="btad.zip",
            note="official archive (the one anomalib pins; AnomalyCLIP's README gives it as http://)",
        ),
    ),
    expected_counts={"01": (21, 49), "02": (30, 200), "03": (400, 41)},
    expected_total=(451, 290),
    converter=convert,
)
