"""Training-set augmentation shared by the methods: APRIL-GAN's 2 x 2 mosaic (reference/baselines.md §3.5).

``tile_2x2`` is the layout (pure, on PIL images); ``MosaicDataset`` draws the four sources and wraps an
``AnomalyDataset``. A dataset with ``augmented = True`` gives new items every epoch, so the training loop
does not cache its frozen features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from zsad_bench.data.transforms import open_image

__all__ = ["ClassMosaicDataset", "MosaicDataset", "tile_2x2"]


def tile_2x2(images: Sequence[Image.Image], masks: Sequence[Image.Image]) -> tuple[Image.Image, Image.Image]:
    """Four images and their ``L`` masks pasted as quarters in reading order (top-left, top-right,
    bottom-left, bottom-right) on a canvas twice the first image's size.

    As APRIL-GAN's ``dataset.py``: an image of another size is resized to the first one's bicubically,
    a mask with nearest neighbours (so it stays binary).
    """
    if len(images) != 4 or len(masks) != 4:
        raise ValueError(f"a 2 x 2 mosaic takes 4 images and 4 masks, got {len(images)} and {len(masks)}")
    w, h = images[0].size
    canvas, canvas_mask = Image.new("RGB", (2 * w, 2 * h)), Image.new("L", (2 * w, 2 * h))
    for q, (image, mask) in enumerate(zip(images, masks, strict=True)):
        corner = ((q % 2) * w, (q // 2) * h)
        canvas.paste(
            image.resize((w, h), Image.Resampling.BICUBIC) if image.size != (w, h) else image, corner
        )
        canvas_mask.paste(mask.resize((w, h), Image.Resampling.NEAREST), corner)
    return canvas, canvas_mask


class MosaicDataset(torch.utils.data.Dataset):
    """APRIL-GAN's MVTec augmentation (``dataset.py`` L98-144, §3.5) over an ``AnomalyDataset``.

    With probability ``prob`` an item is replaced by a 2x2 mosaic of 4 images of its class, each drawn
    from a random defect type (``good`` included), then a random image of it. As the official code, the 4
    images are pasted at their size (``tile_2x2``) and the mosaic goes through the dataset's transform as
    one image (so 518 x 518 in the end); masks are pasted the same way and resized as ``load_mask`` does.
    ``label`` is 1 if any quarter is anomalous (the official code kept the replaced item's label; the loss
    does not use it). ``mosaic_of`` holds the 4 source indices (-1s when the item is not a mosaic).

    Draws use torch's global RNG, which the training loop seeds with ``config.seed`` and DataLoader
    workers derive their seeds from (the official used Python's ``random``): runs are reproducible, and
    every epoch draws new mosaics. ``augmented = True`` turns the feature cache off.
    """

    augmented = True
    # the label of a mosaic: 1 if any quarter is anomalous (False), or the replaced item's own (True)
    keep_label = False

    def __init__(self, dataset: Any, prob: float) -> None:
        self.dataset = dataset
        self.prob = float(prob)
        manifest = dataset.manifest  # row i is item i
        self._by_defect: dict[str, dict[str, list[int]]] = {}
        for i, (c, d) in enumerate(zip(manifest.class_name, manifest.defect_type, strict=True)):
            self._by_defect.setdefault(c, {}).setdefault(d, []).append(i)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    @property
    def manifest(self) -> Any:
        return self.dataset.manifest

    def __getitem__(self, index: int) -> dict[str, Any]:
        if float(torch.rand(())) >= self.prob:
            return {**self.dataset[index], "mosaic_of": torch.full((4,), -1, dtype=torch.long)}
        row = self.dataset.manifest.iloc[index]
        sources = self.draw(row.class_name)
        image, mask, label = self.mosaic(sources)
        return {
            "image": image,
            "mask": mask,
            "label": int(row.label) if self.keep_label else label,
            "class_name": row.class_name,
            "prompt_name": row.prompt_name,
            "sample_id": f"mosaic:{row.sample_id}",
            "has_mask": True,
            "mosaic_of": torch.tensor(sources),
        }

    def draw(self, class_name: str) -> list[int]:
        """APRIL-GAN's draw: four times a random defect type of the class (``good`` included), then a random
        image of it (with replacement)."""
        defects = self._by_defect[class_name]
        kinds = sorted(defects)
        sources = []
        for _ in range(4):
            kind = defects[kinds[int(torch.randint(len(kinds), ()))]]
            sources.append(kind[int(torch.randint(len(kind), ()))])
        return sources

    def mosaic(self, sources: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Transformed image ``(3, S, S)``, bool mask ``(M, M)`` and label of the mosaic of ``sources``."""
        folder, rows = self.dataset.folder, self.dataset.manifest
        images, masks = [], []
        for i in sources:
            image = open_image(folder / rows.image_path[i]).convert("RGB")
            mask_path = rows.mask_path[i]
            if isinstance(mask_path, str) and mask_path:
                grey = np.asarray(open_image(folder / mask_path).convert("L"))
                mask = Image.fromarray(np.where(grey > 0, 255, 0).astype(np.uint8))
            else:
                mask = Image.new("L", image.size, 0)
            images.append(image)
            masks.append(mask)
        canvas, canvas_mask = tile_2x2(images, masks)
        size = self.dataset.mask_size
        resized = np.asarray(canvas_mask.resize((size, size), Image.Resampling.BILINEAR))
        label = int(any(int(rows.label[i]) == 1 for i in sources))
        return self.dataset.transform(canvas), torch.from_numpy(resized > 127), label


class ClassMosaicDataset(MosaicDataset):
    """AdaCLIP's variant of the mosaic (``dataset/base_dataset.py`` ``combine_img``, "from April-GAN"):
    four *distinct* images drawn uniformly from the item's class (``random.sample``), and the mosaic keeps
    the replaced item's label, which AdaCLIP's image-level loss does use (an official quirk: a mosaic with a
    defective quarter can be labelled normal)."""

    keep_label = True

    def draw(self, class_name: str) -> list[int]:
        members = [i for indices in self._by_defect[class_name].values() for i in indices]
        if len(members) < 4:
            raise ValueError(
                f"class '{class_name}' has {len(members)} images; a mosaic of distinct ones needs 4"
            )
        return [members[int(i)] for i in torch.randperm(len(members))[:4]]
