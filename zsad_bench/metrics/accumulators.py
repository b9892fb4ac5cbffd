"""Accumulators: collect one class's scores batch by batch, ``merge`` across shards, ``compute`` exactly.

Exact metrics need every score of the class at ``compute`` time (one sort), so the state is the scores
themselves, kept on the device they arrive on. ``merge`` concatenates states, which makes a multi-GPU
reduction a gather plus merges; the result equals feeding one accumulator everything.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zsad_bench.metrics._inputs import as_labels, as_scores
from zsad_bench.metrics.aupro import check_aupro_variant
from zsad_bench.metrics.image import image_metrics_from_tensors
from zsad_bench.metrics.pixel import NO_MASKS, PIXEL_KEYS, check_fpr_limit, pixel_metrics_from_regions
from zsad_bench.metrics.regions import LabelledMasks, labelled
from zsad_bench.metrics.result import MetricResult

__all__ = ["ImageAccumulator", "PixelAccumulator"]


def _concat(chunks: list[Tensor]) -> Tensor:
    """One tensor on the first chunk's device (merged shards may live elsewhere)."""
    device = chunks[0].device
    return torch.cat([c.to(device) for c in chunks])


def _stored(x: Tensor, dtype: torch.dtype) -> Tensor:
    """A private copy: the caller may reuse its buffer for the next batch."""
    return x.to(dtype=dtype, copy=True)


