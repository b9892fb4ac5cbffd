"""From a finished evaluation loop to a result file: provenance, the ``RunResult``, and writing it.

The loop (``engine.loop``) only computes; everything recorded about a run -- which detector and weights,
which data, which machine and packages, how long it took, where its predictions are cached -- is
gathered here, once, so a result is complete when it is made and never patched afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.engine import distributed
from zsad_bench.engine.config import EvalConfig
from zsad_bench.engine.loop import LoopOutcome, dataset_id
from zsad_bench.engine.runtime import environment, resolve_precision
from zsad_bench.engine.scoring import metric_variants, summarise
from zsad_bench.errors import ZsadError
from zsad_bench.results.cache import PredictionCache, cache_key
from zsad_bench.results.schema import RunResult

__all__ = ["Provenance", "build_result", "keep_measured_timings", "write_result"]


@dataclass(frozen=True)
class Provenance:
    """What a run's numbers were made from: the detector (configuration, weights' hashes, checkpoint,
    few-shot references) and the data (folder, split, manifest hash, size)."""

    detector: dict[str, Any]
    data: dict[str, Any]

    @classmethod
    def of(
        cls,
        detector: Detector,
        dataset: AnomalyDataset,
        *,
        checkpoint: Path | None = None,
        few_shot: dict[str, Any] | None = None,
    ) -> Provenance:
        return cls(_detector_record(detector, checkpoint, few_shot), _data_record(dataset))

    def cache_key(self, eval_size: int, precision: str = "fp32") -> str:
        """The prediction-cache key: what determines the predictions (the input size is in the config).

        ``precision`` is the forward pass's, resolved: bf16 predictions are never resumed into an fp32 run
        (it moves scores by about 3e-3). fp32 adds nothing, so fp32 keys stay those of earlier versions.
        """
        record = {k: v for k, v in self.detector.items() if k != "input_size"}
        if precision != "fp32":
            record["precision"] = precision
        return cache_key(record, self.data["manifest_sha256"], eval_size)


def build_result(
    detector: Detector,
    dataset: AnomalyDataset,
    config: EvalConfig,
    outcome: LoopOutcome,
    provenance: Provenance,
    *,
    shots: int = 0,
    cache: PredictionCache | None = None,
    out: Path | None = None,
) -> RunResult:
    """The result of one loop. ``cache``'s folder is recorded relative to ``out`` when the result is
    written there, so the results folder can move with its predictions."""
    protocol = config.protocol
    predictions: dict[str, Any] = {}
    if cache is not None:
        folder = cache.folder.relative_to(out) if out is not None else cache.folder
        predictions = {"folder": str(folder), "key": cache.key}
    seconds, images = outcome.seconds, outcome.images
    return RunResult(
        model=detector.name,
        dataset=dataset_id(dataset),
        **summarise(outcome.per_class, ci=config.ci, ci_replicates=config.ci_replicates, seed=config.seed),
        protocol=protocol.to_dict(),
        metric_variants=metric_variants(protocol, detector.map_range),
        detector=provenance.detector,
        data=provenance.data,
        environment=environment(outcome.device),
        timings={
            "seconds": round(seconds, 3),
            "images": images,
            "images_per_s": round(images / seconds, 2) if seconds > 0 and images else None,
            "classes_from_cache": outcome.classes_from_cache,
            "batch_size": outcome.batch_size,
            "batch_size_requested": config.batch_size,
            "num_workers": outcome.num_workers,
            "precision": resolve_precision(outcome.device, config.precision),
            "peak_memory_mb": outcome.peak_memory_mb,
            "ranks": outcome.ranks,
            "replayed": False,
        },
        predictions=predictions,
        seed=config.seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        random_weights=detector.uses_random_weights,
        shots=shots,
        transductive=detector.transductive,
    )


def keep_measured_timings(result: RunResult, out: Path) -> RunResult:
    """``result`` with the timings that were measured for it.

    A unit whose every class came from the prediction cache ran no image through the detector: its
    seconds time reading the cache, its images/s and peak memory say nothing of the model. It keeps the
    timings of the result it replaces in ``out`` when that one was made from the same predictions (same
    cache key) and measured images; either way its timings say ``replayed``.
    """
    timings = result.timings
    if timings.get("images") or not timings.get("classes_from_cache"):
        return result
    kept = dict(timings)
    try:
        earlier = RunResult.read(Path(out) / result.filename)
    except ZsadError:  # none there, or unreadable: nothing measured to keep
        earlier = None
    same = earlier is not None and earlier.predictions.get("key") == result.predictions.get("key")
    if same and earlier is not None and earlier.timings.get("images"):
        kept = dict(earlier.timings)
    kept["replayed"] = True
    return replace(result, timings=kept)


def write_result(result: RunResult, out: Path) -> Path | None:
    """Write ``result`` into ``out`` from rank 0 (every rank holds the same result); ``None`` elsewhere."""
    if not distributed.current().main:
        return None
    return result.write(out)


def _detector_record(
    detector: Detector, checkpoint: Path | None, few_shot: dict[str, Any] | None
) -> dict[str, Any]:
    from zsad_bench.backbones import weights_sha256

    record: dict[str, Any] = {
        "config": detector.config(),
        "input_size": detector.input_size,
        "random_weights": detector.uses_random_weights,
    }
    backbone = getattr(detector, "backbone", None)
    if backbone is not None:
        record["backbone"] = str(backbone.spec)
        record["backbone_weights_sha256"] = weights_sha256(backbone)
    if checkpoint is not None:
        # a folder written by 'zsad train', or an official single file (epoch_N.pth)
        weights = Path(checkpoint) if Path(checkpoint).is_file() else Path(checkpoint) / "model.safetensors"
        record["checkpoint"] = str(checkpoint)
        record["checkpoint_sha256"] = (
            hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None
        )
    if few_shot is not None:
        record["few_shot"] = few_shot
    return record


def _data_record(dataset: AnomalyDataset) -> dict[str, Any]:
    from zsad_bench.data import manifest_sha256

    try:
        digest: str | None = manifest_sha256(dataset.folder)
    except ZsadError:  # a dataset built by hand from a manifest that was never written to its folder
        digest = None
    return {
        "folder": str(dataset.folder),
        "split": dataset.split,
        "manifest_sha256": digest,
        # a partial copy (counts differ from the paper's): every table marks its rows
        "count_differences": _count_differences(dataset),
        "images": len(dataset),
        "classes": dataset.classes,
        "has_masks": dataset.has_masks,
    }


def _count_differences(dataset: AnomalyDataset) -> list[str]:
    """``dataset.json``'s differences from the paper's test counts, as ``zsad datasets prepare`` found
    them; none for a folder without one (a dataset built by hand)."""
    from zsad_bench.data.manifest import read_info

    try:
        differences = read_info(dataset.folder).get("count_differences") or []
    except ZsadError:
        return []
    return [str(line) for line in differences] if isinstance(differences, list) else []
