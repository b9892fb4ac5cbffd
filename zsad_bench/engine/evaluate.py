"""``evaluate()``: run a detector over a dataset, batched, and score it per class.

Loader workers decode and resize; the detector runs under autocast (bf16 on GPU, fp32 on CPU); maps
are upsampled to the protocol's evaluation size in float32 and fed to per-class metric accumulators
on the device. A class is scored and freed as soon as its last image has been seen, so memory is
bounded by the largest class, never by the dataset. With a prediction cache, every finished class is
also written to disk, and classes already cached under the same key are scored from the cache without
running the model (an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.engine.cache import PredictionCache
from zsad_bench.engine.runtime import autocast, environment, peak_memory_mb, reset_peak_memory, resolve_device
from zsad_bench.engine.scoring import ClassScorer, ClassScores, metric_variants, summarise
from zsad_bench.errors import ZsadError
from zsad_bench.maps import upsample
from zsad_bench.protocols import Protocol
from zsad_bench.protocols import default as default_protocol
from zsad_bench.report.schema import RunResult

__all__ = ["evaluate", "score_cached"]


def evaluate(
    detector: Detector,
    dataset: AnomalyDataset | str,
    protocol: Protocol = default_protocol,
    *,
    dataset_id: str = "",
    batch_size: int = 8,
    device: str | torch.device | None = None,
    precision: str = "auto",
    num_workers: int = 0,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
    cache: PredictionCache | None = None,
    ci: float | None = None,
    ci_replicates: int = 1000,
    seed: int = 0,
) -> RunResult:
    """Score ``detector`` on ``dataset``: a dataset id, or an ``AnomalyDataset`` whose masks are at
    ``protocol.eval_size`` and whose images went through ``detector.transform()``.

    precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``. Maps are float32
    from the upsampling on, whatever the precision of the forward pass.
    ci: confidence level of the image-level bootstrap intervals (e.g. 0.95), ``None`` for none.
    """
    protocol.validate()
    if isinstance(dataset, str):
        from zsad_bench._factory import load_dataset

        dataset_id = dataset_id or dataset
        dataset = load_dataset(dataset, transform=detector.transform(), mask_size=protocol.eval_size)
    if dataset.mask_size != protocol.eval_size:
        raise ZsadError(
            f"the dataset's masks are {dataset.mask_size} px but protocol '{protocol.name}' evaluates at "
            f"{protocol.eval_size} px; load it with mask_size={protocol.eval_size} or pass its id instead"
        )
    device = resolve_device(device)
    detector = detector.to(device).eval()
    cached = [c for c in dataset.classes if cache is not None and cache.has(c)]
    todo = [c for c in dataset.classes if c not in cached]
    per_class: dict[str, ClassScores] = {}

    reset_peak_memory(device)
    start = time.perf_counter()
    n_images = _run_classes(
        detector,
        dataset,
        todo,
        protocol,
        per_class,
        device=device,
        batch_size=batch_size,
        precision=precision,
        num_workers=num_workers,
        progress=progress,
        dataset_id=dataset_id,
        cache=cache,
    )
    for name in cached:
        assert cache is not None
        per_class[name] = score_class(cache.load(name), protocol, detector.map_range, device)
    seconds = time.perf_counter() - start

    info = dict(provenance or {})
    return RunResult(
        model=detector.name,
        dataset=dataset_id,
        **summarise(per_class, ci=ci, ci_replicates=ci_replicates, seed=seed),
        protocol=protocol.to_dict(),
        metric_variants=metric_variants(protocol, detector.map_range),
        detector={"config": detector.config(), "input_size": detector.input_size, **info.pop("detector", {})},
        data=info.pop("data", {}),
        environment=environment(device),
        timings={
            "seconds": round(seconds, 3),
            "images": n_images,
            "images_per_s": round(n_images / seconds, 2) if seconds > 0 and n_images else None,
            "classes_from_cache": cached,
            "batch_size": batch_size,
            "precision": "bf16"
            if precision == "bf16" or (precision == "auto" and device.type == "cuda")
            else "fp32",
            "peak_memory_mb": peak_memory_mb(device),
        },
        predictions={"folder": str(cache.folder), "key": cache.key} if cache is not None else {},
        seed=seed,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        random_weights=detector.uses_random_weights,
    )


def _run_classes(
    detector: Detector,
    dataset: AnomalyDataset,
    classes: list[str],
    protocol: Protocol,
    per_class: dict[str, ClassScores],
    *,
    device: torch.device,
    batch_size: int,
    precision: str,
    num_workers: int,
    progress: bool,
    dataset_id: str,
    cache: PredictionCache | None,
) -> int:
    """Run the detector over the images of ``classes``; fills ``per_class``; returns the image count."""
    if not classes:
        return 0
    indices = [i for c in classes for i in dataset.class_indices[c]]
    loader = DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    remaining = {c: len(dataset.class_indices[c]) for c in classes}
    scorers: dict[str, ClassScorer] = {}
    with_masks = dataset.has_masks
    n_images = 0
    for batch in _progress(loader, progress, f"{detector.name} on {dataset_id or 'dataset'}"):
        images = batch["image"].to(device, non_blocking=True)
        with torch.no_grad(), autocast(device, precision):
            prediction = detector(images, list(batch["prompt_name"]))
        scores = prediction.image_scores.float()
        maps = upsample(prediction.anomaly_maps, protocol.eval_size)
        labels = batch["label"].to(device)
        masks = batch["mask"].to(device, non_blocking=True) if with_masks else None
        n_images += len(images)
        for name in dict.fromkeys(batch["class_name"]):
            rows = torch.tensor([c == name for c in batch["class_name"]], device=device)
            class_masks = masks[rows] if masks is not None else None
            scorers.setdefault(name, ClassScorer(protocol, detector.map_range)).update(
                scores[rows], labels[rows], maps[rows], class_masks
            )
            if cache is not None:
                ids = [s for s, keep in zip(batch["sample_id"], rows.tolist(), strict=True) if keep]
                cache.add(name, maps[rows], scores[rows], labels[rows], class_masks, ids)
            remaining[name] -= int(rows.sum())
            if remaining[name] == 0:  # the class is complete: score it, free its pixels, persist it
                per_class[name] = scorers.pop(name).compute()
                if cache is not None:
                    cache.finish(name)
    return n_images


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
    protocol.validate()
    if protocol.eval_size != result.protocol.get("eval_size"):
        raise ZsadError(
            f"cached predictions are at {result.protocol.get('eval_size')} px; another evaluation size "
            f"({protocol.eval_size}) needs a new 'zsad run'"
        )
    device = resolve_device(device)
    classes = list(result.per_class)
    missing = [c for c in classes if not cache.has(c)]
    if missing:
        raise ZsadError(
            f"the prediction cache {cache.folder} lacks class(es) {', '.join(missing)}; re-run 'zsad run'"
        )
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


def _progress(loader: Iterable, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, unit="batch", leave=False)
