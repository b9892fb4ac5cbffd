"""The result file: one JSON per (detector, dataset) run, with everything needed to trace its numbers.

Metric keys follow ``reference/published_results.csv``: ``image_auroc``, ``image_ap``, ``image_f1_max``,
``pixel_auroc``, ``pixel_ap``, ``pixel_f1_max``, ``pixel_aupro``. Values are fractions in [0, 1]; a
metric that is undefined for a class is ``null`` and its reason is under ``missing``.

A file is checked when it is read, against the field types declared on ``RunResult``: a missing or null
required field, a value of the wrong type or a metric outside [0, 1] is one ``ZsadError`` line naming the
file and the field, never a traceback further down (in a leaderboard or a plot).

``RunResult.choices()`` gathers every choice that changes a number (``CHOICES``: AUPRO variant, FPR limit,
pixel mode and bins, evaluation size, precision of the forward pass, shots, transductive or not) from
where the file records it; a file written before a choice was recorded reads as the value it was made
with (``CHOICE_DEFAULTS``: exact pixel metrics, MVTec AUPRO to FPR 0.3, 518 px, zero-shot, inductive).
The tables compare rows only under equal choices, or say where they differ (``zsad_bench.report.tables``).
``data.count_differences`` lists how a partial copy of a dataset differs from the paper's counts.
"""

from __future__ import annotations

import json
import math
import types
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from zsad_bench.atomic import atomic_file
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import IMAGE_METRICS, METRIC_KEYS, PIXEL_METRICS

__all__ = [
    "CHOICES",
    "CHOICE_DEFAULTS",
    "IMAGE_METRICS",
    "METRICS",
    "PIXEL_METRICS",
    "SCHEMA_VERSION",
    "RunResult",
    "check_result",
    "read_results",
]

SCHEMA_VERSION = 1
METRICS = METRIC_KEYS  # result keys of every metric, in table order
# Every choice that changes a number, with the value the result files written before it was recorded
# were all made with (histogram_bins is None in exact mode; precision is the forward pass's, resolved).
CHOICE_DEFAULTS: dict[str, Any] = {
    "aupro": "mvtec",
    "fpr_limit": 0.3,
    "pixel_mode": "exact",
    "histogram_bins": None,
    "eval_size": 518,
    "precision": "fp32",
    "shots": 0,
    "transductive": False,
}
CHOICES = tuple(CHOICE_DEFAULTS)
# Where a file records each choice that lives in a record (shots and transductive are fields of their own).
_CHOICE_TYPES: dict[str, tuple[str, str, Any]] = {
    "aupro": ("metric_variants", "aupro", str),
    "fpr_limit": ("metric_variants", "fpr_limit", float),
    "pixel_mode": ("metric_variants", "pixel_mode", str),
    "histogram_bins": ("metric_variants", "histogram_bins", int),
    "eval_size": ("metric_variants", "eval_size", int),
    "precision": ("timings", "precision", str),
}