class ImageAccumulator:
    """Image scores and labels of one class -> AUROC, AP, F1-max (see ``image_metrics``).

    ``update(scores (B,), labels (B,))``; scores keep float32/float64 (halves upcast to float32), labels
    are bool. Memory: 5 B per image for float32 scores (9 B for float64).
    """

    def __init__(self) -> None:
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []

    def update(self, scores: Tensor | Any, labels: Tensor | Any) -> None:
        """Add a batch. scores: (B,) floating. labels: (B,) bool or 0/1, True = anomalous."""
        s = as_scores(scores, "scores", ndim=1)
        y = as_labels(labels, "labels", s.shape)
        self._scores.append(_stored(s, s.dtype))
        self._labels.append(_stored(y, torch.bool).to(s.device))

    def merge(self, other: ImageAccumulator) -> ImageAccumulator:
        """Append ``other``'s images after this one's; returns ``self``."""
        if not isinstance(other, ImageAccumulator):
            raise TypeError(f"cannot merge {type(other).__name__} into ImageAccumulator")
        self._scores.extend(other._scores)
        self._labels.extend(other._labels)
        return self

    def to(self, device: torch.device | str) -> ImageAccumulator:
        """Move the stored state to ``device`` (e.g. to the CPU before sending it to another rank)."""
        self._scores = [s.to(device) for s in self._scores]
        self._labels = [y.to(device) for y in self._labels]
        return self

    def _consolidate(self) -> tuple[Tensor, Tensor]:
        # Keep the concatenation so a second compute() does not copy again.
        self._scores, self._labels = [_concat(self._scores)], [_concat(self._labels)]
        return self._scores[0], self._labels[0]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All scores (N,) and bool labels (N,) seen so far, in arrival order."""
        if not self._scores:
            return torch.zeros(0), torch.zeros(0, dtype=torch.bool)
        return self._consolidate()

    @property
    def n_images(self) -> int:
        return sum(s.numel() for s in self._scores)

    @property
    def n_anomalous(self) -> int:
        return sum(int(y.sum()) for y in self._labels)

    @property
    def n_normal(self) -> int:
        return self.n_images - self.n_anomalous

    def compute(self) -> MetricResult:
        """``auroc``, ``ap``, ``f1_max`` over all images; missing (with a reason) if a label is absent."""
        if not self._scores:
            return MetricResult.missing(("auroc", "ap", "f1_max"), "no images")
        scores, labels = self._consolidate()
        return image_metrics_from_tensors(scores, labels)


class PixelAccumulator:
    """Anomaly maps and ground-truth regions of one class -> pixel AUROC, AP, F1-max, AUPRO@``fpr_limit``.

    ``update(maps (B, H, W), masks (B, H, W) bool or None)``. Each batch of masks is labelled ONCE into
    8-connected regions whose ids continue those already stored, so ids stay unique across updates and
    merges; ``compute`` derives the PRO weights 1/(|r|·R) from the region sizes. H and W may differ
    between batches (pixels are pooled).

    Memory: 8 B per pixel stored on the maps' device (4 float32 score + 4 int32 region id; 12 B for
    float64 maps); ``compute`` needs ≈ 40–60 B/px more for a moment (see ``pixel_metrics_from_regions``).
    Batches with ``masks=None`` store nothing but the image count: their pixel metrics are missing.
    """

    def __init__(self, fpr_limit: float = 0.3, aupro_variant: str = "mvtec") -> None:
        self.fpr_limit = check_fpr_limit(fpr_limit)
        self.aupro_variant = check_aupro_variant(aupro_variant)
        self._scores: list[Tensor] = []  # (B·H·W,) per update
        self._regions: list[Tensor] = []  # (B·H·W,) int32, 0 = normal
        self._n_regions = 0
        self._n_images = 0
        self._has_masks: bool | None = None  # unknown until the first update

    def _set_has_masks(self, has_masks: bool | None) -> None:
        if has_masks is None:
            return
        if self._has_masks is not None and self._has_masks != has_masks:
            raise ValueError(
                "PixelAccumulator got batches with masks and batches with masks=None; a class either has "
                "ground-truth masks for every image (all-zero for normal ones) or for none"
            )
        self._has_masks = has_masks

    def update(self, maps: Tensor | Any, masks: Tensor | LabelledMasks | Any | None) -> None:
        """Add a batch. maps: (B, H, W) floating. masks: (B, H, W) bool (non-zero = anomalous), the same
        already labelled (``LabelledMasks``), or None."""
        scores = as_scores(maps, "maps", ndim=3)
        self._set_has_masks(masks is not None)
        self._n_images += scores.shape[0]
        if masks is None:
            return
        regions, n_new = labelled(masks, scores.shape)
        regions = regions.to(scores.device).reshape(-1)
        if self._n_regions:
            regions = torch.where(regions > 0, regions + self._n_regions, regions)
        self._n_regions += n_new
        self._scores.append(_stored(scores.reshape(-1), scores.dtype))
        self._regions.append(regions)

    def merge(self, other: PixelAccumulator) -> PixelAccumulator:
        """Append ``other``'s pixels after this one's, renumbering its regions; returns ``self``."""
        if not isinstance(other, PixelAccumulator):
            raise TypeError(f"cannot merge {type(other).__name__} into PixelAccumulator")
        if other.fpr_limit != self.fpr_limit:
            raise ValueError(
                f"cannot merge accumulators with fpr_limit {self.fpr_limit} and {other.fpr_limit}"
            )
        self._set_has_masks(other._has_masks)
        offset = self._n_regions
        self._scores.extend(other._scores)
        self._regions.extend(torch.where(r > 0, r + offset, r) if offset else r for r in other._regions)
        self._n_regions += other._n_regions
        self._n_images += other._n_images
        return self

    def to(self, device: torch.device | str) -> PixelAccumulator:
        """Move the stored pixels to ``device``."""
        self._scores = [s.to(device) for s in self._scores]
        self._regions = [r.to(device) for r in self._regions]
        return self

    @property
    def n_images(self) -> int:
        return self._n_images

    @property
    def n_pixels(self) -> int:
        return sum(s.numel() for s in self._scores)

    @property
    def n_regions(self) -> int:
        """Number of connected ground-truth regions seen (R in the PRO weights)."""
        return self._n_regions

    def compute(self) -> MetricResult:
        """``auroc``, ``ap``, ``f1_max``, ``aupro`` over everything seen; missing entries carry a reason."""
        if self._has_masks is False:
            return MetricResult.missing(PIXEL_KEYS, NO_MASKS)
        if not self._scores:
            return MetricResult.missing(PIXEL_KEYS, "no images")
        self._scores, self._regions = [_concat(self._scores)], [_concat(self._regions)]
        return pixel_metrics_from_regions(
            self._scores[0], self._regions[0], self.fpr_limit, aupro_variant=self.aupro_variant
        )
