"""The ranking curve: one stable sort, tie blocks merged, int64 counts, float64 weight sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsad_bench.metrics import binary_curve


def test_curve_is_kept_at_the_tie_blocks_holding_positives() -> None:
    # Blocks, descending: 0.9 (1 pos, 1 neg), 0.5 (1 pos, 1 neg), 0.2 (1 neg: flat, dropped), 0.1 (1 pos).
    scores = torch.tensor([0.2, 0.9, 0.5, 0.5, 0.9, 0.1])
    labels = torch.tensor([False, True, True, False, False, True])
    weights = torch.tensor([0.0, 0.25, 0.5, 0.0, 0.0, 0.25])
    curve = binary_curve(scores, labels, weights)
    assert curve.thresholds.tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert curve.tp.tolist() == [1, 2, 3]
    assert curve.fp.tolist() == [1, 2, 3]
    assert curve.fp_above.tolist() == [0, 1, 3]
    assert curve.wsum is not None
    assert curve.wsum.tolist() == [0.25, 0.75, 1.0]
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


@pytest.fixture
def torch_backend(monkeypatch):
    """Run the curve with the torch code path (the one CUDA tensors take) on CPU tensors."""
    from zsad_bench.metrics import curve

    monkeypatch.setattr(curve, "_sorted_keys", curve._sorted_keys_torch)


def _cases():
    g = torch.Generator().manual_seed(0)
    special = torch.tensor([0.5, -0.0, 0.0, -1.5, 3.0, float("inf"), -float("inf"), 1e-40, -1e-40, 0.5])
    scores = torch.cat([special, torch.randn(400, generator=g), torch.randint(0, 5, (200,), generator=g) / 4])
    labels = torch.rand(scores.numel(), generator=g) < 0.3
    weights = torch.rand(scores.numel(), generator=g) * labels
    return scores, labels, weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_path_equals_numpy_path(torch_backend, dtype) -> None:
    from zsad_bench.metrics import curve as module

    scores, labels, weights = _cases()
    scores = scores.to(dtype)
    on_torch = binary_curve(scores, labels, weights)
    module._sorted_keys = module._sorted_keys_numpy  # undone by monkeypatch at teardown
    on_numpy = binary_curve(scores, labels, weights)
    for field in ("tp", "fp", "fp_above"):
        assert torch.equal(getattr(on_torch, field), getattr(on_numpy, field))
    assert torch.allclose(on_torch.wsum, on_numpy.wsum, rtol=0, atol=1e-12)
    assert torch.equal(on_torch.thresholds, on_numpy.thresholds)
    for method in ("auroc", "average_precision", "f1_max"):
        assert getattr(on_torch, method)() == pytest.approx(getattr(on_numpy, method)(), abs=1e-12)
    assert on_torch.weighted_auc(0.3) == pytest.approx(on_numpy.weighted_auc(0.3), abs=1e-12)
    t = np.linspace(-2, 2, 9).astype(np.float32 if dtype == torch.float32 else np.float64)
    for a, b in zip(on_torch.count_above(t), on_numpy.count_above(t), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_special_floats_sort_like_floats() -> None:
    # -0.0 and +0.0 are one tie block; denormals and infinities keep their order.
    scores = torch.tensor([0.0, -0.0, 1e-40, -1e-40, float("inf"), -float("inf")])
    labels = torch.tensor([True, False, True, False, True, False])
    curve = binary_curve(scores, labels)
    assert torch.equal(curve.thresholds, torch.tensor([float("inf"), 1e-40, 0.0]))
    assert curve.fp_above.tolist() == [0, 0, 0] and curve.fp.tolist() == [0, 0, 1]
