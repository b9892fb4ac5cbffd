"""The ranking curve: one stable sort, tie blocks merged, int64 counts, float64 weight sums."""

from __future__ import annotations

import pytest
import torch

from zsad_bench.metrics import binary_curve


def test_tie_blocks_keep_only_their_last_index() -> None:
    scores = torch.tensor([0.2, 0.9, 0.5, 0.5, 0.9, 0.1])
    labels = torch.tensor([False, True, True, False, False, True])
    weights = torch.tensor([0.0, 0.25, 0.5, 0.0, 0.0, 0.25])
    curve = binary_curve(scores, labels, weights)
    assert curve.thresholds.tolist() == pytest.approx([0.9, 0.5, 0.2, 0.1])
    assert curve.tp.tolist() == [1, 2, 2, 3]
    assert curve.fp.tolist() == [1, 2, 3, 3]
    assert curve.wsum is not None
    assert curve.wsum.tolist() == [0.25, 0.75, 0.75, 1.0]
    assert (curve.tp.dtype, curve.fp.dtype, curve.wsum.dtype) == (torch.int64,) * 2 + (torch.float64,)
    assert (curve.n_pos, curve.n_neg) == (3, 3)


def test_no_weights_and_float32_thresholds() -> None:
    curve = binary_curve(torch.tensor([1.0, 2.0]), torch.tensor([False, True]))
    assert curve.wsum is None
    assert curve.thresholds.dtype == torch.float32
    assert curve.auroc() == 1.0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="bool"):
        binary_curve(torch.tensor([1.0, 2.0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="1-D"):
        binary_curve(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        binary_curve(torch.tensor([1.0, float("nan")]), torch.tensor([False, True]))
    with pytest.raises(ValueError, match="zero scores"):
        binary_curve(torch.zeros(0), torch.zeros(0, dtype=torch.bool))


def test_undefined_summaries_raise() -> None:
    curve = binary_curve(torch.tensor([1.0, 2.0]), torch.tensor([True, True]))
    with pytest.raises(ValueError, match="undefined"):
        curve.auroc()
    assert curve.average_precision() == 1.0
