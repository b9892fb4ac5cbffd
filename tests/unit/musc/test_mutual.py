"""Mutual scoring against a float64 loop over images and patches, chunked against unchunked, the n <= 4
guard and the chunk sizes' memory budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsad_bench.musc.mutual import chunk_bytes, chunk_sizes, mutual_scores, neighbours


def slow_mutual(z: np.ndarray, fraction: float) -> np.ndarray:
    """For each image and patch: the nearest patch of every other image, mean of the k nearest images."""
    n, length, _ = z.shape
    k = max(1, int((n - 1) * fraction))
    out = np.zeros((n, length))
    for i in range(n):
        for p in range(length):
            nearest = []
            for j in range(n):
                if j == i:
                    continue
                nearest.append(min(np.sqrt(((z[i, p] - z[j, q]) ** 2).sum()) for q in range(length)))
            out[i, p] = np.mean(sorted(nearest)[:k])
    return out


def _features(n: int, length: int = 9, channels: int = 6, seed: int = 0) -> torch.Tensor:
    z = torch.randn(n, length, channels, generator=torch.Generator().manual_seed(seed))
    return F.normalize(z, dim=-1)


@pytest.mark.parametrize("n", [2, 4, 5, 11])
def test_mutual_scores_match_a_float64_loop(n):
    z = _features(n, seed=n)
    got = mutual_scores(z, 0.3)
    assert got.dtype == torch.float64 and got.shape == (n, 9)
    np.testing.assert_allclose(got.numpy(), slow_mutual(z.double().numpy(), 0.3), atol=1e-6)


def test_the_neighbour_count_is_the_official_one_with_the_small_class_guard():
    # int((n - 1) * 0.3): n = 11 -> 3, n = 5 or 6 -> 1; officially 0 (a NaN mean) for n <= 4, here 1
    assert [neighbours(n, 0.3) for n in (2, 3, 4, 5, 6, 7, 11, 12)] == [1, 1, 1, 1, 1, 1, 3, 3]
    assert neighbours(3000, 0.3) == 899
    assert torch.isfinite(mutual_scores(_features(3), 0.3)).all()


@pytest.mark.parametrize(("query", "reference"), [(1, 1), (2, 3), (3, 7), (7, 2)])
def test_chunked_scores_equal_unchunked(query, reference):
    z = _features(7, length=16, channels=8, seed=3)
    whole = mutual_scores(z, 0.5)
    np.testing.assert_allclose(mutual_scores(z, 0.5, query, reference).numpy(), whole.numpy(), atol=1e-6)


def test_one_image_cannot_be_scored():
    with pytest.raises(ValueError, match="at least 2 images"):
        mutual_scores(_features(1), 0.3)


def test_chunk_sizes_stay_within_the_budget_and_use_it():
    n, length, channels = 3000, 1369, 1024
    budget = 4096 << 20
    query, reference = chunk_sizes(n, length, channels, budget)
    assert chunk_bytes(query, reference, n, length, channels) <= budget
    assert chunk_bytes(query, reference + 1, n, length, channels) > budget  # the largest reference chunk
    assert query == 1 and 1 < reference < n
    # a small class fits whole: every reference image at once, and several query images
    q_small, r_small = chunk_sizes(16, 64, 32, budget)
    assert r_small == 16 and q_small == 16
    # a budget below one pair still makes progress, one image against one image
    assert chunk_sizes(n, length, channels, 1) == (1, 1)


def test_chunk_bytes_counts_the_distance_matrix():
    # one query against one reference image of 4 tokens, 2 channels, in a class of 3: 4 x 4 distances,
    # (1 + 1) x 4 x (2 + 2) padded operands, 4 x 1 minima, 4 x 3 minima against the whole class
    assert chunk_bytes(1, 1, 3, 4, 2) == 4 * (16 + 32 + 4 + 12)
