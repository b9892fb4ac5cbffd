"""What the endoscopy converters share: a dataset folder holding ``images/`` and ``masks/`` with equal names.

CVC-ClinicDB, CVC-ColonDB and Kvasir come in one figshare zip ("Polyp_DataSet_zip") as sibling folders
``<name>/{images,masks}`` beside CVC-300 and ETIS-LaribPolypDB, so each converter looks for the folder
with its own name; Endo (EndoTect 2020) ships the same ``{images,masks}`` shape. Every image shows a
polyp (anomalous, split ``test``); its mask has the image's name, possibly another extension
(reference/datasets.md section 6 notes 13-14).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from zsad_bench.data.catalog._common import find_dir, frame, list_images, row
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import DatasetSpec, Source

__all__ = ["FIGSHARE", "convert_images_masks", "figshare_source"]

FIGSHARE = "https://figshare.com/articles/figure/Polyp_DataSet_zip/21221579"


def figshare_source() -> Source:
    """The figshare zip that holds ClinicDB, ColonDB and Kvasir; its page offers no stable file URL."""
    return Source(
        "https",
        FIGSHARE,
        note="figshare article page, not a direct file: download Polyp_DataSet_zip in a browser "
        "(some users report 403 on desktop browsers)",
    )


def _name_key(name: str) -> str:
    """Folder name compared without case or punctuation (``CVC-ClinicDB`` -> ``cvcclinicdb``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _has_images_and_masks(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def convert_images_masks(
    raw: Path,
    spec: DatasetSpec,
    names: tuple[str, ...],
    *,
    prefix: bool = False,
    defect_type: str = "polyp",
) -> pd.DataFrame:
    """Rows of the shallowest folder under ``raw`` named like one of ``names`` that holds ``images/`` and
    ``masks/``; each image is anomalous and paired by name with its mask (``mask_suffix=""``).

    Names are compared by ``_name_key``; with ``prefix`` a folder name need only start with one of them
    (``EndoTect_2020_Segmentation_Test_Dataset`` for ``EndoTect``). ``raw`` itself is accepted whatever
    its name: the user pointed at it. The class is the spec's only class.
    """
    keys = tuple(_name_key(n) for n in names)

    def accept(folder: Path) -> bool:
        key = _name_key(folder.name)
        named = folder == raw or (key.startswith(keys) if prefix else key in keys)
        return named and _has_images_and_masks(folder)

    root = find_dir(raw, accept, f"folder {' or '.join(names)} holding images/ and masks/", spec.id)
    (class_name,) = spec.class_names
    pairs = pair_masks_by_name(list_images(root / "images"), list_images(root / "masks"), mask_suffix="")
    rows = [
        row(raw, spec, class_name, image, split="test", defect_type=defect_type, mask=mask)
        for image, mask in pairs.items()
    ]
    return frame(rows, spec.id, raw)
