"""The evaluation loop: run a detector over a dataset, batched, and score it per class.

Loader workers decode and resize; the detector runs under autocast (bf16 on GPU, fp32 on CPU); maps
are upsampled to the protocol's evaluation size in float32 and fed to per-class metric accumulators
on the device. A class is scored and freed as soon as its last image has been seen, so memory is
bounded by the largest class, never by the dataset. With a prediction cache, every finished class is
also written to disk, and classes already cached under the same key are scored from the cache without
running the model (an interrupted run resumes where it stopped). Under ``torchrun`` each rank runs a
block of every class (see ``engine.distributed``).

A transductive detector (``api.Transductive``) is called once per class with all of its images, held on
the CPU until the class is complete; its rows then take the same path (upsampling, scorer, cache) as a
batch's. Under ``torchrun`` the rank that owns a class scores all of it and the others skip it, so a class
is never split and no merge is needed. ``--batch-size auto`` is 8 for such a detector: there is no single
forward pass to probe, and the method bounds its own memory (``api.ClassImages``).

The loop computes and measures, nothing else: provenance and the result file are ``engine.record``'s.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset, default_collate

from zsad_bench.api import ClassImages, Detector, Prediction
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.devices import resolve_device
from zsad_bench.engine import distributed
from zsad_bench.engine.batching import (
    CPU_BATCH_SIZE,
    auto_batch_size,
    auto_num_workers,
    batch_limit,
    forward_chunked,
)
from zsad_bench.engine.config import EvalConfig
from zsad_bench.engine.distributed import Ranks
from zsad_bench.engine.runtime import autocast, peak_memory_mb, reset_peak_memory
from zsad_bench.engine.scoring import ClassScorer, ClassScores, score_class
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.regions import label_masks
from zsad_bench.ops.maps import upsample
from zsad_bench.results.cache import PredictionCache

__all__ = ["LoopOutcome", "collate_labelled", "dataset_id", "run_detector"]


@dataclass(frozen=True)
class LoopOutcome:
    """What one pass measured: every class's scores (the same on every rank) and the timing facts."""

    per_class: dict[str, ClassScores]
    device: torch.device
    seconds: float
    images: int  # images run through the detector, over all ranks (cached classes excluded)
    classes_from_cache: list[str]
    batch_size: int
    num_workers: int
    peak_memory_mb: float  # the largest of any rank
    ranks: int


def dataset_id(dataset: AnomalyDataset) -> str:
    """The registry id of ``dataset`` (from its spec), or ``""`` for one built by hand."""
    return dataset.spec.id if dataset.spec is not None else ""


def run_detector(
    detector: Detector, dataset: AnomalyDataset, config: EvalConfig, cache: PredictionCache | None = None
) -> LoopOutcome:
    """Score ``detector`` on ``dataset`` (masks at ``config.protocol.eval_size``, images through
    ``detector.transform()``) per class, reusing and filling ``cache``."""
    protocol = config.protocol
    if dataset.mask_size != protocol.eval_size:
        raise ZsadError(
            f"the dataset's masks are {dataset.mask_size} px but protocol '{protocol.name}' evaluates at "
            f"{protocol.eval_size} px; load it with mask_size={protocol.eval_size}"
        )
    device = resolve_device(config.device)
    ranks = distributed.current()
    detector = detector.to(device).eval()
    detector.begin_dataset(dataset_id(dataset))
    # rank 0's view of the cache decides, so every rank takes the same classes in the same order
    cached = distributed.broadcast([c for c in dataset.classes if cache is not None and cache.has(c)], ranks)
    todo = [c for c in dataset.classes if c not in cached]
    if cache is not None and todo:
        if ranks.main:
            cache.prepare()  # before any rank writes a class file
        distributed.barrier(ranks)
    workers = auto_num_workers(device) if config.num_workers == "auto" else int(config.num_workers)
    run = _Pass(detector, dataset, config, device, ranks, cache)
    batch_size = run.batch_size(todo, workers)

    reset_peak_memory(device)
    start = time.perf_counter()
    n_images = run.classes(todo, batch_size, workers)
    for name in cached:  # scored by their owners, like the classes run above
        if ranks.owner(dataset.classes.index(name)) == ranks.rank:
            assert cache is not None
            run.per_class[name] = score_class(cache.load(name), protocol, detector.map_range, device)
    per_rank = distributed.all_gather((run.per_class, n_images, peak_memory_mb(device)), ranks)
    return LoopOutcome(
        per_class={name: scores for part in per_rank for name, scores in part[0].items()},
        device=device,
        seconds=time.perf_counter() - start,
        images=sum(part[1] for part in per_rank),
        classes_from_cache=cached,
        batch_size=batch_size,
        num_workers=workers,
        peak_memory_mb=max(part[2] for part in per_rank),
        ranks=ranks.world,
    )


