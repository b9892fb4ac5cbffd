"""Exact accumulators: collect one class's scores batch by batch, ``merge`` shards, ``compute`` exactly.

Exact metrics need every score of the class at ``compute`` time (one sort), so the state is the scores
themselves, kept on the device they arrive on, one chunk per ``update`` (``cat`` state, see
``metrics.state``). ``update`` stores the tensors it is given by reference, after attribute checks only;
label values, dtype conversions and NaN are checked by ``compute``, once. So a caller must not modify a
tensor in place after passing it (a reused buffer is passed as ``buffer.clone()``). ``merge`` concatenates
states, which makes a multi-GPU reduction a gather plus merges; the result equals feeding one accumulator
everything. ``compute`` returns result-file keys (``image_auroc``, ``pixel_aupro``: the metric table's
``key``).
"""

from __future__ import annotations

from functools import partial
from itertools import accumulate
from typing import Any

import torch
from torch import Tensor

from zsad_bench.metrics._inputs import binary_labels, check_label_shape, check_scores, stored, upcast_scores
from zsad_bench.metrics.aupro import check_aupro_variant
from zsad_bench.metrics.image import image_metrics_from_tensors
from zsad_bench.metrics.pixel import NO_MASKS, check_fpr_limit, pixel_metrics_from_regions
from zsad_bench.metrics.regions import LabelledMasks, labelled
from zsad_bench.metrics.result import MetricResult
from zsad_bench.metrics.state import Accumulator
from zsad_bench.metrics.table import result_keys

__all__ = ["ImageAccumulator", "PixelAccumulator", "check_masks_consistent"]

# Score dtypes that need no check at update and that ``compute`` keeps: cat promotes float32 with float64
# to float64, as converting each chunk first would, so ``compute`` need not look at every chunk's dtype.
_FLOATS = frozenset({torch.float32, torch.float64})


class ImageAccumulator(Accumulator):
    """Image scores and labels of one class -> ``image_auroc``, ``image_ap``, ``image_f1_max``.

    ``update(scores (B,), labels (B,))`` checks dims, shapes and dtypes and appends the two tensors as
    given (by reference: no copy, no kernel), so 32-image updates cost little more than one call does. The
    first ``compute`` (or ``tensors``) concatenates them once, upcasts half/integer scores (float32/float64
    are kept), checks that labels are bool or 0/1 and that no score is NaN. Do not modify a tensor in place
    after passing it: ``compute`` would see the new values (pass ``t.clone()`` to reuse a buffer).
    Memory: the tensors passed (5 B per image for float32 scores and bool labels, 12 B with int64 labels),
    then the concatenation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scores: list[Tensor]
        self.labels: list[Tensor]
        self.converted_updates: int  # updates with scores that ``compute`` converts (not float32/float64)
        self.add_state("scores", [], "cat")
        self.add_state("labels", [], "cat")
        self.add_state("converted_updates", 0, "sum")

    def update(self, scores: Tensor | Any, labels: Tensor | Any) -> None:
        """Add a batch. scores: (B,) real. labels: (B,) bool or 0/1, True = anomalous. Both are kept by
        reference until ``compute``: do not modify them in place afterwards (pass a clone)."""
        # The hot path of the evaluation loop (one call per batch and class), which 32-score updates must
        # keep within 1.5x of one call (benchmarks/metrics.py, section 4): plain tensors take five tensor
        # attribute reads and two appends, no Python call. A tensor attribute costs ~50 ns; is_inference()
        # (~75 ns) and len(tensor) (~270 ns) would cost more, so neither is used. Anything unusual goes
        # through ``stored`` and the checks. Inference tensors are kept like any other (compute's result
        # is an ordinary tensor, see ``Accumulator.concatenated``).
        s, y = scores, labels
        if type(s) is not Tensor or s.requires_grad:
            s = stored(s)
        if type(y) is not Tensor or y.requires_grad:
            y = stored(y)
        shape = s.shape
        if len(shape) != 1 or s.dtype not in _FLOATS:
            check_scores(s, "scores", ndim=1)
            self.converted_updates += 1
        if y.shape != shape:
            check_label_shape(y, "labels", shape)
        self.scores.append(s)
        self.labels.append(y)

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All scores (N,) (float32/float64) and bool labels (N,) on the scores' device, in arrival
        order. Raises ValueError for labels other than 0/1."""
        if not self.scores:
            return torch.zeros(0), torch.zeros(0, dtype=torch.bool)
        scores = self.concatenated("scores", upcast_scores, mixed_dtypes=self.converted_updates > 0)
        # Labels never need converting one by one: 0 and 1 survive every promotion cat makes, and no other
        # value becomes 0 or 1 by one (ints round monotonically to floats, floats only widen).
        labels = self.concatenated("labels", partial(binary_labels, name="labels"), mixed_dtypes=False)
        if labels.device != scores.device:
            labels = labels.to(scores.device)
            self.labels = [labels]
        return scores, labels

    @property
    def n_images(self) -> int:
        return sum(s.numel() for s in self.scores)

    @property
    def n_anomalous(self) -> int:
        return int(self.tensors()[1].sum())

    @property
    def n_normal(self) -> int:
        return self.n_images - self.n_anomalous

    def compute(self) -> MetricResult:
        """The image metrics over all images; missing (with a reason) if a label is absent."""
        return image_metrics_from_tensors(*self.tensors()).renamed(result_keys("image"))


