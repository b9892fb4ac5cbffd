"""The Detector contract every method implements, and the types that cross it.

A detector is a ``torch.nn.Module`` that turns a batch of already resized, normalised images and their
per-image class names into image scores and anomaly maps. Its options are a frozen dataclass
(``zsad_bench.options``). A trainable one also implements the ``Trainable`` hooks; the loop that calls
them lives in ``zsad_bench.engine.training``. A transductive one (it scores each test image against the
other test images of its class) implements ``Transductive.score_class`` instead of ``forward``. The harness
owns everything else: data loading, mask resizing, upsampling to the evaluation size, metrics and result
files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from PIL import Image

from zsad_bench.checkpoint_files import corrupt_weights, read_config
from zsad_bench.errors import ZsadError
from zsad_bench.options import DetectorOptions

__all__ = ["ClassImages", "Detector", "Prediction", "TrainConfig", "Trainable", "Transductive"]


@dataclass
class Prediction:
    """What a detector returns for a batch of B images.

    image_scores: ``(B,)`` float32, higher means more anomalous.
    anomaly_maps: ``(B, H, W)`` float32 at the detector's ``input_size``, after the method's own
        post-processing (e.g. Gaussian smoothing); higher means more anomalous.
    """

    image_scores: torch.Tensor
    anomaly_maps: torch.Tensor

    def __post_init__(self) -> None:
        if self.image_scores.ndim != 1:
            raise ValueError(f"image_scores must be (B,), got shape {tuple(self.image_scores.shape)}")
        if self.anomaly_maps.ndim != 3 or self.anomaly_maps.shape[0] != self.image_scores.shape[0]:
            raise ValueError(
                f"anomaly_maps must be (B, H, W) with B={self.image_scores.shape[0]}, "
                f"got shape {tuple(self.anomaly_maps.shape)}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of training on an auxiliary dataset (defaults: AnomalyCLIP's train.sh)."""

    epochs: int = 15
    batch_size: int = 8
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    optimizer: str = "adam"  # or "adamw" (decoupled weight decay, AdaCLIP's trainer.py)
    weight_decay: float = 0.0
    seed: int = 111
    num_workers: int = 0
    device: str | None = None
    feature_cache: bool = True


@runtime_checkable
class Trainable(Protocol):
    """The hooks the training loop (``zsad_bench.engine.training.fit``) calls on a trainable detector.

    A trainable detector subclasses ``Detector`` and ``Trainable`` and sets ``trainable = True``. The methods
    learn a few parameters on a frozen image tower, so the loop computes ``frozen_features`` once per image
    (the feature cache) and each step only runs ``loss``; the classes of a batch reach ``loss`` as an
    argument, as they reach ``forward``.
    """

    # False when the frozen features cannot be computed once and reused: e.g. AdaCLIP's learned prompts
    # enter the image tower, so every step runs it (``frozen_features`` then returns what the step needs).
    cache_features: ClassVar[bool] = True

    @classmethod
    def epochs_for(cls, dataset_id: str) -> int:
        """Default number of training epochs on the auxiliary dataset ``dataset_id`` (for several
        auxiliary datasets trained together, their ids joined by ``+``)."""
        return 15

    @classmethod
    def train_defaults(cls) -> dict[str, Any]:
        """``TrainConfig`` fields (``lr``, ``batch_size``, ``optimizer``, ...) where the method's own training
        differs from the defaults (AnomalyCLIP's train.sh); what the user passes wins over these."""
        return {}

    def training_data(self, dataset: Any, config: TrainConfig) -> Any:
        """The dataset training iterates over; a method may wrap it (e.g. augmentation). A wrapper that sets
        ``augmented = True`` turns the feature cache off, since its images change every epoch."""
        return dataset

    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The frozen tower's outputs for ``(B, 3, S, S)`` images: ``(B, ...)`` per key, without gradients."""
        raise NotImplementedError

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """What the optimiser updates (everything else stays frozen)."""
        raise NotImplementedError

    def loss(
        self,
        features: dict[str, torch.Tensor],
        masks: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
    ) -> torch.Tensor:
        """Scalar loss of a batch: ``features`` from ``frozen_features``, ``masks`` ``(B, S, S)`` float in
        {0, 1}, ``labels`` ``(B,)``, ``class_names`` one prompt name per image (batches mix classes)."""
        raise NotImplementedError


