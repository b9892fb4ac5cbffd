"""Self-attention of an open_clip block through ``scaled_dot_product_attention``.

``nn.MultiheadAttention`` in inference takes PyTorch's native fast path, which on the CPU (and for shapes
the fused kernels reject) materialises the L x L score matrix of every head: 1370 tokens at 518 px. Running
the block's own projections around ``F.scaled_dot_product_attention`` instead lets PyTorch pick a fused
kernel (flash or memory-efficient attention on GPUs, the flash kernel on CPUs) in both attention paths of
the image tower: the original Q-K attention and AnomalyCLIP's V-V attention (``dual_path``). In the text
tower, which runs forward and backward in every training step, it also takes fewer operations (each a
kernel launch on a GPU): 30 per block instead of 52 with ``nn.MultiheadAttention`` (counted at the
dispatcher: forward 12 instead of 15, backward 18 instead of 37).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["heads", "merge_heads", "plain_block", "project_out", "qkv", "run_plain_block", "self_attention"]


def heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(B, L, W)`` -> ``(B, heads, L, W / heads)``."""
    b, length, width = x.shape
    return x.view(b, length, n_heads, width // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, heads, L, d)`` -> ``(B, L, heads * d)``."""
    b, n_heads, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, n_heads * d)


def qkv(attn: nn.MultiheadAttention, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The block's packed input projection of ``z`` ``(B, L, W)``, split into per-head q, k, v."""
    q, k, v = F.linear(z, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    return heads(q, attn.num_heads), heads(k, attn.num_heads), heads(v, attn.num_heads)


def project_out(attn: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """Merge the heads of an attention output and apply the block's output projection."""
    return F.linear(merge_heads(x), attn.out_proj.weight, attn.out_proj.bias)


def self_attention(
    attn: nn.MultiheadAttention, z: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """What ``attn(z, z, z, need_weights=False, attn_mask=mask)[0]`` computes (no dropout), through SDPA.

    mask: ``(L, L)`` additive float mask (the text tower's causal mask) or None.
    """
    q, k, v = qkv(attn, z)
    if mask is not None:
        mask = mask.to(q.dtype)
    return project_out(attn, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def plain_block(block: nn.Module) -> bool:
    """True for open_clip's standard pre-norm ``ResidualAttentionBlock`` with packed self-attention: the
    blocks ``run_plain_block`` reproduces (anything else runs through its own ``forward``)."""
    attn = getattr(block, "attn", None)
    return (
        isinstance(attn, nn.MultiheadAttention)
        and attn._qkv_same_embed_dim
        and attn.in_proj_weight is not None
        and attn.bias_k is None
        and all(hasattr(block, name) for name in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2"))
        and not hasattr(block, "ln_1_kv")
        and not hasattr(block, "ln_attn")
    )


def run_plain_block(block: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``block(x, attn_mask=mask)`` for a batch-first ``(B, L, W)`` stream and a ``plain_block``."""
    x = x + block.ls_1(self_attention(block.attn, block.ln_1(x), mask))
    return x + block.ls_2(block.mlp(block.ln_2(x)))
