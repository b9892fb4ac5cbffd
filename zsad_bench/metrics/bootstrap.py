"""Stratified bootstrap confidence intervals for image AUROC, AP and F1-max, per class and for the class mean.

The recipe of reference/metrics.md §5: the resampling unit is the image, drawn with replacement *within each
class* and *within each label* (normal and anomalous images separately, each keeping its own count), so every
replicate has both labels and the class's prevalence. The dataset mean is resampled by drawing every class
independently and averaging the per-class values of the same replicate index. Intervals are percentile
intervals of the replicate values.

"Sort once, then reweight": a replicate does not change the ranking, only how often each image occurs. Each
class is sorted once; a replicate is a vector of multiplicities over the sorted images, and the exact curve of
the resampled set is a cumulative sum of multiplicities read at the tie-block ends (as in ``curve.py``). All
replicates of a class are computed at once from an (R, N) count matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsad_bench.metrics._inputs import as_labels, as_scores, check_no_nan
from zsad_bench.metrics.table import level_names, result_keys

__all__ = ["BootstrapCI", "bootstrap_image_metrics"]

Interval = tuple[float, float]


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap intervals of image metrics, per class and for the unweighted mean over classes.

    level: coverage, e.g. 0.95 for the (2.5 %, 97.5 %) percentiles of the replicate values.
    replicates: number of bootstrap replicates R. seed: seed of the one ``PCG64`` generator.
    per_class: class name -> metric name (``auroc``) -> (low, high), or ``None`` where the class lacks a
        label.
    mean: metric name -> (low, high) of the replicate means over the classes where the metric is defined,
        or ``None`` where no class has it.
    ``to_dict`` is the form a result file records, under result keys (``image_auroc``).
    """

    level: float
    replicates: int
    seed: int
    per_class: dict[str, dict[str, Interval | None]]
    mean: dict[str, Interval | None]
    method: str = "percentile, label-stratified image resampling within each class"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form under result keys (``image_auroc``): intervals as ``[low, high]`` lists,
        undefined ones as ``None``."""
        keys = result_keys("image")

        def listed(intervals: Mapping[str, Interval | None]) -> dict[str, list[float] | None]:
            return {keys[name]: None if ci is None else [ci[0], ci[1]] for name, ci in intervals.items()}

        return {
            "level": self.level,
            "replicates": self.replicates,
            "seed": self.seed,
            "method": self.method,
            "per_class": {name: listed(cis) for name, cis in self.per_class.items()},
            "mean": listed(self.mean),
        }


def bootstrap_image_metrics(
    classes: Mapping[str, tuple[Any, Any]],
    *,
    level: float = 0.95,
    replicates: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
) -> BootstrapCI:
    """Stratified percentile bootstrap CIs of image AUROC / AP / F1-max for each class and their mean.

    classes: class name -> (scores (N,), labels (N,)); scores as for ``image_metrics`` (no NaN), labels bool
        or 0/1 with True = anomalous. A class without both labels gets ``None`` and draws nothing.
    level: interval coverage in (0, 1). replicates: R >= 1. seed: seeds one ``numpy`` ``PCG64`` generator.
    metrics: a subset of the image metrics' names (``auroc``, ``ap``, ``f1_max``); default all that have a
        replicate formula (``_REPLICATE_METRICS``: one vectorised function per metric).

    Draws, per class in sorted name order: ``rng.integers(0, n_normal, (R, n_normal))`` indexing the class's
    normal images (in input order), then the same for its anomalous images. The result therefore depends
    only on the inputs and the seed, not on the order of ``classes``.
    Cost per class: one sort, then ~5 int64 (R, N) arrays transient (4 MB each for R = 1000, N = 500).
    """
    metrics = _resampled() if metrics is None else tuple(metrics)
    _check_options(level, replicates, metrics)
    names = sorted(classes)
    if not names:
        raise ValueError("no classes given; pass a mapping of class name -> (scores, labels)")
    inputs = {name: _class_arrays(name, *classes[name]) for name in names}  # validate all before any work

    rng = np.random.Generator(np.random.PCG64(seed))
    alpha = 1.0 - level
    percentiles = [100.0 * alpha / 2, 100.0 * (1.0 - alpha / 2)]

    def interval(values: np.ndarray) -> Interval:
        low, high = np.percentile(values, percentiles, method="linear")
        return float(low), float(high)

    per_class: dict[str, dict[str, Interval | None]] = {}
    defined: dict[str, list[np.ndarray]] = {key: [] for key in metrics}
    for name in names:
        scores, labels = inputs[name]
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == labels.size:
            # Undefined image metrics (reference/metrics.md §5): n/a, and left out of the mean.
            per_class[name] = dict.fromkeys(metrics)
            continue
        values = _class_replicates(scores, labels, rng, replicates)
        per_class[name] = {key: interval(values[key]) for key in metrics}
        for key in metrics:
            defined[key].append(values[key])

    mean = {
        key: interval(np.mean(np.stack(defined[key]), axis=0)) if defined[key] else None for key in metrics
    }
    return BootstrapCI(
        level=float(level), replicates=int(replicates), seed=seed, per_class=per_class, mean=mean
    )


def _check_options(level: float, replicates: int, metrics: Sequence[str]) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise ValueError(f"replicates must be an integer >= 1 (1000-2000 recommended); got {replicates!r}")
    unknown = [key for key in metrics if key not in _resampled()]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {_resampled()}; got {tuple(metrics)}")


def _resampled() -> tuple[str, ...]:
    """The image metrics, in table order, that have a replicate formula (``_REPLICATE_METRICS``)."""
    return tuple(name for name in level_names("image") if name in _REPLICATE_METRICS)


def _class_arrays(name: str, scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one class's inputs the way ``image_metrics`` does: scores (N,) floating, labels (N,) bool."""
    s = as_scores(scores, f"scores of class {name!r}", ndim=1)
    y = as_labels(labels, f"labels of class {name!r}", s.shape)
    check_no_nan(s, f"scores of class {name!r}")
    return s.cpu().numpy(), y.cpu().numpy()


