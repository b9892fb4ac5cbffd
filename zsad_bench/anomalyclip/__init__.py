"""AnomalyCLIP: object-agnostic prompt learning for zero-shot anomaly detection (ICLR 2024)."""

from zsad_bench.anomalyclip.model import AnomalyCLIP

__all__ = ["AnomalyCLIP"]
