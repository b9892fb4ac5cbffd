"""zsad-bench: a benchmark suite for zero-shot anomaly detection.

Public API (imports are lazy: ``import zsad_bench`` does not import torch)::

    load_model(name, *, backbone=None, checkpoint=None, device=None, **options) -> Detector
    load_dataset(name, *, split="test", transform=None, mask_size=518) -> AnomalyDataset
    evaluate(detector, dataset, protocol, *, config=EvalConfig(...)) -> RunResult
    list_models(), list_datasets(), list_protocols()
    image_metrics(scores, labels), pixel_metrics(maps, masks, fpr_limit=0.3)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "zsad_bench._factory",
    "load_dataset": "zsad_bench._factory",
    "list_models": "zsad_bench._factory",
    "list_datasets": "zsad_bench._factory",
    "list_protocols": "zsad_bench._factory",
    "get_protocol": "zsad_bench._factory",
    "evaluate": "zsad_bench.engine",
    "EvalConfig": "zsad_bench.engine",
    "image_metrics": "zsad_bench.metrics",
    "pixel_metrics": "zsad_bench.metrics",
    "Detector": "zsad_bench.api",
    "Prediction": "zsad_bench.api",
    "TrainConfig": "zsad_bench.api",
    "Trainable": "zsad_bench.api",
    "DetectorOptions": "zsad_bench.options",
    "option": "zsad_bench.options",
    "RunResult": "zsad_bench.results.schema",
    "ZsadError": "zsad_bench.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zsad_bench' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
