"""Train a registered model on an auxiliary dataset into a checkpoint folder (``zsad train`` and the
training units of ``zsad reproduce``).

The folder holds ``model.safetensors`` and ``config.json`` (``Detector.save``: the options, among them
``trained_on``) and ``train.json`` (model, dataset, split, the classes trained on, the training config,
losses and timings). It is written beside its target and renamed into place
(``zsad_bench.atomic.atomic_folder``), so a checkpoint folder that exists is complete.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zsad_bench.api import TrainConfig
from zsad_bench.errors import ZsadError

__all__ = ["train_checkpoint"]


def train_checkpoint(
    model: str,
    dataset_id: str,
    out: Path,
    config: TrainConfig,
    *,
    epochs: int | None = None,
    backbone: str | None = None,
    options: Mapping[str, Any] | None = None,
    split: str = "test",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset_id``'s ``split`` and write the checkpoint folder ``out``; returns the
    ``train.json`` record.

    ``config`` holds the loop's settings; its ``epochs`` is replaced by ``epochs``, or by the model's own
    default for that dataset (``epochs_for``) when ``epochs`` is None. ``options`` are the detector's
    (validated before anything is loaded); ``trained_on`` is set here. ``out`` must not hold anything yet.
    """
    import torch

    from zsad_bench._factory import get_dataset_spec, load_dataset, load_model, model_class
    from zsad_bench.atomic import atomic_folder
    from zsad_bench.devices import resolve_device
    from zsad_bench.engine.training import fit

    cls = model_class(model)
    if not cls.trainable:
        raise ZsadError(f"model '{cls.name}' is training-free; evaluate it with 'zsad run'")
    spec = get_dataset_spec(dataset_id)
    options = dict(options or {})
    cls.Options.build(options, owner=f"model '{cls.name}'")  # a bad option fails before any loading
    _check_free(out)

    device = resolve_device(config.device)
    config = dataclasses.replace(config, epochs=epochs or cls.epochs_for(spec.id), device=str(device))
    torch.manual_seed(config.seed)
    options["trained_on"] = spec.id
    detector = load_model(cls.name, backbone=backbone, device=device, **options)
    dataset = load_dataset(
        spec.id, split=split, transform=detector.transform(), mask_size=detector.input_size
    )
    if log is not None:
        log(
            f"training {cls.name} on {spec.id} ({split} split, {len(dataset)} images, {config.epochs} epochs)"
        )
    report = fit(detector, dataset, config, device=device, progress=progress)
    record = {
        "model": cls.name,
        "dataset": spec.id,
        "split": split,
        "classes": report.classes,
        "config": dataclasses.asdict(config),
        "epoch_losses": report.epoch_losses,
        "seconds": report.seconds,
        **report.extra,
    }
    with atomic_folder(out) as staging:
        detector.save(staging)
        (staging / "train.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def _check_free(out: Path) -> None:
    """Refuse to replace a checkpoint or any other content: the folder is swapped in whole."""
    if (out / "config.json").exists():
        raise ZsadError(f"{out} already holds a checkpoint; choose another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ZsadError(f"{out} exists and is not an empty folder; choose another --out")
