"""Turn what a caller passes (tensors, numpy arrays, lists) into tensors the metrics accept.

Private: the public functions validate through these so every entry point reports the same errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "as_labels",
    "as_masks",
    "as_scores",
    "binary_labels",
    "check_label_shape",
    "check_no_nan",
    "check_scores",
    "stored",
    "upcast_scores",
]

# Half-precision scores are upcast, never the reverse: bf16 maps have ~500 distinct values in (0, 1) and
# cost 0.2 pt of pixel AP (reference/metrics.md §2.5). The upcast cannot restore what was lost, but it
# keeps every later step (sort keys, comparisons) in one well-defined dtype.
_UPCAST = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        # Only a tensor that requires grad belongs to a graph; detach() costs more than the check, and
        # the accumulators call this on every (possibly 32-score) update.
        return x.detach() if x.requires_grad else x
    return torch.as_tensor(np.asarray(x))


def stored(x: Any) -> Tensor:
    """What an accumulator stores for an input until ``compute``: a tensor as passed, by reference (detached
    if it requires grad, so no autograd graph is kept alive), anything else copied into a new tensor. A numpy
    array or list is copied because its memory stays the caller's, who may well overwrite it with numpy code
    that no torch user would think of as "modifying a tensor in place".
    """
    if not isinstance(x, Tensor):
        return torch.as_tensor(np.array(x, copy=True))
    return x.detach() if x.requires_grad else x


def check_scores(t: Tensor, name: str, ndim: int) -> Tensor:
    """The attribute checks of ``as_scores`` (no kernel, no sync): ``ndim`` dims and a real dtype."""
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.is_complex():
        raise ValueError(f"{name} must be real, got {t.dtype}")
    return t


def upcast_scores(t: Tensor) -> Tensor:
    """The dtype half of ``as_scores``: float32/64 kept, halves -> float32, integers and bool -> float64."""
    if t.dtype in _UPCAST:
        return t.to(_UPCAST[t.dtype])
    if not t.is_floating_point():
        return t.to(torch.float64)  # exact for integers up to 2**53
    return t


def as_scores(x: Any, name: str, ndim: int) -> Tensor:
    """Scores as a floating tensor with ``ndim`` dims: float32/64 kept, halves -> float32, ints -> float64."""
    return upcast_scores(check_scores(_as_tensor(x), name, ndim))


def check_label_shape(t: Tensor, name: str, shape: torch.Size) -> Tensor:
    """The attribute check of ``as_labels``: ``t`` has the scores' ``shape``."""
    if t.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)} like the scores, got {tuple(t.shape)}")
    return t


def binary_labels(t: Tensor, name: str) -> Tensor:
    """The value half of ``as_labels``: bool kept, integers/floats that are all 0 or 1 -> bool."""
    if t.dtype == torch.bool:
        return t
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{name} must be binary (bool or 0/1); got values other than 0 and 1")
    return t != 0


def as_labels(x: Any, name: str, shape: torch.Size) -> Tensor:
    """Binary labels (bool, or integers/floats that are all 0 or 1) as a bool tensor of ``shape``."""
    return binary_labels(check_label_shape(_as_tensor(x), name, shape), name)


def as_masks(x: Any, name: str, shape: torch.Size) -> Tensor:
    """Ground-truth masks as bool of ``shape``: any non-zero value is anomalous (as in MVTec's code)."""
    t = _as_tensor(x)
    if t.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)} like the maps, got {tuple(t.shape)}")
    return t if t.dtype == torch.bool else t != 0


def check_no_nan(scores: Tensor, name: str) -> None:
    """NaN has no place in a ranking; sorting would put it first and silently change every metric."""
    if bool(torch.isnan(scores).any()):
        raise ValueError(f"{name} contain NaN; check the detector's output (e.g. a 0/0 in normalisation)")