def _class_replicates(
    scores: np.ndarray, labels: np.ndarray, rng: np.random.Generator, replicates: int
) -> dict[str, np.ndarray]:
    """All R replicate values of one class with both labels: scores (N,), labels (N,) bool -> key -> (R,)."""
    # Stable descending sort, as ``curve.sort_descending``: negation keeps ties in input order.
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    counts = _resample_counts(labels, order, rng, replicates)
    return _replicate_metrics(sorted_scores, labels[order], counts)


def _resample_counts(
    labels: np.ndarray, order: np.ndarray, rng: np.random.Generator, replicates: int
) -> np.ndarray:
    """Label-stratified resampling as multiplicities: (R, N) int64 counts, columns in sorted order.

    labels: (N,) bool in input order. order: (N,) the descending sort permutation (sorted position j holds
    input image ``order[j]``). Row r holds how often each image occurs in replicate r; its normal columns
    sum to n_normal and its anomalous columns to n_anomalous.
    """
    n = labels.size
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)  # sorted position of every input image
    groups = [np.flatnonzero(~labels), np.flatnonzero(labels)]  # normals first, then anomalous
    draws = [rank[group][rng.integers(0, group.size, size=(replicates, group.size))] for group in groups]
    positions = np.concatenate(draws, axis=1) + (np.arange(replicates, dtype=np.int64) * n)[:, None]
    return np.bincount(positions.ravel(), minlength=replicates * n).reshape(replicates, n)


@dataclass(frozen=True)
class _ReplicateCurves:
    """The exact curves of R replicates at the K tie blocks: (R, K) int64 per-block and cumulative counts."""

    pos: np.ndarray  # anomalous images per block
    neg: np.ndarray  # normal images per block
    tp: np.ndarray  # anomalous images with score >= the block's
    fp: np.ndarray  # normal images with score >= the block's
    n_pos: np.ndarray  # (R,)
    n_neg: np.ndarray  # (R,)


def _auroc(c: _ReplicateCurves) -> np.ndarray:
    # Trapezoid over block ends, ties 1/2: Σ neg_k·(tp_{k-1} + tp_k) = Σ neg_k·(2·tp_k − pos_k), exact int64.
    return (c.neg * (2 * c.tp - c.pos)).sum(axis=1) / (2.0 * c.n_pos * c.n_neg)


def _ap(c: _ReplicateCurves) -> np.ndarray:
    # Blocks with zero multiplicity contribute nothing; before the first drawn image tp + fp = 0 and pos = 0.
    predicted = c.tp + c.fp
    precision = np.divide(c.tp, predicted, out=np.zeros(c.tp.shape), where=predicted > 0)
    return (c.pos * precision).sum(axis=1) / c.n_pos


def _f1_max(c: _ReplicateCurves) -> np.ndarray:
    return (2.0 * c.tp / (c.n_pos[:, None] + c.tp + c.fp)).max(axis=1)


# The image metrics (by table name) the bootstrap can resample: each, vectorised over the replicates.
_REPLICATE_METRICS = {"auroc": _auroc, "ap": _ap, "f1_max": _f1_max}


def _replicate_metrics(
    sorted_scores: np.ndarray, sorted_labels: np.ndarray, counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Exact AUROC, AP and F1-max of every reweighted replicate, as sklearn computes them on the expansion.

    sorted_scores: (N,) descending. sorted_labels: (N,) bool, aligned. counts: (R, N) non-negative int
    multiplicities; row r stands for ``np.repeat(sorted_scores, counts[r])``. Returns name -> (R,) float64.
    Repeated images are ties of one score, so the curve of the expansion is the block-wise sums of counts.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != sorted_scores.size:
        raise ValueError(f"counts must be (R, {sorted_scores.size}), got {counts.shape}")
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])  # tie-block starts
    pos = np.add.reduceat(counts * sorted_labels, starts, axis=1)  # (R, K) anomalous per block
    neg = np.add.reduceat(counts, starts, axis=1) - pos
    tp = np.cumsum(pos, axis=1)
    fp = np.cumsum(neg, axis=1)
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    if not ((n_pos > 0) & (n_neg > 0)).all():
        raise ValueError("every replicate needs anomalous and normal images (counts > 0 of each label)")
    curves = _ReplicateCurves(pos, neg, tp, fp, n_pos, n_neg)
    return {name: metric(curves) for name, metric in _REPLICATE_METRICS.items()}
