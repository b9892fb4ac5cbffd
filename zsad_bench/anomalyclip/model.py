"""AnomalyCLIP (Zhou et al., ICLR 2024) as the official code computes it (reference/anomalyclip.md).

- Text: the object-agnostic prompt learner (``prompt_learner.py``), L2-normalised [normal, abnormal].
- Image: DPAM, the dual-path forward with V-V attention in blocks 6-24 (``backbones/dual_path.py``).
  Patch features = V-V tokens at the configured layers -> ``ln_post`` -> ``proj``; the global feature is
  the original path's CLS token -> ``proj`` *without* ``ln_post`` (section 3.4, issue #14).
- Image score = softmax(cos(global, text) / 0.07)[abnormal], not fused with the map (section 5).
- Map: per layer softmax(cos(patch, text) / 0.07), *then* bilinear upsampling (align_corners False) to
  the input size, abnormal channel, summed over layers; Gaussian sigma = 4 (section 3.6, 5).
- Default layers: 24 alone with lambda = 4 -- what every published number used, because of the
  "multiscale" aliasing bug (section 3.5); ``features=[6, 12, 18, 24]`` is the true multi-layer variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from zsad_bench.anomalyclip.prompt_learner import PromptLearner
from zsad_bench.api import Detector, Prediction, Trainable
from zsad_bench.backbones import fitted_shape, load_backbone
from zsad_bench.backbones.dual_path import encode_image_dual_path
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.backbones.shape import check_layers
from zsad_bench.data.transforms import squash_transform
from zsad_bench.errors import ZsadError
from zsad_bench.ops.losses import glocal_loss
from zsad_bench.ops.maps import gaussian_blur, patch_probabilities, upsample
from zsad_bench.ops.prompts import full_precision
from zsad_bench.options import DetectorOptions, option

__all__ = ["AnomalyCLIP", "AnomalyCLIPOptions"]

PROMPT_WORDS = 5  # SOS, "damaged", "object", "." and EOS around the learned context


@dataclass(frozen=True)
class AnomalyCLIPOptions(DetectorOptions):
    """AnomalyCLIP's options; the defaults are the official ``test.sh`` / ``train.sh`` settings."""

    backbone: str = option("ViT-L-14-336-quickgelu:openai", "CLIP backbone MODEL[:PRETRAINED]")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    features: tuple[int, ...] = option((24,), "1-based layers whose patch tokens make the map", min=1)
    dpam_from: int = option(6, "first block of the V-V attention path (DPAM)", min=1)
    n_ctx: int = option(12, "learned context tokens of each prompt", min=1)
    depth: int = option(9, "text layers that take learned tokens (1: the input only)", min=1)
    t_n_ctx: int = option(4, "learned tokens per deeper text layer (at most n_ctx)", min=1)
    temperature: float = option(0.07, "softmax temperature of the cosine similarities", above=0)
    sigma: float = option(4.0, "Gaussian smoothing of the map in pixels (0: none)", min=0)
    lam: float = option(4.0, "weight of the map losses against the image loss", min=0)
    pos_interpolation: str = option(
        "bilinear", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )
    trained_on: str | None = option(None, "auxiliary dataset the prompts were learned on")


