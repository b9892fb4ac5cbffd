"""AdaCLIP (Cao et al., ECCV 2024) as the official code computes it (reference/adaclip.md).

- Backbone: OpenAI ViT-L/14@336 at 518 px with the official **GELU quirk** (``ViT-L-14-336:openai``: the
  repository builds it from ``model_configs/ViT-L-14-336.json``, which has no ``quick_gelu``); positional grid
  resized bicubically, ``align_corners=False``, **without antialias** (``clip_model.resize_pos_embed``).
  The official rounds the tower's linear/conv weights to float16 at load; OpenAI's weights are float16
  values already, so that is the identity for them (not done for other weights, e.g. the tiny test tower).
- Dynamic prompts from the plain (unprompted) pass's pooled CLS feature; static + dynamic prompts into
  image blocks 1..depth and text blocks 2..depth (``prompts.py``, ``visual.py``), rounded to float16
  (``half_prompts``).
- Patch features: per layer normalize(head_l(raw residual tokens without CLS)), no ``ln_post``; image
  feature c = normalize(cls_head(pooled)); text T: one ``(2, D)`` per image (its dynamic prompts).
- Logits A_l = 100 P_l . T (fixed 100, not CLIP's logit scale). Image score: softmax(100 f . T)[abnormal],
  f = normalize(0.2 h + 0.8 c) with h the hybrid semantic fusion (``fusion.py``).
- Map: each A_l upsampled bilinearly with align_corners=True, averaged over layers, softmax,
  (p1 + 1 - p0) / 2, then scipy's Gaussian with sigma 4 (``trainer.evaluation``). The score is not
  post-processed.

Class names: the official put the dataset's class folder names into the sentences with only ``-`` -> `` ``
(``metal_nut`` keeps its underscore; "metal nut" moves a score by 0.12). The harness passes prompt names
(``metal nut``); ``folder_names=True`` (default) turns spaces back into underscores, which gives the official
words for MVTec AD, VisA, MPDD, DTD-Synthetic and DAGM (CLIP's tokenizer lowercases, so ``Woven_001`` and
``woven_001`` are the same tokens). The official single-class datasets used their dataset names (ColonDB,
ClinicDB, isic, tn3k, headct, brain_mri, br35h, SDD), which the harness's names (colon, skin, ...) do not
carry: with ``folder_names`` the model takes them from the dataset id (``data.py``: ``begin_dataset`` in
evaluation, the auxiliary parts in training); ``prompt_class`` sets one word for every image.

Training data (``data.py``): the official 2 x 2 mosaic on MVTec AD items (``mosaic_prob`` 0.2, four distinct
images of the class, the item's label kept) and the official class words of the single-class datasets.

Departures: batches of any size (the official refuses more than one image; the text features, the
clustering and its seed are computed per image here); k-means seeded per image by default (``fusion.py``:
the official draws from the global NumPy state in evaluation order; ``kmeans_order=official`` reproduces
that); heads, similarities and the fusion in float32 whatever autocast the tower runs under (the official
ran everything under fp16 autocast). Training: fp32 instead of the official fp16 autocast, which
``train.sh`` warns is unstable; the last epoch is kept, where the official keeps the epoch with the best
pixel F1 on its *test* dataset (``train.py`` validation: a zero-shot leak). The optimiser is the official
AdamW(lr 0.01, betas 0.5/0.999, weight decay 0.01), batch 1 (``train_defaults``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from zsad_bench.adaclip.data import OFFICIAL_CLASS_WORDS, official_training_data
from zsad_bench.adaclip.fusion import ClusterLabels, hybrid_semantic_fusion
from zsad_bench.adaclip.loss import adaclip_loss
from zsad_bench.adaclip.options import AdaCLIPOptions, check_adaclip_options
from zsad_bench.adaclip.prompts import ProjectLayer, StaticPrompts, block_contexts, encode_class_text
from zsad_bench.adaclip.visual import prompted_image_pass
from zsad_bench.api import Detector, Prediction, Trainable, TrainConfig
from zsad_bench.backbones import load_backbone
from zsad_bench.data.transforms import squash_transform
from zsad_bench.ops.maps import gaussian_blur, upsample
from zsad_bench.ops.prompts import full_precision

__all__ = ["LOGIT_SCALE", "AdaCLIP", "Similarities"]

LOGIT_SCALE = 100.0  # visual_text_similarity: fixed 100, not CLIP's learned logit scale
EPOCHS = 5  # train.py --epoch


class Similarities:
    """One batch's logits: ``layers`` per layer ``(B, N, 2)`` patch logits, ``image`` ``(B, 2)``."""

    def __init__(self, layers: list[torch.Tensor], image: torch.Tensor) -> None:
        self.layers, self.image = layers, image

    def upsampled(self, size: int) -> list[torch.Tensor]:
        """Per layer ``(B, 2, size, size)`` logits, bilinear with align_corners=True (official)."""
        out = []
        for logits in self.layers:
            b, n, k = logits.shape
            grid = math.isqrt(n)
            out.append(upsample(logits.transpose(1, 2).reshape(b, k, grid, grid), size, align_corners=True))
        return out


