"""From per-class predictions to the metric part of a result: the same code scores a live run and a
prediction cache (``zsad score``), so both give identical numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from zsad_bench.metrics import ImageAccumulator, MetricResult, PixelAccumulator, bootstrap_image_metrics
from zsad_bench.metrics.histogram import HistogramPixelAccumulator
from zsad_bench.metrics.regions import LabelledMasks
from zsad_bench.protocols import Protocol
from zsad_bench.results.schema import IMAGE_METRICS, METRICS, PIXEL_METRICS

__all__ = ["ClassScorer", "ClassScores", "metric_variants", "summarise"]


@dataclass
class ClassScores:
    """One class's metrics: values (None where undefined), reasons, error bounds, and the image scores
    kept for confidence intervals."""

    values: dict[str, float | None]
    reasons: dict[str, str]
    bounds: dict[str, float]
    image_scores: torch.Tensor
    image_labels: torch.Tensor
    counts: dict[str, int] = field(default_factory=dict)


class ClassScorer:
    """Accumulators of one class, built as the protocol says (exact or histogram pixel metrics)."""

    def __init__(self, protocol: Protocol, map_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.image = ImageAccumulator()
        self.pixel: PixelAccumulator | HistogramPixelAccumulator
        if protocol.pixel_mode == "histogram":
            self.pixel = HistogramPixelAccumulator(
                bins=protocol.histogram_bins, value_range=map_range, fpr_limit=protocol.fpr_limit
            )
        else:
            self.pixel = PixelAccumulator(fpr_limit=protocol.fpr_limit, aupro_variant=protocol.aupro_variant)
        self.n_images = 0

    def update(
        self,
        scores: torch.Tensor,
        labels: torch.Tensor,
        maps: torch.Tensor,
        masks: torch.Tensor | LabelledMasks | None,
    ) -> None:
        """scores, labels: (B,); maps: (B, S, S) float32; masks: (B, S, S) bool, already labelled, or None
        (no masks)."""
        self.image.update(scores, labels)
        self.pixel.update(maps, masks)
        self.n_images += len(scores)

    def merge(self, other: ClassScorer) -> ClassScorer:
        """Append ``other``'s images after this one's (a shard of the same class); returns ``self``."""
        self.image.merge(other.image)
        self.pixel.merge(other.pixel)  # type: ignore[arg-type]
        self.n_images += other.n_images
        return self

    def to(self, device: torch.device | str) -> ClassScorer:
        self.image.to(device)
        self.pixel.to(device)
        return self

    def compute(self) -> ClassScores:
        image, pixel = self.image.compute(), self.pixel.compute()
        scores, labels = self.image.tensors()
        values, reasons, bounds = _flatten(image, pixel)
        counts = {"normal": self.image.n_normal, "anomalous": self.image.n_anomalous}
        if isinstance(self.pixel, HistogramPixelAccumulator):
            counts["clamped_pixels"] = self.pixel.clamped_pixels
        return ClassScores(values, reasons, bounds, scores.cpu(), labels.cpu(), counts)


def _flatten(
    image: MetricResult, pixel: MetricResult
) -> tuple[dict[str, float | None], dict[str, str], dict]:
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    bounds: dict[str, float] = {}
    for level, result, keys in (("image", image, IMAGE_METRICS), ("pixel", pixel, PIXEL_METRICS)):
        for key in keys:
            short = key.removeprefix(f"{level}_")
            values[key] = result.get(short)
            if values[key] is None:
                reasons[key] = result.reasons.get(short, "undefined")
            if short in result.error_bounds:
                bounds[key] = result.error_bounds[short]
    return values, reasons, bounds


def metric_variants(protocol: Protocol, map_range: tuple[float, float]) -> dict[str, Any]:
    """How the numbers were computed, recorded in every result."""
    variants: dict[str, Any] = {
        "pixel_mode": protocol.pixel_mode,
        "aupro": protocol.aupro_variant,
        "fpr_limit": protocol.fpr_limit,
        "eval_size": protocol.eval_size,
        "mask_binarisation": protocol.mask_binarisation,
        "image_score": "the detector's image score",
        "averaging": protocol.averaging,
    }
    if protocol.pixel_mode == "histogram":
        variants.update(
            histogram_bins=protocol.histogram_bins,
            histogram_range=list(map_range),
            not_reported=["pixel_ap", "pixel_f1_max"],
        )
    return variants


def summarise(
    per_class: Mapping[str, ClassScores], *, ci: float | None = None, ci_replicates: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The metric fields of a RunResult: per-class values, the mean over classes, reasons, bounds, CIs."""
    names = sorted(per_class)
    mean: dict[str, float | None] = {}
    missing: dict[str, dict[str, str]] = {
        n: dict(per_class[n].reasons) for n in names if per_class[n].reasons
    }
    mean_missing: dict[str, str] = {}
    for key in METRICS:
        defined = [per_class[n].values[key] for n in names if per_class[n].values.get(key) is not None]
        mean[key] = sum(defined) / len(defined) if defined else None  # type: ignore[arg-type]
        if not defined:
            mean_missing[key] = "undefined for every class"
    if mean_missing:
        missing["mean"] = mean_missing
    fields: dict[str, Any] = {
        "per_class": {n: per_class[n].values for n in names},
        "mean": mean,
        "missing": missing,
        "counts": {n: per_class[n].counts for n in names},
        "error_bounds": {n: per_class[n].bounds for n in names if per_class[n].bounds},
        "confidence_intervals": None,
    }
    if ci is not None:
        intervals = bootstrap_image_metrics(
            {n: (per_class[n].image_scores, per_class[n].image_labels) for n in names},
            level=ci,
            replicates=ci_replicates,
            seed=seed,
        ).to_dict()
        rename = {"auroc": "image_auroc", "ap": "image_ap", "f1_max": "image_f1_max"}
        intervals["per_class"] = {
            c: {rename[k]: v for k, v in m.items()} for c, m in intervals["per_class"].items()
        }
        intervals["mean"] = {rename[k]: v for k, v in intervals["mean"].items()}
        fields["confidence_intervals"] = intervals
    return fields
