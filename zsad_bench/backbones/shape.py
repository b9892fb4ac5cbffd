"""What a backbone spec implies before any weights are read: patch size, depth, text context.

Detectors check their options against it (an image size that is not a multiple of the patch size, a
layer index past the last block) before anything is loaded, so a bad ``-o`` value is one line naming the
option and a valid value, not a traceback from deep inside the first forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zsad_bench.backbones.spec import (
    TINY_NAME,
    TINY_PATCHES,
    BackboneSpec,
    fit_tiny,
    parse_backbone,
    tiny_config,
)
from zsad_bench.errors import ZsadError

__all__ = [
    "BackboneShape",
    "backbone_shape",
    "check_image_size",
    "check_layers",
    "fitted_shape",
    "is_weights_file",
]


@dataclass(frozen=True)
class BackboneShape:
    """The facts of an architecture the options depend on (the names ``ClipBackbone`` gives them too).

    native_size: the input side the positional embedding was trained at; num_layers: visual blocks;
    num_text_layers: text blocks; context_length: text tokens per prompt (SOS and EOS included).
    """

    spec: BackboneSpec
    patch_size: int
    native_size: int
    num_layers: int
    num_text_layers: int
    context_length: int


def is_weights_file(pretrained: str) -> bool:
    """True when the ``PRETRAINED`` part of a spec names a local file rather than a tag."""
    import os

    return os.path.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))


def backbone_shape(spec: str | BackboneSpec, image_size: int | None = None) -> BackboneShape:
    """The shape of ``spec`` from its open_clip configuration (no weights read, nothing downloaded).

    ``image_size`` picks the ``test-tiny`` family that fits it (``fit_tiny``). A name open_clip does not
    know, an architecture the adapter cannot run (not a ViT pooled on its class token) or a local weights
    file that does not exist is a ``ZsadError`` line.
    """
    spec = fit_tiny(parse_backbone(spec) if isinstance(spec, str) else spec, image_size)
    if spec.model in TINY_PATCHES:
        config = tiny_config(spec.model)
    else:
        import open_clip

        config = open_clip.get_model_config(spec.model)
        if config is None:
            raise ZsadError(
                f"unknown backbone architecture '{spec.model}'; see open_clip.list_models(), "
                f"e.g. ViT-L-14-336-quickgelu"
            )
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    patch, layers = vision.get("patch_size"), vision.get("layers")
    pooled_on_token = not vision.get("attentional_pool") and vision.get("pool_type", "tok") == "tok"
    if not isinstance(patch, int) or not isinstance(layers, int) or not pooled_on_token:
        raise ZsadError(
            f"backbone '{spec.model}' is not a ViT pooled on its class token, the only kind the detectors "
            f"run; use e.g. ViT-L-14-336-quickgelu or ViT-B-16-plus-240"
        )
    if is_weights_file(spec.pretrained):
        from pathlib import Path

        if not Path(spec.pretrained).is_file():
            raise ZsadError(f"weights file {spec.pretrained} for {spec.model} does not exist")
    native = vision.get("image_size", 224)
    return BackboneShape(
        spec=spec,
        patch_size=patch,
        native_size=int(native[0] if isinstance(native, (list, tuple)) else native),
        num_layers=layers,
        num_text_layers=int(text.get("layers", 12)),
        context_length=int(text.get("context_length", 77)),
    )


def check_image_size(shape: BackboneShape, size: int, owner: str) -> None:
    """Refuse an input side that is not a multiple of the patch size, naming a valid one."""
    if size % shape.patch_size == 0:
        return
    if shape.spec.model == TINY_NAME:  # no tiny family fits: name them all
        patches = sorted(TINY_PATCHES.values())
        raise ZsadError(
            f"option image_size of {owner} must be a multiple of a {TINY_NAME} patch size "
            f"({', '.join(map(str, patches))}), e.g. 64; got {size}"
        )
    patch = shape.patch_size
    valid = max(patch, round(size / patch) * patch)
    raise ZsadError(
        f"option image_size of {owner} must be a multiple of the patch size {patch} of "
        f"{shape.spec.model}, e.g. {valid}; got {size}"
    )


def check_layers(shape: BackboneShape, name: str, layers: Sequence[int], owner: str) -> None:
    """Refuse 1-based block indices past the last block of the image tower, or listed twice."""
    n = shape.num_layers
    outside = [layer for layer in layers if not 1 <= layer <= n]
    if outside:
        inside = ",".join(str(min(max(layer, 1), n)) for layer in dict.fromkeys(layers))
        raise ZsadError(
            f"option {name} of {owner} names layer {','.join(map(str, outside))}, but {shape.spec.model} has "
            f"layers 1..{n}; e.g. -o {name}={inside}"
        )
    repeated = sorted({layer for layer in layers if list(layers).count(layer) > 1})
    if repeated:
        raise ZsadError(
            f"option {name} of {owner} lists layer {','.join(map(str, repeated))} twice; name each layer once"
        )


def fitted_shape(backbone: str, image_size: int, owner: str) -> BackboneShape:
    """``backbone_shape`` of a detector's backbone at its input size, with the image size checked."""
    shape = backbone_shape(backbone, image_size)
    check_image_size(shape, image_size, owner)
    return shape
