"""SDD (derived from KolektorSDD, Tabernik et al., 2020): one class, ``electrical commutators``.

Test (normal, anomalous) = (181, 74): the paper's figure (AnomalyCLIP issue #19; reference/datasets.md
section 2.2 #5), not re-verified. AnomalyCLIP cuts each KolektorSDD image into vertical thirds and
evaluates its own split, shipped as a Google Drive folder in the MVTec layout:
``SDD/electrical commutators/{train/good, test/{good,defect}, ground_truth/defect/<name>_mask.png}``.
The class name, with its space, is AnomalyCLIP's.

The original KolektorSDD zip (``https://go.vicos.si/kolektorsdd``, the one anomalib pins) is deliberately
not a source: re-deriving the thirds with DRA's ``convert_SDD.py`` (also AdaCLIP's ``sdd-pre.py`` and its
Drive archive) gives (286, 54), a different split (issue #19), so results would not be comparable.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import convert_mvtec_like
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source

CLASS = "electrical commutators"


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of the class folder found under ``raw`` (``<raw>/[SDD/]electrical commutators/...``)."""
    return convert_mvtec_like(raw, spec, f"'{CLASS}' folder")


SPEC = DatasetSpec(
    id="sdd",
    title="SDD (KolektorSDD, AnomalyCLIP split)",
    domain="industrial",
    modality="greyscale photography (electrical commutators)",
    licence="CC BY-NC-SA 4.0",
    citation=(
        "Tabernik, Sela, Skvarc, Skocaj. Segmentation-based deep-learning approach for surface-defect "
        "detection. Journal of Intelligent Manufacturing, 2020."
    ),
    homepage="https://vicos.si/resources/kolektorsdd",
    classes=(ClassSpec(CLASS, CLASS),),
    has_masks=True,
    sources=(
        Source(
            "gdrive",
            "1oqaxUZYi44jlLT4WtT6D5T6onPTNZXsu",
            note="Drive folder: download in a browser (AnomalyCLIP's processed copy, issue #19)",
        ),
    ),
    expected_counts={CLASS: (181, 74)},
    expected_total=(181, 74),
    converter=convert,
)
