"""Evaluation protocols as data: ``protocols/*.yaml`` -> frozen ``Protocol`` objects.

A protocol fixes everything about an evaluation that is not the detector: the evaluation size, the
metric variants, the precision of the forward pass, how masks are binarised, (for trainable methods)
which auxiliary data trains the model that is evaluated on which targets, and the models its paper compared.

Auxiliary data may be several datasets trained on together (AdaCLIP trains on MVTec AD + CVC-ColonDB): a
training pair's ``aux`` and a model's ``trained_on`` are then one key, the ids joined by ``+`` (``aux_key``;
dataset ids never contain ``+``), and the zero-shot guard refuses every one of them as a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from zsad_bench.errors import ZsadError

__all__ = [
    "PRECISIONS",
    "Protocol",
    "TrainingPair",
    "adaclip_paper",
    "anomalyclip_paper",
    "aux_datasets",
    "aux_key",
    "default",
    "load_protocol_file",
]

_HERE = Path(__file__).parent
PRECISIONS = ("auto", "bf16", "fp32")


def aux_key(dataset_ids: str | Sequence[str]) -> str:
    """The one key of auxiliary data: an id, or several joined by ``+`` in the order given (``a+b``).

    A list member holding ``+`` (ids never do), an empty id or an id given twice is one ``ZsadError`` line.
    """
    ids = [dataset_ids] if isinstance(dataset_ids, str) else list(dataset_ids)
    for dataset_id in ids:
        if not isinstance(dataset_id, str) or not dataset_id.strip():
            raise ZsadError(
                f"auxiliary data has an empty dataset id ({dataset_id!r}); name each dataset, e.g. "
                f"mvtec-ad+cvc-colondb"
            )
        if "+" in dataset_id and len(ids) > 1:
            raise ZsadError(
                f"auxiliary dataset id '{dataset_id}' contains '+', which joins several ids; "
                f"list each dataset once, without '+'"
            )
    key = "+".join(ids)
    members = aux_datasets(key)
    if len(set(members)) != len(members):
        raise ZsadError(f"auxiliary data '{key}' names a dataset twice; name each once")
    return key


def aux_datasets(key: str) -> tuple[str, ...]:
    """The dataset ids of an auxiliary-data key (``a+b`` -> ``("a", "b")``; ``a`` -> ``("a",)``)."""
    members = tuple(key.split("+"))
    if not all(members):
        raise ZsadError(f"auxiliary data '{key}' has an empty dataset id; name each dataset, e.g. a+b")
    return members


@dataclass(frozen=True)
class TrainingPair:
    """Train on ``aux`` (the test split, as AnomalyCLIP and AdaCLIP do; several datasets are one key
    ``a+b``, trained on together), then evaluate on each of ``targets``."""

    aux: str
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        seen = sorted(set(self.aux_datasets) & set(self.targets))
        if seen:
            raise ZsadError(
                f"training pair {self.aux} lists its own training data {', '.join(seen)} among its targets; "
                f"a zero-shot protocol never evaluates on it"
            )

    @property
    def aux_datasets(self) -> tuple[str, ...]:
        """The auxiliary datasets, in training order."""
        return aux_datasets(self.aux)


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
    # the models `zsad reproduce` runs when none are named: the rows of the paper's table
    models: tuple[str, ...] = field(default_factory=tuple)

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
        """True when a model trained on ``model_trained_on`` (one id or ``a+b``) would be evaluated on data
        it was trained on: ``dataset`` is any one of its auxiliary datasets."""
        return model_trained_on is not None and dataset in model_trained_on.split("+")

    def refusal(self, model: str, trained_on: str) -> str:
        """The one line refusing to evaluate ``model`` on its own training data ``trained_on``, naming the
        targets this protocol pairs with that key (or, failing one, with any of its datasets), or else
        any other dataset."""
        members = trained_on.split("+")
        pairs = [p for p in self.training if p.aux == trained_on] or [
            p for p in self.training if set(p.aux.split("+")) & set(members)
        ]
        targets = list(dict.fromkeys(t for p in pairs for t in p.targets if t not in members))
        others = " or ".join(members)
        where = (
            f"evaluate it on {', '.join(targets[:3])}{' ...' if len(targets) > 3 else ''} (the targets of "
            f"{' and '.join(p.aux for p in pairs)} in protocol '{self.name}')"
            if targets
            else f"evaluate it on any dataset but {others} ('zsad datasets list')"
        )
        return (
            f"model '{model}' was trained on {trained_on}; a zero-shot protocol never evaluates a model "
            f"on its training data: {where}"
        )


def load_protocol_file(path: Path) -> Protocol:
    """A protocol from its YAML file; a training pair's ``aux`` is one dataset id or a list of them."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        training = tuple(
            TrainingPair(aux=aux_key(t["aux"]), targets=tuple(t["targets"])) for t in raw.pop("training", [])
        )
        models = tuple(raw.pop("models", ()))
        return Protocol(**raw, training=training, models=models)
    except (OSError, yaml.YAMLError, TypeError, KeyError, AttributeError) as exc:
        raise ZsadError(f"protocol file {path} is not a valid protocol ({exc})") from exc
    except ZsadError as exc:
        raise ZsadError(f"protocol file {path}: {exc}") from exc


# defined first: the entry points name these attributes
adaclip_paper = load_protocol_file(_HERE / "adaclip-paper.yaml")
default = load_protocol_file(_HERE / "default.yaml")
anomalyclip_paper = load_protocol_file(_HERE / "anomalyclip-paper.yaml")
