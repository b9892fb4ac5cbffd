"""Device, precision and environment facts shared by evaluation and training."""

from __future__ import annotations

import contextlib
import platform
import sys
from importlib import metadata
from typing import Any

import torch

from zsad_bench.errors import ZsadError

__all__ = [
    "PRECISIONS",
    "autocast",
    "environment",
    "peak_memory_mb",
    "reset_peak_memory",
    "resolve_precision",
]

PRECISIONS = ("auto", "bf16", "fp32")

_PACKAGES = (
    "zsad-bench",
    "torch",
    "torchvision",
    "open_clip_torch",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
)


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """What ``precision`` means on ``device``: ``bf16`` (``auto`` on CUDA, or asked for) or ``fp32``."""
    if precision not in PRECISIONS:
        raise ZsadError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    return "bf16" if precision == "bf16" or (precision == "auto" and device.type == "cuda") else "fp32"


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (``auto`` or ``bf16``), plain fp32 otherwise."""
    if resolve_precision(device, precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA, else the process's peak resident set size."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
    except ImportError:  # Windows
        return float("nan")


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware recorded with every result."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = platform.processor() or platform.machine()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "hardware": hardware,
        "cpu_threads": torch.get_num_threads(),
        "packages": versions,
    }
