"""Text prototypes from prompt ensembles, on top of open_clip's ``build_zero_shot_classifier``.

A method describes its prompts as *groups* (usually [normal, anomalous]); a group's prototype is the mean
of its L2-normalised prompt embeddings, re-normalised -- what open_clip's builder computes for a class
from its templates. Here a group plays the builder's class and its prompts play the templates, so the
builder formats, encodes, averages and normalises; groups with as many prompts share one forward pass.

Prompts are filled state-major (every template for the first state, then the second, ...), as the
compositional ensembles of WinCLIP (anomalib) and APRIL-GAN loop. Prototypes are float32 whatever
autocast the caller runs under, and ``PrototypeCache`` keeps them per class name, so each class's
prompts are encoded once (the harness never sees prompts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial

import torch
import torch.nn.functional as F

from zsad_bench.backbones.clip import ClipBackbone

__all__ = [
    "PrototypeCache",
    "Template",
    "TextTower",
    "ensemble_prototypes",
    "fill_prompts",
    "full_precision",
    "per_image",
]

Template = str | Callable[[str], str]
ENCODE_BATCH = 256  # prompts per text-tower forward, as ClipBackbone.encode_text


def full_precision(device: torch.device) -> AbstractContextManager[object]:
    """Autocast off on ``device``: text prototypes and their cosines stay float32 under a bf16 tower."""
    return torch.autocast(device_type=device.type, enabled=False)


def fill_prompts(states: Sequence[str], templates: Sequence[Template], class_name: str) -> list[str]:
    """Every state (``{}`` = the class name) put into every template, state-major.

    A template is a ``str.format`` pattern or a callable (open_clip's ``OPENAI_IMAGENET_TEMPLATES``).
    """

    def fill(template: Template, text: str) -> str:
        return template.format(text) if isinstance(template, str) else template(text)

    return [fill(t, state.format(class_name)) for state in states for t in templates]


class TextTower:
    """The model half of the ``(model, tokenizer)`` pair open_clip's builder takes, over a ClipBackbone.

    ``encode_text`` runs open_clip's text tower in chunks of 256 prompts and returns float32;
    ``normalize_prompts=False`` makes it ignore the builder's per-prompt normalisation, which gives the
    mean of the *raw* embeddings (renormalised) -- the convention of WinCLIP's anomalib and zqhang code.
    """

    def __init__(self, backbone: ClipBackbone, normalize_prompts: bool = True) -> None:
        self.backbone = backbone
        self.normalize_prompts = normalize_prompts

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """``(N, D)`` text embeddings of ``(N, T)`` token ids."""
        model = self.backbone.model
        chunks = [
            model.encode_text(token_ids[i : i + ENCODE_BATCH]).float()
            for i in range(0, len(token_ids), ENCODE_BATCH)
        ]
        embeddings = torch.cat(chunks)
        return F.normalize(embeddings, dim=-1) if normalize and self.normalize_prompts else embeddings


def _nth_prompt(groups: Sequence[Sequence[str]], n: int, group: int) -> str:
    return groups[group][n]


def ensemble_prototypes(
    backbone: ClipBackbone, groups: Sequence[Sequence[str]], normalize_prompts: bool = True
) -> torch.Tensor:
    """``(K, D)`` L2-normalised prototypes of K prompt groups, float32, in the order given.

    Prototype k = normalise(mean over the prompts of group k of normalise(embedding)); with
    ``normalize_prompts=False`` the inner normalisation is skipped. Groups are encoded by open_clip's
    ``build_zero_shot_classifier``: the group index is its class name, template n picks the group's n-th
    prompt, so the groups of one length go through one forward pass together.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError(
            f"every prompt group needs at least one prompt, got sizes {[len(g) for g in groups]}"
        )
    from open_clip import build_zero_shot_classifier  # open_clip loads lazily, as in backbones.load

    tower = TextTower(backbone, normalize_prompts)
    prototypes: list[torch.Tensor] = [torch.empty(0)] * len(groups)
    with full_precision(backbone.device):
        for size in dict.fromkeys(len(g) for g in groups):
            members = [k for k, g in enumerate(groups) if len(g) == size]
            templates = [partial(_nth_prompt, groups, n) for n in range(size)]
            weights = build_zero_shot_classifier(
                tower,
                backbone.tokenize,
                members,
                templates,
                num_classes_per_batch=None,
                device=backbone.device,
            )  # (D, len(members))
            for k, column in zip(members, weights.T, strict=True):
                prototypes[k] = column
    return torch.stack(prototypes)


def per_image(class_names: Sequence[str], prototypes: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """``(B, ...)``: ``prototypes(distinct names)`` ``(C, ...)`` computed once per distinct name, then one row
    per image in ``class_names`` order (a batch may mix classes)."""
    distinct = list(dict.fromkeys(class_names))
    table = prototypes(distinct)
    position = {name: i for i, name in enumerate(distinct)}
    return table[torch.tensor([position[n] for n in class_names], device=table.device)]


class PrototypeCache:
    """Text prototypes ``(K, D)`` per class name, built once by the method and kept on the CPU."""

    def __init__(self) -> None:
        self._by_name: dict[str, torch.Tensor] = {}

    def __contains__(self, class_name: object) -> bool:
        return class_name in self._by_name

    def __getitem__(self, class_name: str) -> torch.Tensor:
        return self._by_name[class_name]

    def __len__(self) -> int:
        return len(self._by_name)

    @torch.no_grad()
    def lookup(
        self, class_names: Sequence[str], build: Callable[[str], torch.Tensor], device: torch.device
    ) -> torch.Tensor:
        """``(B, K, D)`` on ``device``, one row per image; ``build(name)`` runs for names not seen yet."""

        def table(names: list[str]) -> torch.Tensor:
            for name in names:
                if name not in self._by_name:
                    self._by_name[name] = build(name).cpu()
            return torch.stack([self._by_name[n] for n in names])

        return per_image(class_names, table).to(device)

    def clear(self) -> None:
        """Forget every prototype (after the prompts or their averaging changed)."""
        self._by_name.clear()
