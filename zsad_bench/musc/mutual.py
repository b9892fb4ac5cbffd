"""Mutual scoring (MSM, Li et al., ICLR 2024, section 3.3), computed in chunks of images.

Official ``models/modules/_MSM.py`` (``MSM`` with ``compute_scores_fast``; reference/musc.md "Mutual
scoring"): for image ``i`` of a subset of ``n`` images with features ``Z`` ``(n, L, C)`` (LNAMD output,
unit tokens), every patch of ``i`` takes its smallest Euclidean distance (``torch.cdist``, float32) to the
patches of each other image ``j``, giving ``(L, n - 1)`` values; the patch's score is the mean of the
``k = int((n - 1) * topmin_max)`` smallest of them (``topmin_max = 0.3``), in float32, then float64.

Departure (guard): for ``n <= 4`` the official ``k`` is 0 and the mean of nothing is NaN; here ``k`` is
at least 1 (the nearest other image), so 2-4 images still give finite scores. A subset of one image has
no other image to compare with; the caller refuses it (``model.py``).

Memory: the official code holds the ``(L, (n - 1) L)`` distances of one query image at once (22.5 GB for
Br35H's 3,000 images at L = 1369). Here ``query`` images are scored against ``reference`` images at a
time, so the buffers are ``chunk_bytes(query, reference, n, L, C)`` whatever ``n`` is; ``chunk_sizes``
picks the largest chunks within a budget. Chunking changes which distances share a matrix product, not
their values (each distance is its own dot product), so chunked and unchunked scores agree to rounding.
"""

from __future__ import annotations

import torch

__all__ = ["chunk_bytes", "chunk_sizes", "mutual_scores", "neighbours"]

FLOAT32 = 4


def neighbours(n: int, topmin_max: float) -> int:
    """How many of the ``n - 1`` other images' distances are averaged: ``int((n - 1) * topmin_max)``,
    at least 1 (the official value is 0, a NaN mean, for ``n <= 4`` at 0.3)."""
    return max(1, int((n - 1) * topmin_max))


def chunk_bytes(query: int, reference: int, n: int, tokens: int, channels: int) -> int:
    """Bytes of the buffers one chunk step holds: the ``(query L, reference L)`` distances, cdist's padded
    operands ``(query + reference) L (C + 2)``, their per-image minima ``(query L, reference)`` and the
    ``(query, L, n)`` minima of the query images against the whole subset, all float32."""
    pairs = query * reference * tokens * tokens
    operands = (query + reference) * tokens * (channels + 2)
    return FLOAT32 * (pairs + operands + query * tokens * reference + query * tokens * n)


def chunk_sizes(n: int, tokens: int, channels: int, budget_bytes: int) -> tuple[int, int]:
    """``(query, reference)`` image counts per step: the most reference images (up to ``n``) for one
    query image within ``budget_bytes``, then the most query images; at least ``(1, 1)``."""
    reference = 1
    while reference < n and chunk_bytes(1, reference + 1, n, tokens, channels) <= budget_bytes:
        reference += 1
    query = 1
    while query < n and chunk_bytes(query + 1, reference, n, tokens, channels) <= budget_bytes:
        query += 1
    return query, reference


def mutual_scores(
    z: torch.Tensor, topmin_max: float = 0.3, query: int | None = None, reference: int | None = None
) -> torch.Tensor:
    """Per-patch mutual scores ``(n, L)`` float64 of the features ``z`` ``(n, L, C)`` of one subset.

    ``query`` and ``reference`` images are compared per step (default: all ``n``, no chunking).
    """
    n, tokens, channels = z.shape
    if n < 2:
        raise ValueError(f"mutual scoring needs at least 2 images, got {n}")
    query, reference = query or n, reference or n
    k = neighbours(n, topmin_max)
    scores = torch.empty(n, tokens, dtype=torch.float64, device=z.device)
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        for q0 in range(0, n, query):
            q1 = min(q0 + query, n)
            rows = z[q0:q1].reshape(-1, channels)
            minima = torch.empty(q1 - q0, tokens, n, dtype=torch.float32, device=z.device)
            for r0 in range(0, n, reference):
                r1 = min(r0 + reference, n)
                distances = torch.cdist(rows, z[r0:r1].reshape(-1, channels))  # (q L, r L)
                minima[:, :, r0:r1] = distances.view(q1 - q0, tokens, r1 - r0, tokens).amin(dim=-1)
                del distances
            # an image is not its own neighbour: its column never reaches the k smallest (k <= n - 1)
            own = torch.arange(q0, q1, device=z.device)
            minima[torch.arange(q1 - q0, device=z.device), :, own] = float("inf")
            smallest = minima.topk(k, dim=-1, largest=False).values  # (q, L, k)
            scores[q0:q1] = smallest.mean(dim=-1).double()
    return scores
