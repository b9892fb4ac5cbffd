"""Positional-embedding resize for ViTs evaluated at another input size than they were trained at."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["INTERPOLATION_MODES", "resize_pos_embed"]

# the modes ``resize_pos_embed`` accepts (``F.interpolate`` on a 2-D grid); detectors offer them as choices
INTERPOLATION_MODES = ("bilinear", "bicubic", "nearest", "area")


def resize_pos_embed(
    pos: torch.Tensor, grid: int, mode: str = "bilinear", antialias: bool = False
) -> torch.Tensor:
    """Interpolate a ``(1 + g*g, W)`` positional embedding to ``(1 + grid*grid, W)``.

    The class-token row is kept as it is; the ``g x g`` patch grid is resized with ``mode``
    (``align_corners=False``). The methods disagree on the mode, so callers must name it: AnomalyCLIP
    resizes bilinearly without antialias (reference/anomalyclip.md section 1.4), APRIL-GAN bicubically with
    antialias (reference/baselines.md section 3.1).
    """
    old = math.isqrt(pos.shape[0] - 1)
    if old * old + 1 != pos.shape[0]:
        raise ValueError(f"positional embedding of {pos.shape[0]} rows is not 1 + a square grid")
    if old == grid:
        return pos.clone()
    cls_row, patches = pos[:1], pos[1:]
    patches = patches.reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    if antialias:
        kwargs["antialias"] = True
    patches = F.interpolate(patches, size=(grid, grid), mode=mode, **kwargs)
    patches = patches.permute(0, 2, 3, 1).reshape(grid * grid, -1).to(pos.dtype)
    return torch.cat([cls_row, patches], dim=0)
