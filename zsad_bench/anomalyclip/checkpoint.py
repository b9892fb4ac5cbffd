"""Loading the official AnomalyCLIP checkpoints (``checkpoints/9_12_4_multiscale*/epoch_N.pth``).

Layout (reference/anomalyclip.md section 7): ``{"prompt_learner": state_dict}`` with ``ctx_pos``/``ctx_neg``
(1, 1, 12, 768), ``compound_prompts_text.{0..7}`` (4, 768), the derived buffers ``token_prefix_*``,
``token_suffix_*``, ``tokenized_prompts_*`` and the never-used ``compound_prompt_projections.*``. Only the
learned tensors are taken; the unused projections and the buffers (re-derived here from the frozen
token embedding) are ignored, after checking that the prompts were tokenised the same way. The file is
read with ``torch.load(weights_only=True)``: no pickled code runs.

Naming trap (section 1.2): ``9_12_4_multiscale`` was trained on **VisA** (use it for MVTec AD) and
``9_12_4_multiscale_visa`` on **MVTec AD** (use it for VisA and every other dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zsad_bench.errors import ZsadError
from zsad_bench.ops.official import read_official_state

__all__ = ["load_official", "official_options", "official_state"]

IGNORED_PREFIXES = ("compound_prompt_projections.", "token_prefix_", "token_suffix_", "tokenized_prompts_")


def official_state(path: Path) -> dict[str, torch.Tensor]:
    """The prompt-learner tensors of an official checkpoint file (ZsadError if it is not one)."""
    state = read_official_state(path, "prompt_learner", "AnomalyCLIP")
    if "ctx_pos" not in state:
        raise ZsadError(f"{path} has no learned context (ctx_pos); it is not an AnomalyCLIP checkpoint")
    return state


def official_options(cls: Any, path: Path, state: dict[str, torch.Tensor] | None = None) -> Any:
    """``cls.Options`` with the prompt shapes (n_ctx, depth, t_n_ctx) of an official checkpoint file."""
    state = official_state(path) if state is None else state
    depth = 1 + sum(1 for k in state if k.startswith("compound_prompts_text."))
    shapes = {"n_ctx": state["ctx_pos"].shape[2], "depth": depth}
    if depth > 1:
        shapes["t_n_ctx"] = state["compound_prompts_text.0"].shape[0]
    return cls.Options.build(shapes, owner=f"checkpoint {path}")


def load_official(cls: Any, path: Path, **options: Any) -> Any:
    """Build ``cls`` (AnomalyCLIP) with ``options`` and the learned prompts of an official checkpoint."""
    state = official_state(path)
    detector = cls(official_options(cls, path, state), **options)
    learned = {f"prompt_learner.{k}": v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    _check_tokenisation(detector, state, path)
    detector.load_trainable_state_dict(learned, source=str(path))
    return detector


def _check_tokenisation(detector: Any, state: dict[str, torch.Tensor], path: Path) -> None:
    ours = detector.prompt_learner.token_ids.cpu()
    for index, key in enumerate(("tokenized_prompts_pos", "tokenized_prompts_neg")):
        if key in state and not torch.equal(state[key].reshape(-1).long(), ours[index].long()):
            raise ZsadError(
                f"{path} was trained with other prompt tokens than '{'X ' * detector.prompt_learner.n_ctx}"
                f"[damaged] object.'; it does not fit this AnomalyCLIP"
            )
