"""Synthetic MVTec-like anomaly maps with exact masks, for the metric benchmarks (reference/metrics.md §7.2).

Per image (square, side ``res``): with probability 0.73 the image is defective and gets 1–3 elliptic
ground-truth regions, each covering 10^U(−4, −1) of the image, with aspect ratio U(0.2, 1), random centre
and orientation. The map is

    0.35 · (unit-variance Gaussian-smoothed noise, σ = res/64)
    + (GT blurred with σ = res/128) · U(0, 2.5) · signal, shifted by up to res/64 px (imperfect localisation)
    + a spurious blob in 30 % of the images (a false positive the metrics must rank),

smoothed with σ = 4·res/518 (AnomalyCLIP's σ = 4 at 518) and squashed into (0, 1) by a sigmoid centred at 1,
like a softmax probability. Maps are float32, masks bool.

Every image draws from its own ``numpy.random.Generator`` seeded with (seed, stream, index), so a map does
not depend on the batch size or on which images were drawn before it. ``map_batches`` yields batches, so
nothing larger than one batch (plus one image's float32 temporaries) is ever alive: MVTec scale (1725 maps
at 518²) streams in constant memory. Cost: ~40 ms per 518² map on one core (three scipy blurs dominate).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.ndimage
import torch
from torch import Tensor

__all__ = ["DEFECT_PROBABILITY", "map_batches", "synthetic_map"]

DEFECT_PROBABILITY = 0.73  # share of defective images in the MVTec AD test set (1258 / 1725)
SPURIOUS_PROBABILITY = 0.30
NOISE_WEIGHT = 0.35
MAX_AMPLITUDE = 2.5
SIGMOID_CENTRE = 1.0


def _window(cy: float, cx: float, hy: float, hx: float, res: int) -> tuple[int, int, int, int]:
    """Integer bounding box [y0, y1) × [x0, x1) of a centre ± half-extents, clipped to the image."""
    y0, y1 = max(0, int(np.floor(cy - hy))), min(res, int(np.ceil(cy + hy)) + 1)
    x0, x1 = max(0, int(np.floor(cx - hx))), min(res, int(np.ceil(cx + hx)) + 1)
    return y0, y1, x0, x1


def _paint_ellipse(mask: np.ndarray, rng: np.random.Generator) -> None:
    """Add one filled ellipse covering 10^U(−4, −1) of the image, at a random place and angle."""
    res = mask.shape[0]
    area = 10.0 ** rng.uniform(-4.0, -1.0) * res * res
    ratio = rng.uniform(0.2, 1.0)  # minor / major axis
    a = np.sqrt(area / (np.pi * ratio))
    b = ratio * a
    theta = rng.uniform(0.0, np.pi)
    cy, cx = rng.uniform(0.05 * res, 0.95 * res, size=2)
    c, s = np.cos(theta), np.sin(theta)
    hy, hx = np.sqrt((a * s) ** 2 + (b * c) ** 2), np.sqrt((a * c) ** 2 + (b * s) ** 2)
    y0, y1, x0, x1 = _window(cy, cx, hy, hx, res)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    u = (dx * c + dy * s) / a
    v = (dy * c - dx * s) / b
    inside = u * u + v * v <= 1.0
    if not inside.any():  # a tiny ellipse falling between pixel centres still marks its centre pixel
        mask[min(int(cy), res - 1), min(int(cx), res - 1)] = True
    mask[y0:y1, x0:x1] |= inside


def synthetic_map(rng: np.random.Generator, res: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One (map, mask) pair: ``(res, res)`` float32 scores in (0, 1) and ``(res, res)`` bool ground truth."""
    mask = np.zeros((res, res), dtype=bool)
    if rng.random() < DEFECT_PROBABILITY:
        for _ in range(rng.integers(1, 4)):
            _paint_ellipse(mask, rng)

    noise = scipy.ndimage.gaussian_filter(rng.standard_normal((res, res), dtype=np.float32), res / 64)
    score = noise * np.float32(NOISE_WEIGHT / noise.std())

    if mask.any():
        # Blur only the regions' bounding box plus scipy's kernel radius int(4σ + 0.5): the padding then
        # reflects zeros, so this equals blurring the whole image, at a fraction of the cost.
        sigma = res / 128
        margin = int(4 * sigma + 0.5) + 1
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        y0, y1 = max(0, rows[0] - margin), min(res, rows[-1] + 1 + margin)
        x0, x1 = max(0, cols[0] - margin), min(res, cols[-1] + 1 + margin)
        blurred = np.zeros((res, res), dtype=np.float32)
        blurred[y0:y1, x0:x1] = scipy.ndimage.gaussian_filter(mask[y0:y1, x0:x1].astype(np.float32), sigma)
        amplitude = np.float32(rng.uniform(0.0, MAX_AMPLITUDE) * signal)
        max_shift = max(1, res // 64)
        shift = tuple(int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
        score += amplitude * np.roll(blurred, shift, axis=(0, 1))

    if rng.random() < SPURIOUS_PROBABILITY:
        # A smooth false positive: an isotropic bump somewhere, unrelated to the ground truth.
        sigma = res * rng.uniform(0.01, 0.04)
        cy, cx = rng.uniform(0, res, size=2)
        y0, y1, x0, x1 = _window(cy, cx, 4 * sigma, 4 * sigma, res)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
        bump = np.exp((dy * dy + dx * dx) / np.float32(-2 * sigma * sigma))
        score[y0:y1, x0:x1] += np.float32(rng.uniform(0.5, 2.0)) * bump

    score = scipy.ndimage.gaussian_filter(score, 4 * res / 518)
    score = 1.0 / (1.0 + np.exp(np.float32(SIGMOID_CENTRE) - score))
    return score.astype(np.float32, copy=False), mask


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations/reflections of a square image."""
    return np.rot90(x[:, ::-1] if k >= 4 else x, k % 4)


def map_batches(
    n: int,
    res: int,
    seed: int = 0,
    stream: int = 0,
    batch_size: int = 16,
    signal: float = 1.0,
    distinct: int | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``n`` synthetic maps in batches: ``(B, res, res)`` float32 maps and ``(B, res, res)`` bool masks.

    seed, stream: image ``i`` uses ``default_rng([seed, stream, i])``; give each class its own stream.
    distinct: if set, only that many maps are generated (and cached, 5 B/px each); image ``i`` is map
        ``i % distinct`` under a rotation/reflection and a cyclic roll drawn from (seed, stream, i). Faster,
        but the maps are no longer independent draws.
    """
    if n < 0 or res < 8 or batch_size < 1:
        raise ValueError(f"need n >= 0, res >= 8 and batch_size >= 1; got n={n}, res={res}, {batch_size=}")
    if distinct is not None and distinct < 1:
        raise ValueError(f"distinct must be >= 1 or None, got {distinct}")
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        if distinct is None:
            return synthetic_map(np.random.default_rng([seed, stream, i]), res, signal)
        base = i % distinct
        if base not in cache:
            cache[base] = synthetic_map(np.random.default_rng([seed, stream, base]), res, signal)
        if i < distinct:
            return cache[base]
        rng = np.random.default_rng([seed, stream, i, 1])
        k = int(rng.integers(0, 8))
        shift = tuple(int(v) for v in rng.integers(0, res, size=2))
        score, mask = cache[base]
        return np.roll(_dihedral(score, k), shift, (0, 1)), np.roll(_dihedral(mask, k), shift, (0, 1))

    for start in range(0, n, batch_size):
        pairs = [one(i) for i in range(start, min(n, start + batch_size))]
        maps = torch.from_numpy(np.stack([p[0] for p in pairs]))
        masks = torch.from_numpy(np.stack([p[1] for p in pairs]))
        yield maps, masks
