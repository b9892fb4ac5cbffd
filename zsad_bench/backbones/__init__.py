"""CLIP backbones through open_clip: ``MODEL[:PRETRAINED]`` specs, loading, and the adapter methods use."""

from zsad_bench.backbones.clip import ClipBackbone, VisualFeatures
from zsad_bench.backbones.load import download_weights, load_backbone, weights_sha256
from zsad_bench.backbones.pos_embed import resize_pos_embed
from zsad_bench.backbones.shape import BackboneShape, backbone_shape, fitted_shape
from zsad_bench.backbones.spec import DEFAULT_TAGS, TINY_NAME, BackboneSpec, parse_backbone

__all__ = [
    "DEFAULT_TAGS",
    "TINY_NAME",
    "BackboneShape",
    "BackboneSpec",
    "ClipBackbone",
    "VisualFeatures",
    "backbone_shape",
    "download_weights",
    "fitted_shape",
    "load_backbone",
    "parse_backbone",
    "resize_pos_embed",
    "weights_sha256",
]
