"""Connected ground-truth regions for AUPRO: 8-connected, as MVTec's evaluation code labels them.

MVTec's ``compute_pro`` calls ``scipy.ndimage.label`` with a 3×3 all-ones structuring element, so two
pixels that touch only at a corner belong to the same region (reference/metrics.md §1.1). Region labels
depend only on the masks and the evaluation resolution, so they are computed once per mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage
import torch
from torch import Tensor

from zsad_bench.metrics._inputs import as_masks

__all__ = ["LabelledMasks", "label_masks", "label_regions", "label_regions_counted"]

# 3-D structuring element for a (B, H, W) stack: 8-connectivity inside each image, nothing across images.
# Labelling the whole stack in one call gives ids that are already unique across the batch.
_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = True


def label_regions_counted(masks: Tensor) -> tuple[Tensor, int]:
    """``label_regions`` plus the number of regions R (ids are exactly 1..R)."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be (B, H, W), got shape {tuple(masks.shape)}")
    if masks.dtype != torch.bool:
        raise ValueError(f"masks must be bool, got {masks.dtype}")
    regions = np.empty(tuple(masks.shape), dtype=np.int32)
    n_regions = scipy.ndimage.label(masks.cpu().numpy(), structure=_STRUCTURE, output=regions)
    return torch.from_numpy(regions).to(masks.device), int(n_regions)


@dataclass(frozen=True)
class LabelledMasks:
    """A batch of masks whose regions are already labelled, so the accumulators need not label them
    (the evaluation loader labels in its worker processes, off the main thread).

    ids: ``(B, H, W)`` int32, 0 = normal, regions numbered 1..n image after image (as ``label_regions``).
    per_image: ``(B,)`` int64 number of regions of each image.
    """

    ids: Tensor
    per_image: Tensor

    @property
    def n_regions(self) -> int:
        return int(self.per_image.sum())

    @property
    def shape(self) -> torch.Size:
        return self.ids.shape

    def masks(self) -> Tensor:
        return self.ids > 0

    def rows(self, start: int, stop: int) -> LabelledMasks:
        """Images ``start:stop``, their regions renumbered from 1."""
        offset = int(self.per_image[:start].sum())
        ids = self.ids[start:stop]
        if offset:
            ids = torch.where(ids > 0, ids - offset, ids)
        return LabelledMasks(ids, self.per_image[start:stop])

    def pin_memory(self) -> LabelledMasks:  # called by the DataLoader's pinning thread
        return LabelledMasks(self.ids.pin_memory(), self.per_image)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> LabelledMasks:
        return LabelledMasks(self.ids.to(device, non_blocking=non_blocking), self.per_image)


def label_masks(masks: Tensor) -> LabelledMasks:
    """Label a ``(B, H, W)`` bool batch (on the CPU) and count each image's regions."""
    ids, _ = label_regions_counted(masks)
    if len(ids) == 0:
        return LabelledMasks(ids, torch.zeros(0, dtype=torch.int64))
    # ids run image after image, so the running maximum of the per-image maxima counts the regions so far
    highest = torch.cummax(ids.reshape(len(ids), -1).amax(dim=1).to(torch.int64), dim=0).values
    return LabelledMasks(ids, torch.diff(highest, prepend=highest.new_zeros(1)))


def labelled(masks: Tensor | LabelledMasks | Any, shape: torch.Size) -> tuple[Tensor, int]:
    """Region ids ``(B, H, W)`` and their count for an accumulator: labelled here unless they already are."""
    if isinstance(masks, LabelledMasks):
        if masks.shape != shape:
            raise ValueError(f"masks must have shape {tuple(shape)}, got {tuple(masks.shape)}")
        return masks.ids, masks.n_regions
    return label_regions_counted(as_masks(masks, "masks", shape))


def label_regions(masks: Tensor | Any) -> Tensor:
    """8-connected components of every mask, with ids unique across the batch.

    masks: (B, H, W) bool (anything else: non-zero = anomalous); tensor or numpy array.
    Returns (B, H, W) int32 on the masks' device: 0 = background, regions numbered 1..R in raster order
    (image by image). Labelling runs on the CPU with scipy (~1 ms per 518² mask).
    """
    if not isinstance(masks, Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    masks = as_masks(masks, "masks", masks.shape)
    return label_regions_counted(masks)[0]
