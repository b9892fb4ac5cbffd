"""Building a ``ClipBackbone`` from a spec: hub tags, local weight files, random and tiny test weights.

Weights come from the Hugging Face hub cache. A cached copy is used without touching the network; a
missing one is downloaded; when that fails (offline) the error names the model, the cache folder and
``zsad models download``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from zsad_bench.backbones.clip import ClipBackbone
from zsad_bench.backbones.spec import TINY_CONFIG, TINY_NAME, BackboneSpec, parse_backbone
from zsad_bench.errors import ZsadError

__all__ = ["download_weights", "load_backbone", "weights_sha256"]

_TINY_SEED = 0


def load_backbone(spec: str | BackboneSpec, device: str | torch.device | None = None) -> ClipBackbone:
    """A frozen, eval-mode backbone on ``device`` (CPU by default)."""
    import open_clip

    spec = parse_backbone(spec) if isinstance(spec, str) else spec
    if spec.model == TINY_NAME:
        model = _tiny_model()
    else:
        if open_clip.get_model_config(spec.model) is None:
            raise ZsadError(
                f"unknown backbone architecture '{spec.model}'; see open_clip.list_models(), "
                f"e.g. ViT-L-14-336-quickgelu"
            )
        weights = None if spec.random_weights else _weights_file(spec)
        model = open_clip.create_model(spec.model, pretrained=weights, weights_only=True)
    tokenizer = open_clip.get_tokenizer("ViT-B-32" if spec.model == TINY_NAME else spec.model)
    backbone = ClipBackbone(model, spec, tokenizer)
    return backbone.to(device or "cpu")


def _tiny_model() -> torch.nn.Module:
    from open_clip.model import CLIP

    # Random but reproducible: the same tiny weights in every process, without touching the global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TINY_SEED)
        return CLIP(**TINY_CONFIG)


def _weights_file(spec: BackboneSpec) -> str:
    """A local path to the weights: the file the spec names, or the hub's cached (or fetched) copy."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg, list_pretrained_tags_by_model

    if os.path.sep in spec.pretrained or spec.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        if not Path(spec.pretrained).is_file():
            raise ZsadError(f"weights file {spec.pretrained} for {spec.model} does not exist")
        return spec.pretrained
    cfg = get_pretrained_cfg(spec.model, spec.pretrained)
    if not cfg:
        tags = ", ".join(list_pretrained_tags_by_model(spec.model)) or "none"
        raise ZsadError(
            f"'{spec.pretrained}' is neither a weights file nor a known tag of {spec.model} (tags: {tags})"
        )
    cached = _cached_hub_file(cfg)
    if cached is not None:
        return cached
    try:
        path = download_pretrained(cfg)
    except Exception as exc:
        raise ZsadError(_offline_message(spec)) from exc
    if not path:
        raise ZsadError(_offline_message(spec))
    return path


def _cached_hub_file(cfg: dict) -> str | None:
    from huggingface_hub import try_to_load_from_cache
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    repo = repo.rstrip("/")
    candidates = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    for name in candidates:
        found = try_to_load_from_cache(repo_id=repo, filename=name)
        if isinstance(found, str) and Path(found).is_file():
            return found
    return None


def _offline_message(spec: BackboneSpec) -> str:
    from huggingface_hub import constants

    return (
        f"weights for {spec} are not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and could not be "
        f"downloaded; run 'zsad models download {spec}' with network access, or pass MODEL:/path/to/weights"
    )


def download_weights(spec: str | BackboneSpec) -> str:
    """Fetch (or find cached) the weights of ``spec`` and return the local file path."""
    spec = parse_backbone(spec) if isinstance(spec, str) else spec
    if spec.random_weights:
        raise ZsadError(f"{spec} uses random weights; there is nothing to download")
    return _weights_file(spec)


def weights_sha256(backbone: ClipBackbone) -> str:
    """A content hash of the backbone's parameters (provenance of every result), computed once."""
    cached = getattr(backbone, "_weights_sha256", None)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    backbone._weights_sha256 = digest.hexdigest()
    return backbone._weights_sha256
