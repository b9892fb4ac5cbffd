"""Reading the checkpoint files the official repositories released (``epoch_N.pth``), safely.

They are pickled dicts of tensors; ``torch.load(weights_only=True)`` reads them without running any
pickled code. A file that is not readable, or lacks the expected top-level key, is a one-line error.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from zsad_bench.errors import ZsadError

__all__ = ["read_official_state"]


def read_official_state(path: Path, key: str, method: str) -> dict[str, torch.Tensor]:
    """The tensor dict under ``key`` of the official ``method`` checkpoint at ``path``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ZsadError(
            f"{path} is not a readable {method} checkpoint ({str(exc).splitlines()[0][:120]}); pass an "
            f"official epoch_N.pth or a folder written by 'zsad train'"
        ) from exc
    state = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZsadError(f"{path} has no '{key}' state; it is not an {method} checkpoint")
    return state
