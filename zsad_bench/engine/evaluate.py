"""``evaluate()``: run a detector over a dataset, batched, and score it per class.

Loader workers decode and resize; the detector runs under autocast (bf16 on GPU, fp32 on CPU); maps
are upsampled to the protocol's evaluation size in float32 and fed to per-class metric accumulators
on the device. A class is scored and freed as soon as its last image has been seen, so memory is
bounded by the largest class, never by the dataset. With a prediction cache, every finished class is
also written to disk, and classes already cached under the same key are scored from the cache without
running the model (an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset, default_collate

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.devices import resolve_device
from zsad_bench.engine import distributed
from zsad_bench.engine.batching import (
    auto_batch_size,
    auto_num_workers,
    batch_limit,
    forward_chunked,
    parse_batch_size,
    parse_num_workers,
)
from zsad_bench.engine.distributed import Ranks
from zsad_bench.engine.runtime import autocast, environment, peak_memory_mb, reset_peak_memory
from zsad_bench.engine.scoring import ClassScorer, ClassScores, metric_variants, summarise
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.regions import label_masks
from zsad_bench.ops.maps import upsample
from zsad_bench.protocols import Protocol
from zsad_bench.protocols import default as default_protocol
from zsad_bench.results.cache import PredictionCache
from zsad_bench.results.schema import RunResult

__all__ = ["evaluate", "score_cached"]


def evaluate(
    detector: Detector,
    dataset: AnomalyDataset | str,
    protocol: Protocol = default_protocol,
    *,
    dataset_id: str = "",
    batch_size: int | str = 8,
    device: str | torch.device | None = None,
    precision: str = "auto",
    num_workers: int | str = 0,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
    cache: PredictionCache | None = None,
    ci: float | None = None,
    ci_replicates: int = 1000,
    seed: int = 0,
) -> RunResult:
    """Score ``detector`` on ``dataset``: a dataset id, or an ``AnomalyDataset`` whose masks are at
    ``protocol.eval_size`` and whose images went through ``detector.transform()``.

    batch_size: images per forward pass, or ``auto``: on a GPU the largest batch that fits (probed, see
    ``engine.batching``), 8 on the CPU. With ``auto`` a batch that runs out of memory is split, not fatal.
    precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``. Maps are float32
    from the upsampling on, whatever the precision of the forward pass.
    num_workers: loader worker processes, or ``auto`` (up to 16 on a GPU, none on the CPU).
    ci: confidence level of the image-level bootstrap intervals (e.g. 0.95), ``None`` for none.
    """
    protocol.validate()
    requested, workers = parse_batch_size(batch_size), parse_num_workers(num_workers)  # before any work
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
    ranks = distributed.current()
    detector = detector.to(device).eval()
    # rank 0's view of the cache decides, so every rank takes the same classes in the same order
    cached = distributed.broadcast([c for c in dataset.classes if cache is not None and cache.has(c)], ranks)
    todo = [c for c in dataset.classes if c not in cached]
    if cache is not None and todo:
        if ranks.main:
            cache.prepare()  # before any rank writes a class file
        distributed.barrier(ranks)
    per_class: dict[str, ClassScores] = {}
    num_workers = auto_num_workers(device) if workers == "auto" else workers
    batch_size = _resolve_batch_size(
        requested, detector, dataset, todo, protocol, device, precision, num_workers, ranks
    )

    reset_peak_memory(device)
    start = time.perf_counter()
    n_images = _run_classes(
        detector,
        dataset,
        todo,
        protocol,
        per_class,
        device=device,
        ranks=ranks,
        batch_size=batch_size,
        split_on_oom=requested == "auto",
        precision=precision,
        num_workers=num_workers,
        progress=progress and ranks.main,
        dataset_id=dataset_id,
        cache=cache,
    )
    for name in cached:  # scored by their owners, like the classes run above
        if ranks.owner(dataset.classes.index(name)) == ranks.rank:
            assert cache is not None
            per_class[name] = score_class(cache.load(name), protocol, detector.map_range, device)
    if ranks.sharded:
        per_rank = distributed.all_gather((per_class, n_images, peak_memory_mb(device)), ranks)
        per_class = {name: scores for part in per_rank for name, scores in part[0].items()}
        n_images = sum(part[1] for part in per_rank)
        peak = max(part[2] for part in per_rank)
    else:
        peak = peak_memory_mb(device)
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
            "batch_size_requested": requested,
            "num_workers": num_workers,
            "precision": "bf16"
            if precision == "bf16" or (precision == "auto" and device.type == "cuda")
            else "fp32",
            "peak_memory_mb": peak,
            "ranks": ranks.world,
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
    ranks: Ranks,
    batch_size: int,
    split_on_oom: bool,
    precision: str,
    num_workers: int,
    progress: bool,
    dataset_id: str,
    cache: PredictionCache | None,
) -> int:
    """Run the detector over this rank's images of ``classes`` (all of them in a single process) and
    score each class as soon as it is complete; fills ``per_class``; returns the images this rank ran."""
    if not classes:
        return 0
    all_indices = dataset.class_indices
    mine = {c: [all_indices[c][i] for i in ranks.block(len(all_indices[c]))] for c in classes}
    with_masks = dataset.has_masks
    loader = DataLoader(
        Subset(dataset, [i for c in classes for i in mine[c]]),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=partial(collate_labelled, label=with_masks),
    )
    remaining = {c: len(mine[c]) for c in classes}
    scorers = {c: ClassScorer(protocol, detector.map_range) for c in classes}
    pending = list(classes)  # in dataset order: a class is complete only after every earlier one

    def settle() -> None:
        while pending and remaining[pending[0]] == 0:
            name = pending.pop(0)
            _finish_class(
                name, scorers.pop(name), dataset.classes.index(name), per_class, ranks, device, cache
            )

    n_images = 0
    chunk = batch_size
    settle()  # classes of which this rank has no image
    for batch in _progress(loader, progress, f"{detector.name} on {dataset_id or 'dataset'}"):
        images = batch["image"].to(device, non_blocking=True)
        with torch.no_grad(), autocast(device, precision):
            prediction, chunk = forward_chunked(
                detector, images, batch["prompt_name"], chunk, split_on_oom=split_on_oom
            )
        scores = prediction.image_scores.float()
        maps = upsample(prediction.anomaly_maps, protocol.eval_size)
        labels = batch["label"].to(device)
        regions = batch["regions"].to(device, non_blocking=True) if with_masks else None
        n_images += len(images)
        for name, start, stop in _runs(batch["class_name"]):  # a class's rows are contiguous
            class_regions = regions.rows(start, stop) if regions is not None else None
            rows = slice(start, stop)
            scorers[name].update(scores[rows], labels[rows], maps[rows], class_regions)
            if cache is not None:
                class_masks = class_regions.masks() if class_regions is not None else None
                ids = list(batch["sample_id"][start:stop])
                cache.add(name, maps[rows], scores[rows], labels[rows], class_masks, ids)
            remaining[name] -= stop - start
        settle()
    return n_images


def collate_labelled(items: list[dict[str, Any]], label: bool) -> dict[str, Any]:
    """The default collation, plus the masks' regions labelled (``regions``) when ``label``: this runs in
    the loader's worker processes, so connected-component labelling (scipy, ~2 ms per 518² mask) stays
    off the main process that feeds the GPU."""
    batch = default_collate(items)
    if label:
        batch["regions"] = label_masks(batch["mask"])
    return batch


def _runs(names: list[str]) -> Iterator[tuple[str, int, int]]:
    """``(name, start, stop)`` of each run of equal consecutive names."""
    start = 0
    for name, group in itertools.groupby(names):
        stop = start + len(list(group))
        yield name, start, stop
        start = stop


def _finish_class(
    name: str,
    scorer: ClassScorer,
    position: int,
    per_class: dict[str, ClassScores],
    ranks: Ranks,
    device: torch.device,
    cache: PredictionCache | None,
) -> None:
    """Score a complete class, free its pixels, persist it; sharded, on the class's owner rank after
    merging every rank's part in rank order."""
    if ranks.sharded:
        owner = ranks.owner(position)
        part = (scorer.to("cpu"), cache.take(name) if cache is not None else None)
        parts = distributed.gather_to(part, owner, ranks)
        if parts is None:  # not the owner
            return
        scorer = parts[0][0].to(device)
        for other, _ in parts[1:]:
            scorer.merge(other.to(device))
        if cache is not None:
            cache.put(name, [p[1] for p in parts])
    per_class[name] = scorer.compute()
    if cache is not None:
        cache.finish(name)


def _resolve_batch_size(
    requested: int | str,
    detector: Detector,
    dataset: AnomalyDataset,
    classes: list[str],
    protocol: Protocol,
    device: torch.device,
    precision: str,
    num_workers: int,
    ranks: Ranks,
) -> int:
    if requested != "auto":
        return int(requested)
    if not classes:
        return 1
    indices = dataset.class_indices
    sizes = [len(indices[c]) for c in classes]
    return auto_batch_size(
        detector,
        device,
        eval_size=protocol.eval_size,
        class_name=str(dataset.manifest["prompt_name"].iloc[indices[classes[0]][0]]),
        precision=precision,
        largest_class=max(sizes) if dataset.has_masks and protocol.pixel_mode == "exact" else 0,
        limit=batch_limit(sum(len(ranks.block(n)) for n in sizes), num_workers),
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
