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
    "checkpoint_map",
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
    """Build a registered detector, optionally from a checkpoint, in eval mode on ``device``.

    ``options`` are the detector's declared options (``zsad models info NAME``), as values or as the
    strings ``-o`` gives (``image_size="518"``); they are validated, with the checkpoint's stored ones and
    against the backbone's shape, before anything is loaded.
    """
    from zsad_bench.devices import resolve_device

    cls = model_class(name)
    checkpoints = {name: Path(checkpoint)} if checkpoint is not None else {}
    check_options([name], options, backbone=backbone, checkpoints=checkpoints)
    if backbone is not None:
        options["backbone"] = backbone
    detector = cls.load(checkpoint, **options) if checkpoint is not None else cls(**options)
    return detector.to(resolve_device(device)).eval()


def check_options(
    names: Sequence[str],
    options: Mapping[str, Any],
    *,
    backbone: str | None = None,
    checkpoints: Mapping[str, Path] | None = None,
) -> None:
    """Validate ``options`` for every model in ``names`` as it will be built: over the options stored in
    its checkpoint (``checkpoints``: model name -> path), with ``backbone`` (``--backbone``) and against
    that backbone's shape. The first problem is a ``ZsadError`` line, before any model runs; no weights
    are read (a checkpoint's ``config.json`` is)."""
    values = dict(options)
    if backbone is not None:
        values["backbone"] = backbone
    for name in names:
        cls = model_class(name)
        checkpoint = (checkpoints or {}).get(name)
        base = None
        if checkpoint is not None:
            if not cls.trainable:
                raise ZsadError(f"model '{cls.name}' is training-free; it takes no checkpoint")
            base = cls.checkpoint_options(checkpoint)
        built = cls.Options.build(values, base=base, owner=f"model '{cls.name}'")
        cls.validate_options(built, owner=f"model '{cls.name}'")


def checkpoint_map(
    models: Sequence[str], given: str | Path | Sequence[str | Path] | Mapping[str, Path] | None
) -> dict[str, Path]:
    """``--checkpoint`` values -> {model: path}. Each value is ``MODEL=PATH`` (MODEL one of ``models``) or,
    when a single model runs, a bare ``PATH``. A bare path with several models, a model named twice or a
    name that is not run is a ``ZsadError`` line."""
    if given is None:
        return {}
    if isinstance(given, Mapping):
        pairs = [(str(k), Path(v)) for k, v in given.items()]
    else:
        values = [given] if isinstance(given, (str, Path)) else list(given)
        # a Path is always a bare path (an API caller's); text may be MODEL=PATH (the command line's)
        pairs = [("", v) if isinstance(v, Path) else _checkpoint_pair(v, models) for v in values]
    out: dict[str, Path] = {}
    for model, path in pairs:
        if model == "":
            if len(models) != 1:
                raise ZsadError(
                    f"--checkpoint {path} does not say which model it is for; with several models write "
                    f"--checkpoint MODEL=PATH, once per model ({', '.join(models)})"
                )
            model = models[0]
        if model not in models:
            raise ZsadError(
                f"--checkpoint names model '{model}', which is not run (--model {','.join(models)})"
            )
        if model in out:
            raise ZsadError(
                f"--checkpoint gives model '{model}' two checkpoints ({out[model]}, {path}); give one"
            )
        out[model] = path
    return out


def _checkpoint_pair(value: str, models: Sequence[str]) -> tuple[str, Path]:
    """``"MODEL=PATH"`` -> (MODEL, PATH); a bare path -> ("", PATH). Text before ``=`` is a model name when
    it is one of ``models`` or when it could be nothing else (no path separator, and no such file)."""
    name, sep, rest = value.partition("=")
    if sep and name and (name in models or ("/" not in name and not Path(value).exists())):
        if not rest:
            raise ZsadError(f"--checkpoint {value} names no path; write --checkpoint {name}=PATH")
        return name, Path(rest)
    return "", Path(value)


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
