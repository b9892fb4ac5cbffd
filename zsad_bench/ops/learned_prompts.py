"""Learned prompt context (CoOp, AnomalyCLIP): prompts whose first words are trained vectors.

A prompt is written ``X X ... X <words>``; after tokenising, the token embeddings of the ``n_ctx``
placeholders are replaced by the learned context, so the text tower sees [SOS | context | words, EOS,
padding]. The frozen parts around the context are embedded once (``frozen_parts``);
``encode_embedded_prompts`` runs CLIP's text tower on the assembled embeddings block by block, so a method
can rewrite the stream before any block (AnomalyCLIP's deep tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from zsad_bench.backbones.clip import ClipBackbone

__all__ = ["PLACEHOLDER", "context_prompts", "encode_embedded_prompts", "frozen_parts"]

PLACEHOLDER = "X"  # CoOp's "X X ... X" prompt prefix; each X is one token of the tokenizers in use


def context_prompts(n_ctx: int, words: Sequence[str]) -> list[str]:
    """``"X X ... X <words>"`` for each entry of ``words``, with ``n_ctx`` placeholders."""
    prefix = " ".join([PLACEHOLDER] * n_ctx)
    return [f"{prefix} {w}" for w in words]


def frozen_parts(
    backbone: ClipBackbone, prompts: Sequence[str], n_ctx: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids ``(P, T)``, the SOS embedding ``(P, 1, W)`` and the embeddings after the context
    ``(P, T - 1 - n_ctx, W)`` (words, EOS, padding rows = token 0's embedding), float32, no gradient."""
    token_ids = backbone.tokenize(prompts)
    with torch.no_grad():
        embedded = backbone.token_embedding(token_ids).float()
    return token_ids, embedded[:, :1], embedded[:, 1 + n_ctx :]


def encode_embedded_prompts(
    backbone: ClipBackbone,
    embeddings: torch.Tensor,
    token_ids: torch.Tensor,
    before_block: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``(P, D)`` un-normalised text features of ``(P, T, W)`` input embeddings: CLIP's ``encode_text``
    after the token embedding (positional embedding, the causal blocks, ``ln_final``, the EOS token,
    the projection). ``before_block(layer, x)`` (1-based layer) may rewrite the stream before each block.
    """
    x = backbone.text_input(embeddings)
    for layer in range(1, backbone.num_text_layers + 1):
        if before_block is not None:
            x = before_block(layer, x)
        x = backbone.run_text_block(layer, x)
    return backbone.text_head(x, token_ids)
