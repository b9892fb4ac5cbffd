"""The result file: one JSON per (detector, dataset) run, with everything needed to trace its numbers.

Metric keys follow ``reference/published_results.csv``: ``image_auroc``, ``image_ap``, ``image_f1_max``,
``pixel_auroc``, ``pixel_ap``, ``pixel_f1_max``, ``pixel_aupro``. Values are fractions in [0, 1]; a
metric that is undefined for a class is ``null`` and its reason is under ``missing``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = ["IMAGE_METRICS", "METRICS", "PIXEL_METRICS", "SCHEMA_VERSION", "RunResult", "read_results"]

SCHEMA_VERSION = 1
IMAGE_METRICS = ("image_auroc", "image_ap", "image_f1_max")
PIXEL_METRICS = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "pixel_aupro")
METRICS = IMAGE_METRICS + PIXEL_METRICS


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
    schema_version: int = SCHEMA_VERSION

    @property
    def label(self) -> str:
        """The model as tables show it: ``winclip`` or ``winclip (4-shot)``."""
        return f"{self.model} ({self.shots}-shot)" if self.shots else self.model

    @property
    def filename(self) -> str:
        model = f"{self.model}-{self.shots}shot" if self.shots else self.model
        return f"{model}__{self.dataset}.json"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def write(self, folder: str | Path) -> Path:
        """Write ``<folder>/<model>__<dataset>.json`` atomically (a reader never sees half a file)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.filename
        fd, tmp = tempfile.mkstemp(prefix=f".{self.filename}.", dir=folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.to_dict(), handle, indent=2, allow_nan=False)
                handle.write("\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ZsadError(f"result file {path} is not readable JSON ({exc})") from exc
        if not isinstance(raw, dict) or "model" not in raw or "per_class" not in raw:
            raise ZsadError(f"{path} is not a zsad-bench result file")
        return cls.from_dict(raw)


def read_results(folder: str | Path) -> list[RunResult]:
    """Every result file directly inside ``folder``, sorted by (model, dataset)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZsadError(f"results folder {folder} does not exist; write one with 'zsad run --out {folder}'")
    results = [RunResult.read(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]
    if not results:
        raise ZsadError(f"no result files (*.json) in {folder}; run 'zsad run ... --out {folder}' first")
    return sorted(results, key=lambda r: (r.model, r.dataset))
