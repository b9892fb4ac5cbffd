"""From a finished evaluation loop to a result file: provenance, the ``RunResult``, and writing it.

The loop (``engine.loop``) only computes; everything recorded about a run -- which detector and weights,
which data, which machine and packages, how long it took, where its predictions are cached -- is
gathered here, once, so a result is complete when it is made and never patched afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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

__all__ = ["Provenance", "build_result", "write_result"]


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

    def cache_key(self, eval_size: int) -> str:
        """The prediction-cache key: what determines the predictions (the input size is in the config)."""
        record = {k: v for k, v in self.detector.items() if k != "input_size"}
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
        },
        predictions=predictions,
        seed=config.seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        random_weights=detector.uses_random_weights,
        shots=shots,
    )


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
        weights = Path(checkpoint) / "model.safetensors"
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
        "images": len(dataset),
        "classes": dataset.classes,
        "has_masks": dataset.has_masks,
    }
