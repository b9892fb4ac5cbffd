"""MuSc (Li et al., ICLR 2024; official code xrli-U/MuSc) as the official ``models/musc.py`` computes it.

Training-free and transductive: the test images of one class score each other (reference/musc.md).

- Backbone: OpenAI ViT-L/14@336 at 518 px, built from ``ViT-L-14-336`` (**nn.GELU**, the official
  vendored open_clip's quirk at any size but 336, as APRIL-GAN's default); positional grid 24 -> 37
  bicubic, ``align_corners=False``, **without antialias** (the vendored ``resize_pos_embed``). The
  vendored factory also rounds the OpenAI conv, linear and projection weights through fp16; the weights
  here are the backbone loader's (``zsad_bench.backbones``), which is a no-op only if they already hold
  the released fp16 values (not checked here: no weights offline).
- Tokens: the raw residual stream after blocks 6, 12, 18, 24 (1-based; ``configs/musc.yaml``
  ``feature_layers: [5, 11, 17, 23]`` is 0-based and the code adds 1), no ``ln_post``, no ``proj``.
- Per subset, per ``r`` in {1, 3, 5} and per layer: LNAMD (``lnamd.py``), then mutual scoring
  (``mutual.py``); the patch scores are averaged over the layers, then over ``r`` (float64).
- Map: bilinear, ``align_corners=True``, to the input size in float64; no smoothing, no normalisation
  (raw distances, within [0, 2]: ``map_range``). Image score: the max of the upsampled float64 map (the
  patch-grid max differs by up to 2e-3), refined by RsCIN (``rscin.py``) over the whole class with the
  projected, L2-normalised CLS tokens; ``k_list`` [1, 8, 9] on VisA and [1, 2, 3] on every other dataset
  (the official ``if visa / elif mvtec_ad / else`` in ``make_category_data``; ``rscin_k=auto``).
- Subsets: ``divide_num`` subsets (``subsets.py``) are scored separately; rows come back in dataset
  order (the official code concatenates them in subset order; the metrics do not depend on the order).
  ``subsets=label-free`` (default) splits by a seeded shuffle of the file order; ``subsets=official``
  reproduces the official split, which is **stratified by the ground-truth defect type** of each image
  (label information) -- the option is recorded in every result's detector config.

Departures from the official code, each with its reason:

- Guards where the official code gives NaN or fails: a subset of 2-4 images averages its single nearest
  other image (official ``k = 0``, NaN); RsCIN's ``k`` is cut to the class size; equal scores
  normalise to 0. A subset of one image cannot be scored and is refused (lower ``divide_num``).
- Memory: the official code holds every token on the host and one query image's ``(L, (n - 1) L)``
  distances on the device; here the tokens stay on the device and distances are chunked (below).
- Precision: the official GPU run is under fp16 autocast; here the backbone runs under the harness's
  autocast (bf16 on CUDA, fp32 on the CPU) and the tokens are kept in that dtype. LNAMD, distances, top-k
  means (float32) and everything after (float64, RsCIN float32) run with autocast off, as the official
  code does in effect (``layer_norm`` and ``cdist`` are fp32 ops under autocast). The returned maps are
  float32 (the harness scores float32 maps); the image scores come from the float64 maps.

Memory model of one subset of ``n`` images (``L`` patch tokens, width ``C``, ``N`` layers, ``b`` bytes
per token value: 2 under bf16 autocast, 4 in fp32; ``S`` the input side):

- tokens ``N * n * L * C * b`` and the CLS embeddings (small);
- LNAMD features of one layer and ``r``: ``n * L * C * 4``;
- distance buffers: ``mutual.chunk_bytes(q, r, n, L, C)`` <= ``chunk_mb`` MiB (``q`` query and ``r``
  reference images per step; about ``4 q r L^2`` bytes plus ``4 q L n`` of per-image minima);
- patch scores ``|r_list| * N * n * L * 8``; maps of the whole class ``n_class * S^2 * 4`` (plus one
  batch in float64 while upsampling).

Br35H (3,000 images in one class, the largest of the 17 datasets), L = 1369, C = 1024, S = 518
(``memory_model``): tokens 33.6 GB in bf16, features 16.8 GB, buffers at most 4.3 GB (``chunk_mb``
4096), scores 0.4 GB, maps 3.2 GB, plus the backbone's 1.7 GB: about 60 GB of one H200's 141 GB (94 GB
with fp32 tokens, ``--precision fp32``). Time grows as ``n^2 L^2 C`` (fp32 distances): see
benchmarks/musc.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from zsad_bench.api import ClassImages, Detector, Prediction, Transductive
from zsad_bench.backbones import fitted_shape, load_backbone
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.backbones.shape import check_layers
from zsad_bench.data.transforms import squash_transform
from zsad_bench.errors import ZsadError
from zsad_bench.musc.lnamd import lnamd
from zsad_bench.musc.mutual import chunk_bytes, chunk_sizes, mutual_scores
from zsad_bench.musc.rscin import rscin
from zsad_bench.musc.subsets import SPLITS, label_free_split, official_split
from zsad_bench.options import DetectorOptions, option

__all__ = ["RSCIN_K", "MuSc", "MuScOptions", "memory_model", "parse_rscin_k"]

# make_category_data: k_score [1, 8, 9] for VisA, [1, 2, 3] for MVTec AD and (the else branch) the rest
RSCIN_K = {"visa": (1, 8, 9)}
RSCIN_K_DEFAULT = (1, 2, 3)
MIB = 1 << 20


@dataclass(frozen=True)
class MuScOptions(DetectorOptions):
    """MuSc's options; the defaults are ``configs/musc.yaml``'s."""

    backbone: str = option("ViT-L-14-336:openai", "CLIP backbone MODEL[:PRETRAINED] (GELU quirk)")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    layers: tuple[int, ...] = option(
        (6, 12, 18, 24), "1-based blocks whose tokens are scored (official 0-based 5,11,17,23)", min=1
    )
    r_list: tuple[int, ...] = option((1, 3, 5), "LNAMD neighbourhood sides (odd), averaged", min=1)
    topmin_max: float = option(
        0.3, "fraction of the other images whose patch distances are averaged", above=0, max=1
    )
    divide_num: int = option(1, "subsets of a class scored separately (bounds memory)", min=1)
    subsets: str = option(
        "label-free", "how subsets are formed; official reads ground-truth defect types", choices=SPLITS
    )
    subset_seed: int = option(42, "seed of the subset shuffle (official 42)")
    rscin_k: str = option("auto", "RsCIN neighbourhoods: auto (VisA 1,8,9; else 1,2,3), K,K,.. or 0 (off)")
    chunk_mb: int = option(4096, "memory budget of the mutual-scoring distance buffers, MiB", min=1)
    pos_interpolation: str = option(
        "bicubic", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )
    pos_antialias: bool = option(False, "antialias the positional-embedding resize (official: no)")


def parse_rscin_k(value: str, owner: str = "model 'musc'") -> tuple[int, ...] | None:
    """``None`` for ``auto``, else the listed neighbourhood sizes; a bad value is one ``ZsadError`` line."""
    if value.strip().lower() == "auto":
        return None
    try:
        ks = tuple(int(part) for part in value.split(","))
    except ValueError:
        ks = ()
    if not ks or any(k < 0 for k in ks):
        raise ZsadError(
            f"option rscin_k of {owner} must be auto or non-negative integers like 1,2,3, got '{value}'"
        )
    return ks


def memory_model(
    n: int,
    *,
    tokens: int,
    channels: int,
    layers: int = 4,
    radii: int = 3,
    token_bytes: int = 2,
    image_size: int = 518,
    batch_size: int = 8,
    chunk_mb: int = 4096,
) -> dict[str, int]:
    """Bytes of what ``score_class`` holds at its peak for a subset of ``n`` images (the module
    docstring's memory model): ``L = tokens`` patch tokens of width ``C = channels`` per layer."""
    query, reference = chunk_sizes(n, tokens, channels, chunk_mb * MIB)
    return {
        "tokens": layers * n * tokens * channels * token_bytes,
        "features": n * tokens * channels * 4,
        "distances": chunk_bytes(query, reference, n, tokens, channels),
        "scores": radii * layers * n * tokens * 8,
        "maps": n * image_size**2 * 4 + batch_size * image_size**2 * 8,
    }


class MuSc(Detector, Transductive):
    """MuSc: LNAMD features of a class's test images score each other; RsCIN refines the image scores."""

    name: ClassVar[str] = "musc"
    transductive: ClassVar[bool] = True
    # mean distances between unit vectors
    map_range: ClassVar[tuple[float, float]] = (0.0, 2.0)
    Options: ClassVar[type[MuScOptions]] = MuScOptions
    options: MuScOptions

    def __init__(self, options: MuScOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation, antialias=o.pos_antialias)
        self.input_size = o.image_size
        self.layers = list(o.layers)

    @classmethod
    def validate_options(cls, options: MuScOptions, owner: str = "") -> None:  # type: ignore[override]
        owner = owner or f"model '{cls.name}'"
        if options.pos_antialias and options.pos_interpolation not in ("bilinear", "bicubic"):
            raise ZsadError(
                f"option pos_antialias of {owner} needs pos_interpolation bilinear or bicubic, "
                f"not {options.pos_interpolation}; add -o pos_antialias=false"
            )
        even = [r for r in options.r_list if r % 2 == 0]
        if even:
            raise ZsadError(
                f"option r_list of {owner} needs odd neighbourhood sides, got {even[0]}; e.g. -o r_list=1,3,5"
            )
        parse_rscin_k(options.rscin_k, owner)
        shape = fitted_shape(options.backbone, options.image_size, owner)
        check_layers(shape, "layers", options.layers, owner)

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        # the official CLIP preprocess at 518: Resize((518, 518), bicubic), CenterCrop (a no-op), OpenAI
        # mean/std
        return squash_transform(self.input_size)

    def rscin_k(self, dataset: str) -> tuple[int, ...]:
        """The RsCIN ``k_list`` for dataset id ``dataset`` (``auto``: the official per-dataset choice)."""
        return parse_rscin_k(self.options.rscin_k) or RSCIN_K.get(dataset, RSCIN_K_DEFAULT)

    # -- the class-level entry point ------------------------------------------------------------------
    def subsets(self, images: ClassImages, class_name: str) -> list[list[int]]:
        """The subsets of ``images`` (indices), each of at least 2 images."""
        o = self.options
        if o.subsets == "official":
            if len(images.defect_types) != len(images):
                raise ZsadError(
                    f"model 'musc' with -o subsets=official needs the images' defect types, which class "
                    f"'{class_name}' lacks; use -o subsets=label-free"
                )
            parts = official_split(images.defect_types, o.divide_num, o.subset_seed)
        else:
            parts = label_free_split(len(images), o.divide_num, o.subset_seed)
        smallest = min(len(p) for p in parts)
        if smallest < 2:
            raise ZsadError(
                f"model 'musc' splits class '{class_name}' ({len(images)} images) into {o.divide_num} "
                f"subsets, one of {smallest} image(s); mutual scoring needs 2 per subset: lower -o divide_num"
            )
        return parts

    def score_class(self, images: ClassImages, class_name: str) -> Prediction:
        """Score every image of the class against the others of its subset; rows in dataset order."""
        n, size, device = len(images), self.input_size, images.device
        maps = torch.empty(n, size, size, dtype=torch.float32, device=device)
        scores = torch.empty(n, dtype=torch.float64, device=device)
        cls_tokens = torch.empty(n, self.backbone.embed_dim, dtype=torch.float32, device=device)
        for subset in self.subsets(images, class_name):
            rows = torch.tensor(subset, device=device)
            tokens, cls_tokens[rows] = self.features(images, subset)
            patch_scores = self.patch_scores(tokens, images.batch_size)
            del tokens
            maps[rows], scores[rows] = self.upsample(patch_scores, images.batch_size)
        image_scores = rscin(scores, cls_tokens, self.rscin_k(images.dataset))
        return Prediction(image_scores=image_scores.float(), anomaly_maps=maps)

    # -- the stages --------------------------------------------------------------------------------
    def features(self, images: ClassImages, subset: Sequence[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per layer the ``(m, L, C)`` patch tokens of the ``m`` images of ``subset`` (CLS dropped, in the
        autocast dtype when autocast is on), and their ``(m, D)`` L2-normalised projected CLS tokens."""
        device = images.device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
        tokens: list[torch.Tensor] = []
        cls_rows = []
        start = 0
        for batch in images.batches(subset):
            out = self.backbone.encode_image(batch, self.layers)
            stop = start + len(batch)
            for i, layer in enumerate(self.layers):
                patches = out.layers[layer][:, 1:]
                if not tokens or len(tokens) <= i:
                    shape = (len(subset), *patches.shape[1:])
                    tokens.append(torch.empty(shape, dtype=dtype or patches.dtype, device=device))
                tokens[i][start:stop] = patches
            pooled = out.pooled.float()
            cls_rows.append(pooled / pooled.norm(dim=-1, keepdim=True))  # musc.py: image_features /= norm
            start = stop
        return tokens, torch.cat(cls_rows)

    def patch_scores(self, tokens: list[torch.Tensor], batch_size: int) -> torch.Tensor:
        """``(m, L)`` float64: mutual scores per layer and ``r``, averaged over layers, then over ``r``."""
        m, length, channels = tokens[0].shape
        query, reference = chunk_sizes(m, length, channels, self.options.chunk_mb * MIB)
        per_r = []
        for r in self.options.r_list:
            per_layer = []
            for layer_tokens in tokens:
                z = torch.empty(m, length, channels, dtype=torch.float32, device=layer_tokens.device)
                for start in range(0, m, batch_size):
                    z[start : start + batch_size] = lnamd(layer_tokens[start : start + batch_size], r)
                per_layer.append(mutual_scores(z, self.options.topmin_max, query, reference))
                del z
            per_r.append(torch.stack(per_layer).mean(dim=0))
        return torch.stack(per_r).mean(dim=0)

    def upsample(self, patch_scores: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m, S, S)`` float32 maps and ``(m,)`` float64 image scores (map maxima) of ``(m, L)`` scores:
        bilinear, ``align_corners=True``, in float64 (``musc.py``), a batch at a time."""
        m, length = patch_scores.shape
        grid = math.isqrt(length)
        maps, scores = [], []
        with torch.autocast(device_type=patch_scores.device.type, enabled=False):
            for start in range(0, m, batch_size):
                part = patch_scores[start : start + batch_size].view(-1, 1, grid, grid)
                full = F.interpolate(part, size=self.input_size, mode="bilinear", align_corners=True)[:, 0]
                scores.append(full.flatten(1).amax(dim=1))
                maps.append(full.float())
        return torch.cat(maps), torch.cat(scores)
