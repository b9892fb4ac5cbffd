"""WinCLIP and WinCLIP+ (Jeong et al., CVPR 2023): CLIP scored on sliding windows of the patch grid.

Follows the anomalib / zqhang re-implementations (reference/baselines.md section 2), which the AnomalyCLIP
authors used for their WinCLIP numbers:

- Backbone open_clip ``ViT-B-16-plus-240`` (LAION-400M ``e31``) at 240 px: a 15 x 15 patch grid.
- Prompts: the compositional prompt ensemble of anomalib and zqhang, 7 normal and 4 anomalous states in 21
  templates = 147 normal and 84 anomalous prompts (section 2.2). Template 8 is repeated as template 9 in
  the source, so "a jpeg corrupted photo of the {}." counts twice in the mean; it is kept for fidelity.
- Text prototype (``text_average="raw"``): the mean of the *un-normalised* prompt embeddings, normalised
  only inside the cosine, as anomalib and zqhang do; ``"normalized"`` (normalise each prompt, average,
  renormalise) is the APRIL-GAN / open_clip convention, kept as an ablation.
- Class names are used as the harness passes them (prompt names such as "metal nut"); anomalib passes
  the raw folder name ("metal_nut").
- Scores: s(v) = softmax(cos(v, [t_normal, t_anomalous]) / 0.07)[anomalous] (section 2.3).
- Windows (section 2.4): every k x k window of patches, stride 1, for k in ``scales`` = (2, 3). The image
  is not cropped: a window's embedding is CLIP run on the class token plus the window's k^2 patch tokens,
  each with its original positional embedding, through every block, ``ln_post`` and ``proj``. All windows
  of all images of a scale run as one batch of ``B * n_windows`` short sequences; blocks are applied
  through ``ClipBackbone.run_block`` so the open_clip batch-first switch (>= 2.26) cannot make windows
  attend to each other.
- Zero-shot map (section 2.5): per scale, each patch takes the harmonic mean of the scores of the
  windows covering it; the map is the harmonic mean of the image score (broadcast), M_2 and M_3;
  non-finite values become 0. Bilinear upsampling (align_corners False) to the input size; no smoothing
  (section 2.6).
- Few-shot WinCLIP+ (section 2.7), after ``remember``: memories of all window embeddings per scale and of
  the final-layer patch tokens (after ``ln_post``, not projected) of the K normal images. A query scores
  a(q) = 1/2 min_r (1 - cos(q, r)); window scores are aggregated to patches harmonically, and the
  few-shot map F is the arithmetic mean of the patch-level and the per-scale maps. Map = (zero-shot + F)/2,
  image score = (s_img + max F)/2.
- ``pos_interpolation`` resizes the positional embedding (without antialias) only when ``image_size``
  is not the backbone's native size; WinCLIP itself always runs at the native 240 px.
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
from zsad_bench.errors import ZsadError
from zsad_bench.ops.maps import upsample
from zsad_bench.ops.prompts import PrototypeCache, ensemble_prototypes, fill_prompts
from zsad_bench.options import DetectorOptions, option

__all__ = [
    "ANOMALOUS_STATES",
    "NORMAL_STATES",
    "TEMPLATES",
    "WinCLIP",
    "WinCLIPFeatures",
    "WinCLIPOptions",
    "few_shot_scores",
    "harmonic_aggregate",
    "harmonic_mean",
    "window_indices",
    "window_membership",
]

# The anomalib / zqhang lists, verbatim (reference/prompts.json A_N, A_A, A_T; baselines.md section 2.2).
NORMAL_STATES: tuple[str, ...] = (
    "{}",
    "flawless {}",
    "perfect {}",
    "unblemished {}",
    "{} without flaw",
    "{} without defect",
    "{} without damage",
)
ANOMALOUS_STATES: tuple[str, ...] = ("damaged {}", "{} with flaw", "{} with defect", "{} with damage")
TEMPLATES: tuple[str, ...] = (
    "a cropped photo of the {}.",
    "a close-up photo of a {}.",
    "a close-up photo of the {}.",
    "a bright photo of a {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a dark photo of a {}.",
    "a jpeg corrupted photo of the {}.",
    "a jpeg corrupted photo of the {}.",  # duplicated in the source (likely meant "of a {}"); kept
    "a blurry photo of the {}.",
    "a blurry photo of a {}.",
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of the small {}.",
    "a photo of a large {}.",
    "a photo of the large {}.",
    "a photo of the {} for visual inspection.",
    "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.",
    "a photo of a {} for anomaly detection.",
)
_PROMPT_SETS = {"anomalib": (NORMAL_STATES, ANOMALOUS_STATES, TEMPLATES)}
_TEXT_AVERAGES = ("raw", "normalized")


# -- windows and aggregation (pure functions) ------------------------------------------------------------
def window_indices(grid: int, k: int, stride: int = 1) -> torch.Tensor:
    """``(n_windows, k*k)`` row-major patch indices of every ``k x k`` window on a ``grid x grid`` grid.

    Windows are listed row-major by their top-left corner; ``n_windows = ((grid - k) // stride + 1)^2``.
    """
    if not 1 <= k <= grid:
        raise ValueError(f"window size {k} must lie in 1..{grid} (the patch grid)")
    corners = torch.arange(0, grid - k + 1, stride)
    offsets = torch.arange(k)
    rows = (corners[:, None, None, None] + offsets[None, None, :, None]).expand(-1, len(corners), k, k)
    cols = (corners[None, :, None, None] + offsets[None, None, None, :]).expand(len(corners), -1, k, k)
    return (rows * grid + cols).reshape(-1, k * k)


def window_membership(grid: int, k: int, stride: int = 1) -> torch.Tensor:
    """``(n_windows, grid*grid)`` float 0/1 matrix: entry (w, p) is 1 when window w covers patch p."""
    index = window_indices(grid, k, stride)
    return torch.zeros(index.shape[0], grid * grid).scatter_(1, index, 1.0)


def harmonic_aggregate(window_scores: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """Per patch, the harmonic mean of the scores of the windows covering it: ``(B, n_w) -> (B, P)``.

    M(p) = |W_p| / sum_{w in W_p} 1/s(w) (reference/baselines.md section 2.5); a zero score makes the
    patch 0, and non-finite results (a patch no window covers) become 0, as in anomalib.
    """
    # a masked sum, not a matmul: a zero score gives 1/s = inf, and inf * 0 would make nan of the
    # patches that window does not cover
    inverse = window_scores.float().reciprocal()[:, :, None]
    inverse_sum = torch.where(membership.bool(), inverse, 0.0).sum(1)
    return torch.nan_to_num(membership.sum(0) / inverse_sum, nan=0.0, posinf=0.0, neginf=0.0)


def harmonic_mean(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Harmonic mean along ``dim``; 0 where any value is 0, non-finite results set to 0."""
    mean = values.shape[dim] / values.float().reciprocal().sum(dim)
    return torch.nan_to_num(mean, nan=0.0, posinf=0.0, neginf=0.0)


def few_shot_scores(queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """WinCLIP+ distance to a memory: a(q) = 1/2 min_r (1 - cos(q, r)); ``(B, N, D), (M, D) -> (B, N)``."""
    memory = F.normalize(memory.to(queries.device, torch.float32), dim=-1)
    similarity = F.normalize(queries.float(), dim=-1) @ memory.T
    # clamp: a query equal to a memory entry can round to cos > 1, and a negative score breaks 1/a
    return 0.5 * (1.0 - similarity.amax(dim=-1)).clamp_min(0.0)


# -- the detector --------------------------------------------------------------------------------------
@dataclass
class WinCLIPFeatures:
    """One forward pass of B images on a G x G grid.

    image: ``(B, D)`` projected CLS embedding. windows: per scale, ``(B, n_windows, D)`` projected window
    embeddings. patches: ``(B, G*G, W)`` final-layer patch tokens after ``ln_post``, not projected.
    """

    image: torch.Tensor
    windows: tuple[torch.Tensor, ...]
    patches: torch.Tensor


@dataclass(frozen=True)
class WinCLIPOptions(DetectorOptions):
    """WinCLIP's options; the defaults are anomalib's."""

    backbone: str = option("ViT-B-16-plus-240:laion400m_e31", "CLIP backbone MODEL[:PRETRAINED]")
    image_size: int = option(240, "square input side in pixels (a multiple of the patch size)", min=1)
    scales: tuple[int, ...] = option((2, 3), "window sizes in patches (each at most the grid)", min=1)
    temperature: float = option(0.07, "softmax temperature of the cosine similarities", above=0)
    prompts: str = option("anomalib", "prompt ensemble", choices=tuple(_PROMPT_SETS))
    text_average: str = option(
        "raw", "raw: mean of raw prompt embeddings; normalized: of unit ones", choices=_TEXT_AVERAGES
    )
    pos_interpolation: str = option(
        "bicubic", "positional-embedding resize mode (off the native size)", choices=INTERPOLATION_MODES
    )


class WinCLIP(Detector):
    """Zero-shot WinCLIP; WinCLIP+ for every class given normal reference images through ``remember``."""

    name: ClassVar[str] = "winclip"
    trainable: ClassVar[bool] = False
    few_shot: ClassVar[bool] = True
    Options: ClassVar[type[WinCLIPOptions]] = WinCLIPOptions
    options: WinCLIPOptions

    def __init__(self, options: WinCLIPOptions | None = None, **overrides: Any) -> None:
        super().__init__(options, **overrides)
        o = self.options
        self.backbone = load_backbone(o.backbone, image_size=o.image_size)
        self.backbone.set_image_size(o.image_size, mode=o.pos_interpolation)
        self.input_size = o.image_size
        self.grid = self.backbone.grid_size
        self.scales = o.scales
        self.temperature = o.temperature
        self.normal_states, self.anomalous_states, self.templates = _PROMPT_SETS[o.prompts]
        self.text_average = o.text_average
        for k in self.scales:  # built once per grid; they follow the module across devices
            self.register_buffer(f"_index_{k}", window_indices(self.grid, k), persistent=False)
            self.register_buffer(f"_membership_{k}", window_membership(self.grid, k), persistent=False)
        self.prototype_cache = PrototypeCache()
        self._memory: dict[str, WinCLIPFeatures] = {}

    @classmethod
    def validate_options(cls, options: WinCLIPOptions, owner: str = "") -> None:  # type: ignore[override]
        owner = owner or f"model '{cls.name}'"
        shape = fitted_shape(options.backbone, options.image_size, owner)
        grid = options.image_size // shape.patch_size
        if any(k > grid for k in options.scales):
            raise ZsadError(
                f"option scales of {owner} must be window sizes in 1..{grid} patches "
                f"(the grid at image_size {options.image_size}), got {','.join(map(str, options.scales))}"
            )

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        # anomalib squash-resizes bicubically with antialias (PIL does), then the CLIP mean/std.
        return squash_transform(self.input_size)

    # -- text ---------------------------------------------------------------------------------------------
    def prompts(self, class_name: str) -> tuple[list[str], list[str]]:
        """The normal and the anomalous prompts (every state in every template, state-major) of a class."""
        normal = fill_prompts(self.normal_states, self.templates, class_name)
        return normal, fill_prompts(self.anomalous_states, self.templates, class_name)

    @torch.no_grad()
    def text_prototypes(self, class_names: Sequence[str]) -> torch.Tensor:
        """``(B, 2, D)`` L2-normalised [normal, anomalous] prototypes, cached per class name."""
        return self.prototype_cache.lookup(class_names, self.class_prototypes, self.backbone.device)

    def class_prototypes(self, class_name: str) -> torch.Tensor:
        """``(2, D)``: the compositional ensemble, averaged as ``text_average`` says (the mean of the raw
        embeddings for anomalib's "raw", of the normalised ones for "normalized"), renormalised."""
        normalize = self.text_average == "normalized"
        return ensemble_prototypes(self.backbone, self.prompts(class_name), normalize_prompts=normalize)

    def anomaly_probability(self, embeddings: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """softmax(cos / T)[anomalous] of ``(B, ..., D)`` embeddings against ``(B, 2, D)`` prototypes."""
        b, d = embeddings.shape[0], embeddings.shape[-1]
        flat = F.normalize(embeddings.float().reshape(b, -1, d), dim=-1)
        logits = flat @ F.normalize(text.float(), dim=-1).transpose(1, 2) / self.temperature
        return logits.softmax(dim=-1)[..., 1].reshape(embeddings.shape[:-1])

    # -- image --------------------------------------------------------------------------------------------
    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, self.backbone.num_layers + 1):
            x = self.backbone.run_block(index, x)
        return x

    def encode(self, images: torch.Tensor) -> WinCLIPFeatures:
        """The image, window and patch features of ``(B, 3, S, S)`` images."""
        # embed() adds positional embeddings, then ln_pre; ln_pre is per token and patch dropout is the
        # identity in eval mode, so selecting tokens after it equals selecting them before ln_pre.
        x = self.backbone.embed(images)
        tokens = self._blocks(x)
        image = self.backbone.project(tokens[:, 0])
        patches = self.backbone.visual.ln_post(tokens[:, 1:])
        b, _, width = x.shape
        windows = []
        for k in self.scales:
            index = getattr(self, f"_index_{k}")
            n = index.shape[0]
            cls = x[:, :1].unsqueeze(1).expand(b, n, 1, width)
            sequences = torch.cat([cls, x[:, 1:][:, index]], dim=2).reshape(b * n, k * k + 1, width)
            windows.append(self.backbone.project(self._blocks(sequences)[:, 0]).reshape(b, n, -1))
        return WinCLIPFeatures(image=image, windows=tuple(windows), patches=patches)

    def zero_shot_map(
        self, features: WinCLIPFeatures, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image scores ``(B,)`` and the zero-shot patch map ``(B, G*G)`` (harmonic over image and scales)."""
        image_scores = self.anomaly_probability(features.image, text)
        maps = [image_scores[:, None].expand(-1, self.grid * self.grid)]
        for k, windows in zip(self.scales, features.windows, strict=True):
            scores = self.anomaly_probability(windows, text)
            maps.append(harmonic_aggregate(scores, getattr(self, f"_membership_{k}")))
        return image_scores, harmonic_mean(torch.stack(maps), dim=0)

    def few_shot_map(self, features: WinCLIPFeatures, class_names: Sequence[str]) -> torch.Tensor:
        """WinCLIP+ map F ``(B, G*G)``: mean of the patch-memory map and the per-scale window-memory maps."""
        out = torch.empty(len(class_names), self.grid * self.grid, device=features.image.device)
        for name in dict.fromkeys(class_names):
            memory = self._memory.get(name)
            if memory is None:
                raise ZsadError(
                    f"no reference images for class '{name}' (remembered: {', '.join(sorted(self._memory))});"
                    f" remember every class before a few-shot run, or forget() them all for zero-shot"
                )
            rows = torch.tensor([i for i, n in enumerate(class_names) if n == name], device=out.device)
            maps = [few_shot_scores(features.patches[rows], memory.patches)]
            for k, windows, bank in zip(self.scales, features.windows, memory.windows, strict=True):
                scores = few_shot_scores(windows[rows], bank)
                maps.append(harmonic_aggregate(scores, getattr(self, f"_membership_{k}")))
            out[rows] = torch.stack(maps).mean(0)
        return out

    # -- few-shot memory ----------------------------------------------------------------------------------
    @torch.no_grad()
    def remember(self, class_name: str, images: torch.Tensor) -> None:
        """Keep the window and patch features of K normal ``(K, 3, S, S)`` images of ``class_name``.

        Replaces any earlier memory of that class. Memories hold ``(K*n_windows, D)`` per scale and
        ``(K*G*G, W)`` patch tokens, L2-normalised float32.
        """
        s = self.input_size
        if images.ndim != 4 or images.shape[0] == 0 or tuple(images.shape[1:]) != (3, s, s):
            raise ZsadError(
                f"reference images for '{class_name}' must be (K, 3, {s}, {s}), got {tuple(images.shape)}"
            )
        features = self.encode(images.to(self.backbone.device))

        def bank(t: torch.Tensor) -> torch.Tensor:
            return F.normalize(t.float().reshape(-1, t.shape[-1]), dim=-1)

        self._memory[class_name] = WinCLIPFeatures(
            image=bank(features.image),
            windows=tuple(bank(w) for w in features.windows),
            patches=bank(features.patches),
        )

    def forget(self) -> None:
        """Drop every remembered class: back to zero-shot."""
        self._memory.clear()

    def memory(self, class_name: str) -> WinCLIPFeatures | None:
        """The memory of ``class_name`` (``image`` holds the K reference CLS embeddings), or None."""
        return self._memory.get(class_name)

    # -- prediction ---------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, class_names: Sequence[str]) -> Prediction:
        if len(class_names) != images.shape[0]:
            raise ZsadError(
                f"{images.shape[0]} images but {len(class_names)} class names; give one per image"
            )
        features = self.encode(images)
        image_scores, maps = self.zero_shot_map(features, self.text_prototypes(class_names))
        if self._memory:
            few_shot = self.few_shot_map(features, class_names)
            image_scores = (image_scores + few_shot.amax(dim=1)) / 2
            maps = (maps + few_shot) / 2
        maps = upsample(maps.reshape(-1, self.grid, self.grid), self.input_size)
        return Prediction(image_scores=image_scores.float(), anomaly_maps=maps)
