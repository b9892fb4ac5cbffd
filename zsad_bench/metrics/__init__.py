"""Exact anomaly-detection metrics: image AUROC/AP/F1-max, pixel AUROC/AP/F1-max and MVTec AUPRO.

Pure functions (``image_metrics``, ``pixel_metrics``) for scoring arrays at once, accumulators with
``update`` / ``merge`` / ``compute`` for the evaluation loop (on the ``Accumulator`` base, whose declared
state gives ``to`` / ``merge`` / ``reset``). Every metric is named once, in ``metrics.table``. Undefined
metrics are ``None`` with a reason in ``MetricResult.reasons``. Definitions and the traps of other
implementations: reference/metrics.md.
"""

from __future__ import annotations

from zsad_bench.metrics.accumulators import ImageAccumulator, PixelAccumulator
from zsad_bench.metrics.aupro import AUPRO_VARIANTS
from zsad_bench.metrics.bootstrap import BootstrapCI, bootstrap_image_metrics
from zsad_bench.metrics.curve import Curve, binary_curve
from zsad_bench.metrics.image import image_metrics
from zsad_bench.metrics.pixel import pixel_metrics, pixel_metrics_from_regions
from zsad_bench.metrics.regions import label_regions
from zsad_bench.metrics.result import MetricResult
from zsad_bench.metrics.state import Accumulator

__all__ = [
    "AUPRO_VARIANTS",
    "Accumulator",
    "BootstrapCI",
    "Curve",
    "ImageAccumulator",
    "MetricResult",
    "PixelAccumulator",
    "binary_curve",
    "bootstrap_image_metrics",
    "image_metrics",
    "label_regions",
    "pixel_metrics",
    "pixel_metrics_from_regions",
]
