"""``evaluate()``: run a detector over a dataset, batched, and score it per class.

Loader workers decode and resize; the detector runs under autocast (bf16 on GPU, fp32 on CPU); maps
are upsampled to the protocol's evaluation size in float32 and fed to per-class metric accumulators
on the device. A class is scored and freed as soon as its last image has been seen, so memory is
bounded by the largest class, never by the dataset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import torch
from torch.utils.data import DataLoader

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.engine.runtime import autocast, environment, peak_memory_mb, reset_peak_memory, resolve_device
from zsad_bench.errors import ZsadError
from zsad_bench.maps import upsample
from zsad_bench.metrics import ImageAccumulator, MetricResult, PixelAccumulator
from zsad_bench.protocols import Protocol
from zsad_bench.protocols import default as default_protocol
from zsad_bench.report.schema import IMAGE_METRICS, METRICS, PIXEL_METRICS, RunResult

__all__ = ["evaluate"]


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
) -> RunResult:
    """Score ``detector`` on ``dataset``: a dataset id, or an ``AnomalyDataset`` whose masks are at
    ``protocol.eval_size`` and whose images went through ``detector.transform()``.

    precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``. Maps are float32
    from the upsampling on, whatever the precision of the forward pass.
    """
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
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    remaining = {c: len(idx) for c, idx in dataset.class_indices.items()}
    image_acc: dict[str, ImageAccumulator] = {}
    pixel_acc: dict[str, PixelAccumulator] = {}
    per_class: dict[str, dict[str, float | None]] = {}
    missing: dict[str, dict[str, str]] = {}
    with_masks = dataset.has_masks

    reset_peak_memory(device)
    start = time.perf_counter()
    n_images = 0
    for batch in _progress(loader, progress, f"{detector.name} on {dataset_id or 'dataset'}"):
        images = batch["image"].to(device, non_blocking=True)
        with torch.no_grad(), autocast(device, precision):
            prediction = detector(images, list(batch["prompt_name"]))
        scores = prediction.image_scores.float()
        maps = upsample(prediction.anomaly_maps, protocol.eval_size)
        labels = batch["label"].to(device)
        masks = batch["mask"].to(device, non_blocking=True)
        n_images += len(images)
        for name in dict.fromkeys(batch["class_name"]):
            rows = torch.tensor([c == name for c in batch["class_name"]], device=device)
            image_acc.setdefault(name, ImageAccumulator()).update(scores[rows], labels[rows])
            pixel_acc.setdefault(name, PixelAccumulator(fpr_limit=protocol.fpr_limit)).update(
                maps[rows], masks[rows] if with_masks else None
            )
            remaining[name] -= int(rows.sum())
            if remaining[name] == 0:  # the class is complete: score it and free its pixels
                values, reasons = _class_metrics(image_acc.pop(name).compute(), pixel_acc.pop(name).compute())
                per_class[name], missing[name] = values, reasons
    seconds = time.perf_counter() - start

    mean, mean_missing = _class_mean(per_class)
    if mean_missing:
        missing["mean"] = mean_missing
    counts = {
        c: {
            "normal": int((dataset.manifest.loc[dataset.manifest.class_name == c, "label"] == 0).sum()),
            "anomalous": int((dataset.manifest.loc[dataset.manifest.class_name == c, "label"] == 1).sum()),
        }
        for c in dataset.classes
    }
    info = dict(provenance or {})
    return RunResult(
        model=detector.name,
        dataset=dataset_id,
        per_class=per_class,
        mean=mean,
        missing={k: v for k, v in missing.items() if v},
        counts=counts,
        protocol=protocol.to_dict(),
        metric_variants={
            "aupro": protocol.aupro_variant,
            "fpr_limit": protocol.fpr_limit,
            "exact": True,
            "eval_size": protocol.eval_size,
            "image_score": "the detector's image score",
            "averaging": protocol.averaging,
        },
        detector={
            "config": detector.config(),
            "input_size": detector.input_size,
            **info.pop("detector", {}),
        },
        data=info.pop("data", {}),
        environment=environment(device),
        timings={
            "seconds": round(seconds, 3),
            "images": n_images,
            "images_per_s": round(n_images / seconds, 2) if seconds > 0 else None,
            "batch_size": batch_size,
            "precision": "bf16"
            if precision == "bf16" or (precision == "auto" and device.type == "cuda")
            else "fp32",
            "peak_memory_mb": peak_memory_mb(device),
        },
        seed=info.pop("seed", None),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        random_weights=detector.uses_random_weights,
    )


def _progress(loader: Iterable, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=desc, unit="batch", leave=False)


def _class_metrics(
    image: MetricResult, pixel: MetricResult
) -> tuple[dict[str, float | None], dict[str, str]]:
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for level, result, keys in (("image", image, IMAGE_METRICS), ("pixel", pixel, PIXEL_METRICS)):
        for key in keys:
            short = key.removeprefix(f"{level}_")
            values[key] = result.get(short)
            if values[key] is None:
                reasons[key] = result.reasons.get(short, "undefined")
    return values, reasons


def _class_mean(
    per_class: dict[str, dict[str, float | None]],
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Unweighted mean over the classes where a metric is defined (the field's convention)."""
    mean: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for key in METRICS:
        defined = [v[key] for v in per_class.values() if v.get(key) is not None]
        mean[key] = sum(defined) / len(defined) if defined else None
        if not defined:
            reasons[key] = "undefined for every class"
    return mean, reasons