@dataclass
class RunResult:
    """Per-class and mean metrics of one detector on one dataset, with provenance."""

    model: str
    dataset: str
    per_class: dict[str, dict[str, float | None]]
    mean: dict[str, float | None]
    missing: dict[str, dict[str, str]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    error_bounds: dict[str, dict[str, float]] = field(default_factory=dict)
    confidence_intervals: dict[str, Any] | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    metric_variants: dict[str, Any] = field(default_factory=dict)
    detector: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] = field(default_factory=dict)
    rescored: dict[str, Any] | None = None
    seed: int | None = None
    created: str = ""
    random_weights: bool = False
    shots: int = 0
    transductive: bool = False  # scores of one test image depend on the other test images
    schema_version: int = SCHEMA_VERSION

    @property
    def label(self) -> str:
        """The model as tables show it: ``winclip``, ``winclip (4-shot)``, ``musc (transductive)``."""
        label = f"{self.model} ({self.shots}-shot)" if self.shots else self.model
        return f"{label} (transductive)" if self.transductive else label

    @property
    def filename(self) -> str:
        model = f"{self.model}-{self.shots}shot" if self.shots else self.model
        model = f"{model}-transductive" if self.transductive else model
        return f"{model}__{self.dataset}.json"

    def choices(self) -> dict[str, Any]:
        """Every choice that changes a number (``CHOICES``), as recorded, else as ``CHOICE_DEFAULTS``."""
        values = {
            name: _recorded(getattr(self, record), key, CHOICE_DEFAULTS[name])
            for name, (record, key, _) in _CHOICE_TYPES.items()
        }
        if "eval_size" not in self.metric_variants:
            values["eval_size"] = self.protocol.get("eval_size", CHOICE_DEFAULTS["eval_size"])
        if values["pixel_mode"] != "histogram":
            values["histogram_bins"] = None
        return {**values, "shots": self.shots, "transductive": self.transductive}

    @property
    def count_differences(self) -> list[str]:
        """How the prepared copy of the dataset differs from the paper's counts (empty: a full copy)."""
        return list(self.data.get("count_differences") or [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def write(self, folder: str | Path) -> Path:
        """Write ``<folder>/<model>__<dataset>.json`` atomically (a reader never sees half a file)."""
        target = Path(folder) / self.filename
        with atomic_file(target, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2, allow_nan=False)
            handle.write("\n")
        return target

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """The result in ``path``, checked (see ``check_result``)."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ZsadError(f"result file {path} is not readable JSON ({exc})") from exc
        if not isinstance(raw, dict) or "model" not in raw or "per_class" not in raw:
            raise ZsadError(f"{path} is not a zsad-bench result file")
        check_result(raw, str(path))
        return cls.from_dict(raw)


def check_result(raw: dict[str, Any], source: str) -> None:
    """Raise a one-line ``ZsadError`` naming ``source`` and the first bad field of ``raw``: a required
    field missing or null, a value not of its declared type, a metric not a number in [0, 1]."""
    hints = get_type_hints(RunResult)
    for spec in fields(RunResult):
        required = spec.default is MISSING and spec.default_factory is MISSING
        if spec.name not in raw or (required and raw[spec.name] is None):
            if required:
                state = "missing" if spec.name not in raw else "null"
                raise ZsadError(f"result file {source}: required field '{spec.name}' is {state}")
            continue
        problem = _mismatch(hints[spec.name], raw[spec.name], spec.name)
        if problem:
            raise ZsadError(f"result file {source}: {problem}")
    for name, (record, key, kind) in _CHOICE_TYPES.items():
        value = (raw.get(record) or {}).get(key)
        if value is not None and _mismatch(kind, value, f"{record}.{key}"):
            raise ZsadError(f"result file {source}: {_mismatch(kind, value, f'{record}.{key}')} ({name})")
    differences = (raw.get("data") or {}).get("count_differences")
    if differences is not None and not (
        isinstance(differences, list) and all(isinstance(d, str) for d in differences)
    ):
        raise ZsadError(f"result file {source}: field 'data.count_differences' is not a list of strings")
    for where, values in [
        ("mean", raw["mean"]),
        *((f"per_class.{c}", v) for c, v in raw["per_class"].items()),
    ]:
        for key, value in values.items():
            if value is not None and not 0.0 <= value <= 1.0:  # NaN fails too
                raise ZsadError(f"result file {source}: metric '{where}.{key}' is {value}, outside [0, 1]")


def _mismatch(hint: Any, value: Any, where: str) -> str | None:
    """Why ``value`` is not a ``hint`` (a JSON-shaped type: str, int, float, bool, dict[K, V], unions,
    ``Any``), or ``None`` when it is. Nested dicts are checked down to their leaves."""
    if hint is Any:
        return None
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if any(_mismatch(option, value, where) is None for option in options):
            return None
        shapes = [option for option in options if get_origin(option) is dict]
        if shapes and isinstance(value, dict):  # name the bad leaf inside, not the whole dict
            return _mismatch(shapes[0], value, where)
        return _wrong(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            return _wrong(hint, value, where)
        _, item = get_args(hint)
        for key, entry in value.items():
            problem = _mismatch(item, entry, f"{where}.{key}")
            if problem:
                return problem
        return None
    if hint is type(None):
        return None if value is None else _wrong(hint, value, where)
    if hint is float:  # JSON has no int/float distinction; bool is an int to Python, not to a reader
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and not math.isinf(value) else _wrong(hint, value, where)
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else _wrong(hint, value, where)
    return None if isinstance(value, hint) else _wrong(hint, value, where)


def _wrong(hint: Any, value: Any, where: str) -> str:
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    expected = str(hint).replace("typing.", "").replace("NoneType", "null")
    expected = expected.replace("<class '", "").replace("'>", "")
    return f"field '{where}' is {shown} ({type(value).__name__}), expected {expected}"


def _recorded(record: dict[str, Any], key: str, default: Any) -> Any:
    value = record.get(key)
    return default if value is None else value


def read_results(folder: str | Path) -> list[RunResult]:
    """Every result file directly inside ``folder``, sorted by (model, dataset)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZsadError(f"results folder {folder} does not exist; write one with 'zsad run --out {folder}'")
    results = [RunResult.read(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]
    if not results:
        raise ZsadError(f"no result files (*.json) in {folder}; run 'zsad run ... --out {folder}' first")
    return sorted(results, key=lambda r: (r.model, r.dataset))
