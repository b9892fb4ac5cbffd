"""AnomalyCLIP's object-agnostic prompt learner (reference/anomalyclip.md section 2).

Two prompts, "[12 learned] object." and "[12 learned] damaged object.", with separate learned contexts,
plus 8 sets of 4 learned "deep" tokens that overwrite token positions 1-4 at the input of text blocks
2-9. Parameter names and shapes follow the official ``AnomalyCLIP_PromptLearner`` so its checkpoints load
directly (section 7).
"""

from __future__ import annotations

import torch
from torch import nn

from zsad_bench.backbones.clip import ClipBackbone
from zsad_bench.ops.learned_prompts import context_prompts, encode_embedded_prompts, frozen_parts

__all__ = ["PromptLearner"]

STATES = ("{}", "damaged {}")  # normal, abnormal (prompt_ensemble.py:103-109)
OBJECT = "object"  # one class name for every object: the prompts are object-agnostic


class PromptLearner(nn.Module):
    """Learned text prompts; ``encode(backbone)`` gives the ``(2, D)`` [normal, abnormal] text features."""

    def __init__(self, backbone: ClipBackbone, n_ctx: int = 12, depth: int = 9, t_n_ctx: int = 4) -> None:
        super().__init__()
        if not 1 <= depth <= backbone.num_text_layers or t_n_ctx > n_ctx:
            raise ValueError(
                f"depth {depth} / t_n_ctx {t_n_ctx} do not fit a {backbone.num_text_layers}-layer text tower"
            )
        self.n_ctx, self.depth, self.t_n_ctx = n_ctx, depth, t_n_ctx
        width = backbone.token_embedding.embedding_dim
        # "X X ... X object." -- the X placeholders are replaced by the learned context (section 2.1)
        prompts = context_prompts(n_ctx, [state.format(OBJECT) + "." for state in STATES])
        token_ids, prefix, suffix = frozen_parts(backbone, prompts, n_ctx)
        # Fixed parts, re-derived from the frozen token embedding (padding rows are token 0's embedding).
        self.register_buffer("token_ids", token_ids, persistent=False)
        self.register_buffer("token_prefix", prefix, persistent=False)
        self.register_buffer("token_suffix", suffix, persistent=False)
        # N(0, 0.02), no initialisation from words (the ctx_init branch is dead in the official code)
        self.ctx_pos = nn.Parameter(torch.empty(1, 1, n_ctx, width).normal_(std=0.02))
        self.ctx_neg = nn.Parameter(torch.empty(1, 1, n_ctx, width).normal_(std=0.02))
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(t_n_ctx, width).normal_(std=0.02)) for _ in range(depth - 1)]
        )

    def embeddings(self) -> torch.Tensor:
        """``(2, T, W)`` input embeddings: [SOS | learned context | words, EOS, padding]."""
        context = torch.cat([self.ctx_pos[0], self.ctx_neg[0]], dim=0)
        return torch.cat([self.token_prefix, context.to(self.token_prefix.dtype), self.token_suffix], dim=1)

    def encode(self, backbone: ClipBackbone) -> torch.Tensor:
        """Text features ``(2, D)`` (not normalised) through open_clip's text tower, block by block.

        Before text block ``l`` for l = 2..depth, positions 1..t_n_ctx are overwritten with the deep
        tokens of that layer (a prefix overwrite, not a concatenation: issues #21 and #75).
        """
        return encode_embedded_prompts(backbone, self.embeddings(), self.token_ids, self.insert_deep_tokens)

    def insert_deep_tokens(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """The ``(2, T, W)`` stream entering text block ``layer`` with layer's deep tokens at 1..t_n_ctx."""
        if not 2 <= layer <= self.depth:
            return x
        # The official code casts the deep tokens to fp16 before concatenating them into the fp32 stream
        # (AnomalyCLIP.py:246): they are rounded to half precision on every forward pass.
        deep = self.compound_prompts_text[layer - 2].to(torch.float16).to(x.dtype)
        deep = deep.unsqueeze(0).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :1], deep, x[:, 1 + self.t_n_ctx :]], dim=1)
