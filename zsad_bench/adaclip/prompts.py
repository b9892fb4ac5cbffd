"""AdaCLIP's hybrid learnable prompts and the prompted text encoding (``adaclip.py`` L11-230).

- ``StaticPrompts``: per block ``d < depth`` a learned ``(length, C)`` prompt shared by all images
  (``PromptLayer.static_prompts``, N(0, 0.02)).
- ``ProjectLayer``: a list of linear heads (``ProjectLayer.head``): the patch heads (one per layer), the CLS
  head, and the dynamic prompt generators (one head per prompt token, mapping the plain pass's pooled
  feature ``(B, D)`` to a ``(B, length, C)`` prompt; the same dynamic prompt serves every block).
- ``block_contexts``: the prompt entering block ``d``: dynamic + static[d] (SD), static[d] (S) or dynamic (D).
- Text: 7 normal and 5 abnormal states x 4 templates (``TextEmbebddingLayer``); before text blocks 2..depth
  (1-based) positions 1..length after the start token are overwritten by that block's prompt -- block 1
  never takes one, so static prompt 0 of the text branch is learned nowhere but exists in the checkpoint.
  Sentence embeddings are normalised, averaged per state group and normalised again.

The official casts every prompt with ``.half()`` before it joins the float32 stream (rounding to float16;
~7e-4 on a score); ``half`` keeps that, ``half=False`` turns it off.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zsad_bench.backbones.clip import ClipBackbone
from zsad_bench.ops.learned_prompts import encode_embedded_prompts
from zsad_bench.ops.prompts import fill_prompts

__all__ = [
    "ABNORMAL_STATES",
    "NORMAL_STATES",
    "TEMPLATES",
    "ProjectLayer",
    "StaticPrompts",
    "block_contexts",
    "class_sentences",
    "encode_class_text",
    "round_prompt",
]

# TextEmbebddingLayer.__init__ (adaclip.py L150-160)
NORMAL_STATES = (
    "{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw", "{} without defect",
    "{} without damage",
)  # fmt: skip
ABNORMAL_STATES = ("damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage")
TEMPLATES = (
    "a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.",
)  # fmt: skip


class StaticPrompts(nn.Module):
    """``static_prompts.{d}``: ``(length, channel)`` learned prompts of blocks ``d = 0..depth-1``."""

    def __init__(self, channel: int, length: int, depth: int) -> None:
        super().__init__()
        self.static_prompts = nn.ParameterList(
            [nn.Parameter(torch.empty(length, channel).normal_(std=0.02)) for _ in range(depth)]
        )


class ProjectLayer(nn.Module):
    """``head.{i}``: ``replicas`` linear maps ``in_dim -> out_dim`` (with bias)."""

    def __init__(self, in_dim: int, out_dim: int, replicas: int) -> None:
        super().__init__()
        self.head = nn.ModuleList(nn.Linear(in_dim, out_dim) for _ in range(replicas))

    def stacked(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in) -> (B, replicas, out)``: every head on the same input (the prompt generators)."""
        return torch.stack([head(x) for head in self.head], dim=1)


def block_contexts(
    static: StaticPrompts | None, dynamic: torch.Tensor | None, depth: int
) -> list[torch.Tensor]:
    """Per block ``d < depth`` the prompt ``(B or 1, length, C)``: dynamic + static[d], or either alone."""
    if static is None and dynamic is None:
        raise ValueError("prompts need a static or a dynamic part")
    contexts = []
    for d in range(depth):
        fixed = None if static is None else static.static_prompts[d].unsqueeze(0)
        if fixed is None or dynamic is None:
            contexts.append(dynamic if fixed is None else fixed)
        else:
            contexts.append(dynamic + fixed)  # the official order of the sum
    return contexts


def round_prompt(context: torch.Tensor, like: torch.Tensor, half: bool) -> torch.Tensor:
    """The prompt as it joins the stream ``like``: through float16 first when ``half`` (the official
    ``.half()``)."""
    return (context.half() if half else context).to(like.dtype)


def class_sentences(word: str) -> tuple[list[str], list[str]]:
    """The 28 normal and 20 abnormal sentences of one class word, state-major as the official loop."""
    return fill_prompts(NORMAL_STATES, TEMPLATES, word), fill_prompts(ABNORMAL_STATES, TEMPLATES, word)


def encode_class_text(
    backbone: ClipBackbone,
    words: Sequence[str],
    contexts: Sequence[torch.Tensor] | None,
    half: bool = True,
) -> torch.Tensor:
    """``(G, 2, D)`` L2-normalised [normal, abnormal] text features, one row per entry of ``words``.

    contexts: per block ``d`` the ``(G or 1, length, W)`` prompts (``block_contexts``; row g prompts the
    sentences of ``words[g]``), or None for the plain text tower. Differentiable in the contexts.
    """
    groups = [class_sentences(word) for word in words]
    n_normal, n_abnormal = len(groups[0][0]), len(groups[0][1])
    sentences = [s for normal, abnormal in groups for s in (*normal, *abnormal)]
    token_ids = backbone.tokenize(sentences)
    per_row = n_normal + n_abnormal
    with torch.no_grad():
        embeddings = backbone.token_embedding(token_ids).float()

    def insert(layer: int, x: torch.Tensor) -> torch.Tensor:
        if contexts is None or not 2 <= layer <= len(contexts):
            return x
        context = contexts[layer - 1]
        context = context.expand(len(words), -1, -1).repeat_interleave(per_row, dim=0)
        length = context.shape[1]
        return torch.cat([x[:, :1], round_prompt(context, x, half), x[:, 1 + length :]], dim=1)

    features = encode_embedded_prompts(backbone, embeddings, token_ids, insert).float()
    features = F.normalize(features, dim=-1).reshape(len(words), per_row, -1)
    normal = F.normalize(features[:, :n_normal].mean(dim=1), dim=-1)
    abnormal = F.normalize(features[:, n_normal:].mean(dim=1), dim=-1)
    return torch.stack([normal, abnormal], dim=1)
