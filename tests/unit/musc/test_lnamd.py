"""LNAMD against a float64 loop over images, channels and grid cells (numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsad_bench.musc.lnamd import LAYER_NORM_EPS, lnamd


def slow_lnamd(tokens: np.ndarray, r: int) -> np.ndarray:
    """Per image: LayerNorm over the whole (C, h, w) tensor, r x r zero-padded window mean, unit tokens."""
    b, n, c = tokens.shape
    h = math.isqrt(n)
    out = np.zeros((b, n, c))
    half = (r - 1) // 2
    for image in range(b):
        grid = tokens[image].astype(np.float64).T.reshape(c, h, h)
        grid = (grid - grid.mean()) / np.sqrt(grid.var() + LAYER_NORM_EPS)
        pooled = np.zeros_like(grid)
        for i in range(h):
            for j in range(h):
                total = np.zeros(c)
                for di in range(-half, half + 1):
                    for dj in range(-half, half + 1):
                        if 0 <= i + di < h and 0 <= j + dj < h:
                            total += grid[:, i + di, j + dj]
                pooled[:, i, j] = total / (r * r)  # zero padding still counts in the divisor
        flat = pooled.reshape(c, n).T
        out[image] = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("r", [1, 3, 5])
def test_lnamd_matches_a_float64_loop(r):
    tokens = torch.randn(3, 36, 8, generator=torch.Generator().manual_seed(r)) * 3 + 1
    got = lnamd(tokens, r)
    assert got.dtype == torch.float32 and got.shape == (3, 36, 8)
    np.testing.assert_allclose(got.numpy(), slow_lnamd(tokens.numpy(), r), atol=2e-6)


def test_the_layer_norm_spans_the_whole_image_not_each_token():
    # scaling one token changes every other token's features (statistics over the image)
    tokens = torch.randn(1, 16, 4, generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[0, 0] *= 10
    assert not torch.allclose(lnamd(tokens, 1)[0, 5], lnamd(changed, 1)[0, 5])


def test_bfloat16_tokens_give_float32_features():
    tokens = torch.randn(2, 16, 4, generator=torch.Generator().manual_seed(1))
    got = lnamd(tokens.bfloat16(), 3)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), lnamd(tokens, 3).numpy(), atol=3e-2)


@pytest.mark.parametrize("r", [0, 2, -1])
def test_even_or_non_positive_neighbourhoods_are_refused(r):
    with pytest.raises(ValueError, match="positive odd"):
        lnamd(torch.zeros(1, 4, 2), r)


def test_a_non_square_token_count_is_refused():
    with pytest.raises(ValueError, match="square grid"):
        lnamd(torch.zeros(1, 5, 2), 1)
