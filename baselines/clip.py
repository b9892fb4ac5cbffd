"""CLIP and CLIP-AC: frozen CLIP scoring images and patches against "normal" / "anomalous" prompts.

Both follow the AnomalyCLIP protocol for its CLIP baselines (reference/baselines.md sections 4.2-4.4):
OpenAI ViT-L/14@336 (QuickGELU) at 518 px, no DPAM, temperature 0.07.

- Image score: softmax(cos(projected CLS, [t_normal, t_anomalous]) / 0.07)[anomalous].
- Anomaly map: final-layer patch tokens through ``ln_post`` and the visual projection, the same softmax per
  patch, bilinear upsampling to the input size, then Gaussian sigma = 4 (scipy-compatible borders).

CLIP uses two single prompts, "a photo of a normal {}." and "a photo of an anomalous {}." (the wording
the AnomalyCLIP authors point to in their issue #25 and that reproduces their Table 1 in issue #76).

CLIP-AC puts the states "normal {}" and "anomalous {}" into CLIP's 80 ImageNet templates
(``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``). Which template set AnomalyCLIP used is not
documented; the 80 are the canonical CLIP ensemble and the recommended default of
reference/baselines.md section 4.4, so results stay comparable with other re-implementations. The
prototype of a state is the mean of the L2-normalised prompt embeddings, re-normalised (open_clip's
``build_zero_shot_classifier``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from zsad_bench.api import Detector, Prediction
from zsad_bench.backbones import fitted_shape, load_backbone
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.data.transforms import squash_transform
from zsad_bench.ops.maps import gaussian_blur, patch_probabilities, upsample
from zsad_bench.ops.prompts import PrototypeCache, Template, ensemble_prototypes, fill_prompts
from zsad_bench.options import DetectorOptions, option

__all__ = ["CLIP", "CLIPAC", "CLIPOptions", "PromptedCLIP"]


@dataclass(frozen=True)
class CLIPOptions(DetectorOptions):
    """CLIP's and CLIP-AC's options (AnomalyCLIP's protocol for its CLIP baselines)."""

    backbone: str = option("ViT-L-14-336-quickgelu:openai", "CLIP backbone MODEL[:PRETRAINED]")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    sigma: float = option(4.0, "Gaussian smoothing of the map in pixels (0: none)", min=0)
    temperature: float = option(0.07, "softmax temperature of the cosine similarities", above=0)
    pos_interpolation: str = option(
        "bilinear", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )


class PromptedCLIP(Detector):
    """A frozen CLIP scored against one normal and one anomalous text prototype per class name.

    Subclasses choose the prompts: ``states`` (a normal and an anomalous pattern with ``{}`` for the
    class name) filled into each of ``templates``.
    """

    states: ClassVar[tuple[str, str]]
    templates: ClassVar[tuple[Template, ...]] = ("{}",)
    trainable: ClassVar[bool] = False
    Options: ClassVar[type[CLIPOptions]] = CLIPOptions
    options: CLIPOptions

    def __init__(self, options: CLIPOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        # The AnomalyCLIP protocol resizes positional embeddings bilinearly, without antialias.
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation)
        self.input_size = o.image_size
        self.sigma = o.sigma
        self.temperature = o.temperature
        self.prototype_cache = PrototypeCache()

    @classmethod
    def validate_options(cls, options: CLIPOptions, owner: str = "") -> None:  # type: ignore[override]
        fitted_shape(options.backbone, options.image_size, owner or f"model '{cls.name}'")

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return squash_transform(self.input_size)

    def prompts(self, class_name: str) -> tuple[list[str], list[str]]:
        """The normal and the anomalous prompts for one class name."""
        normal, anomalous = (fill_prompts([state], self.templates, class_name) for state in self.states)
        return normal, anomalous

    @torch.no_grad()
    def text_prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` L2-normalised [normal, anomalous] prototypes, one row per image, cached per class."""
        return self.prototype_cache.lookup(class_names, self.class_prototypes, self.backbone.device)

    def class_prototypes(self, class_name: str) -> torch.Tensor:
        """``(2, D)``: each state's prompts ensembled (mean of normalised embeddings, renormalised)."""
        return ensemble_prototypes(self.backbone, self.prompts(class_name))

    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        text = self.text_prototypes(class_names)
        features = self.backbone.encode_image(images)
        image = F.normalize(features.pooled.float(), dim=-1)
        logits = torch.einsum("bd,bkd->bk", image, text) / self.temperature
        image_scores = logits.softmax(dim=-1)[:, 1]
        patches = self.backbone.project(features.tokens[:, 1:])
        probabilities = patch_probabilities(patches, text, self.temperature)
        maps = gaussian_blur(upsample(probabilities[:, 1], self.input_size), self.sigma)
        return Prediction(image_scores=image_scores.float(), anomaly_maps=maps)


class CLIP(PromptedCLIP):
    """Plain CLIP with two single prompts (AnomalyCLIP's "CLIP" column)."""

    name: ClassVar[str] = "clip"
    states = ("a photo of a normal {}.", "a photo of an anomalous {}.")


def _imagenet_templates() -> tuple[Template, ...]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(OPENAI_IMAGENET_TEMPLATES)


class CLIPAC(PromptedCLIP):
    """CLIP with the 80-template ImageNet prompt ensemble (AnomalyCLIP's "CLIP-AC" column)."""

    name: ClassVar[str] = "clip-ac"
    states = ("normal {}", "anomalous {}")
    templates = _imagenet_templates()
