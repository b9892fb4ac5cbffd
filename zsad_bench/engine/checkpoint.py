"""Train a registered model on auxiliary data into a checkpoint folder (``zsad train`` and the training
units of ``zsad reproduce``).

The auxiliary data is one dataset or several trained on together: AdaCLIP's official ``train.py`` trains on
the concatenation of the datasets' test splits (``dataset/__init__.py`` ``get_data``: a ``ConcatDataset``
in the order given, shuffled together by the loader), and so does ``AuxiliaryData`` here. The model's
``trained_on`` is then the key ``a+b`` (``protocols.aux_key``), which the zero-shot guard splits.

The folder holds ``model.safetensors`` and ``config.json`` (``Detector.save``: the options, among them
``trained_on``) and ``train.json`` (model, the datasets with their image counts, split, the classes trained
on, the training config as used, losses and timings). It is written beside its target and renamed into
place (``zsad_bench.atomic.atomic_folder``), so a checkpoint folder that exists is complete.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from zsad_bench.api import TrainConfig
from zsad_bench.errors import ZsadError

__all__ = ["AuxiliaryData", "train_checkpoint"]


class AuxiliaryData(torch.utils.data.ConcatDataset):
    """Several auxiliary datasets as one training set: item ``i`` of the concatenation in the order given.

    ``ids`` are the datasets' ids and ``parts`` the datasets, in that order; ``classes`` are the class
    names of all parts in order of first appearance (an item's own ``prompt_name`` is what the loss gets).
    A method whose augmentation concerns one dataset (AdaCLIP's mosaic on MVTec AD only, as the official
    ``BaseDataset(aug_rate=...)`` per dataset) wraps that part with ``with_parts``; the whole is
    ``augmented`` (never feature-cached) when any part is.
    """

    def __init__(self, ids: Sequence[str], parts: Sequence[Any]) -> None:
        if len(ids) != len(parts) or not parts:
            raise ValueError(f"{len(ids)} ids for {len(parts)} datasets")
        super().__init__(list(parts))
        self.ids = tuple(ids)

    @property
    def parts(self) -> tuple[Any, ...]:
        return tuple(self.datasets)

    @property
    def classes(self) -> list[str]:
        return list(dict.fromkeys(name for part in self.datasets for name in part.classes))

    @property
    def augmented(self) -> bool:
        return any(getattr(part, "augmented", False) for part in self.datasets)

    def with_parts(self, wrap: Callable[[str, Any], Any]) -> AuxiliaryData:
        """A concatenation of ``wrap(id, part)`` for each part (e.g. an augmentation of one of them)."""
        parts = [wrap(i, part) for i, part in zip(self.ids, self.datasets, strict=True)]
        return AuxiliaryData(self.ids, parts)


def train_checkpoint(
    model: str,
    dataset_ids: str | Sequence[str],
    out: Path,
    config: TrainConfig | None = None,
    *,
    epochs: int | None = None,
    backbone: str | None = None,
    options: Mapping[str, Any] | None = None,
    split: str = "test",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on the ``split`` of ``dataset_ids`` and write the checkpoint folder ``out``; returns
    the ``train.json`` record.

    ``dataset_ids``: one id, several (trained on together, concatenated in that order), or their key
    ``a+b``. ``config`` holds the loop's settings, used as given; without one, the model's own
    (``training.train_config_for``). Its ``epochs`` is replaced by ``epochs``, or by the model's default for
    that data (``epochs_for`` of the key) when ``epochs`` is None. ``options`` are the detector's
    (validated before anything is loaded); ``trained_on`` is set here. ``out`` must not hold anything yet.
    """
    from zsad_bench._factory import get_dataset_spec, load_dataset, load_model, model_class
    from zsad_bench.atomic import atomic_folder
    from zsad_bench.devices import resolve_device
    from zsad_bench.engine.training import fit, train_config_for
    from zsad_bench.protocols import aux_datasets, aux_key

    cls = model_class(model)
    if not cls.trainable:
        raise ZsadError(f"model '{cls.name}' is training-free; evaluate it with 'zsad run'")
    specs = [get_dataset_spec(d) for d in aux_datasets(aux_key(dataset_ids))]
    key = aux_key([spec.id for spec in specs])  # the registry's spelling; a dataset named twice fails here
    options = dict(options or {})
    cls.Options.build(options, owner=f"model '{cls.name}'")  # a bad option fails before any loading
    _check_free(out)

    config = config or train_config_for(cls)
    device = resolve_device(config.device)
    config = dataclasses.replace(config, epochs=epochs or cls.epochs_for(key), device=str(device))
    torch.manual_seed(config.seed)
    options["trained_on"] = key
    detector = load_model(cls.name, backbone=backbone, device=device, **options)
    parts = [
        load_dataset(spec.id, split=split, transform=detector.transform(), mask_size=detector.input_size)
        for spec in specs
    ]
    dataset = parts[0] if len(parts) == 1 else AuxiliaryData([spec.id for spec in specs], parts)
    if log is not None:
        counts = ", ".join(f"{spec.id} {len(part)}" for spec, part in zip(specs, parts, strict=True))
        log(
            f"training {cls.name} on {key} ({split} split, {len(dataset)} images: {counts}; "
            f"{config.epochs} epochs, batch {config.batch_size}, lr {config.lr:g})"
        )
    report = fit(detector, dataset, config, device=device, progress=progress)
    record = {
        "model": cls.name,
        "dataset": key,
        "datasets": [
            {"id": spec.id, "images": len(part), "classes": list(part.classes)}
            for spec, part in zip(specs, parts, strict=True)
        ],
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
