"""COVID-19 Radiography Database, first release (Chowdhury et al., IEEE Access 2020): chest X-rays.

Test (normal, anomalous) = (1341, 219), image level only (reference/datasets.md section 2.2 #11). Only
the normal folder and the COVID folder are read, by case-insensitive name (``NORMAL``/``Normal``;
``COVID-19``/``COVID``); ``Viral Pneumonia``, ``Lung_Opacity`` and the ``*.xlsx`` spreadsheets are
ignored. Later releases keep images in ``<folder>/images/`` beside ``<folder>/masks/``; those masks are
lung segmentations, not anomaly masks, and are ignored. A later release gives other counts (the current
Kaggle release has 10192 normal, 3616 COVID); comparing them with ``expected_counts`` is the caller's job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.spec import ClassSpec, DatasetSpec, Source
from zsad_bench.errors import ZsadError

NORMAL_NAMES = ("normal",)
COVID_NAMES = ("covid19", "covid")


def _key(name: str) -> str:
    """Folder name without case or punctuation: ``COVID-19`` -> ``covid19``, ``Normal`` -> ``normal``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _child(folder: Path, keys: tuple[str, ...]) -> Path | None:
    """The sub-folder of ``folder`` whose ``_key`` is one of ``keys`` (first key wins)."""
    if not folder.is_dir():
        return None
    children = {}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            children.setdefault(_key(child.name), []).append(child)
    for key in keys:
        if len(children.get(key, ())) > 1:
            names = " and ".join(str(c) for c in children[key])
            raise ZsadError(f"{names} both look like the same COVID-19 class folder; keep one")
        if key in children:
            return children[key][0]
    return None


def _images_dir(class_dir: Path) -> Path:
    """``<class>/images`` in later releases, the class folder itself in the first."""
    return class_dir / "images" if (class_dir / "images").is_dir() else class_dir


def convert(raw: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Rows of the normal and COVID folders found together anywhere under ``raw``."""
    root = find_dir(
        raw,
        lambda d: _child(d, NORMAL_NAMES) is not None and _child(d, COVID_NAMES) is not None,
        "COVID-19 folders NORMAL/ and COVID-19/ (or Normal/ and COVID/)",
        spec.id,
    )
    rows = []
    for keys, defect in ((NORMAL_NAMES, "good"), (COVID_NAMES, "covid")):
        class_dir = _child(root, keys)
        assert class_dir is not None  # find_dir accepted root for having both
        rows += [
            row(raw, spec, "chest", image, split="test", defect_type=defect, mask=None)
            for image in list_images(_images_dir(class_dir))
        ]
    return frame(rows, spec.id, raw)


SPEC = DatasetSpec(
    id="covid19",
    title="COVID-19 Radiography Database (first release)",
    domain="medical",
    modality="chest X-ray",
    licence="unverified; the Kaggle README asks for citation and credit",
    citation=("Chowdhury et al. Can AI Help in Screening Viral and COVID-19 Pneumonia? IEEE Access 2020."),
    homepage="https://www.kaggle.com/datasets/tawsifurrahman/covid19-radiography-database",
    classes=(ClassSpec("chest", "chest"),),
    has_masks=False,
    sources=(
        Source("gdrive", "1ECwI8DJmhEtcVHatxCAdFqnSmXs35WFL", note="AnomalyCLIP's copy of the first release"),
        Source(
            "kaggle",
            "tawsifurrahman/covid19-radiography-database",
            note="now a later release: its counts differ from the paper's",
        ),
    ),
    expected_counts={"chest": (1341, 219)},
    expected_total=(1341, 219),
    converter=convert,
)
