"""The exact binary ranking curve behind every metric: one descending sort, tie blocks, cumulative counts.

Given scores sorted in descending order, the confusion counts at every distinct threshold ``t`` (a sample is
predicted anomalous when ``score >= t``) are cumulative sums read at the last index of each block of equal
scores. AUROC, AP, F1-max and (with weights 1/(|r|·R) on the anomalous pixels) AUPRO are all summaries of
this one curve (reference/metrics.md §2.2). Counts are int64 and weight sums float64: a float32 cumsum over
1e8 points loses ~1e-7.

Everything stays on the device of the scores; only the final summaries become Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from zsad_bench.metrics._inputs import check_no_nan

__all__ = ["Curve", "binary_curve", "curve_from_sorted", "sort_descending"]

# AUROC's numerator is summed exactly in int64: it is at most 2·n_pos·n_neg <= N²/2, below 2**63 for N < 4e9.
_MAX_SAMPLES = 4_000_000_000


@dataclass(frozen=True)
class Curve:
    """Confusion counts at the end of every tie block, thresholds in descending order.

    thresholds: (K,) the distinct scores, descending, in the scores' dtype.
    tp, fp: (K,) int64, number of positives / negatives with ``score >= thresholds[k]``.
    wsum: (K,) float64 cumulative sum of the weights of all samples with ``score >= thresholds[k]``,
        or ``None`` when no weights were given.
    n_pos, n_neg: totals (``tp[-1]``, ``fp[-1]``).
    """

    thresholds: Tensor
    tp: Tensor
    fp: Tensor
    wsum: Tensor | None
    n_pos: int
    n_neg: int

    def _previous(self, x: Tensor) -> Tensor:
        """``x`` shifted right by one with a leading 0: the counts before each block."""
        return torch.cat([x.new_zeros(1), x[:-1]])

    def auroc(self) -> float:
        """Trapezoid area under (FPR, TPR) from (0, 0) over the block ends; equals sklearn's roc_auc_score.

        The trapezoid over tie blocks counts every tied positive/negative pair as 1/2 (Mann–Whitney). The
        numerator is an exact int64 sum, so the only rounding is the final division.
        """
        _require(self.n_pos > 0 and self.n_neg > 0, "AUROC needs positives and negatives")
        dfp = self.fp - self._previous(self.fp)
        numerator = int((dfp * (self.tp + self._previous(self.tp))).sum())
        return numerator / (2 * self.n_pos * self.n_neg)

    def average_precision(self) -> float:
        """sklearn's step-wise AP: Σ_k (R_k − R_{k−1})·P_k over the block ends."""
        _require(self.n_pos > 0, "AP needs positives")
        dtp = (self.tp - self._previous(self.tp)).to(torch.float64)
        precision = self.tp.to(torch.float64) / (self.tp + self.fp).to(torch.float64)
        return float((dtp * precision).sum()) / self.n_pos

    def f1_max(self) -> float:
        """max_k 2PR/(P+R) over the block ends, written as 2·TP/(n_pos + TP + FP) (no 0/0 at TP = 0)."""
        _require(self.n_pos > 0, "F1-max needs positives")
        f1 = (2 * self.tp).to(torch.float64) / (self.n_pos + self.tp + self.fp).to(torch.float64)
        return float(f1.max())

    def weighted_auc(self, fpr_limit: float) -> float:
        """Normalised area under (FPR, ``wsum``) up to ``fpr_limit``: the MVTec AUPRO when ``wsum`` is PRO.

        As in MVTec's ``compute_pro`` + ``trapezoid``: keep the block ends, prepend (0, 0), append (1, 1),
        clip both axes to <= 1, integrate with trapezoids up to ``fpr_limit`` with the y value linearly
        interpolated at ``fpr_limit`` when it falls between two points, and divide by ``fpr_limit``.
        """
        _require(self.wsum is not None, "weighted AUC needs weights")
        _require(self.n_neg > 0, "weighted AUC needs negatives")
        if not 0.0 < fpr_limit <= 1.0:
            raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
        assert self.wsum is not None
        one = self.wsum.new_ones(1)
        zero = self.wsum.new_zeros(1)
        x = torch.cat([zero, self.fp.to(torch.float64) / self.n_neg, one]).clamp_(max=1.0)
        y = torch.cat([zero, self.wsum, one]).clamp_(max=1.0)
        # x is non-decreasing: the points up to the limit are a prefix (never empty, x[0] = 0).
        n_in = int((x <= fpr_limit).sum())
        xs, ys = x[:n_in], y[:n_in]
        area = float((0.5 * (ys[1:] + ys[:-1]) * (xs[1:] - xs[:-1])).sum())
        x0, y0 = float(x[n_in - 1]), float(y[n_in - 1])
        if x0 < fpr_limit:  # then x[n_in] > fpr_limit exists, since the curve ends at x = 1 >= fpr_limit
            x1, y1 = float(x[n_in]), float(y[n_in])
            y_at_limit = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_at_limit) * (fpr_limit - x0)
        return area / fpr_limit


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"undefined metric: {what}")


