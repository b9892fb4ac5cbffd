"""AdaCLIP's options (defaults: the official ``test.py`` / ``train.py`` arguments) and their cross-checks."""

from __future__ import annotations

from dataclasses import dataclass

from zsad_bench.backbones import fitted_shape
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.backbones.shape import check_layers
from zsad_bench.errors import ZsadError
from zsad_bench.options import DetectorOptions, option

__all__ = ["KMEANS_ORDERS", "AdaCLIPOptions", "check_adaclip_options"]

# per-image: every image clustered with a fresh RandomState(kmeans_seed); official: one RandomState advanced
# image by image in evaluation order, as the official global NumPy state seeded by setup_seed(111)
KMEANS_ORDERS = ("per-image", "official")


@dataclass(frozen=True)
class AdaCLIPOptions(DetectorOptions):
    """AdaCLIP's options; the defaults are the official scripts' (``test.py`` L48-50, ``train.py``)."""

    backbone: str = option("ViT-L-14-336:openai", "CLIP backbone MODEL[:PRETRAINED] (GELU quirk)")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    features: tuple[int, ...] = option((6, 12, 18, 24), "1-based layers with a patch head each", min=1)
    prompt_depth: int = option(4, "blocks of each tower that take learned prompts", min=1)
    prompt_length: int = option(5, "learned prompt tokens per block", min=1)
    prompt_type: str = option("SD", "static (S), dynamic (D) or both (SD) prompts", choices=("S", "D", "SD"))
    prompt_branch: str = option(
        "VL", "towers that take prompts: visual (V), language (L) or both", choices=("V", "L", "VL")
    )
    use_hsf: bool = option(True, "hybrid semantic fusion of the top patches into the image feature")
    k_clusters: int = option(20, "k-means clusters of the hybrid semantic fusion", min=1)
    fusion_weight: float = option(0.2, "weight of the fused patch feature against the CLS one", min=0, max=1)
    sigma: float = option(4.0, "Gaussian smoothing of the map in pixels (0: none)", min=0)
    half_prompts: bool = option(True, "round the prompts to float16 before they enter a block (official)")
    kmeans_seed: int = option(111, "seed of the k-means of the hybrid semantic fusion", min=0)
    kmeans_order: str = option(
        "per-image", "k-means seeding: per-image (deterministic) or official (order-dependent)",
        choices=KMEANS_ORDERS,
    )  # fmt: skip
    folder_names: bool = option(True, "put folder names (metal_nut) into prompts, as the official code")
    prompt_class: str | None = option(
        None, "one class word for every image (e.g. the official ColonDB, brain_mri, SDD)"
    )
    mosaic_prob: float = option(
        0.2,
        "training: chance an MVTec AD item becomes a 2x2 mosaic of its class (official aug_rate)",
        min=0,
        max=1,
    )
    dice_rows: bool = option(True, "batch of one: dice per mask row in the loss (official squeeze quirk)")
    pos_interpolation: str = option(
        "bicubic", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )
    pos_antialias: bool = option(False, "antialias the positional-embedding resize (official: no)")
    trained_on: str | None = option(None, "auxiliary datasets the prompts were learned on, joined by '+'")


def check_adaclip_options(options: AdaCLIPOptions, owner: str) -> None:
    """Checks one option's type cannot express: layers and depth against the backbone, clusters against
    the patch grid, antialias against the resize mode. One ``ZsadError`` line each."""
    if options.pos_antialias and options.pos_interpolation not in ("bilinear", "bicubic"):
        raise ZsadError(
            f"option pos_antialias of {owner} needs pos_interpolation bilinear or bicubic, "
            f"not {options.pos_interpolation}; add -o pos_antialias=false"
        )
    shape = fitted_shape(options.backbone, options.image_size, owner)
    check_layers(shape, "features", options.features, owner)
    depth_limit = min(shape.num_layers, shape.num_text_layers)
    if options.prompt_depth > depth_limit:
        raise ZsadError(
            f"option prompt_depth of {owner} must be at most {depth_limit} (the blocks of the shallower "
            f"tower of {shape.spec.model}), got {options.prompt_depth}"
        )
    # text prompts overwrite positions 1..length after the start token; the end token must survive
    room = shape.context_length - 2
    if options.prompt_length > room:
        raise ZsadError(
            f"option prompt_length of {owner} must be at most {room} (the {shape.context_length}-token text "
            f"context less its start and end tokens), got {options.prompt_length}"
        )
    patches = (options.image_size // shape.patch_size) ** 2
    if options.use_hsf and options.k_clusters > patches:
        raise ZsadError(
            f"option k_clusters of {owner} must be at most {patches} (the patches of a "
            f"{options.image_size} px image), got {options.k_clusters}; lower it or add -o use_hsf=false"
        )
