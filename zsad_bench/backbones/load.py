"""Building a ``ClipBackbone`` from a spec: hub tags, local weight files, random and tiny test weights.

Weights come from the Hugging Face hub cache. A cached copy is used without touching the network; a
missing one is downloaded. Offline (``HF_HUB_OFFLINE`` set, or one quick request to the Hub fails to
connect) nothing is retried: the error says "offline" in one line within seconds, naming the model, the
cache folder and ``zsad models download`` (the Hub client would otherwise retry for about a minute).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

from zsad_bench.backbones.clip import ClipBackbone
from zsad_bench.backbones.shape import backbone_shape, is_weights_file
from zsad_bench.backbones.spec import TINY_PATCHES, BackboneSpec, fit_tiny, parse_backbone, tiny_config
from zsad_bench.errors import ZsadError
from zsad_bench.hub import is_offline_error, offline_by_setting, unreachable

__all__ = ["download_weights", "load_backbone", "weights_sha256"]

_TINY_SEED = 0


def load_backbone(
    spec: str | BackboneSpec, device: str | torch.device | None = None, image_size: int | None = None
) -> ClipBackbone:
    """A frozen, eval-mode backbone on ``device`` (CPU by default).

    ``image_size`` (the detector's input side) picks the ``test-tiny`` family whose patch size divides
    it; the other specs do not depend on it.
    """
    import open_clip

    spec = fit_tiny(parse_backbone(spec) if isinstance(spec, str) else spec, image_size)
    backbone_shape(spec)  # an unknown or unsupported architecture, a missing weights file: one line
    if spec.model in TINY_PATCHES:
        model = _tiny_model(spec.model)
    elif not spec.random_weights and is_weights_file(spec.pretrained):
        model = open_clip.create_model(spec.model, pretrained=None)
        _load_weights_file(model, spec)
    else:
        weights = None if spec.random_weights else _weights_file(spec)
        model = open_clip.create_model(spec.model, pretrained=weights, weights_only=True)
    tokenizer = open_clip.get_tokenizer("ViT-B-32" if spec.model in TINY_PATCHES else spec.model)
    backbone = ClipBackbone(model, spec, tokenizer)
    return backbone.to(device or "cpu")


def _tiny_model(name: str) -> torch.nn.Module:
    from open_clip.model import CLIP

    # Random but reproducible: the same tiny weights in every process, without touching the global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TINY_SEED)
        return CLIP(**tiny_config(name))


def _load_weights_file(model: torch.nn.Module, spec: BackboneSpec) -> None:
    """Load the user's weights file into ``model`` through open_clip's own checkpoint loader (key fixes,
    positional-embedding resize), read with ``weights_only=True`` so that no pickled code runs. Anything
    that is not a state dict of this architecture is one line naming the file."""
    from open_clip import load_checkpoint

    path = spec.pretrained
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes are noise beside the one line
            warnings.simplefilter("ignore")
            load_checkpoint(model, path, weights_only=True)
    except Exception as exc:  # unpickling, zip, safetensors and key errors alike
        text = str(exc).strip()
        # open_clip's fitting steps assert (a resized embedding of another width) or list the keys
        if isinstance(exc, AssertionError) or text.startswith("Error(s) in loading state_dict"):
            lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
            detail = (lines[0] if lines else text)[:160]
            raise ZsadError(
                f"weights file {path} does not fit {spec.model} ({detail}); pass the weights of that "
                f"architecture or name the matching one, MODEL:{path}"
            ) from None
        first = (text.splitlines()[0] if text else type(exc).__name__)[:120]
        if Path(path).stat().st_size == 0:
            first = "the file is empty"
        elif "Weights only load failed" in text:
            first = "refused by the safe loader; nothing in it ran"
        elif "zip archive" in text or isinstance(exc, (EOFError, IndexError, KeyError)):
            first = "truncated, or not a torch file"
        raise ZsadError(
            f"weights file {path} is not a state dict of tensors ({first}); pass a .pt, .pth, .bin or "
            f".safetensors file of {spec.model} weights"
        ) from None


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
    offline = _offline_reason(cfg)
    if offline is not None:
        raise ZsadError(_offline_message(spec, offline))
    try:
        path = download_pretrained(cfg)
    except Exception as exc:
        if is_offline_error(exc):  # the network went away after the probe
            raise ZsadError(_offline_message(spec, _short(exc))) from exc
        raise ZsadError(_failed_message(spec, _short(exc))) from exc
    if not path:
        raise ZsadError(_failed_message(spec, "the pretrained tag names no file"))
    return path


def _offline_reason(cfg: dict) -> str | None:
    """Why the Hub cannot be reached (``HF_HUB_OFFLINE``, or a connection error on one quick request
    without retries), or None when it answers (any HTTP status: a missing file is not "offline")."""
    import urllib.parse

    import huggingface_hub
    from open_clip.constants import HF_WEIGHTS_NAME

    if offline_by_setting():
        return "HF_HUB_OFFLINE is set"
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None  # a plain URL: urllib fails at once without a network and does not retry
    repo, filename = os.path.split(hub)
    url = huggingface_hub.hf_hub_url(repo.rstrip("/"), filename or HF_WEIGHTS_NAME)
    failure = unreachable(huggingface_hub, url)
    if failure is not None:
        return f"cannot reach {urllib.parse.urlsplit(url).netloc}: {_short(failure)}"
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"


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


def _offline_message(spec: BackboneSpec, reason: str) -> str:
    from huggingface_hub import constants

    return (
        f"weights for {spec} are not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and cannot be "
        f"downloaded: offline ({reason}); run 'zsad models download {spec}' where there is network access, "
        "or pass MODEL:/path/to/weights"
    )


def _failed_message(spec: BackboneSpec, reason: str) -> str:
    from huggingface_hub import constants

    return (
        f"could not download the weights for {spec} into the Hugging Face cache ({constants.HF_HUB_CACHE}): "
        f"{reason}; run 'zsad models download {spec}' again, or pass MODEL:/path/to/weights"
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
