"""The Detector contract every method implements, and the types that cross it.

A detector is a ``torch.nn.Module`` that turns a batch of already resized, normalised images and their
per-image class names into image scores and anomaly maps. The harness owns everything else: data
loading, mask resizing, upsampling to the evaluation size, metrics and result files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from zsad_bench.errors import ZsadError

__all__ = ["Detector", "Prediction", "TrainConfig", "TrainReport"]


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
    seed: int = 111
    num_workers: int = 0
    device: str | None = None
    feature_cache: bool = True


@dataclass
class TrainReport:
    """What ``Detector.fit`` measured: mean loss per epoch and wall time."""

    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Detector(torch.nn.Module):
    """Base class of every anomaly detector in zsad-bench.

    Subclasses set the class attributes ``name`` and ``trainable``, set ``self.input_size`` in
    ``__init__`` and implement ``transform`` and ``forward``. Constructor keyword arguments are the
    detector's options (``zsad run -o key=value``); ``config()`` returns them for provenance and for
    ``save``/``load``.
    """

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    # True if ``remember`` accepts normal reference images (few-shot, ``zsad run --shots K``)
    few_shot: ClassVar[bool] = False
    # Where the anomaly-map values lie (probabilities by default); histogram-mode metrics bin this range.
    map_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    input_size: int

    def __init__(self) -> None:
        super().__init__()
        self._options: dict[str, Any] = {}

    # -- what the harness calls -------------------------------------------------------------------
    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """The CPU transform applied in loader workers: PIL RGB image -> ``(3, S, S)`` float tensor."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        """Score a batch: ``images`` is ``(B, 3, S, S)``, ``class_names`` has one name per image."""
        raise NotImplementedError

    def fit(self, aux: Any, config: TrainConfig) -> TrainReport:
        """Learn on an auxiliary dataset (trainable methods only; see ``zsad_bench.engine.training``)."""
        if not self.trainable:
            raise ZsadError(
                f"model '{self.name}' is training-free; use 'zsad run' directly, without 'zsad train'"
            )
        from zsad_bench.engine.training import fit

        return fit(self, aux, config)

    @classmethod
    def epochs_for(cls, dataset_id: str) -> int:
        """Default number of training epochs on the auxiliary dataset ``dataset_id``."""
        return 15

    def training_data(self, dataset: Any, config: TrainConfig) -> Any:
        """The dataset training iterates over; a method may wrap it (e.g. augmentation). A wrapper that sets
        ``augmented = True`` turns the feature cache off, since its images change every epoch."""
        return dataset

    def remember(self, class_name: str, images: torch.Tensor) -> None:
        """Few-shot: keep ``(K, 3, S, S)`` normal reference images (already transformed) of a class."""
        raise ZsadError(f"model '{self.name}' has no few-shot mode; run it without --shots")

    def forget(self) -> None:
        """Drop every few-shot reference (called before another dataset is evaluated)."""

    # -- provenance and persistence -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-serialisable options that rebuild this detector (recorded in every result)."""
        return {"name": self.name, **self._options}

    @property
    def uses_random_weights(self) -> bool:
        """True when the backbone carries random weights (results say so)."""
        backbone = getattr(self, "backbone", None)
        return bool(getattr(backbone, "random_weights", False))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: the trainable ones (frozen backbones are not copied)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into the folder ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state_dict().items()}
        save_file(tensors, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config(), indent=2, default=_jsonable) + "\n")

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> Detector:
        """Rebuild from a folder written by ``save``; ``options`` override the stored ones."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        config_file, weights_file = folder / "config.json", folder / "model.safetensors"
        if not config_file.is_file() or not weights_file.is_file():
            raise ZsadError(
                f"checkpoint folder {folder} lacks config.json or model.safetensors; "
                f"pass a folder written by 'zsad train'"
            )
        stored = json.loads(config_file.read_text())
        stored.pop("name", None)
        detector = cls(**{**stored, **options})
        try:
            state = load_file(str(weights_file))
        except SafetensorError as exc:
            raise ZsadError(f"checkpoint {weights_file} is corrupt ({exc}); re-run 'zsad train'") from exc
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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
