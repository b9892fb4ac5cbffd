"""``AnomalyDataset``: the rows of one split of a manifest as a torch ``Dataset`` of images and masks."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from zsad_bench.data.manifest import SPLITS, validate_manifest
from zsad_bench.data.spec import DatasetSpec
from zsad_bench.data.transforms import load_mask, open_image
from zsad_bench.errors import ZsadError

__all__ = ["AnomalyDataset"]


class AnomalyDataset(torch.utils.data.Dataset):
    """Images of one split of a prepared dataset, grouped by class, with their ground truth.

    Rows are ordered by ``class_name`` then ``sample_id`` (so each class is one contiguous block, in
    name order). Item ``i`` is a dict:

    - ``image``: ``transform(PIL RGB image)``, e.g. ``(3, S, S)`` float32;
    - ``mask``: ``(mask_size, mask_size)`` bool, all ``False`` for normal images and missing masks;
    - ``label``: int, 0 normal, 1 anomalous;
    - ``class_name``, ``prompt_name``, ``sample_id``: str;
    - ``has_mask``: bool, ``False`` only for an anomalous image without a mask (classification-only
      datasets), whose ``mask`` must not be scored.

    ``manifest`` is checked with ``validate_manifest``. ``spec`` is the ``DatasetSpec`` the folder was
    prepared from (its licence, citation, classes), kept as ``self.spec``; ``None`` for a folder without
    one. The dataset holds only paths and plain data, so it pickles into DataLoader workers.
    """

    def __init__(
        self,
        folder: str | Path,
        manifest: pd.DataFrame,
        *,
        split: str = "test",
        transform: Callable[[Image.Image], torch.Tensor],
        mask_size: int,
        classes: Sequence[str] | None = None,
        spec: DatasetSpec | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ZsadError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        if mask_size <= 0:
            raise ValueError(f"mask_size must be positive, got {mask_size}")
        self.folder = Path(folder)
        self.spec = spec
        self.split = split
        self.transform = transform
        self.mask_size = int(mask_size)

        manifest = validate_manifest(manifest)
        rows = manifest[manifest["split"] == split]
        if classes is not None:
            wanted = list(dict.fromkeys(classes))
            known = set(manifest["class_name"].unique())
            for name in wanted:
                if name not in known:
                    close = difflib.get_close_matches(name, sorted(known), n=3)
                    hint = (
                        f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
                    )
                    raise ZsadError(f"class '{name}' is not in the dataset at {self.folder}; {hint}")
            rows = rows[rows["class_name"].isin(wanted)]
        if len(rows) == 0:
            chosen = f" for classes {', '.join(classes)}" if classes is not None else ""
            raise ZsadError(f"the dataset at {self.folder} has no '{split}' images{chosen}")
        rows = rows.sort_values(["class_name", "sample_id"], kind="stable", ignore_index=True)
        self._manifest = rows

        # Plain lists: cheap to pickle and to index, unlike DataFrame rows.
        self._records: list[tuple[str, str, str, int, str, str | None]] = [
            (r.sample_id, r.class_name, r.prompt_name, int(r.label), r.image_path, _optional(r.mask_path))
            for r in rows.itertuples(index=False)
        ]
        self._class_indices: dict[str, list[int]] = {}
        for i, record in enumerate(self._records):
            self._class_indices.setdefault(record[1], []).append(i)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample_id, class_name, prompt_name, label, image_path, mask_path = self._records[index]
        image = open_image(self.folder / image_path)
        if image.mode != "RGB":
            image = image.convert("RGB")
        mask = load_mask(None if mask_path is None else self.folder / mask_path, self.mask_size)
        return {
            "image": self.transform(image),
            "mask": mask,
            "label": label,
            "class_name": class_name,
            "prompt_name": prompt_name,
            "sample_id": sample_id,
            "has_mask": not (label == 1 and mask_path is None),
        }

    def defect_types(self, indices: Sequence[int]) -> list[str]:
        """The manifest's ``defect_type`` of the images at ``indices`` (ground truth: "good" for normal)."""
        column = self._manifest["defect_type"]
        return [str(column.iat[int(i)]) for i in indices]

    @property
    def classes(self) -> list[str]:
        """Class names in dataset order."""
        return list(self._class_indices)

    @property
    def class_indices(self) -> dict[str, list[int]]:
        """Class name -> the dataset indices of its images (one contiguous, increasing run)."""
        return {name: list(indices) for name, indices in self._class_indices.items()}

    @property
    def has_masks(self) -> bool:
        """True when every anomalous image has a mask (pixel metrics can be computed)."""
        return all(r[5] is not None for r in self._records if r[3] == 1)

    @property
    def labels(self) -> list[int]:
        """Per-image labels in dataset order."""
        return [r[3] for r in self._records]

    @property
    def manifest(self) -> pd.DataFrame:
        """The manifest rows of this dataset, in dataset order (row ``i`` is item ``i``)."""
        return self._manifest

    def to_hf(self, spec: DatasetSpec | None = None) -> Any:
        """This split as a Hugging Face ``datasets.Dataset`` with ``Image`` features (files are read lazily).

        Columns: ``image``, ``mask`` (None where there is no mask), ``label`` (ClassLabel normal/anomalous),
        ``class_name``, ``prompt_name``, ``defect_type``, ``sample_id``. With a spec (``spec``, else the
        dataset's own) the licence and citation travel in the dataset's info, so ``push_to_hub`` publishes
        them in the card.
        """
        import datasets

        spec = spec if spec is not None else self.spec
        rows = self._manifest
        features = datasets.Features(
            {
                "image": datasets.Image(),
                "mask": datasets.Image(),
                "label": datasets.ClassLabel(names=["normal", "anomalous"]),
                "class_name": datasets.Value("string"),
                "prompt_name": datasets.Value("string"),
                "defect_type": datasets.Value("string"),
                "sample_id": datasets.Value("string"),
            }
        )
        info = datasets.DatasetInfo(
            description=getattr(spec, "title", "") or f"zsad-bench dataset from {self.folder}",
            citation=getattr(spec, "citation", ""),
            homepage=getattr(spec, "homepage", ""),
            license=getattr(spec, "licence", ""),
            features=features,
        )
        return datasets.Dataset.from_dict(
            {
                "image": [str(self.folder / p) for p in rows["image_path"]],
                "mask": [None if m is None else str(self.folder / m) for m in rows["mask_path"]],
                "label": [int(v) for v in rows["label"]],
                "class_name": list(rows["class_name"]),
                "prompt_name": list(rows["prompt_name"]),
                "defect_type": list(rows["defect_type"]),
                "sample_id": list(rows["sample_id"]),
            },
            info=info,
            split=datasets.Split(self.split),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.folder)!r}, split={self.split!r}, n={len(self)}, "
            f"classes={len(self._class_indices)}, mask_size={self.mask_size})"
        )


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
