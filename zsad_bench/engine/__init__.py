"""Running detectors: evaluation over datasets (training comes with the trainable methods)."""

from zsad_bench.engine.evaluate import evaluate

__all__ = ["evaluate"]
