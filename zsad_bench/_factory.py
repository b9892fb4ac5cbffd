"""The public entry points: find models, datasets and protocols by name and build them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsad_bench.errors import ZsadError
from zsad_bench.registry import DATASETS, MODELS, PROTOCOLS

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from zsad_bench.api import Detector
    from zsad_bench.data import AnomalyDataset, DatasetSpec
    from zsad_bench.protocols import Protocol

__all__ = [
    "check_options",
    "get_dataset_spec",
    "get_protocol",
    "list_datasets",
    "list_models",
    "list_protocols",
    "load_dataset",
    "load_model",
    "model_class",
]


def list_models() -> list[str]:
    return MODELS.names()


def list_datasets() -> list[str]:
    return DATASETS.names()


def list_protocols() -> list[str]:
    return PROTOCOLS.names()


def model_class(name: str) -> type[Detector]:
    from zsad_bench.api import Detector

    cls = MODELS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        entry = MODELS.entry(name)
        raise ZsadError(
            f"model '{name}' ({entry.target} from {entry.source}) is not a zsad_bench Detector class"
        )
    return cls


def load_model(
    name: str,
    *,
    backbone: str | None = None,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    **options: Any,
) -> Detector:
    """Build a registered detector, optionally from a checkpoint folder, in eval mode on ``device``.

    ``options`` are the detector's declared options (``zsad models info NAME``), as values or as the
    strings ``-o`` gives (``image_size="518"``); they are validated before anything is loaded.
    """
    from zsad_bench.devices import resolve_device

    cls = model_class(name)
    if backbone is not None:
        options["backbone"] = backbone
    check_options([cls.name], options)
    detector = cls.load(checkpoint, **options) if checkpoint is not None else cls(**options)
    return detector.to(resolve_device(device)).eval()


def check_options(names: Sequence[str], options: Mapping[str, Any]) -> None:
    """Validate ``options`` against the declared options of every model in ``names`` (a ``ZsadError`` line
    on the first one that does not fit), so that a bad ``-o`` fails before any model runs."""
    for name in names:
        cls = model_class(name)
        cls.Options.build(options, owner=f"model '{cls.name}'")


def get_dataset_spec(name: str) -> DatasetSpec:
    from zsad_bench.data import DatasetSpec

    spec = DATASETS.get(name)
    if not isinstance(spec, DatasetSpec):
        raise ZsadError(f"dataset entry '{name}' is not a DatasetSpec ({DATASETS.entry(name).target})")
    return spec


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.get(name)


def load_dataset(
    name: str,
    *,
    split: str = "test",
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    mask_size: int = 518,
    classes: Sequence[str] | None = None,
    root: str | Path | None = None,
) -> AnomalyDataset:
    """The torch dataset of a prepared (or embedded) dataset.

    Images go through ``transform`` (default: square bicubic resize to ``mask_size`` and CLIP
    normalisation); masks are binarised and resized to ``mask_size``.
    """
    from zsad_bench.data import AnomalyDataset, ensure_prepared, read_manifest, squash_transform

    spec = get_dataset_spec(name)
    folder = ensure_prepared(spec, Path(root) if root is not None else None)
    manifest = read_manifest(folder)
    if classes:
        unknown = sorted(set(classes) - set(manifest.class_name))
        if unknown:
            raise ZsadError(
                f"dataset '{spec.id}' has no class {', '.join(unknown)}; "
                f"classes: {', '.join(spec.class_names)}"
            )
    dataset = AnomalyDataset(
        folder,
        manifest,
        split=split,
        transform=transform or squash_transform(mask_size),
        mask_size=mask_size,
        classes=classes,
        spec=spec,
    )
    return dataset
