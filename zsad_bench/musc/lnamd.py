"""LNAMD: MuSc's local neighbourhood aggregation of patch tokens (Li et al., ICLR 2024, section 3.2).

The official ``models/modules/_LNAMD.py`` (``LNAMD._embed``, reference/musc.md "LNAMD") takes one layer's
raw residual tokens ``(B, 1 + L, C)`` and, per image:

1. drops the CLS token and lays the ``L = h * w`` patch tokens out as a ``(C, h, w)`` image;
2. normalises the whole ``(C, h, w)`` tensor with a fresh ``LayerNorm([C, h, w])`` (statistics over the
   image, not per token; eps 1e-5; its affine parameters are the identity);
3. for ``r > 1`` averages each channel over the ``r x r`` neighbourhood with zero padding ``(r - 1) / 2``
   (PatchCore's unfold + ``adaptive_avg_pool1d``: always divides by ``r * r``, also at the border);
   ``r = 1`` is the identity;
4. L2-normalises every token.

Here step 3 is ``avg_pool2d(count_include_pad=True)``, the same mean summed in another order (float32
rounding only). Everything runs in float32 with autocast off, whatever the tokens' dtype (under the
official fp16 autocast ``layer_norm`` is already an fp32 op, so its output and all later steps are fp32).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["LAYER_NORM_EPS", "lnamd"]

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, as the official fresh LayerNorm


def lnamd(tokens: torch.Tensor, r: int) -> torch.Tensor:
    """Aggregated, L2-normalised patch features ``(B, L, C)`` float32 of patch tokens ``(B, L, C)``.

    ``tokens`` holds the ``L = h * h`` patch tokens of one layer (CLS already dropped) in row-major grid
    order; ``r`` is the odd neighbourhood side (1, 3, 5 in the paper).
    """
    if r < 1 or r % 2 == 0:
        raise ValueError(f"the LNAMD neighbourhood r must be a positive odd integer, got {r}")
    b, n, c = tokens.shape
    grid = math.isqrt(n)
    if grid * grid != n:
        raise ValueError(f"{n} patch tokens do not form a square grid")
    with torch.autocast(device_type=tokens.device.type, enabled=False):
        x = tokens.float().transpose(1, 2).reshape(b, c, grid, grid)
        x = F.layer_norm(x, (c, grid, grid), eps=LAYER_NORM_EPS)
        if r > 1:
            x = F.avg_pool2d(x, r, stride=1, padding=(r - 1) // 2, count_include_pad=True)
        x = x.flatten(2).transpose(1, 2)  # (B, L, C)
        # the official ``features /= features.norm(dim=-1, keepdim=True)`` (no epsilon)
        return x / x.norm(dim=-1, keepdim=True)
