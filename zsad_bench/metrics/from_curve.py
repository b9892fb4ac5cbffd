"""How each metric is read off the exact ranking curve of its class: one function per metric.

Every metric of the table (``zsad_bench.metrics.table``) is a function of the ``Curve`` that one sort of
the class's scores gives; a row's ``name`` is its key in ``CURVE_METRICS``. So a new metric is a function
here plus a row there: ``image_metrics``, ``pixel_metrics``, the accumulators, results, reports and plots
then carry it. (Histogram mode and the bootstrap read the curve their own way and say so for a metric
they do not know.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zsad_bench.metrics.aupro import AUPRO_VARIANTS
from zsad_bench.metrics.curve import Curve
from zsad_bench.metrics.result import MetricResult
from zsad_bench.metrics.table import level_names

__all__ = ["CURVE_METRICS", "UNDEFINED", "CurveMetric", "CurveOptions", "curve_metrics"]

# Prefix of the ValueError a curve raises for a metric its class cannot define (e.g. a constant map for
# the anomalyclip-200 AUPRO): the metric is then missing with the rest of the message as its reason.
UNDEFINED = "undefined metric: "


@dataclass(frozen=True)
class CurveOptions:
    """What the pixel metrics are computed with: the AUPRO integration limit and its variant."""

    fpr_limit: float = 0.3
    aupro_variant: str = "mvtec"


@dataclass(frozen=True)
class CurveMetric:
    """compute: the value from the curve of one class.
    needs_negatives: undefined without negatives (a ROC is); AP and F1-max are not (sklearn's AP is 1)."""

    compute: Callable[[Curve, CurveOptions], float]
    needs_negatives: bool = True


def _aupro(curve: Curve, options: CurveOptions) -> float:
    return AUPRO_VARIANTS[options.aupro_variant](curve, options.fpr_limit)


CURVE_METRICS: dict[str, CurveMetric] = {
    "auroc": CurveMetric(lambda curve, _: curve.auroc()),
    "ap": CurveMetric(lambda curve, _: curve.average_precision(), needs_negatives=False),
    "f1_max": CurveMetric(lambda curve, _: curve.f1_max(), needs_negatives=False),
    "aupro": CurveMetric(_aupro),
}


def curve_metrics(
    curve: Curve, level: str, options: CurveOptions = CurveOptions(), *, no_negatives: str = ""
) -> MetricResult:
    """Every metric of ``level`` (``image`` or ``pixel``) from the curve of one class with positives,
    keyed by name in table order. no_negatives: the reason given where the class has no negatives."""
    result = MetricResult()
    for name in level_names(level):
        metric = CURVE_METRICS[name]
        if metric.needs_negatives and curve.n_neg == 0:
            result.set_missing(name, no_negatives or "no negatives")
            continue
        try:
            result[name] = metric.compute(curve, options)
        except ValueError as exc:
            if not str(exc).startswith(UNDEFINED):
                raise
            result.set_missing(name, str(exc).removeprefix(UNDEFINED))
    return result
