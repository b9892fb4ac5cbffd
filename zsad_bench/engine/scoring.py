"""From per-class predictions to the metric part of a result: the same code scores a live run and a
prediction cache (``zsad score``), so both give identical numbers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch

from zsad_bench.devices import resolve_device
from zsad_bench.errors import ZsadError
from zsad_bench.metrics import Accumulator, ImageAccumulator, PixelAccumulator, bootstrap_image_metrics
from zsad_bench.metrics.histogram import HistogramPixelAccumulator
from zsad_bench.metrics.regions import LabelledMasks
from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.protocols import Protocol
from zsad_bench.results.cache import PredictionCache
from zsad_bench.results.schema import RunResult

__all__ = [
    "ClassScorer",
    "ClassScores",
    "check_cache",
    "metric_variants",
    "score_cached",
    "score_class",
    "summarise",
]


@dataclass
class ClassScores:
    """One class's metrics under result keys: values (None where undefined), reasons, error bounds, and
    the image scores kept for confidence intervals."""

    values: dict[str, float | None]
    reasons: dict[str, str]
    bounds: dict[str, float]
    image_scores: torch.Tensor
    image_labels: torch.Tensor
    counts: dict[str, int] = field(default_factory=dict)


class ClassScorer(Accumulator):
    """The accumulators of one class, built as the protocol says (exact or histogram pixel metrics).

    Its state is the two accumulators (``merge`` state), so ``to``, ``merge`` and ``reset`` are the base's.
    """

    def __init__(self, protocol: Protocol, map_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        pixel: PixelAccumulator | HistogramPixelAccumulator
        if protocol.pixel_mode == "histogram":
            pixel = HistogramPixelAccumulator(
                bins=protocol.histogram_bins, value_range=map_range, fpr_limit=protocol.fpr_limit
            )
        else:
            pixel = PixelAccumulator(fpr_limit=protocol.fpr_limit, aupro_variant=protocol.aupro_variant)
        self.image: ImageAccumulator
        self.pixel: PixelAccumulator | HistogramPixelAccumulator
        self.add_state("image", ImageAccumulator(), "merge")
        self.add_state("pixel", pixel, "merge")

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

    @property
    def n_images(self) -> int:
        return self.image.n_images

    def compute(self) -> ClassScores:
        image, pixel = self.image.compute(), self.pixel.compute()  # result keys: no two levels share one
        scores, labels = self.image.tensors()
        counts = {"normal": self.image.n_normal, "anomalous": self.image.n_anomalous}
        if isinstance(self.pixel, HistogramPixelAccumulator):
            counts["clamped_pixels"] = self.pixel.clamped_pixels
        return ClassScores(
            {**image, **pixel},
            {**image.reasons, **pixel.reasons},
            {**image.error_bounds, **pixel.error_bounds},
            scores.cpu(),
            labels.cpu(),
            counts,
        )


def score_class(
    predictions: Any, protocol: Protocol, map_range: tuple[float, float], device: torch.device | None = None
) -> ClassScores:
    """Metrics of one class from cached predictions (``ClassPredictions``)."""
    device = device or torch.device("cpu")
    scorer = ClassScorer(protocol, map_range)
    masks = None if predictions.masks is None else predictions.masks.to(device)
    scorer.update(
        predictions.scores.to(device), predictions.labels.to(device), predictions.maps.to(device), masks
    )
    return scorer.compute()


def score_cached(
    result: RunResult,
    cache: PredictionCache,
    protocol: Protocol,
    *,
    ci: float | None = None,
    ci_replicates: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> RunResult:
    """Recompute ``result``'s metrics from its prediction cache under ``protocol`` (no model needed).

    The evaluation size is fixed by the cache: another size needs a new ``zsad run``.
    """
    check_cache(result, cache, protocol)
    device = resolve_device(device)
    classes = list(result.per_class)
    map_range = tuple(result.metric_variants.get("histogram_range", (0.0, 1.0)))
    start = time.perf_counter()
    per_class = {c: score_class(cache.load(c), protocol, map_range, device) for c in classes}  # type: ignore[arg-type]
    fields = summarise(per_class, ci=ci, ci_replicates=ci_replicates, seed=seed)
    raw = result.to_dict()
    raw.update(fields)
    raw["protocol"] = protocol.to_dict()
    raw["metric_variants"] = metric_variants(protocol, map_range)  # type: ignore[arg-type]
    raw["rescored"] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 3),
        "from": result.created,
    }
    return RunResult.from_dict(raw)


def check_cache(result: RunResult, cache: PredictionCache, protocol: Protocol) -> None:
    """Raise the one-line ``ZsadError`` that ``score_cached`` would meet for ``result``, without scoring:
    a protocol it cannot use (another evaluation size needs a new run) or a class missing from the cache.
    ``zsad score`` checks every result this way before it rewrites any of them."""
    protocol.validate()
    cached_size = result.protocol.get("eval_size")
    if protocol.eval_size != cached_size:
        raise ZsadError(
            f"{result.filename}: cached predictions are at {cached_size} px; another evaluation size "
            f"({protocol.eval_size}) needs a new 'zsad run'"
        )
    missing = [c for c in result.per_class if not cache.has(c)]
    if missing:
        raise ZsadError(
            f"{result.filename}: the prediction cache {cache.folder} lacks class(es) {', '.join(missing)}; "
            "re-run 'zsad run'"
        )


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
    for key in METRIC_KEYS:
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
        fields["confidence_intervals"] = bootstrap_image_metrics(
            {n: (per_class[n].image_scores, per_class[n].image_labels) for n in names},
            level=ci,
            replicates=ci_replicates,
            seed=seed,
        ).to_dict()
    return fields
