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
from typing import ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from zsad_bench.api import Detector, Prediction
from zsad_bench.backbones import ClipBackbone, load_backbone
from zsad_bench.data.transforms import squash_transform
from zsad_bench.ops.maps import gaussian_blur, patch_probabilities, upsample

__all__ = ["CLIP", "CLIPAC", "PromptedCLIP", "PrototypeCache", "ensemble_prototypes"]

Template = str | Callable[[str], str]


def ensemble_prototypes(backbone: ClipBackbone, normal: list[str], anomalous: list[str]) -> torch.Tensor:
    """``(2, D)`` [normal, anomalous]: the mean of the L2-normalised prompt embeddings, re-normalised
    (open_clip's ``build_zero_shot_classifier``; APRIL-GAN's ``prompt_ensemble.py``), in float32 whatever
    autocast the caller runs under."""
    with torch.autocast(device_type=backbone.device.type, enabled=False):
        embeddings = F.normalize(backbone.encode_text(normal + anomalous), dim=-1)
    groups = (embeddings[: len(normal)], embeddings[len(normal) :])
    return torch.stack([F.normalize(g.mean(0), dim=-1) for g in groups])


class PrototypeCache:
    """Mixin for detectors with ``backbone`` and ``prompts(class_name)``: text prototypes are encoded once
    per class name and cached (the harness never sees prompts)."""

    backbone: ClipBackbone

    def prompts(self, class_name: str) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    @torch.no_grad()
    def text_prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` L2-normalised [normal, anomalous] prototypes, one row per image."""
        cache: dict[str, torch.Tensor] = self.__dict__.setdefault("_text_cache", {})
        for name in dict.fromkeys(class_names):
            if name not in cache:
                cache[name] = ensemble_prototypes(self.backbone, *self.prompts(name)).cpu()
        return torch.stack([cache[n] for n in class_names]).to(self.backbone.device)


class PromptedCLIP(PrototypeCache, Detector):
    """A frozen CLIP scored against one normal and one anomalous text prototype per class name.

    Subclasses choose the prompts: ``states`` (a normal and an anomalous pattern with ``{}`` for the
    class name) filled into each of ``templates``.
    """

    states: ClassVar[tuple[str, str]]
    templates: ClassVar[tuple[Template, ...]] = ("{}",)
    trainable: ClassVar[bool] = False

    def __init__(
        self,
        backbone: str = "ViT-L-14-336-quickgelu:openai",
        image_size: int = 518,
        sigma: float = 4.0,
        temperature: float = 0.07,
        pos_interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        self._options = {
            "backbone": backbone,
            "image_size": image_size,
            "sigma": sigma,
            "temperature": temperature,
            "pos_interpolation": pos_interpolation,
        }
        self.backbone = load_backbone(backbone)
        # The AnomalyCLIP protocol resizes positional embeddings bilinearly, without antialias.
        self.backbone.set_image_size(image_size, mode=pos_interpolation)
        self.input_size = image_size
        self.sigma = sigma
        self.temperature = temperature
        self._text_cache: dict[str, torch.Tensor] = {}

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return squash_transform(self.input_size)

    def prompts(self, class_name: str) -> tuple[list[str], list[str]]:
        """The normal and the anomalous prompts for one class name."""

        def fill(template: Template, state: str) -> str:
            return template.format(state) if isinstance(template, str) else template(state)

        normal, anomalous = (s.format(class_name) for s in self.states)
        return [fill(t, normal) for t in self.templates], [fill(t, anomalous) for t in self.templates]

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
