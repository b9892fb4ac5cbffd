"""Turn what a caller passes (tensors, numpy arrays, lists) into tensors the metrics accept.

Private: the public functions validate through these so every entry point reports the same errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_labels", "as_masks", "as_scores", "check_no_nan"]

# Half-precision scores are upcast, never the reverse: bf16 maps have ~500 distinct values in (0, 1) and
# cost 0.2 pt of pixel AP (reference/metrics.md §2.5). The upcast cannot restore what was lost, but it
# keeps every later step (sort keys, comparisons) in one well-defined dtype.
_UPCAST = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def as_scores(x: Any, name: str, ndim: int) -> Tensor:
    """Scores as a floating tensor with ``ndim`` dims: float32/64 kept, halves -> float32, ints -> float64."""
    t = _as_tensor(x)
    if t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.dtype in _UPCAST:
        t = t.to(_UPCAST[t.dtype])
    elif not t.is_floating_point():
        if t.is_complex():
            raise ValueError(f"{name} must be real, got {t.dtype}")
        t = t.to(torch.float64)  # exact for integers up to 2**53
    return t


def as_labels(x: Any, name: str, shape: torch.Size) -> Tensor:
    """Binary labels (bool, or integers/floats that are all 0 or 1) as a bool tensor of ``shape``."""
    t = _as_tensor(x)
    if t.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)} like the scores, got {tuple(t.shape)}")
    if t.dtype == torch.bool:
        return t
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{name} must be binary (bool or 0/1); got values other than 0 and 1")
    return t != 0


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
