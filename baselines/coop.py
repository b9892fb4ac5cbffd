"""CoOp (Zhou et al., IJCV 2022) as the zero-shot anomaly-detection baseline of AnomalyCLIP.

What is known (reference/baselines.md section 4): the prompts are ``[V1]...[VN][normal][cls]`` and
``[V1]...[VN][anomalous][cls]`` (quoted by an OpenReview reviewer), the context is trained on the
auxiliary dataset's test split, and scores are computed "as for AnomalyCLIP". Everything else -- epochs,
optimiser, resolution, loss -- is unverified, so these are our choices:

- **One shared context of 16 vectors**, N(0, 0.02), class token at the end: CoOp's defaults (N = 16,
  CSC=False, ``trainers/coop.py``), and the paper's notation uses the same ``V`` symbols for both states,
  so only the words "normal" / "anomalous" tell the two prompts apart. The class name is the prompt name
  the harness passes, so the prompts are object-aware (unlike AnomalyCLIP's object-agnostic ones).
- **Image-level cross-entropy only, at temperature 0.07**: CoOp trains with CE alone; CoOp's very low
  pixel numbers in AnomalyCLIP's Table 1 (MVTec 33.3 pixel AUROC) point to image-level training and
  plain CLIP patch tokens (section 4.5). 0.07 rather than CLIP's logit scale (100) so that training and
  scoring use the same temperature. ``local_loss=True`` adds AnomalyCLIP's lambda x (focal + dice + dice)
  on the map, an explicit, off-by-default variant.
- **Adam lr 1e-3, betas (0.5, 0.999), batch 8, 15 epochs at 518 px** (the shared loop's AnomalyCLIP
  defaults), not CoOp's SGD 0.002 / cosine / 200 epochs at 224 px: the baseline is run inside
  AnomalyCLIP's protocol (ViT-L/14@336, 518 px), and 200 epochs over a test split would be a different
  experiment from AnomalyCLIP's own 15.
- **Image side is plain CLIP, no DPAM**: the global feature is the standard projected CLS (``ln_post``
  then ``proj``; AnomalyCLIP's own global omits ``ln_post``, but CoOp is plain CLIP); patch features are
  the final-layer patch tokens through ``ln_post`` and ``proj``, as in ``baselines/clip.py``.
- **Scores as AnomalyCLIP**: image = softmax(cos(global, [t_n, t_a]) / 0.07)[anomalous]; map = per-patch
  softmax(cos / 0.07) *before* bilinear upsampling (align_corners False), anomalous channel, Gaussian
  sigma = 4.

The learned context is the only trainable tensor (checkpoint key ``ctx``, shape ``(n_ctx, W)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from zsad_bench.api import Detector, Prediction, Trainable
from zsad_bench.backbones import fitted_shape, load_backbone
from zsad_bench.backbones.pos_embed import INTERPOLATION_MODES
from zsad_bench.data.transforms import squash_transform
from zsad_bench.errors import ZsadError
from zsad_bench.ops.learned_prompts import context_prompts, encode_embedded_prompts, frozen_parts
from zsad_bench.ops.losses import glocal_loss
from zsad_bench.ops.maps import gaussian_blur, patch_probabilities, upsample
from zsad_bench.ops.prompts import full_precision, per_image
from zsad_bench.options import DetectorOptions, option

__all__ = ["STATES", "CoOp", "CoOpOptions"]

STATES = ("normal {}.", "anomalous {}.")  # [normal, anomalous], after the learned context


@dataclass(frozen=True)
class CoOpOptions(DetectorOptions):
    """CoOp's options (module docstring: which are CoOp's and which are ours)."""

    backbone: str = option("ViT-L-14-336-quickgelu:openai", "CLIP backbone MODEL[:PRETRAINED]")
    image_size: int = option(518, "square input side in pixels (a multiple of the patch size)", min=1)
    n_ctx: int = option(16, "learned context tokens shared by both prompts", min=1)
    temperature: float = option(0.07, "softmax temperature of the cosine similarities", above=0)
    sigma: float = option(4.0, "Gaussian smoothing of the map in pixels (0: none)", min=0)
    local_loss: bool = option(False, "add AnomalyCLIP's map losses to the image-level cross-entropy")
    lam: float = option(4.0, "weight of the map losses (with local_loss)", min=0)
    pos_interpolation: str = option(
        "bilinear", "positional-embedding resize mode", choices=INTERPOLATION_MODES
    )
    trained_on: str | None = option(None, "auxiliary dataset the context was learned on")


class CoOp(Detector, Trainable):
    """CoOp: one learned 16-token context shared by "normal <cls>." and "anomalous <cls>." prompts."""

    name: ClassVar[str] = "coop"
    trainable: ClassVar[bool] = True
    Options: ClassVar[type[CoOpOptions]] = CoOpOptions
    options: CoOpOptions

    def __init__(self, options: CoOpOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        # The AnomalyCLIP protocol resizes positional embeddings bilinearly, without antialias.
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation)
        self.input_size = o.image_size
        self.n_ctx = o.n_ctx
        self.temperature, self.sigma, self.lam = o.temperature, o.sigma, o.lam
        self.local_loss = o.local_loss
        self.trained_on = o.trained_on
        width = self.backbone.token_embedding.embedding_dim
        # CoOp's random initialisation (trainers/coop.py L84-91), no initialisation from words
        self.ctx = nn.Parameter(torch.empty(o.n_ctx, width).normal_(std=0.02))
        # class name -> (token ids (2, T), SOS embedding (2, 1, W), embeddings after the context)
        self._fixed: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def validate_options(cls, options: CoOpOptions, owner: str = "") -> None:  # type: ignore[override]
        owner = owner or f"model '{cls.name}'"
        shape = fitted_shape(options.backbone, options.image_size, owner)
        # SOS, the state word, at least one class-name token, "." and EOS share the context with it
        room = shape.context_length - 5
        if options.n_ctx > room:
            raise ZsadError(
                f"option n_ctx of {owner} must leave room for the words in the {shape.context_length}-token "
                f"prompt: at most {room}, got {options.n_ctx}"
            )

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return squash_transform(self.input_size)

    # -- text: the prompt learner -------------------------------------------------------------------
    def prompts(self, class_name: str) -> list[str]:
        """The two prompt strings before tokenising; the ``X`` placeholders become the learned context."""
        return context_prompts(self.n_ctx, [state.format(class_name) for state in STATES])

    def fixed_parts(self, class_name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids ``(2, T)`` and the frozen embeddings around the context, computed once per class."""
        parts = self._fixed.get(class_name)
        if parts is None or parts[0].device != self.ctx.device:
            parts = frozen_parts(self.backbone, self.prompts(class_name), self.n_ctx)
            self._fixed[class_name] = parts
        return parts

    def prompt_embeddings(self, class_name: str) -> torch.Tensor:
        """``(2, T, W)`` text-tower inputs: [SOS | ctx (positions 1..n_ctx) | state, class, ".", EOS, pad]."""
        _, prefix, suffix = self.fixed_parts(class_name)
        context = self.ctx.float().unsqueeze(0).expand(2, -1, -1)
        return torch.cat([prefix, context, suffix], dim=1)

    def encode_prompts(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(C, 2, D)`` un-normalised [normal, anomalous] text features of distinct class names.

        The prompts run through open_clip's text tower block by block (no deep tokens), then ``ln_final``,
        the end-of-text token and the text projection -- CLIP's ``encode_text`` on embedded inputs.
        """
        embeddings = torch.cat([self.prompt_embeddings(n) for n in class_names])
        token_ids = torch.cat([self.fixed_parts(n)[0] for n in class_names])
        return encode_embedded_prompts(self.backbone, embeddings, token_ids).reshape(len(class_names), 2, -1)

    def text_prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` L2-normalised prototypes, one pair per image (differentiable in the context).

        One learned prompt per state, so there is no ensemble to average and nothing to cache (the context
        changes every step): the distinct class names go through the text tower together, in float32.
        """

        def encode(distinct: list[str]) -> torch.Tensor:
            with full_precision(self.backbone.device):
                return F.normalize(self.encode_prompts(distinct).float(), dim=-1)

        return per_image(class_names, encode)

    # -- image: plain CLIP -------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor, patches: bool = True) -> dict[str, torch.Tensor]:
        """L2-normalised ``global`` (B, D), the standard projected CLS, and ``patch`` (B, N, D), the
        final-layer patch tokens through ``ln_post`` and ``proj``."""
        with torch.no_grad():
            out = self.backbone.encode_image(images)
            features = {"global": F.normalize(out.pooled.float(), dim=-1)}
            if patches:
                features["patch"] = F.normalize(self.backbone.project(out.tokens[:, 1:]).float(), dim=-1)
        return features

    def _image_logits(self, features: dict[str, torch.Tensor], text: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` cos(global, [t_n, t_a]) / temperature."""
        return torch.einsum("bd,bkd->bk", features["global"], text) / self.temperature

    def _map_probabilities(self, features: dict[str, torch.Tensor], text: torch.Tensor) -> torch.Tensor:
        """``(B, 2, S, S)``: softmax per patch *before* the bilinear upsampling (AnomalyCLIP's
        ``get_similarity_map``)."""
        probabilities = patch_probabilities(features["patch"], text, self.temperature)
        return upsample(probabilities, self.input_size)

    # -- inference --------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        text = self.text_prototypes(class_names)
        features = self.image_features(images)
        scores = self._image_logits(features, text).softmax(-1)[:, 1]
        maps = gaussian_blur(self._map_probabilities(features, text)[:, 1], self.sigma)
        return Prediction(image_scores=scores.float(), anomaly_maps=maps)

    # -- training (zsad_bench.engine.training) -------------------------------------------------------------
    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the feature cache keeps: ``global``, plus ``patch`` only when the local loss needs it (the
        patch tokens of ViT-L at 518 px are ~4 MB per image; image-level CE never reads them)."""
        return self.image_features(images, patches=self.local_loss)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return [self.ctx]

    def loss(
        self,
        features: dict[str, torch.Tensor],
        masks: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
    ) -> torch.Tensor:
        """CE(image logits / 0.07, labels); with ``local_loss`` plus lam x (focal + dice + dice) on the map.

        The prompts are class-specific: each image is scored against its own ``class_names`` entry.
        """
        text = self.text_prototypes(class_names)
        logits = self._image_logits(features, text)
        if not self.local_loss:
            return F.cross_entropy(logits, labels.long())
        return glocal_loss(logits, labels, [self._map_probabilities(features, text)], masks, self.lam)

    # -- checkpoints --------------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {"ctx": self.ctx.detach()}
