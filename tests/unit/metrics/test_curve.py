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


def test_sort_with_ids_orders_scores_and_carries_ids() -> None:
    from zsad_bench.metrics.curve import _sort_packed_torch, sort_with_ids

    special = torch.tensor([0.5, -0.0, 0.0, -1.5, 3.0, float("inf"), -float("inf"), 1e-40, -1e-40, 0.5])
    scores = torch.cat([special, torch.randn(500, generator=torch.Generator().manual_seed(0))])
    ids = torch.randint(0, 2**32 - 1, (scores.numel(),), generator=torch.Generator().manual_seed(1))
    for sorter in (sort_with_ids, _sort_packed_torch):  # numpy path on CPU, and the torch (CUDA) path
        sorted_scores, sorted_ids = sorter(scores, ids)
        assert sorted_scores.dtype == torch.float32
        assert torch.equal(sorted_scores, torch.sort(scores + 0.0, descending=True).values)
        # every (score, id) pair survives the sort
        pairs = sorted(zip((scores + 0.0).tolist(), ids.tolist(), strict=True), reverse=True)
        got = sorted(zip(sorted_scores.tolist(), sorted_ids.tolist(), strict=True), reverse=True)
        assert got == pairs


def test_sort_with_ids_float64_falls_back_to_argsort() -> None:
    from zsad_bench.metrics.curve import sort_with_ids

    scores = torch.tensor([0.1, 0.3, 0.2], dtype=torch.float64)
    sorted_scores, sorted_ids = sort_with_ids(scores, torch.tensor([7, 8, 9]))
    assert sorted_scores.tolist() == [0.3, 0.2, 0.1] and sorted_ids.tolist() == [8, 9, 7]
