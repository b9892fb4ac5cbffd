"""APRIL-GAN / VAND (Chen et al., arXiv 2305.17382) as the official code computes it (baselines.md §3).

- Backbone: OpenAI ViT-L/14@336 at 518 px, positional grid resized bicubically with antialias (open_clip's
  ``resize_pos_embed``, §3.1). Default ``ViT-L-14-336:openai`` keeps the official **GELU quirk**: the
  repository builds that CLIP without ``quick_gelu``, so the released heads were trained on features of a
  GELU variant of the QuickGELU-trained weights. ``ViT-L-14-336-quickgelu:openai`` is the faithful
  activation (use it to train heads of your own on the features CLIP was trained to give).
- Tokens: the raw residual stream after blocks 6/12/18/24, CLS dropped (no ln_post, no proj, §3.2); one
  trainable ``Linear(width -> embed_dim)`` with bias per layer (§3.3).
- Text: 7 normal and 5 anomalous states in 35 templates (§3.4); prompt embeddings L2-normalised,
  averaged per state group, re-normalised; one ``(2, D)`` prototype per class, float32, cached.
- Image score: softmax(100 cos(projected CLS, [t_n, t_a]))[anomalous] from frozen CLIP (§3.6).
- Map: per layer 100 cos(head(tokens), text), bilinear upsampling (align_corners=True) *then* softmax over
  the two channels, anomalous channel, **summed** over the layers (values in [0, 4]); no smoothing.
- Few-shot: 1 - cos to the nearest reference token, per layer, upsampled and added to the map (§3.6).
- Training: focal + dice on each layer's probabilities, summed; no image-level loss; mosaic augmentation
  on MVTec AD only (§3.5).

Class names: the harness passes prompt names (``metal nut``), the official code put raw folder names into
the prompts (``metal_nut``, §3.4). ``folder_names=True`` (default) turns spaces back into underscores,
which gives the folder names exactly for MVTec AD and VisA (whose prompt names are their folder names
with ``_`` -> space) -- the text the released heads were trained against; ``folder_names=False`` uses the
prompt names as given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from zsad_bench.api import Detector, Prediction, Trainable, TrainConfig
from zsad_bench.backbones import fitted_shape, load_backbone
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.backbones.shape import check_layers
from zsad_bench.data.transforms import squash_transform
from zsad_bench.errors import ZsadError
from zsad_bench.ops.augment import MosaicDataset
from zsad_bench.ops.losses import dice_loss, focal_loss
from zsad_bench.ops.maps import upsample
from zsad_bench.ops.official import read_official_state
from zsad_bench.ops.prompts import PrototypeCache, ensemble_prototypes, fill_prompts, full_precision
from zsad_bench.options import DetectorOptions, option

__all__ = ["ANOMALOUS_STATES", "NORMAL_STATES", "TEMPLATES", "AprilGAN", "AprilGANOptions"]

# prompt_ensemble.py L8-33 (reference/baselines.md §3.4; prompts.json V_N, V_A, V_T).
NORMAL_STATES = (
    "{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw", "{} without defect",
    "{} without damage",
)  # fmt: skip
ANOMALOUS_STATES = ("damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage")
TEMPLATES = (
    "a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a bright photo of a {}.", "a dark photo of the {}.",
    "a photo of my {}.", "a photo of the cool {}.", "a close-up photo of a {}.",
    "a black and white photo of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.", "a photo of the {}.",
    "a good photo of the {}.", "a photo of one {}.", "a close-up photo of the {}.", "a photo of a {}.",
    "a low resolution photo of a {}.", "a photo of a large {}.", "a blurry photo of a {}.",
    "a jpeg corrupted photo of the {}.", "a good photo of a {}.", "a photo of the small {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "a dark photo of a {}.",
    "a photo of a cool {}.", "a photo of a small {}.", "there is a {} in the scene.",
    "there is the {} in the scene.", "this is a {} in the scene.", "this is the {} in the scene.",
    "this is one {} in the scene.",
)  # fmt: skip

EPOCHS = {"mvtec-ad": 3, "visa": 15}  # train.sh: 3 epochs on MVTec AD, 15 on VisA (§3.5, §3.10)


@dataclass(frozen=True)
class AprilGANOptions(DetectorOptions):
    """APRIL-GAN's options; the defaults are the official repository's."""

    backbone: str = option("ViT-L-14-336:openai", "CLIP backbone MODEL[:PRETRAINED] (GELU quirk, §3.1)")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    layers: tuple[int, ...] = option((6, 12, 18, 24), "1-based layers with a trained head each", min=1)
    pos_interpolation: str = option(
        "bicubic", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )
    pos_antialias: bool = option(True, "antialias the positional-embedding resize (bilinear/bicubic)")
    logit_scale: float = option(100.0, "multiplier of the cosine similarities before the softmax", above=0)
    folder_names: bool = option(True, "put folder names (metal_nut) into prompts, as the official code")
    mosaic_prob: float = option(0.2, "probability of a 2x2 mosaic per MVTec AD training image", min=0, max=1)
    trained_on: str | None = option(None, "auxiliary dataset the heads were trained on")


class AprilGAN(Detector, Trainable):
    """APRIL-GAN: per-layer linear heads mapping frozen CLIP patch tokens into the text space."""

    name: ClassVar[str] = "april-gan"
    trainable: ClassVar[bool] = True
    few_shot: ClassVar[bool] = True
    # A sum of 4 probabilities (zero-shot); few-shot maps add up to 2 per layer on top.
    map_range: ClassVar[tuple[float, float]] = (0.0, 4.0)
    Options: ClassVar[type[AprilGANOptions]] = AprilGANOptions
    options: AprilGANOptions

    def __init__(self, options: AprilGANOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        # open_clip's resize_pos_embed: bicubic, antialias=True, align_corners=False (§3.1).
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation, antialias=o.pos_antialias)
        self.input_size = o.image_size
        self.layers = list(o.layers)
        self.logit_scale = o.logit_scale
        self.folder_names = o.folder_names
        self.mosaic_prob = o.mosaic_prob
        self.trained_on = o.trained_on
        self.heads = nn.ModuleList(
            nn.Linear(self.backbone.width, self.backbone.embed_dim, bias=True) for _ in self.layers
        )
        self.prototype_cache = PrototypeCache()
        self._memory: dict[str, list[torch.Tensor]] = {}  # class name -> per layer (K*N, W), normalised

    @classmethod
    def validate_options(cls, options: AprilGANOptions, owner: str = "") -> None:  # type: ignore[override]
        owner = owner or f"model '{cls.name}'"
        if options.pos_antialias and options.pos_interpolation not in ("bilinear", "bicubic"):
            raise ZsadError(
                f"option pos_antialias of {owner} needs pos_interpolation bilinear or bicubic, "
                f"not {options.pos_interpolation}; add -o pos_antialias=false"
            )
        shape = fitted_shape(options.backbone, options.image_size, owner)
        check_layers(shape, "layers", options.layers, owner)

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        # The repository's eval transform: square bicubic resize, OpenAI mean/std (§3.1).
        return squash_transform(self.input_size)

    @classmethod
    def epochs_for(cls, dataset_id: str) -> int:
        return EPOCHS.get(dataset_id, 15)

    # -- text ---------------------------------------------------------------------------------------
    def prompts(self, class_name: str) -> tuple[list[str], list[str]]:
        """The 245 normal and 175 anomalous prompts of one class name (state-major, as the official loop)."""
        name = class_name.replace(" ", "_") if self.folder_names else class_name
        return fill_prompts(NORMAL_STATES, TEMPLATES, name), fill_prompts(ANOMALOUS_STATES, TEMPLATES, name)

    @torch.no_grad()
    def text_prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` L2-normalised [normal, anomalous] prototypes, one row per image, cached per class."""
        return self.prototype_cache.lookup(class_names, self.class_prototypes, self.backbone.device)

    def class_prototypes(self, class_name: str) -> torch.Tensor:
        """``(2, D)``: mean of the normalised prompt embeddings, renormalised (``prompt_ensemble.py``)."""
        return ensemble_prototypes(self.backbone, self.prompts(class_name))

    # -- image --------------------------------------------------------------------------------------
    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``tokens.<layer>``: ``(B, N, W)`` raw residual tokens after each layer, CLS dropped."""
        with torch.no_grad():
            out = self.backbone.encode_image(images, self.layers)
            return {f"tokens.{layer}": out.layers[layer][:, 1:] for layer in self.layers}

    def _float32(self) -> AbstractContextManager[object]:
        # Heads, cosines and x100 logits in float32 whatever autocast the harness runs the tower under:
        # bf16 cosines would move the logits by ~0.4 (the official ran fp16; the heads are cheap).
        return full_precision(self.backbone.device)

    def _probabilities(self, features: dict[str, torch.Tensor], text: torch.Tensor) -> list[torch.Tensor]:
        """Per layer ``(B, 2, S, S)``: upsample the logits (align_corners=True), *then* softmax (§3.5)."""
        out = []
        with self._float32():
            for layer, head in zip(self.layers, self.heads, strict=True):
                patches = F.normalize(head(features[f"tokens.{layer}"].to(head.weight.dtype)), dim=-1)
                logits = self.logit_scale * patches.float() @ text.float().transpose(1, 2)  # (B, N, 2)
                b, n, k = logits.shape
                grid = math.isqrt(n)
                logits = logits.transpose(1, 2).reshape(b, k, grid, grid)
                out.append(upsample(logits, self.input_size, align_corners=True).softmax(dim=1))
        return out

    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        """Zero-shot map (+ the few-shot map when references are remembered); the zero-shot image score.

        In few-shot mode the official image score is 1/2 (p_img + max of the map min-max-normalised over
        the class's whole test set, §3.6): transductive, so not computable per batch. The zero-shot image
        score is kept instead; the few-shot references change the maps only.
        """
        text = self.text_prototypes(class_names)
        out = self.backbone.encode_image(images, self.layers)
        with self._float32():
            image = F.normalize(out.pooled.float(), dim=-1)
            image_scores = (self.logit_scale * torch.einsum("bd,bkd->bk", image, text)).softmax(-1)[:, 1]
        features = {f"tokens.{layer}": out.layers[layer][:, 1:] for layer in self.layers}
        maps = torch.stack([p[:, 1] for p in self._probabilities(features, text)]).sum(0)
        if self._memory:
            maps = maps + self._few_shot_maps(features, class_names)
        return Prediction(image_scores=image_scores.float(), anomaly_maps=maps)

    # -- few-shot -----------------------------------------------------------------------------------
    @torch.no_grad()
    def remember(self, class_name: str, images: torch.Tensor) -> None:
        """Keep the raw (width-d, unprojected) patch tokens of ``(K, 3, S, S)`` normal images per layer."""
        features = self.frozen_features(images)
        self._memory[class_name] = [
            F.normalize(features[f"tokens.{layer}"].float(), dim=-1).flatten(0, 1) for layer in self.layers
        ]

    def forget(self) -> None:
        self._memory.clear()

    def memory(self, class_name: str) -> list[torch.Tensor]:
        """The remembered ``(K * N, W)`` L2-normalised tokens of a class, one tensor per layer."""
        return self._memory[class_name]

    def _few_shot_maps(self, features: dict[str, torch.Tensor], class_names: Sequence[str]) -> torch.Tensor:
        """``(B, S, S)``: per layer min over the references of (1 - cos), upsampled, summed (§3.6)."""
        missing = sorted(set(class_names) - set(self._memory))
        if missing:
            raise ZsadError(f"no few-shot references for class {', '.join(missing)}; call remember() first")
        device = features[f"tokens.{self.layers[0]}"].device
        maps = torch.zeros(len(class_names), self.input_size, self.input_size, device=device)
        with self._float32():
            for name in dict.fromkeys(class_names):
                rows = torch.tensor([i for i, n in enumerate(class_names) if n == name], device=device)
                for layer, memory in zip(self.layers, self._memory[name], strict=True):
                    queries = F.normalize(features[f"tokens.{layer}"][rows].float(), dim=-1)  # (b, N, W)
                    distance = (1.0 - queries @ memory.to(device).T).amin(dim=-1)  # (b, N)
                    grid = math.isqrt(distance.shape[1])
                    maps[rows] += upsample(
                        distance.reshape(-1, grid, grid), self.input_size, align_corners=True
                    )
        return maps

    # -- training -----------------------------------------------------------------------------------
    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return self.heads.parameters()

    def loss(
        self,
        features: dict[str, torch.Tensor],
        masks: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
    ) -> torch.Tensor:
        """Sum over layers of focal(probabilities, gt) + dice(anomalous channel, gt); labels unused (§3.5).

        Each image is scored against its own class's prompts (``class_names``), since batches mix classes.
        """
        text = self.text_prototypes(class_names)
        probabilities = self._probabilities(features, text)
        return sum(focal_loss(p, masks) + dice_loss(p[:, 1], masks) for p in probabilities)

    def training_data(self, dataset: Any, config: TrainConfig) -> Any:
        """MVTec AD (``trained_on`` or the dataset's spec): the mosaic augmentation (§3.5); else as is."""
        dataset_id = getattr(getattr(dataset, "spec", None), "id", None)
        if "mvtec-ad" in (dataset_id, self.trained_on) and self.mosaic_prob > 0:
            return MosaicDataset(dataset, self.mosaic_prob)
        return dataset

    # -- checkpoints --------------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"heads.{k}": v for k, v in self.heads.state_dict().items()}

    @classmethod
    def official_options(cls, path: Path) -> AprilGANOptions:
        """An official ``.pth`` (checked readable here) stores no options: the defaults."""
        read_official_state(path, "trainable_linearlayer", "APRIL-GAN")
        return cls.Options()

    @classmethod
    def load_official(cls, path: Path, **options: Any) -> AprilGAN:
        """An official ``.pth`` file (``epoch_N.pth``): ``{"trainable_linearlayer": {"fc.<i>.weight",
        "fc.<i>.bias", ...}}`` (§3.7), read with ``torch.load(weights_only=True)``, so no pickled code runs.
        """
        state = read_official_state(path, "trainable_linearlayer", "APRIL-GAN")
        detector = cls(**options)
        heads = {f"heads.{k.removeprefix('fc.')}" if k.startswith("fc.") else k: v for k, v in state.items()}
        detector.load_trainable_state_dict(heads, source=str(path))
        return detector
