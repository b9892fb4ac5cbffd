"""``EvalConfig``: everything about one evaluation that is neither the detector nor the dataset.

One frozen value handed to the evaluation loop and recorded with the result, instead of a dozen keyword
arguments threaded through every function. It is checked when it is made, so a bad batch size, worker
count, precision or protocol fails before any model runs or any file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zsad_bench.engine.batching import parse_batch_size, parse_num_workers
from zsad_bench.engine.runtime import PRECISIONS
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import Protocol
from zsad_bench.protocols import default as default_protocol

if TYPE_CHECKING:
    import torch

__all__ = ["EvalConfig"]


@dataclass(frozen=True)
class EvalConfig:
    """How to run and score an evaluation.

    protocol: evaluation size and metric variants (recorded in the result).
    batch_size: images per forward pass, or ``auto``: on a GPU the largest batch that fits (probed, see
      ``engine.batching``), 8 on the CPU; with ``auto`` a batch that runs out of memory is split, not fatal.
    device: ``None``/``auto`` (the GPU when there is one), ``cpu``, ``cuda:N`` or a ``torch.device``.
    precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``; ``None`` (the
      default) takes the protocol's (``anomalyclip-paper`` runs fp32, as the official test.py does). Maps
      are float32 from the upsampling on, whatever the precision of the forward pass.
    num_workers: loader worker processes, or ``auto`` (up to 16 on a GPU, none on the CPU).
    progress: a progress bar (on rank 0 only).
    ci: confidence level of the image-level bootstrap intervals (e.g. 0.95), ``None`` for none;
      ``ci_replicates`` bootstrap replicates drawn with ``seed``.
    seed: recorded with the result; seeds the bootstrap.
    """

    protocol: Protocol = default_protocol
    batch_size: int | str = 8
    device: str | torch.device | None = None
    precision: str | None = None
    num_workers: int | str = 0
    progress: bool = True
    ci: float | None = None
    ci_replicates: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        self.protocol.validate()
        # normalised once here ("8" -> 8, "AUTO" -> "auto"), so every reader sees the checked value
        object.__setattr__(self, "batch_size", parse_batch_size(self.batch_size))
        object.__setattr__(self, "num_workers", parse_num_workers(self.num_workers))
        if self.precision is None:
            object.__setattr__(self, "precision", self.protocol.precision)
        if self.precision not in PRECISIONS:
            raise ZsadError(f"precision '{self.precision}' is not one of {', '.join(PRECISIONS)}")
        if self.ci is not None and not 0.0 < self.ci < 1.0:
            raise ZsadError(f"confidence level {self.ci} is not between 0 and 1 (e.g. 0.95)")
        if self.ci_replicates < 1:
            raise ZsadError(f"ci_replicates must be at least 1, not {self.ci_replicates}")