def sort_descending(scores: Tensor) -> tuple[Tensor, Tensor]:
    """The one sort: scores (N,) -> (sorted scores (N,), order (N,) int64), descending and stable."""
    return torch.sort(scores, descending=True, stable=True)


def curve_from_sorted(
    sorted_scores: Tensor, sorted_labels: Tensor, sorted_weights: Tensor | None = None
) -> Curve:
    """Build the curve from inputs already sorted by ``sort_descending``.

    sorted_scores: (N,) floating, descending. sorted_labels: (N,) bool. sorted_weights: (N,) or None.
    Transient memory: ~8 B/sample (int64 cumsum) + 8 B/sample with weights (float64 cumsum) + 8 B per tie
    block (indices).
    """
    n = sorted_scores.numel()
    if n == 0:
        raise ValueError("cannot build a curve from zero scores")
    if n >= _MAX_SAMPLES:
        raise ValueError(
            f"{n} scores in one curve; at most {_MAX_SAMPLES - 1} are supported (int64 AUROC sum)"
        )
    # Keep only the last index of each block of equal scores: thresholds between equal scores do not exist.
    ends = torch.nonzero(sorted_scores[1:] != sorted_scores[:-1]).squeeze(1)
    ends = torch.cat([ends, ends.new_full((1,), n - 1)])
    tp = torch.cumsum(sorted_labels, 0, dtype=torch.int64)[ends]
    fp = ends + 1 - tp
    wsum = None
    if sorted_weights is not None:
        wsum = torch.cumsum(sorted_weights, 0, dtype=torch.float64)[ends]
    return Curve(
        thresholds=sorted_scores[ends],
        tp=tp,
        fp=fp,
        wsum=wsum,
        n_pos=int(tp[-1]),
        n_neg=int(fp[-1]),
    )


def binary_curve(scores: Tensor, labels: Tensor, weights: Tensor | None = None) -> Curve:
    """Exact ranking curve of ``scores`` against ``labels``, on the scores' device.

    scores: (N,) floating, no NaN. labels: (N,) bool, True = positive (anomalous).
    weights: (N,) optional per-sample weights, summed in float64 (e.g. 1/(|r|·R) for AUPRO).
    Memory: the sort takes 4 (float32) + 8 (int64 order) B/sample, plus ``curve_from_sorted``'s.
    """
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"scores and labels must be 1-D of equal length, got {tuple(scores.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if labels.dtype != torch.bool:
        raise ValueError(f"labels must be bool, got {labels.dtype}")
    if weights is not None and weights.shape != scores.shape:
        raise ValueError(f"weights must have shape {tuple(scores.shape)}, got {tuple(weights.shape)}")
    check_no_nan(scores, "scores")
    sorted_scores, order = sort_descending(scores)
    sorted_weights = None if weights is None else weights[order]
    return curve_from_sorted(sorted_scores, labels[order], sorted_weights)
