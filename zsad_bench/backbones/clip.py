"""The open_clip adapter: what the methods need from a CLIP model, and nothing more.

``ClipBackbone`` wraps an open_clip ``CLIP`` and exposes the text encoder, the projected CLS, the
residual tokens after any 1-based block, ``ln_post`` + projection of patch tokens, and the input-size
change (positional-embedding resize). Blocks are run one by one from here, so a method can read or
replace what flows between them without module surgery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from zsad_bench.backbones.attention import plain_block, run_plain_block
from zsad_bench.backbones.pos_embed import resize_pos_embed
from zsad_bench.backbones.spec import BackboneSpec

__all__ = ["ClipBackbone", "VisualFeatures"]


@dataclass
class VisualFeatures:
    """Outputs of one image forward pass for a batch of B images with L = 1 + grid*grid tokens.

    pooled: ``(B, D)`` standard CLIP image embedding (``ln_post`` of the CLS token, then ``proj``).
    tokens: ``(B, L, W)`` residual stream after the last block (before ``ln_post``).
    layers: 1-based block index -> ``(B, L, W)`` residual stream after that block.
    """

    pooled: torch.Tensor
    tokens: torch.Tensor
    layers: dict[int, torch.Tensor] = field(default_factory=dict)


class ClipBackbone(nn.Module):
    """A frozen open_clip CLIP with a known spec; ``random_weights`` is recorded in every result."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, tokenizer: object) -> None:
        super().__init__()
        visual = model.visual
        if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError(f"{spec.model}: only ViTs pooled on the class token are supported")
        self.model = model
        self.spec = spec
        self.tokenizer = tokenizer
        self.native_size = int(visual.image_size[0])
        self.patch_size = int(visual.patch_size[0])
        self.register_buffer("_native_pos", visual.positional_embedding.detach().clone(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    # -- facts --------------------------------------------------------------------------------
    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights

    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def image_size(self) -> int:
        return int(self.visual.image_size[0])

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def width(self) -> int:
        return int(self.visual.conv1.out_channels)

    @property
    def embed_dim(self) -> int:
        return int(self.visual.proj.shape[1])

    @property
    def num_layers(self) -> int:
        return len(self.visual.transformer.resblocks)

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    def train(self, mode: bool = True) -> ClipBackbone:
        # Frozen feature extractor: stays in eval mode whatever the detector around it does.
        return super().train(False)

    # -- input size -----------------------------------------------------------------------------
    def set_image_size(self, size: int, mode: str = "bilinear", antialias: bool = False) -> None:
        """Accept ``size x size`` inputs: resize the positional embedding from the native one."""
        if size % self.patch_size:
            raise ValueError(f"image size {size} is not a multiple of the patch size {self.patch_size}")
        grid = size // self.patch_size
        pos = resize_pos_embed(self._native_pos, grid, mode=mode, antialias=antialias)
        self.visual.positional_embedding = nn.Parameter(pos, requires_grad=False)
        self.visual.image_size = (size, size)
        self.visual.grid_size = (grid, grid)

    # -- text -------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, context_length)`` token ids on the backbone's device."""
        return self.tokenizer(list(texts)).to(self.device)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """``(N, D)`` projected, un-normalised text embeddings (float32)."""
        chunks = [
            self.model.encode_text(self.tokenize(texts[i : i + batch_size])).float()
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(chunks)

    # -- text, block by block (for learned prompts) -------------------------------------------------
    @property
    def token_embedding(self) -> nn.Embedding:
        return self.model.token_embedding

    @property
    def num_text_layers(self) -> int:
        return len(self.model.transformer.resblocks)

    def text_input(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(N, T, W)`` plus the positional embedding: the input of text block 1."""
        return embeddings + self.model.positional_embedding.to(embeddings.dtype)

    def run_text_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply 1-based causal text block ``index`` to a batch-first ``(N, T, W)`` stream."""
        transformer = self.model.transformer
        block = transformer.resblocks[index - 1]
        mask = self.model.attn_mask
        if plain_block(block):
            return run_plain_block(block, x, mask)
        if transformer.batch_first:
            return block(x, attn_mask=mask)
        return block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)

    def text_head(self, x: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """``ln_final``, the end-of-text token of each prompt (the largest id), and the text projection."""
        x = self.model.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), token_ids.argmax(dim=-1)]
        projection = self.model.text_projection
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection

    # -- image ------------------------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch + class embedding, positional embedding and ``ln_pre``: ``(B, L, W)``."""
        return self.visual._embeds(images)

    def blocks(self) -> nn.ModuleList:
        return self.visual.transformer.resblocks

    def run_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Apply 1-based block ``index`` to a batch-first ``(B, L, W)`` stream."""
        transformer = self.visual.transformer
        block = transformer.resblocks[index - 1]
        if plain_block(block):  # fused SDPA instead of nn.MultiheadAttention's L x L scores
            return run_plain_block(block, x)
        if transformer.batch_first:
            return block(x)
        # open_clip < 2.26 runs its transformer sequence-first (reference/baselines.md section 2.4).
        return block(x.transpose(0, 1)).transpose(0, 1)

    def encode_image(self, images: torch.Tensor, layers: Sequence[int] = ()) -> VisualFeatures:
        """Run the image tower block by block, keeping the residual stream after ``layers`` (1-based)."""
        wanted = set(layers)
        bad = [i for i in wanted if not 1 <= i <= self.num_layers]
        if bad:
            raise ValueError(f"layers {bad} outside 1..{self.num_layers}")
        x = self.embed(images)
        kept: dict[int, torch.Tensor] = {}
        for index in range(1, self.num_layers + 1):
            x = self.run_block(index, x)
            if index in wanted:
                kept[index] = x
        return VisualFeatures(pooled=self.project(x[:, 0]), tokens=x, layers=kept)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_post`` then the visual projection: ``(..., W) -> (..., D)``."""
        return self.visual.ln_post(tokens) @ self.visual.proj