@dataclass
class _Pass:
    """One rank's pass over a dataset: what every step of it needs, held once."""

    detector: Detector
    dataset: AnomalyDataset
    config: EvalConfig
    device: torch.device
    ranks: Ranks
    cache: PredictionCache | None
    per_class: dict[str, ClassScores] = field(default_factory=dict)

    def batch_size(self, classes: list[str], num_workers: int) -> int:
        """The configured batch size, or for ``auto`` the probed one (1 when nothing is left to run)."""
        if self.config.batch_size != "auto":
            return int(self.config.batch_size)
        if self.detector.transductive:
            return CPU_BATCH_SIZE
        if not classes:
            return 1
        indices = self.dataset.class_indices
        sizes = [len(indices[c]) for c in classes]
        exact = self.dataset.has_masks and self.config.protocol.pixel_mode == "exact"
        return auto_batch_size(
            self.detector,
            self.device,
            eval_size=self.config.protocol.eval_size,
            class_name=str(self.dataset.manifest["prompt_name"].iloc[indices[classes[0]][0]]),
            precision=self.config.precision,
            largest_class=max(sizes) if exact else 0,
            limit=batch_limit(sum(len(self.ranks.block(n)) for n in sizes), num_workers),
        )

    def classes(self, classes: list[str], batch_size: int, num_workers: int) -> int:
        """Run the detector over this rank's images of ``classes`` (all of them in a single process) and
        score each class as soon as it is complete; returns the images this rank ran."""
        if self.detector.transductive:
            return self.whole_classes(classes, batch_size, num_workers)
        if not classes:
            return 0
        dataset, device = self.dataset, self.device
        protocol = self.config.protocol
        all_indices = dataset.class_indices
        mine = {c: [all_indices[c][i] for i in self.ranks.block(len(all_indices[c]))] for c in classes}
        with_masks = dataset.has_masks
        loader = DataLoader(
            _Reporting(Subset(dataset, [i for c in classes for i in mine[c]])),
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            collate_fn=partial(collate_labelled, label=with_masks),
        )
        remaining = {c: len(mine[c]) for c in classes}
        scorers = {c: ClassScorer(protocol, self.detector.map_range) for c in classes}
        pending = list(classes)  # in dataset order: a class is complete only after every earlier one

        def settle() -> None:
            while pending and remaining[pending[0]] == 0:
                name = pending.pop(0)
                self.finish(name, scorers.pop(name))

        n_images = 0
        chunk = batch_size
        split_on_oom = self.config.batch_size == "auto"
        settle()  # classes of which this rank has no image
        progress = self.config.progress and self.ranks.main
        desc = f"{self.detector.name} on {dataset_id(dataset) or 'dataset'}"
        for batch in _progress(loader, progress, desc):
            if isinstance(batch, _LoadFailure):  # raised in the loader, with or without workers
                raise ZsadError(batch.message)
            images = batch["image"].to(device, non_blocking=True)
            with torch.no_grad(), autocast(device, self.config.precision):
                prediction, chunk = forward_chunked(
                    self.detector, images, batch["prompt_name"], chunk, split_on_oom=split_on_oom
                )
            # The accumulators (and the cache on the CPU) keep what they are given by reference until the
            # class is scored, so they must not get the detector's own tensors: one that writes every batch
            # into the same output buffer would overwrite the batches before. ``.float()`` of float32 scores
            # and ``upsample`` of float32 maps already at the evaluation size return those tensors, hence
            # one copy per batch (not per class or update) where they would.
            scores = prediction.image_scores.to(torch.float32, copy=True)
            maps = upsample(prediction.anomaly_maps, protocol.eval_size)
            if maps.untyped_storage().data_ptr() == prediction.anomaly_maps.untyped_storage().data_ptr():
                maps = maps.clone()
            labels = batch["label"].to(device)
            regions = batch["regions"].to(device, non_blocking=True) if with_masks else None
            n_images += len(images)
            for name, start, stop in _runs(batch["class_name"]):  # a class's rows are contiguous
                class_regions = regions.rows(start, stop) if regions is not None else None
                rows = slice(start, stop)
                self.feed(
                    name,
                    scorers[name],
                    scores[rows],
                    maps[rows],
                    labels[rows],
                    class_regions,
                    list(batch["sample_id"][start:stop]),
                )
                remaining[name] -= stop - start
            settle()
        return n_images

    def feed(
        self,
        name: str,
        scorer: ClassScorer,
        scores: torch.Tensor,
        maps: torch.Tensor,
        labels: torch.Tensor,
        regions: Any,
        ids: list[str],
    ) -> None:
        """Give rows of class ``name`` (maps at the evaluation size) to its scorer and to the cache."""
        scorer.update(scores, labels, maps, regions)
        if self.cache is not None:
            masks = regions.masks() if regions is not None else None
            self.cache.add(name, maps, scores, labels, masks, ids)

    def whole_classes(self, classes: list[str], batch_size: int, num_workers: int) -> int:
        """A transductive detector's pass: the classes this rank owns, each scored by one ``score_class``
        call on all of its images; returns the images this rank ran."""
        dataset, ranks = self.dataset, self.ranks
        mine = [c for c in classes if ranks.owner(dataset.classes.index(c)) == ranks.rank]
        if not mine:
            return 0
        loader = DataLoader(
            _Reporting(Subset(dataset, [i for c in mine for i in dataset.class_indices[c]])),
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=partial(collate_labelled, label=dataset.has_masks),
        )
        remaining = {c: len(dataset.class_indices[c]) for c in mine}
        parts: dict[str, list[dict[str, Any]]] = {c: [] for c in mine}
        desc = f"{self.detector.name} on {dataset_id(dataset) or 'dataset'} (transductive)"
        for batch in _progress(loader, self.config.progress and ranks.main, desc):
            if isinstance(batch, _LoadFailure):
                raise ZsadError(batch.message)
            for name, start, stop in _runs(batch["class_name"]):
                part = {k: batch[k][start:stop] for k in ("image", "label", "sample_id", "prompt_name")}
                part["regions"] = batch["regions"].rows(start, stop) if "regions" in batch else None
                parts[name].append(part)
                remaining[name] -= stop - start
                if remaining[name] == 0:
                    self.score_whole(name, parts.pop(name), batch_size)
        return sum(len(dataset.class_indices[c]) for c in mine)

    def score_whole(self, name: str, parts: list[dict[str, Any]], batch_size: int) -> None:
        """Call ``score_class`` on every image of class ``name`` and score its rows part by part (the
        loader's batches), so upsampling holds one batch of maps at a time."""
        detector, device, protocol = self.detector, self.device, self.config.protocol
        ids = [str(i) for p in parts for i in p["sample_id"]]
        images = ClassImages(
            torch.cat([p["image"] for p in parts]),
            device,
            batch_size,
            dataset=dataset_id(self.dataset),
            sample_ids=ids,
            defect_types=self.dataset.defect_types(self.dataset.class_indices[name]),
        )
        prompt = str(parts[0]["prompt_name"][0])
        with torch.no_grad(), autocast(device, self.config.precision):
            prediction = detector.score_class(images, prompt)  # type: ignore[attr-defined]
        if not isinstance(prediction, Prediction) or len(prediction.image_scores) != len(images):
            got = (
                f"{len(prediction.image_scores)} rows"
                if isinstance(prediction, Prediction)
                else f"a {type(prediction).__name__}"
            )
            raise ZsadError(
                f"model '{detector.name}' returned {got} for class '{name}' of {len(images)} images; "
                f"score_class must return a Prediction with one row per image, in dataset order"
            )
        scorer = ClassScorer(protocol, detector.map_range)
        start = 0
        for part in parts:
            stop = start + len(part["label"])
            # copies, as in ``classes``: the scorer and cache keep references until the class is scored
            scores = prediction.image_scores[start:stop].to(device, torch.float32, copy=True)
            maps = upsample(prediction.anomaly_maps[start:stop].to(device), protocol.eval_size).clone()
            regions = part["regions"].to(device) if part["regions"] is not None else None
            self.feed(name, scorer, scores, maps, part["label"].to(device), regions, list(part["sample_id"]))
            start = stop
        self.per_class[name] = scorer.compute()
        if self.cache is not None:
            self.cache.finish(name)

    def finish(self, name: str, scorer: ClassScorer) -> None:
        """Score a complete class, free its pixels, persist it; sharded, on the class's owner rank after
        merging every rank's part in rank order."""
        ranks, cache = self.ranks, self.cache
        if ranks.sharded:
            owner = ranks.owner(self.dataset.classes.index(name))
            part = (scorer.to("cpu"), cache.take(name) if cache is not None else None)
            parts = distributed.gather_to(part, owner, ranks)
            if parts is None:  # not the owner
                return
            scorer = parts[0][0].to(self.device)
            for other, _ in parts[1:]:
                scorer.merge(other.to(self.device))
            if cache is not None:
                cache.put(name, [p[1] for p in parts])
        self.per_class[name] = scorer.compute()
        if cache is not None:
            cache.finish(name)


@dataclass(frozen=True)
class _LoadFailure:
    """A ``ZsadError`` met while loading an item, carried to the main process as data.

    Raised inside a loader worker, the error would reach the main process re-raised by torch with the
    worker's traceback folded into its message; returned as a value, it is raised there as the same one
    line a loader without workers gives."""

    message: str


class _Reporting(torch.utils.data.Dataset):
    """``dataset`` whose items that fail with a ``ZsadError`` (an unreadable image) become a
    ``_LoadFailure``."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except ZsadError as exc:
            return _LoadFailure(str(exc))


def collate_labelled(items: list[Any], label: bool) -> Any:
    """The default collation, plus the masks' regions labelled (``regions``) when ``label``: this runs in
    the loader's worker processes, so connected-component labelling (scipy, ~2 ms per 518² mask) stays
    off the main process that feeds the GPU. A batch holding a ``_LoadFailure`` collates to it."""
    failed = [item for item in items if isinstance(item, _LoadFailure)]
    if failed:
        return failed[0]
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


def _progress(loader: Iterable, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, unit="batch", leave=False)
