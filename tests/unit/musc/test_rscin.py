"""RsCIN against a float64 loop over images and neighbours, and its guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsad_bench.musc.rscin import normalise_min_max, rscin


def slow_rscin(scores: np.ndarray, cls: np.ndarray, k_list: list[int]) -> np.ndarray:
    s = (scores - scores.min()) / (scores.max() - scores.min())
    n = len(s)
    refined = np.zeros((len(k_list), n))
    for a, k in enumerate(k_list):
        for i in range(n):
            similarity = [float(cls[i] @ cls[j]) for j in range(n)]
            kept = sorted(range(n), key=lambda j: -similarity[j])[: min(k, n)]
            total = sum(similarity[j] for j in kept)
            refined[a, i] = sum(similarity[j] / total * s[j] for j in kept)
    return refined.mean(axis=0)


def _inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    cls = F.normalize(torch.randn(n, 5, generator=g) + 2.0, dim=-1)  # positive similarities, like CLIP's
    return torch.rand(n, generator=g, dtype=torch.float64), cls


@pytest.mark.parametrize("k_list", [[1, 2, 3], [1, 8, 9], [4]])
def test_rscin_matches_a_float64_loop(k_list):
    scores, cls = _inputs(12)
    got = rscin(scores, cls, k_list)
    assert got.dtype == torch.float32 and got.shape == (12,)
    np.testing.assert_allclose(
        got.numpy(), slow_rscin(scores.numpy(), cls.double().numpy(), k_list), atol=1e-6
    )


def test_k_one_keeps_only_the_image_itself():
    scores, cls = _inputs(6)
    np.testing.assert_allclose(rscin(scores, cls, [1]).numpy(), normalise_min_max(scores).numpy(), atol=1e-7)


def test_k_larger_than_the_class_keeps_every_image():
    # the official topk(W, n - k) raises for k > n; here k is cut to n
    scores, cls = _inputs(3)
    np.testing.assert_allclose(rscin(scores, cls, [9]).numpy(), rscin(scores, cls, [3]).numpy())


def test_zero_in_k_list_turns_refinement_off():
    scores, cls = _inputs(5)
    assert torch.equal(rscin(scores, cls, [0]), scores.float())


def test_equal_scores_normalise_to_zero_instead_of_nan():
    _, cls = _inputs(4)
    assert torch.equal(rscin(torch.full((4,), 0.7, dtype=torch.float64), cls, [1, 2]), torch.zeros(4))
