"""Training trainable detectors on auxiliary data, with the frozen-feature cache.

AnomalyCLIP, APRIL-GAN and CoOp learn a few parameters on top of a frozen image tower. So the image
features of the auxiliary set are computed once (the feature cache) and every epoch only runs the
trainable part -- instead of re-running ViT-L/14 at 518 px over every image per epoch as the official
scripts do. A method whose learned parameters enter the image tower (AdaCLIP's visual prompts) sets
``cache_features = False``: each step then runs ``frozen_features`` on its batch (under ``no_grad``: the
part that needs no gradient) and ``loss`` runs the rest. The hooks are the ``Trainable`` protocol of
``zsad_bench.api``; each batch's prompt names reach ``loss`` as an argument, as they reach ``forward``
(batches mix classes, and datasets when several are trained on together), so nothing is set on the
detector from outside.

Hyper-parameters: ``TrainConfig``'s defaults (AnomalyCLIP's train.sh), replaced by the method's own
(``train_defaults``), replaced by what the user passes (``train_config_for``).

Batches are drawn in the same seeded order with or without the cache, so both give the same training.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from zsad_bench.api import Detector, Trainable, TrainConfig
from zsad_bench.errors import ZsadError

__all__ = ["FeatureCache", "TrainReport", "fit", "train_config_for"]


@dataclass
class TrainReport:
    """What ``fit`` measured: the classes trained on, mean loss per epoch and wall time."""

    classes: list[str] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class FeatureCache:
    """Per-image frozen features (+ masks and labels), on the device, in RAM or memory-mapped on disk, and
    each image's prompt name (a list on the host: reading it costs no device sync).

    ``location`` ``auto`` picks the device when it is a GPU with room for the whole cache, else RAM
    when the cache takes under half the available memory, else a disk file in ``tmp_dir``.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, Any] = {}
        self.names: list[str] = []
        self.location = "none"
        self._tmp: tempfile.TemporaryDirectory | None = None

    @classmethod
    def build(
        cls,
        detector: Trainable,
        dataset: Any,
        device: torch.device,
        *,
        batch_size: int = 16,
        num_workers: int = 0,
        location: str = "auto",
        progress: bool = False,
    ) -> FeatureCache:
        cache = cls()
        n = len(dataset)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        offset = 0
        for batch in _maybe_progress(loader, progress, "feature cache", len(loader)):
            with torch.no_grad():
                features = detector.frozen_features(batch["image"].to(device))
            features = {**features, **_targets(batch, device)}
            if not cache.tensors:
                cache._allocate(features, n, device, location)
            size = len(batch["label"])
            for key, value in features.items():
                cache._store(key, offset, value)
            cache.names += _prompt_names(batch)
            offset += size
        return cache

    def _allocate(self, first: dict[str, torch.Tensor], n: int, device: torch.device, location: str) -> None:
        per_image = sum(v[0].numel() * v.element_size() for v in first.values())
        total = per_image * n
        if location == "auto":
            location = _auto_location(total, device)
        self.location = location
        for key, value in first.items():
            shape = (n, *value.shape[1:])
            if location == "device":
                self.tensors[key] = torch.empty(shape, dtype=value.dtype, device=device)
            elif location == "memory":
                self.tensors[key] = torch.empty(shape, dtype=value.dtype)
            elif location == "disk":
                if self._tmp is None:
                    self._tmp = tempfile.TemporaryDirectory(prefix="zsad-feature-cache-")
                dtype = torch.empty(0, dtype=value.dtype).numpy().dtype
                path = os.path.join(self._tmp.name, f"{key.replace('/', '_')}.npy")
                self.tensors[key] = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            else:
                raise ValueError(f"unknown feature-cache location '{location}' (device, memory, disk, auto)")

    def _store(self, key: str, offset: int, value: torch.Tensor) -> None:
        target = self.tensors[key]
        if isinstance(target, np.ndarray):
            target[offset : offset + len(value)] = value.detach().cpu().numpy()
        else:
            target[offset : offset + len(value)] = value.detach().to(target.device)

    def batch(self, indices: torch.Tensor, device: torch.device) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The stored tensors of the images at ``indices`` on ``device``, and their prompt names."""
        out = {}
        for key, stored in self.tensors.items():
            if isinstance(stored, np.ndarray):
                out[key] = torch.from_numpy(stored[np.sort(indices.numpy())][_order(indices)]).to(device)
            else:
                out[key] = stored[indices.to(stored.device)].to(device, non_blocking=True)
        return out, [self.names[i] for i in indices.tolist()]

    @property
    def nbytes(self) -> int:
        return sum(
            t.nbytes if isinstance(t, np.ndarray) else t.numel() * t.element_size()
            for t in self.tensors.values()
        )


def _order(indices: torch.Tensor) -> np.ndarray:
    """Positions that put the sorted gather (memmaps read faster in order) back in ``indices`` order."""
    return np.argsort(np.argsort(indices.numpy(), kind="stable"), kind="stable")


def _auto_location(total_bytes: int, device: torch.device) -> str:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if total_bytes < 0.5 * free:
            return "device"
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 0
    return "memory" if total_bytes < 0.5 * available else "disk"


def train_config_for(detector: type[Trainable] | Trainable, **given: Any) -> TrainConfig:
    """The ``TrainConfig`` a method trains with: ``TrainConfig``'s defaults, replaced by the method's
    ``train_defaults()``, replaced by the ``given`` values that are not None (what the user passed)."""
    defaults = dict(detector.train_defaults())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(defaults) - fields)
    if unknown:
        raise TypeError(f"{detector}.train_defaults() names no TrainConfig field: {', '.join(unknown)}")
    wrong = sorted(set(given) - fields)
    if wrong:
        raise TypeError(f"no TrainConfig field {', '.join(wrong)}")
    return TrainConfig(**{**defaults, **{k: v for k, v in given.items() if v is not None}})


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizer(parameters: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` over ``parameters`` with its lr, betas and weight decay (Adam's is L2 in the
    gradient, AdamW's decoupled)."""
    if config.optimizer not in OPTIMIZERS:
        raise ZsadError(f"unknown optimizer '{config.optimizer}'; choose from {', '.join(OPTIMIZERS)}")
    if config.weight_decay < 0:
        raise ZsadError(f"weight_decay must be at least 0, got {config.weight_decay}")
    return OPTIMIZERS[config.optimizer](
        parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )


