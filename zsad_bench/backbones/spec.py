"""Backbone specs: ``MODEL[:PRETRAINED]`` strings and the tiny random-weight test configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = [
    "DEFAULT_TAGS",
    "RANDOM",
    "TINY_CONFIG",
    "TINY_NAME",
    "TINY_PATCHES",
    "BackboneSpec",
    "fit_tiny",
    "parse_backbone",
    "tiny_config",
]

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
# It comes in one patch size per family of the real backbones, each with an 8 x 8 native grid:
# ``test-tiny`` (patch 8, 64 px) and the ViT-L/14 and ViT-B/16 families, so that a detector's default
# input size fits one of them (518 = 14 x 37, 240 = 8 x 30).
TINY_PATCHES: dict[str, int] = {TINY_NAME: 8, f"{TINY_NAME}-14": 14, f"{TINY_NAME}-16": 16}


def tiny_config(name: str = TINY_NAME) -> dict[str, Any]:
    """The open_clip ``CLIP(**config)`` keywords of the tiny backbone ``name`` (a ``TINY_PATCHES`` key)."""
    patch = TINY_PATCHES[name]
    return {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": 8 * patch,
            "layers": 24,
            "width": 32,
            "head_width": 16,
            "patch_size": patch,
        },
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 12},
    }


TINY_CONFIG: dict[str, Any] = tiny_config(TINY_NAME)


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
    if model in TINY_PATCHES:
        if sep and pretrained not in ("", RANDOM):
            raise ZsadError(f"'{model}' only exists with random weights; use '{model}'")
        return BackboneSpec(model, RANDOM)
    if not pretrained:
        if model not in DEFAULT_TAGS:
            raise ZsadError(
                f"backbone '{model}' needs its weights named: use {model}:TAG, {model}:/path/to/weights.pt "
                f"or {model}:{RANDOM}"
            )
        pretrained = DEFAULT_TAGS[model]
    return BackboneSpec(model, pretrained)


def fit_tiny(spec: BackboneSpec, image_size: int | None) -> BackboneSpec:
    """``test-tiny`` in the patch size that divides ``image_size``: 8 when it can (64 px as always), else
    14 or 16 (a detector's default 518 px takes the ViT-L/14 family). Any other spec is returned as is,
    and so is ``test-tiny`` when no patch size fits (the image-size check then names the valid ones)."""
    if spec.model != TINY_NAME or not image_size:
        return spec
    for name, patch in TINY_PATCHES.items():
        if image_size % patch == 0:
            return BackboneSpec(name, RANDOM)
    return spec
