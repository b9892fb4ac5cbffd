"""The dual-path ("V-V attention") forward of a CLIP ViT, as AnomalyCLIP's DPAM uses it.

From block ``dual_from`` on, every block also computes V-V attention, softmax(v vᵀ·scale)·v, through the
block's own output projection, on the same normalised input as the original attention; the V-V stream
accumulates only these outputs (no MLP) and never feeds back into the original stream
(reference/anomalyclip.md section 3.3). It is a second computation over the same weights: no module of
the backbone is replaced. Both attentions run through ``scaled_dot_product_attention`` (fused kernels on
GPU instead of materialising two L×L matrices per head).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zsad_bench.backbones.attention import project_out, qkv
from zsad_bench.backbones.clip import ClipBackbone

__all__ = ["DualPathFeatures", "encode_image_dual_path"]


@dataclass
class DualPathFeatures:
    """cls_tokens: ``(B, W)`` original-path class token after the last block (no ``ln_post``).
    vv_tokens: 1-based block -> ``(B, L, W)`` V-V stream after that block (the plain stream before
    ``dual_from``)."""

    cls_tokens: torch.Tensor
    vv_tokens: dict[int, torch.Tensor]


def dual_attention(block: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(original attention, V-V attention) of one block on its normalised input ``z`` ``(B, L, W)``,
    each through the block's output projection (AnomalyCLIP.py:57-94 shares q, k, v and ``proj``)."""
    q, k, v = qkv(block.attn, z)
    original = F.scaled_dot_product_attention(q, k, v)
    vv = F.scaled_dot_product_attention(v, v, v)
    return project_out(block.attn, original), project_out(block.attn, vv)


def encode_image_dual_path(
    backbone: ClipBackbone, images: torch.Tensor, dual_from: int, layers: Sequence[int]
) -> DualPathFeatures:
    """Run the image tower with the V-V path in blocks ``dual_from``..last, keeping it after ``layers``.

    Both paths read the normalised state of the original path (``z = ln_1(o)``); the original path is
    standard CLIP (``o += attn(z); o += mlp(ln_2(o))``), the V-V path is ``s += vv_attn(z)`` starting
    from the stream before block ``dual_from`` (reference/anomalyclip.md section 3.3).
    """
    wanted = set(layers)
    n = backbone.num_layers
    if not 1 <= dual_from <= n or any(not 1 <= i <= n for i in wanted):
        raise ValueError(f"dual_from {dual_from} and layers {sorted(wanted)} must lie in 1..{n}")
    blocks = backbone.blocks()
    o = backbone.embed(images)
    s = o
    kept: dict[int, torch.Tensor] = {}
    for index in range(1, n + 1):
        if index < dual_from:
            o = backbone.run_block(index, o)
            s = o
        else:
            block = blocks[index - 1]
            original, vv = dual_attention(block, block.ln_1(o))
            o = o + block.ls_1(original)
            o = o + block.ls_2(block.mlp(block.ln_2(o)))
            s = s + vv
        if index in wanted:
            kept[index] = s
    return DualPathFeatures(cls_tokens=o[:, 0], vv_tokens=kept)