class PixelAccumulator(Accumulator):
    """Anomaly maps and ground-truth regions of one class -> pixel AUROC, AP, F1-max, AUPRO@``fpr_limit``
    (``pixel_auroc``, ``pixel_ap``, ``pixel_f1_max``, ``pixel_aupro``).

    ``update(maps (B, H, W), masks (B, H, W) bool or None)``. Each batch of masks is labelled ONCE into
    8-connected regions numbered from 1 within the batch; ``compute`` shifts every batch's ids past those
    of the batches before it (merged shards included), so ids are unique, and derives the PRO weights
    1/(|r|·R) from the region sizes. H and W may differ between batches (pixels are pooled). Maps (and
    already labelled ids) are kept by reference, as ``ImageAccumulator`` keeps scores (do not modify them
    in place afterwards): ``compute`` upcasts half maps and checks for NaN.

    Memory: 8 B per pixel stored on the maps' device (4 float32 score + 4 int32 region id; 6 B for half
    maps until ``compute`` upcasts them, 12 B for float64 maps); ``compute`` needs ≈ 40–60 B/px more for a
    moment (see ``pixel_metrics_from_regions``). Batches with ``masks=None`` store nothing but the image
    count: their pixel metrics are missing.
    """

    settings = ("fpr_limit", "aupro_variant")

    def __init__(self, fpr_limit: float = 0.3, aupro_variant: str = "mvtec") -> None:
        super().__init__()
        self.fpr_limit = check_fpr_limit(fpr_limit)
        self.aupro_variant = check_aupro_variant(aupro_variant)
        self.scores: list[Tensor]  # (B·H·W,) per update, as given
        self.regions: list[Tensor]  # (B·H·W,) int32 per update, 0 = normal, regions 1..n of that update
        self.region_counts: list[int]  # n of each update
        self.n_images: int
        self.masked_updates: int
        self.maskless_updates: int
        self.add_state("scores", [], "cat")
        self.add_state("regions", [], "cat")
        self.add_state("region_counts", [], "cat")
        self.add_state("n_images", 0, "sum")
        self.add_state("masked_updates", 0, "sum")
        self.add_state("maskless_updates", 0, "sum")

    def update(self, maps: Tensor | Any, masks: Tensor | LabelledMasks | Any | None) -> None:
        """Add a batch. maps: (B, H, W) real. masks: (B, H, W) bool (non-zero = anomalous), the same
        already labelled (``LabelledMasks``), or None. Maps and labelled ids are kept by reference until
        ``compute``: do not modify them in place afterwards (pass a clone)."""
        scores = check_scores(stored(maps), "maps", ndim=3)
        if masks is None:
            check_masks_consistent(self.masked_updates, 1)
            self.maskless_updates += 1
            self.n_images += scores.shape[0]
            return
        check_masks_consistent(1, self.maskless_updates)
        regions, n_new = labelled(masks, scores.shape)  # raw masks: labelled here, into a new tensor
        regions = stored(regions.to(scores.device).reshape(-1))
        self.masked_updates += 1
        self.n_images += scores.shape[0]
        self.scores.append(scores.reshape(-1))  # a view of the maps unless they are strided
        self.regions.append(regions)
        self.region_counts.append(n_new)

    def check(self) -> None:
        check_masks_consistent(self.masked_updates, self.maskless_updates)

    @property
    def n_pixels(self) -> int:
        return sum(s.numel() for s in self.scores)

    @property
    def n_regions(self) -> int:
        """Number of connected ground-truth regions seen (R in the PRO weights)."""
        return sum(self.region_counts)

    def compute(self) -> MetricResult:
        """The pixel metrics over everything seen; missing entries carry a reason."""
        keys = result_keys("pixel")
        if self.maskless_updates:
            return MetricResult.missing(keys.values(), NO_MASKS)
        if not self.scores:
            return MetricResult.missing(keys.values(), "no images")
        scores = self.concatenated("scores", upcast_scores)
        regions = self._numbered_regions()
        return pixel_metrics_from_regions(
            scores, regions, self.fpr_limit, aupro_variant=self.aupro_variant
        ).renamed(keys)

    def _numbered_regions(self) -> Tensor:
        """All region ids in one tensor, each update's shifted past the ids before it; kept as the only
        chunk (with its count) so a second ``compute`` or a later merge sees globally numbered ids."""
        if len(self.regions) > 1:
            device = self.regions[0].device
            out = torch.empty(sum(r.numel() for r in self.regions), dtype=torch.int32, device=device)
            offsets = [0, *accumulate(self.region_counts[:-1])]
            start = 0
            for chunk, offset in zip(self.regions, offsets, strict=True):
                chunk = chunk.to(device)
                part = out[start : start + chunk.numel()]
                if offset:
                    torch.where(chunk > 0, chunk + offset, chunk, out=part)
                else:
                    part.copy_(chunk)
                start += chunk.numel()
            self.regions, self.region_counts = [out], [self.n_regions]
        return self.regions[0]


def check_masks_consistent(masked_updates: int, maskless_updates: int) -> None:
    """A class has ground-truth masks for every image (all-zero for normal ones) or for none."""
    if masked_updates and maskless_updates:
        raise ValueError(
            "got batches with masks and batches with masks=None for one class; a class either has "
            "ground-truth masks for every image (all-zero for normal ones) or for none"
        )
