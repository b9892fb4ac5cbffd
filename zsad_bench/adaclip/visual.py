"""AdaCLIP's prompted image pass (``AdaCLIP.encode_image`` with ``PromptLayer.forward_visual``).

Before block 1 the ``length`` prompt tokens are **appended** after the CLS and patch tokens; before blocks
2..depth they **replace** the last ``length`` tokens (the previous block's prompt outputs); after that they
ride along to the last block. The tokens kept after a layer are the stream with the prompt tokens removed;
the pooled feature is ``ln_post(CLS) @ proj`` of the last block (the prompt tokens are in the attention of
every block, so they change it). Without visual prompts (branch ``L``) this is the plain pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zsad_bench.adaclip.prompts import round_prompt
from zsad_bench.backbones.clip import ClipBackbone

__all__ = ["prompted_image_pass"]


def prompted_image_pass(
    backbone: ClipBackbone,
    images: torch.Tensor,
    contexts: Sequence[torch.Tensor] | None,
    layers: Sequence[int],
    half: bool = True,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """``pooled`` ``(B, D)`` and per 1-based layer the ``(B, 1 + N, W)`` tokens after it, prompts removed.

    contexts: per block ``d < depth`` the ``(B or 1, length, W)`` visual prompts, or None (no prompts).
    """
    x = backbone.embed(images)
    length = 0 if not contexts else contexts[0].shape[1]
    wanted = set(layers)
    kept: dict[int, torch.Tensor] = {}
    for index in range(1, backbone.num_layers + 1):
        if contexts and index <= len(contexts):
            prompt = round_prompt(contexts[index - 1], x, half).expand(len(x), -1, -1)
            body = x if index == 1 else x[:, :-length]
            x = torch.cat([body, prompt], dim=1)
        x = backbone.run_block(index, x)
        if index in wanted:
            kept[index] = x[:, : x.shape[1] - length]
    return backbone.project(x[:, 0]), kept
