"""``evaluate()``: score a detector on a dataset under a protocol, as a ``RunResult``.

The public entry point, and all it does is compose: resolve a dataset id, run the evaluation loop
(``engine.loop``), record the run (``engine.record``). ``zsad run`` composes the same pieces over many
models and datasets (``engine.runner``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset
from zsad_bench.engine.config import EvalConfig
from zsad_bench.engine.loop import run_detector
from zsad_bench.engine.record import Provenance, build_result
from zsad_bench.protocols import Protocol
from zsad_bench.results.cache import PredictionCache
from zsad_bench.results.schema import RunResult

__all__ = ["evaluate"]


def evaluate(
    detector: Detector,
    dataset: AnomalyDataset | str,
    protocol: Protocol | None = None,
    *,
    config: EvalConfig | None = None,
    cache: PredictionCache | None = None,
    **settings: Any,
) -> RunResult:
    """Score ``detector`` on ``dataset``: a dataset id (loaded at the protocol's evaluation size through
    ``detector.transform()``), or an ``AnomalyDataset`` so loaded.

    ``config`` (default ``EvalConfig()``) says how; ``protocol`` and keyword ``settings`` (fields of
    ``EvalConfig``: ``batch_size=16, progress=False``, ...) replace its fields. With ``cache``,
    predictions are kept per class and classes already cached under its key are not run again.
    """
    changes = dict(settings, **({"protocol": protocol} if protocol is not None else {}))
    config = replace(config or EvalConfig(), **changes)  # checked again, with the changes
    if isinstance(dataset, str):
        from zsad_bench._factory import load_dataset

        dataset = load_dataset(dataset, transform=detector.transform(), mask_size=config.protocol.eval_size)
    outcome = run_detector(detector, dataset, config, cache)
    return build_result(detector, dataset, config, outcome, Provenance.of(detector, dataset), cache=cache)
