"""Which torch device a run uses: ``auto`` picks the GPU when there is one; a named device must exist."""

from __future__ import annotations

import torch

from zsad_bench.errors import ZsadError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` -> CUDA when available, else CPU; a named device must exist."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ZsadError(f"'{device}' is not a device; use cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ZsadError(f"device '{device}' requested but no CUDA GPU is visible; use --device cpu")
    return resolved
