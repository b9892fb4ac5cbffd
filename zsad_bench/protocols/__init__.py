"""Evaluation protocols as data: ``protocols/*.yaml`` -> frozen ``Protocol`` objects.

A protocol fixes everything about an evaluation that is not the detector: the evaluation size, the
metric variants, the precision of the forward pass, how masks are binarised, and (for trainable methods)
which auxiliary dataset trains the model that is evaluated on which targets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from zsad_bench.errors import ZsadError

__all__ = ["PRECISIONS", "Protocol", "TrainingPair", "anomalyclip_paper", "default", "load_protocol_file"]

_HERE = Path(__file__).parent
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainingPair:
    """Train on ``aux`` (its test split, as AnomalyCLIP does), then evaluate on each of ``targets``."""

    aux: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Protocol:
    """How an evaluation is run and scored; recorded in every result file."""

    name: str
    description: str = ""
    eval_size: int = 518
    aupro_variant: str = "mvtec"
    fpr_limit: float = 0.3
    pixel_mode: str = "exact"  # or "histogram": fixed memory, AUROC/AUPRO with error bounds, no AP/F1
    histogram_bins: int = 65536
    # the forward pass: auto (bf16 autocast on CUDA, fp32 elsewhere), bf16 or fp32; --precision overrides
    precision: str = "auto"
    mask_binarisation: str = "any non-zero is anomalous; bilinear resize to eval_size; > 0.5"
    averaging: str = "metrics per class, then the unweighted mean over classes"
    training: tuple[TrainingPair, ...] = field(default_factory=tuple)

    def with_overrides(self, **changes: Any) -> Protocol:
        """A copy with the given fields changed (``None`` values are ignored), validated."""
        changed = replace(self, **{k: v for k, v in changes.items() if v is not None})
        changed.validate()
        return changed

    def validate(self) -> None:
        from zsad_bench.metrics.aupro import AUPRO_VARIANTS

        if self.aupro_variant not in AUPRO_VARIANTS:
            raise ZsadError(
                f"protocol '{self.name}': unknown AUPRO variant '{self.aupro_variant}'; "
                f"choose from {', '.join(AUPRO_VARIANTS)}"
            )
        if self.pixel_mode not in ("exact", "histogram"):
            raise ZsadError(
                f"protocol '{self.name}': pixel_mode must be exact or histogram, not '{self.pixel_mode}'"
            )
        if self.pixel_mode == "histogram" and self.aupro_variant != "mvtec":
            raise ZsadError(
                "histogram mode computes the mvtec AUPRO only; use exact mode for anomalyclip-200"
            )
        if self.precision not in PRECISIONS:
            raise ZsadError(
                f"protocol '{self.name}': precision '{self.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        if not 0.0 < self.fpr_limit <= 1.0 or self.eval_size < 1 or self.histogram_bins < 2:
            raise ZsadError(f"protocol '{self.name}': fpr_limit, eval_size or histogram_bins out of range")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def refuses(self, model_trained_on: str | None, dataset: str) -> bool:
        """True when a model trained on ``model_trained_on`` would be evaluated on that same data."""
        return model_trained_on is not None and model_trained_on == dataset

    def refusal(self, model: str, trained_on: str) -> str:
        """The one line refusing to evaluate ``model`` on ``trained_on``, its own training data, naming a
        target this protocol pairs with that training data (or, failing one, any other dataset)."""
        targets = [t for pair in self.training if pair.aux == trained_on for t in pair.targets]
        where = (
            f"evaluate it on {', '.join(targets[:3])}{' ...' if len(targets) > 3 else ''} (the targets of "
            f"{trained_on} in protocol '{self.name}')"
            if targets
            else f"evaluate it on any dataset but {trained_on} ('zsad datasets list')"
        )
        return (
            f"model '{model}' was trained on {trained_on}; a zero-shot protocol never evaluates a model "
            f"on its training data: {where}"
        )


def load_protocol_file(path: Path) -> Protocol:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        training = tuple(
            TrainingPair(aux=t["aux"], targets=tuple(t["targets"])) for t in raw.pop("training", [])
        )
        return Protocol(**raw, training=training)
    except (OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        raise ZsadError(f"protocol file {path} is not a valid protocol ({exc})") from exc


default = load_protocol_file(_HERE / "default.yaml")
anomalyclip_paper = load_protocol_file(_HERE / "anomalyclip-paper.yaml")
