"""Evaluation over several processes, launched with ``torchrun`` (torch.distributed; no job system):

    torchrun --standalone --nproc-per-node 8 -m zsad_bench.cli run --model anomalyclip --dataset visa --out r/

Every rank runs the detector on one contiguous block of each class's images. When a class is complete
everywhere, each rank sends its metric accumulators (and its part of the prediction cache) to the class's
owner rank, which merges them in rank order -- the images' dataset order, so the merged state equals what
one process would have built -- and computes the class's metrics; owners take the classes in turn. At the
end every rank receives every class's metrics and builds the same result; rank 0 writes it.

On GPUs the ranks talk over NCCL and each takes the GPU of its ``LOCAL_RANK``; on CPUs over gloo. A program
that has already initialised a process group is sharded the same way when it calls ``evaluate``.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from zsad_bench.devices import resolve_device
from zsad_bench.errors import ZsadError

__all__ = ["Ranks", "all_gather", "barrier", "broadcast", "current", "gather_to", "launched", "setup"]

# Rank 0 alone trains in ``zsad reproduce`` while the others wait: the collective timeout must cover it.
TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class Ranks:
    """This process's rank among ``world`` processes (0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def sharded(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def block(self, n: int) -> range:
        """This rank's contiguous share of ``n`` items (sizes differ by at most one; may be empty)."""
        return range(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def owner(self, position: int) -> int:
        """The rank that merges and scores the class at ``position`` in the dataset's class order."""
        return position % self.world


def current() -> Ranks:
    """The ranks of the initialised default process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched() -> bool:
    """True in a process started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | torch.device | None) -> torch.device:
    """Resolve ``device``; under ``torchrun``, also join the process group (once) and take this rank's GPU.

    ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` there; a CPU run uses gloo. The group is destroyed at exit.
    """
    resolved = resolve_device(device)
    if not launched():
        return resolved
    if not dist.is_available():
        raise ZsadError("this torch build has no torch.distributed; run without torchrun")
    if resolved.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ZsadError(
                f"torchrun started rank with LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) "
                "are visible; use --nproc-per-node at most the number of GPUs"
            )
        resolved = torch.device("cuda", local)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(_shutdown)
    return resolved


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def gather_to(obj: Any, owner: int, ranks: Ranks) -> list[Any] | None:
    """Every rank's ``obj`` (picklable; move tensors to the CPU first), in rank order, on ``owner``."""
    if not ranks.sharded:
        return [obj]
    received: list[Any] | None = [None] * ranks.world if ranks.rank == owner else None
    dist.gather_object(obj, received, dst=owner)
    return received


def all_gather(obj: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ranks.sharded:
        return [obj]
    received: list[Any] = [None] * ranks.world
    dist.all_gather_object(received, obj)
    return received


def broadcast(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ranks.sharded:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ranks: Ranks) -> None:
    if ranks.sharded:
        dist.barrier()