class AdaCLIP(Detector, Trainable):
    """AdaCLIP: hybrid static + dynamic prompts in both CLIP towers, with hybrid semantic fusion."""

    name: ClassVar[str] = "adaclip"
    trainable: ClassVar[bool] = True
    cache_features: ClassVar[bool] = False  # the prompts enter the image tower: every step runs it
    Options: ClassVar[type[AdaCLIPOptions]] = AdaCLIPOptions
    options: AdaCLIPOptions

    def __init__(self, options: AdaCLIPOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation, antialias=o.pos_antialias)
        self.input_size = o.image_size
        self.features = list(o.features)
        self.trained_on = o.trained_on
        width, embed_dim = self.backbone.width, self.backbone.embed_dim
        text_width = self.backbone.token_embedding.embedding_dim
        static, dynamic = "S" in o.prompt_type, "D" in o.prompt_type
        self.visual_prompts, self.text_prompts = "V" in o.prompt_branch, "L" in o.prompt_branch
        # module names as the official ``AdaCLIP`` (its checkpoint keys less ``clip_model.``)
        if static and self.text_prompts:
            self.text_prompter = StaticPrompts(text_width, o.prompt_length, o.prompt_depth)
        if static and self.visual_prompts:
            self.visual_prompter = StaticPrompts(width, o.prompt_length, o.prompt_depth)
        self.patch_token_layer = ProjectLayer(width, embed_dim, len(self.features))
        self.cls_token_layer = ProjectLayer(embed_dim, embed_dim, 1)
        if dynamic:
            self.dynamic_visual_prompt_generator = ProjectLayer(embed_dim, width, o.prompt_length)
            self.dynamic_text_prompt_generator = ProjectLayer(embed_dim, text_width, o.prompt_length)
        self.cluster = ClusterLabels(o.k_clusters, o.kmeans_seed, o.kmeans_order)
        self._fixed_text: dict[str, torch.Tensor] = {}  # class word -> (2, D), unprompted text tower only
        self.dataset_id = ""  # the dataset being evaluated (``begin_dataset``): its official class word

    def begin_dataset(self, dataset_id: str) -> None:
        """The official class word of a single-class dataset (``data.py``); a new official test process
        starts its k-means state afresh for each dataset (``kmeans_order=official``)."""
        self.dataset_id = dataset_id
        self.cluster.reset()

    def training_data(self, dataset: Any, config: TrainConfig) -> Any:
        """The official mosaic on MVTec AD and the official class words (``data.py``)."""
        return official_training_data(dataset, self.options.mosaic_prob, self.options.folder_names)

    @classmethod
    def validate_options(cls, options: AdaCLIPOptions, owner: str = "") -> None:  # type: ignore[override]
        check_adaclip_options(options, owner or f"model '{cls.name}'")

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        # Resize((518, 518), bicubic), CenterCrop (a no-op after it), OpenAI mean/std
        return squash_transform(self.input_size)

    @classmethod
    def epochs_for(cls, dataset_id: str) -> int:
        return EPOCHS

    @classmethod
    def train_defaults(cls) -> dict[str, Any]:
        """train.py: lr 0.01, batch 1; trainer.py: AdamW, betas (0.5, 0.999), torch's default weight decay
        0.01 (decoupled: over ~10k steps at lr 0.01 it shrinks the learned tensors noticeably)."""
        return {
            "lr": 0.01,
            "batch_size": 1,
            "betas": (0.5, 0.999),
            "optimizer": "adamw",
            "weight_decay": 0.01,
        }

    # -- text -----------------------------------------------------------------------------------------
    def prompt_word(self, class_name: str) -> str:
        """The class word the sentences carry (module doc, "Class names")."""
        official = OFFICIAL_CLASS_WORDS.get(self.dataset_id) if self.options.folder_names else None
        word = (
            self.options.prompt_class
            or official
            or (class_name.replace(" ", "_") if self.options.folder_names else class_name)
        )
        return word.replace("-", " ")  # TextEmbebddingLayer.encode_text

    def _text(self, words: list[str], dynamic: torch.Tensor | None) -> torch.Tensor:
        """``(B, 2, D)`` text features, one per image (its class word and its dynamic prompts)."""
        o = self.options
        if not self.text_prompts:  # fixed text: encoded once per word (the official caches it too)
            for word in set(words) - set(self._fixed_text):
                with torch.no_grad():
                    self._fixed_text[word] = encode_class_text(self.backbone, [word], None)[0]
            return torch.stack([self._fixed_text[w].to(self.backbone.device) for w in words])
        static = getattr(self, "text_prompter", None)
        if dynamic is not None:  # prompts differ per image
            return encode_class_text(
                self.backbone, words, block_contexts(static, dynamic, o.prompt_depth), o.half_prompts
            )
        unique = list(dict.fromkeys(words))
        text = encode_class_text(
            self.backbone, unique, block_contexts(static, None, o.prompt_depth), o.half_prompts
        )
        return text[[unique.index(w) for w in words]]

    # -- the two towers -------------------------------------------------------------------------------
    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """What one step needs: the images and the plain pass's pooled feature ``(B, D)`` (no gradient)."""
        with torch.no_grad():
            return {"image": images, "pooled": self.backbone.encode_image(images).pooled}

    def similarities(
        self, images: torch.Tensor, pooled: torch.Tensor, class_names: Sequence[str]
    ) -> Similarities:
        """The patch and image logits of ``(B, 3, S, S)`` images; ``pooled`` from ``frozen_features``."""
        o = self.options
        dynamic_visual = dynamic_text = None
        if "D" in o.prompt_type:
            dynamic_visual = self.dynamic_visual_prompt_generator.stacked(pooled.float())
            dynamic_text = self.dynamic_text_prompt_generator.stacked(pooled.float())
        contexts = None
        if self.visual_prompts:
            static = getattr(self, "visual_prompter", None)
            contexts = block_contexts(static, dynamic_visual, o.prompt_depth)
        image_feature, tokens = prompted_image_pass(
            self.backbone, images, contexts, self.features, o.half_prompts
        )
        with full_precision(self.backbone.device):
            text = self._text([self.prompt_word(n) for n in class_names], dynamic_text).float()  # (B, 2, D)
            heads = self.patch_token_layer.head
            patches = [
                F.normalize(head(tokens[layer][:, 1:].float()), dim=-1)
                for head, layer in zip(heads, self.features, strict=True)
            ]
            cls = F.normalize(self.cls_token_layer.head[0](image_feature.float()), dim=-1)
            layers = [LOGIT_SCALE * p @ text.transpose(1, 2) for p in patches]
            feature = cls
            if o.use_hsf:
                fused = hybrid_semantic_fusion(patches, layers, o.k_clusters, self.cluster)
                feature = F.normalize(o.fusion_weight * fused + (1.0 - o.fusion_weight) * cls, dim=1)
            image = LOGIT_SCALE * torch.einsum("bd,bkd->bk", feature, text)
        return Similarities(layers, image)

    # -- inference ------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        features = self.frozen_features(images)
        sims = self.similarities(images, features["pooled"], class_names)
        with full_precision(self.backbone.device):
            p = torch.stack(sims.upsampled(self.input_size), dim=1).mean(dim=1).softmax(dim=1)
            maps = (p[:, 1] + 1.0 - p[:, 0]) / 2.0
            scores = sims.image.softmax(dim=-1)[:, 1]
            maps = gaussian_blur(maps, self.options.sigma)  # float32 under any autocast
        return Prediction(image_scores=scores.float(), anomaly_maps=maps.float())

    # -- training -------------------------------------------------------------------------------------
    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]

    def loss(
        self,
        features: dict[str, torch.Tensor],
        masks: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
    ) -> torch.Tensor:
        """``loss.py``: focal on the image probabilities + per layer focal + two dice terms (weights 1)."""
        sims = self.similarities(features["image"], features["pooled"], class_names)
        with full_precision(self.backbone.device):
            layer_probs = [u.softmax(dim=1) for u in sims.upsampled(self.input_size)]
            return adaclip_loss(
                sims.image.softmax(dim=-1), labels, layer_probs, masks.float(), self.options.dice_rows
            )

    # -- checkpoints ----------------------------------------------------------------------------------
    @classmethod
    def official_options(cls, path: Path) -> AdaCLIPOptions:
        """The shapes and training data of an official ``pretrained_*.pth`` file."""
        from zsad_bench.adaclip.checkpoint import official_options

        return official_options(cls, path)

    @classmethod
    def load_official(cls, path: Path, **options: Any) -> AdaCLIP:
        """An official ``pretrained_*.pth`` file (``checkpoint.py``)."""
        from zsad_bench.adaclip.checkpoint import load_official

        return load_official(cls, path, **options)
