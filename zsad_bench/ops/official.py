"""Reading the checkpoint files the official repositories released (``epoch_N.pth``), safely.

They are pickled dicts of tensors; ``torch.load(weights_only=True)`` reads them without running any
pickled code. A file that is not readable, or lacks the expected top-level key, is a one-line error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from zsad_bench.errors import ZsadError

__all__ = ["read_official_state"]


def read_official_state(path: Path, key: str | None, method: str) -> dict[str, torch.Tensor]:
    """The tensor dict under ``key`` of the official ``method`` checkpoint at ``path`` (``key=None``: the
    file itself is the flat tensor dict, as AdaCLIP's)."""
    if not path.is_file():
        raise ZsadError(f"checkpoint {path} does not exist; pass an official epoch_N.pth or a folder")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise beside the one line
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip, EOF and index errors alike: the file is not a checkpoint
        raise ZsadError(
            f"checkpoint {path} {_unreadable(path, exc)}; pass an official {method} epoch_N.pth or a folder "
            f"written by 'zsad train'"
        ) from None
    state = (raw if key is None else raw.get(key)) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        holds = f"keys {', '.join(map(str, list(raw)[:4]))}" if isinstance(raw, dict) else type(raw).__name__
        what = "is not a dict of tensors" if key is None else f"has no '{key}' state"
        raise ZsadError(f"checkpoint {path} {what} (it holds {holds}); it is not an {method} checkpoint")
    return state


def _unreadable(path: Path, exc: Exception) -> str:
    """What a file ``torch.load`` refused holds, in a few words."""
    text = str(exc)
    if path.stat().st_size == 0:
        return "is empty"
    if "Weights only load failed" in text:
        return "is not a checkpoint of tensors (refused by the safe loader; nothing in it ran)"
    if "zip archive" in text or isinstance(exc, (EOFError, IndexError, KeyError)):
        return "is truncated or not a torch file"
    return f"is not readable ({text.splitlines()[0][:120] if text else type(exc).__name__})"
