"""Running detectors: the evaluation loop, the records it leaves, and training (``engine.training``)."""

from zsad_bench.engine.config import EvalConfig
from zsad_bench.engine.evaluate import evaluate

__all__ = ["EvalConfig", "evaluate"]