# what a trainable detector must implement itself; ``epochs_for`` and ``training_data`` have defaults
_REQUIRED_HOOKS = ("frozen_features", "trainable_parameters", "loss")


class ClassImages:
    """The N test images of one class, in dataset order, as a transductive detector receives them.

    They are held on the CPU (a class of 2,000 images at 518 px is 6.4 GB; a device may not hold it beside
    the model); ``batches`` moves them to ``device`` ``batch_size`` at a time (``--batch-size``; 8 for
    ``auto``, which has no single forward pass to probe). A method bounds its memory by what it keeps of
    each batch (its features), and forms its own subsets by passing their indices.
    """

    def __init__(
        self,
        images: torch.Tensor,
        device: torch.device,
        batch_size: int,
        *,
        dataset: str = "",
        sample_ids: Sequence[str] = (),
        defect_types: Sequence[str] = (),
    ) -> None:
        self.images = images
        self.device = device
        self.batch_size = batch_size
        # What a method may know of its inputs without labels: the dataset id (a method's per-dataset
        # defaults, e.g. MuSc's RsCIN neighbourhoods) and the images' ids. ``defect_types`` (the manifest's
        # ground-truth folder of each image, "good" for normal ones) is label information: it exists only so
        # that an official protocol that used it (MuSc's stratified subsets) can be reproduced, and a
        # method that reads it must record so in its results.
        self.dataset = dataset
        self.sample_ids = tuple(sample_ids)
        self.defect_types = tuple(defect_types)
        for what, values in (("sample_ids", self.sample_ids), ("defect_types", self.defect_types)):
            if values and len(values) != len(images):
                raise ValueError(f"{what} has {len(values)} entries for {len(images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, indices: Sequence[int] | None = None) -> Iterator[torch.Tensor]:
        """``(b, 3, S, S)`` batches on ``device`` of the images at ``indices`` (all by default), in that
        order."""
        order = list(range(len(self.images))) if indices is None else [int(i) for i in indices]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield self.images[rows].to(self.device, non_blocking=True)


@runtime_checkable
class Transductive(Protocol):
    """The class-level entry point of a transductive detector.

    A transductive detector subclasses ``Detector`` and ``Transductive`` and sets ``transductive = True``.
    The harness then never calls ``forward``: it gathers every test image of a class and calls
    ``score_class`` once per class (under ``torch.no_grad`` and the run's autocast), then upsamples, scores
    and caches the returned rows exactly as it does a per-image detector's. Under ``torchrun`` a class is
    never split: the rank that owns it (``engine.distributed.Ranks.owner``) scores all of it. Results say
    ``transductive: true`` and tables label the row, since a score depends on the class's other images.
    """

    def score_class(self, images: ClassImages, class_name: str) -> Prediction:
        """Score all ``len(images)`` images of one class together; ``class_name`` is its prompt name. Return
        one row per image, in dataset order (the order of ``images``), whatever subsets the method formed."""
        raise NotImplementedError


class Detector(torch.nn.Module):
    """Base class of every anomaly detector in zsad-bench.

    Subclasses set the class attributes ``name``, ``trainable`` and ``Options`` (a frozen dataclass of
    ``DetectorOptions``), set ``self.input_size`` in ``__init__`` and implement ``transform`` and
    ``forward``. ``__init__(options=None, **overrides)`` validates the options (keywords, ``-o`` strings or
    a checkpoint's config all the same way) into ``self.options``; ``config()`` records them.
    """

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    # True if the detector scores a class's test images together (``Transductive.score_class``)
    transductive: ClassVar[bool] = False
    # True if ``remember`` accepts normal reference images (few-shot, ``zsad run --shots K``)
    few_shot: ClassVar[bool] = False
    # Where the anomaly-map values lie (probabilities by default); histogram-mode metrics bin this range.
    map_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    Options: ClassVar[type[DetectorOptions]] = DetectorOptions
    options: DetectorOptions
    input_size: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a plugin that forgets a hook hears it when its module is imported, not after hours of training
        if cls.transductive and (
            not issubclass(cls, Transductive) or cls.score_class is Transductive.score_class
        ):
            raise TypeError(
                f"{cls.__qualname__} sets transductive = True: subclass zsad_bench.api.Transductive and "
                f"implement score_class"
            )
        if not cls.trainable:
            return
        missing = [h for h in _REQUIRED_HOOKS if getattr(cls, h, None) in (None, getattr(Trainable, h))]
        if missing or Trainable not in cls.__mro__:  # issubclass refuses a protocol with data members
            raise TypeError(
                f"{cls.__qualname__} sets trainable = True: subclass zsad_bench.api.Trainable and implement "
                f"{', '.join(missing or _REQUIRED_HOOKS)}"
            )

    def __init__(self, options: DetectorOptions | None = None, **overrides: Any) -> None:
        super().__init__()
        if options is not None and not isinstance(options, self.Options):
            raise TypeError(
                f"{type(self).__name__} takes {self.Options.__name__}, not {type(options).__name__}"
            )
        self.options = self.Options.build(overrides, base=options, owner=f"model '{self.name}'")
        self.validate_options(self.options)

    @classmethod
    def validate_options(cls, options: DetectorOptions, owner: str = "") -> None:
        """Checks of ``options`` that one option's type and range cannot express: the image size against
        the backbone's patch size, layer indices against its depth, one option against another. A problem
        is one ``ZsadError`` line naming the option and a valid value. Runs in ``__init__`` and, through
        ``zsad_bench.check_options``, before any model is loaded, so it reads no weights."""

    # -- what the harness calls -------------------------------------------------------------------
    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """The CPU transform applied in loader workers: PIL RGB image -> ``(3, S, S)`` float tensor."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        """Score a batch: ``images`` is ``(B, 3, S, S)``, ``class_names`` has one name per image."""
        raise NotImplementedError

    def begin_dataset(self, dataset_id: str) -> None:
        """Called before the loop scores the images of ``dataset_id`` (its registry id; "" for a dataset
        built by hand). A method whose official code depended on the dataset (AdaCLIP's class words, its
        k-means state started afresh per test run) sets that here; the default does nothing."""

    def remember(self, class_name: str, images: torch.Tensor) -> None:
        """Few-shot: keep ``(K, 3, S, S)`` normal reference images (already transformed) of a class."""
        raise ZsadError(f"model '{self.name}' has no few-shot mode; run it without --shots")

    def forget(self) -> None:
        """Drop every few-shot reference (called before another dataset is evaluated)."""

    # -- provenance and persistence -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-serialisable options that rebuild this detector (recorded in every result)."""
        return {"name": self.name, **self.options.to_config()}

    @property
    def uses_random_weights(self) -> bool:
        """True when the backbone carries random weights (results say so)."""
        backbone = getattr(self, "backbone", None)
        return bool(getattr(backbone, "random_weights", False))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: the trainable ones (frozen backbones are not copied)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into the folder ``path``, each file whole."""
        from safetensors.torch import save

        from zsad_bench.atomic import atomic_write

        folder = Path(path)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state_dict().items()}
        atomic_write(folder / "model.safetensors", save(tensors))
        atomic_write(folder / "config.json", json.dumps(self.config(), indent=2) + "\n")

    @classmethod
    def checkpoint_options(cls, path: str | Path) -> DetectorOptions:
        """The options stored in the checkpoint ``path`` (a folder written by ``save``), type-checked.

        Reads ``config.json`` only: a missing or foreign folder, a truncated or malformed file, another
        model's checkpoint or a stored option that fails validation is one ``ZsadError`` line naming the
        file and what it holds. A single file is an official checkpoint (``official_options``).
        """
        folder = Path(path)
        if not folder.exists():
            raise ZsadError(f"checkpoint {folder} does not exist; pass a folder written by 'zsad train'")
        if not folder.is_dir():
            return cls.official_options(folder)
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ZsadError(
                f"checkpoint folder {folder} lacks config.json or model.safetensors; "
                f"pass a folder written by 'zsad train'"
            )
        stored = read_config(config_file)
        stored_name = stored.pop("name", None)
        if stored_name != cls.name:
            written = "no model (no 'name' key)" if stored_name is None else f"model {stored_name!r}"
            raise ZsadError(
                f"checkpoint {config_file} was written for {written}, not '{cls.name}'; pass a checkpoint "
                f"of '{cls.name}' or run the model it was written for"
            )
        return cls.Options.build(stored, owner=f"checkpoint {config_file}")

    @classmethod
    def official_options(cls, path: Path) -> DetectorOptions:
        """The options of the official single-file checkpoint ``path`` (its shapes, its training data), read
        without running pickled code. A method whose authors released such files overrides this and
        ``load_official``; by default a file is refused in one line."""
        raise ZsadError(
            f"checkpoint {path} is a file; model '{cls.name}' loads a folder written by 'zsad train' "
            f"(config.json and model.safetensors)"
        )

    @classmethod
    def load_official(cls, path: Path, **overrides: Any) -> Detector:
        """The detector with the weights of the official single-file checkpoint ``path``."""
        cls.official_options(path)
        raise NotImplementedError(f"{cls.__qualname__} overrides official_options but not load_official")

    @classmethod
    def check_checkpoint(cls, path: str | Path) -> DetectorOptions:
        """``checkpoint_options`` and a look at the weights file's header (empty, truncated, not
        safetensors), without reading its tensors: what can be refused before any model runs."""
        from safetensors import SafetensorError, safe_open

        options = cls.checkpoint_options(path)
        if Path(path).is_file():  # a single-file checkpoint: the override of checkpoint_options read it
            return options
        weights_file = Path(path) / "model.safetensors"
        if not weights_file.is_file():
            raise ZsadError(
                f"checkpoint folder {path} lacks config.json or model.safetensors; "
                f"pass a folder written by 'zsad train'"
            )
        try:
            with safe_open(str(weights_file), framework="pt") as handle:
                list(handle.keys())
        except (SafetensorError, OSError) as exc:
            raise ZsadError(corrupt_weights(weights_file, exc)) from None
        return options

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> Detector:
        """Rebuild from a folder written by ``save``; ``overrides`` replace stored options.

        The stored options are validated like ``-o`` values, so a hand-edited or foreign ``config.json``
        is one line naming the file and the option. A single file is an official checkpoint
        (``load_official``).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if Path(path).is_file():
            return cls.load_official(Path(path), **overrides)
        options = cls.check_checkpoint(path)
        detector = cls(options, **overrides)
        weights_file = Path(path) / "model.safetensors"
        try:
            state = load_file(str(weights_file))
        except (SafetensorError, OSError) as exc:
            raise ZsadError(corrupt_weights(weights_file, exc)) from None
        detector.load_trainable_state_dict(state, source=str(weights_file))
        return detector

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor], source: str) -> None:
        expected = self.trainable_state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
        if missing or unexpected or wrong:
            details = "; ".join(
                f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if keys
            )
            raise ZsadError(f"checkpoint {source} does not fit model '{self.name}' ({details})")
        self.load_state_dict(state, strict=False)
