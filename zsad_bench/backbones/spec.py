"""Backbone specs: ``MODEL[:PRETRAINED]`` strings and the tiny random-weight test configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = ["DEFAULT_TAGS", "RANDOM", "TINY_CONFIG", "TINY_NAME", "BackboneSpec", "parse_backbone"]

TINY_NAME = "test-tiny"
RANDOM = "random"

# The weights each architecture gets when the spec names none: the ones the papers used.
DEFAULT_TAGS = {
    "ViT-L-14-336-quickgelu": "openai",  # AnomalyCLIP, CoOp, CLIP, CLIP-AC
    "ViT-L-14-336": "openai",  # APRIL-GAN (GELU quirk, reference/baselines.md section 3.1)
    "ViT-B-16-plus-240": "laion400m_e31",  # WinCLIP
}

# A CLIP small enough that a batch of 8 images at 64 px runs in a few milliseconds on a CPU, with the
# layer counts of ViT-L/14 (24 visual, 12 text blocks) so that every method's default layer indices
# (6/12/18/24, DPAM from block 6) exist. Random weights only: numbers made with it mean nothing.
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 24, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 12},
}


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed ``MODEL[:PRETRAINED]``: an open_clip architecture and where its weights come from.

    pretrained: an open_clip tag (``openai``), a local weights file, or ``random``.
    """

    model: str
    pretrained: str

    @property
    def random_weights(self) -> bool:
        return self.pretrained == RANDOM

    def __str__(self) -> str:
        return f"{self.model}:{self.pretrained}"


def parse_backbone(spec: str) -> BackboneSpec:
    """``"ViT-L-14-336-quickgelu:openai"`` -> BackboneSpec; the tag defaults to the papers' weights."""
    model, sep, pretrained = spec.strip().partition(":")
    if not model:
        raise ZsadError(f"backbone '{spec}' names no model; use MODEL[:PRETRAINED], e.g. ViT-L-14-336:openai")
    if model == TINY_NAME:
        if sep and pretrained not in ("", RANDOM):
            raise ZsadError(f"'{TINY_NAME}' only exists with random weights; use '{TINY_NAME}'")
        return BackboneSpec(TINY_NAME, RANDOM)
    if not pretrained:
        if model not in DEFAULT_TAGS:
            raise ZsadError(
                f"backbone '{model}' needs its weights named: use {model}:TAG, {model}:/path/to/weights.pt "
                f"or {model}:{RANDOM}"
            )
        pretrained = DEFAULT_TAGS[model]
    return BackboneSpec(model, pretrained)
