"""Image-level metrics of one class: AUROC, AP and F1-max from one exact ranking curve.

Definitions match scikit-learn (reference/metrics.md §2.2, §3): AUROC = ``roc_auc_score`` (ties count 1/2),
AP = ``average_precision_score`` (step-wise Σ ΔR·P), F1-max = the max of 2PR/(P+R) over
``precision_recall_curve``. A class with a single label has none of them. The metrics are the table's
image rows (``zsad_bench.metrics.table``), each read off the curve by ``from_curve``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from zsad_bench.metrics._inputs import as_labels, as_scores
from zsad_bench.metrics.curve import binary_curve
from zsad_bench.metrics.from_curve import curve_metrics
from zsad_bench.metrics.result import MetricResult
from zsad_bench.metrics.table import level_names

__all__ = ["image_metrics", "image_metrics_from_tensors"]


def image_metrics(scores: Tensor | Any, labels: Tensor | Any) -> MetricResult:
    """AUROC, AP and F1-max of image scores against image labels.

    scores: (N,) anomaly scores (tensor, numpy array or list; float32/float64 kept, halves upcast).
    labels: (N,) bool or 0/1, True = anomalous.
    Returns keys ``auroc``, ``ap``, ``f1_max``; all ``None`` (with a reason) unless both labels occur.
    """
    s = as_scores(scores, "scores", ndim=1)
    y = as_labels(labels, "labels", s.shape)
    return image_metrics_from_tensors(s, y.to(s.device))


def image_metrics_from_tensors(scores: Tensor, labels: Tensor) -> MetricResult:
    """``image_metrics`` on validated tensors: scores (N,) floating, labels (N,) bool, same device."""
    names = level_names("image")
    if labels.numel() == 0:
        return MetricResult.missing(names, "no images")
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_neg == 0:
        return MetricResult.missing(names, "class has no normal images")
    if n_pos == 0:
        return MetricResult.missing(names, "class has no anomalous images")
    return curve_metrics(binary_curve(scores, labels), "image")