class AnomalyCLIP(Detector, Trainable):
    """AnomalyCLIP: object-agnostic prompt learning with DPAM on a frozen CLIP ViT."""

    name: ClassVar[str] = "anomalyclip"
    trainable: ClassVar[bool] = True
    Options: ClassVar[type[AnomalyCLIPOptions]] = AnomalyCLIPOptions
    options: AnomalyCLIPOptions

    def __init__(self, options: AnomalyCLIPOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        # The official code resizes the 24x24 positional grid bilinearly, without antialias (section 1.4).
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation)
        self.input_size = o.image_size
        self.features = list(o.features)
        self.dpam_from = o.dpam_from
        self.temperature, self.sigma, self.lam = o.temperature, o.sigma, o.lam
        self.trained_on = o.trained_on
        self.prompt_learner = PromptLearner(self.backbone, n_ctx=o.n_ctx, depth=o.depth, t_n_ctx=o.t_n_ctx)

    @classmethod
    def validate_options(cls, options: AnomalyCLIPOptions, owner: str = "") -> None:  # type: ignore[override]
        owner = owner or f"model '{cls.name}'"
        shape = fitted_shape(options.backbone, options.image_size, owner)
        check_layers(shape, "features", options.features, owner)
        check_layers(shape, "dpam_from", (options.dpam_from,), owner)
        text_layers = shape.num_text_layers
        if options.depth > text_layers:
            raise ZsadError(
                f"option depth of {owner} must be at most {text_layers} (the text layers of "
                f"{shape.spec.model}), got {options.depth}"
            )
        if options.t_n_ctx > options.n_ctx:
            raise ZsadError(
                f"option t_n_ctx of {owner} must be at most n_ctx ({options.n_ctx}), got {options.t_n_ctx}"
            )
        room = shape.context_length - PROMPT_WORDS  # "X ... X damaged object." must keep its EOS token
        if options.n_ctx > room:
            raise ZsadError(
                f"option n_ctx of {owner} must leave room for the words in the {shape.context_length}-token "
                f"prompt: at most {room}, got {options.n_ctx}"
            )

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return squash_transform(self.input_size)

    # -- the two towers -----------------------------------------------------------------------------
    def text_features(self) -> torch.Tensor:
        """``(2, D)`` L2-normalised [normal, abnormal] text features (differentiable in training)."""
        with full_precision(self.backbone.device):
            return F.normalize(self.prompt_learner.encode(self.backbone).float(), dim=-1)

    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The image tower's outputs, L2-normalised: ``global`` (B, D) and ``patch.<layer>`` (B, N, D)."""
        with torch.no_grad():
            out = encode_image_dual_path(self.backbone, images, self.dpam_from, self.features)
            visual = self.backbone.visual
            features = {"global": F.normalize((out.cls_tokens @ visual.proj).float(), dim=-1)}
            for layer in self.features:
                patches = self.backbone.project(out.vv_tokens[layer][:, 1:])
                features[f"patch.{layer}"] = F.normalize(patches.float(), dim=-1)
        return features

    def _probabilities(self, features: dict[str, torch.Tensor], text: torch.Tensor) -> list[torch.Tensor]:
        """Per layer ``(B, 2, S, S)``: softmax before bilinear upsampling (``get_similarity_map``)."""
        return [
            upsample(patch_probabilities(features[f"patch.{layer}"], text, self.temperature), self.input_size)
            for layer in self.features
        ]

    # -- inference ----------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        """Class names are not used: the prompts are object-agnostic."""
        text = self.text_features()
        features = self.frozen_features(images)
        logits = features["global"] @ text.T / self.temperature
        maps = torch.stack([p[:, 1] for p in self._probabilities(features, text)]).sum(0)
        return Prediction(image_scores=logits.softmax(-1)[:, 1], anomaly_maps=gaussian_blur(maps, self.sigma))

    # -- training -------------------------------------------------------------------------------------
    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        return self.prompt_learner.parameters()

    def loss(
        self,
        features: dict[str, torch.Tensor],
        masks: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
    ) -> torch.Tensor:
        """The glocal loss: CE on the global feature + lam x (focal + dice + dice) per layer map (the
        prompts are object-agnostic, so ``class_names`` are not used)."""
        text = self.text_features()
        logits = features["global"] @ text.T / self.temperature
        return glocal_loss(logits, labels, self._probabilities(features, text), masks, self.lam)

    # -- checkpoints ----------------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"prompt_learner.{k}": v for k, v in self.prompt_learner.state_dict().items()}

    @classmethod
    def official_options(cls, path: Path) -> AnomalyCLIPOptions:
        """The prompt shapes of an official ``epoch_N.pth``."""
        from zsad_bench.anomalyclip.checkpoint import official_options

        return official_options(cls, path)

    @classmethod
    def load_official(cls, path: Path, **options: Any) -> AnomalyCLIP:
        """An official ``epoch_N.pth`` (``checkpoint.py``)."""
        from zsad_bench.anomalyclip.checkpoint import load_official

        return load_official(cls, path, **options)
