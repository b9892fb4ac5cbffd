"""Anomaly-map operations shared by the methods and the harness, on any device, in float32.

``gaussian_blur`` reproduces ``scipy.ndimage.gaussian_filter`` (mode ``reflect``, ``truncate=4``) that
the official AnomalyCLIP test applies on the CPU (reference/metrics.md section 4.3); ``upsample`` is the
bilinear resize of maps to an evaluation size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur", "gaussian_kernel1d", "patch_probabilities", "upsample"]


def gaussian_kernel1d(
    sigma: float, truncate: float = 4.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """scipy's kernel: radius ``int(truncate * sigma + 0.5)``, ``exp(-x^2 / 2 sigma^2)`` normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype)


def _reflect_indices(n: int, radius: int, device: torch.device) -> torch.Tensor:
    # scipy 'reflect' = half-sample symmetric (d c b a | a b c d | d c b a), periodic with period 2n, so
    # it stays exact when the radius exceeds the map size; torch's 'reflect' pad drops the edge sample.
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def gaussian_blur(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian smoothing of ``(B, H, W)`` maps, equal to scipy's ``gaussian_filter``.

    Computed in float32 on the maps' device (agrees with scipy to ~1e-7). ``sigma <= 0`` is a no-op.
    """
    if sigma <= 0:
        return maps
    b, h, w = maps.shape
    kernel = gaussian_kernel1d(sigma, truncate, dtype=torch.float32).to(maps.device)
    radius = (kernel.numel() - 1) // 2
    x = maps.float()
    # rows (along W), then columns (along H), as two 1-D correlations
    x = x[:, :, _reflect_indices(w, radius, maps.device)]
    x = F.conv1d(x.reshape(b * h, 1, -1), kernel.view(1, 1, -1)).reshape(b, h, w)
    x = x[:, _reflect_indices(h, radius, maps.device), :]
    x = x.transpose(1, 2).reshape(b * w, 1, -1)
    x = F.conv1d(x, kernel.view(1, 1, -1)).reshape(b, w, h).transpose(1, 2)
    return x.contiguous()


def upsample(maps: torch.Tensor, size: int, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of ``(B, h, w)`` (or ``(B, C, h, w)``) maps to ``size x size``; float32."""
    squeeze = maps.ndim == 3
    x = maps.float().unsqueeze(1) if squeeze else maps.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=align_corners)
    return x.squeeze(1) if squeeze else x


def patch_probabilities(
    patch_embeddings: torch.Tensor, text_embeddings: torch.Tensor, temperature: float = 0.07
) -> torch.Tensor:
    """Per-patch softmax over text prototypes of cosine similarity / temperature.

    patch_embeddings: ``(B, N, D)`` for N = grid*grid patches (no CLS); text_embeddings: ``(B or 1, K, D)``
    or ``(K, D)``. Returns ``(B, K, grid, grid)`` probabilities, channel 1 = anomalous for K = 2.
    """
    patches = F.normalize(patch_embeddings.float(), dim=-1)
    text = F.normalize(text_embeddings.float(), dim=-1)
    if text.ndim == 2:
        text = text.unsqueeze(0)
    probs = (patches @ text.transpose(1, 2) / temperature).softmax(dim=-1)
    grid = math.isqrt(probs.shape[1])
    if grid * grid != probs.shape[1]:
        raise ValueError(f"{probs.shape[1]} patch tokens do not form a square grid")
    return probs.permute(0, 2, 1).reshape(probs.shape[0], -1, grid, grid)