def fit(
    detector: Detector,
    dataset: Any,
    config: TrainConfig | None = None,
    *,
    device: torch.device | None = None,
    progress: bool = False,
) -> TrainReport:
    """Train ``detector``'s trainable parameters on ``dataset`` (items with image, mask, label).

    ``config.optimizer`` (Adam or AdamW) over ``trainable_parameters()``; ``config.epochs`` passes over the
    data in batches of ``config.batch_size`` drawn in a seeded random order (a new order each epoch).
    ``config`` is used as given; without one, the method's own (``train_config_for``). The data is first
    passed through ``detector.training_data`` (augmentation); augmented data is never feature-cached, nor
    is the data of a detector with ``cache_features = False``.
    """
    from zsad_bench.devices import resolve_device

    if not detector.trainable or not isinstance(detector, Trainable):
        raise ZsadError(
            f"model '{detector.name}' is training-free; use 'zsad run' directly, without 'zsad train'"
        )
    config = config or train_config_for(detector)
    device = resolve_device(device or config.device)
    dataset = detector.training_data(dataset, config)
    use_cache = config.feature_cache and detector.cache_features and not getattr(dataset, "augmented", False)
    if len(dataset) == 0:
        raise ZsadError("the auxiliary dataset is empty")
    torch.manual_seed(config.seed)
    detector.to(device).train()
    parameters = list(detector.trainable_parameters())
    if not parameters:
        raise ZsadError(f"model '{detector.name}' has no trainable parameters")
    optimizer = make_optimizer(parameters, config)
    order = torch.Generator().manual_seed(config.seed)
    report = TrainReport(
        classes=list(dataset.classes), extra={"epoch_seconds": [], "feature_cache": use_cache}
    )

    start = time.perf_counter()
    cache = None
    if use_cache:
        detector.eval()  # frozen towers in inference mode while their features are computed
        cache = FeatureCache.build(
            detector,
            dataset,
            device,
            batch_size=max(config.batch_size, 16),
            num_workers=config.num_workers,
            progress=progress,
        )
        detector.train()
        report.extra.update(
            cache_seconds=round(time.perf_counter() - start, 3),
            cache_location=cache.location,
            cache_bytes=cache.nbytes,
        )
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        permutation = torch.randperm(len(dataset), generator=order)
        losses = []
        n_batches = math.ceil(len(dataset) / config.batch_size)
        if cache is not None:
            steps = (cache.batch(i, device) for i in _batches(permutation, config.batch_size))
        else:
            steps = _features_from_images(detector, dataset, permutation, config, device)
        for features, names in _maybe_progress(steps, progress, f"epoch {epoch + 1}", n_batches):
            masks = features.pop("mask").float()
            labels = features.pop("label")
            loss = detector.loss(features, masks, labels, names)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())  # no float() here: a device sync per step would stall the queue
        report.epoch_losses.append(float(torch.stack(losses).mean()))
        report.extra["epoch_seconds"].append(round(time.perf_counter() - epoch_start, 3))
    report.seconds = round(time.perf_counter() - start, 3)
    detector.eval()
    return report


def _batches(permutation: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(permutation), batch_size):
        yield permutation[start : start + batch_size]


def _targets(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """What the loss needs besides the features: masks and labels."""
    return {"mask": batch["mask"].to(device), "label": batch["label"].to(device)}


def _prompt_names(batch: dict[str, Any]) -> list[str]:
    """Each image's prompt name (the words prompts use, ``metal nut``), as ``forward`` receives them."""
    return list(batch.get("prompt_name", batch["class_name"]))


def _features_from_images(
    detector: Trainable, dataset: Any, permutation: torch.Tensor, config: TrainConfig, device: torch.device
) -> Iterator[tuple[dict[str, torch.Tensor], list[str]]]:
    """Without the cache: per batch (the cached path's batches, in its order), decode the images and run
    ``frozen_features`` on them (what the official scripts do). One loader per epoch: its workers live
    through the epoch instead of starting again for every batch."""
    order = [indices.tolist() for indices in _batches(permutation, config.batch_size)]
    loader = DataLoader(dataset, batch_sampler=order, num_workers=config.num_workers)
    for batch in loader:
        with torch.no_grad():
            features = detector.frozen_features(batch["image"].to(device))
        yield {**features, **_targets(batch, device)}, _prompt_names(batch)


def _maybe_progress(iterable: Any, enabled: bool, desc: str, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
