"""Batch size and loader workers: ``--batch-size auto`` and ``--num-workers auto``.

On a GPU, ``auto`` probes the detector with dummy batches at its input size — doubling until the device
runs out of memory, then bisecting — and keeps the largest batch that fits. The probe runs under a
memory cap that leaves room for what evaluation holds besides the forward pass: the pixel accumulators
of the largest class (8 bytes per pixel at the evaluation size) and a fixed margin against
fragmentation. During the run a batch that still does not fit is split in halves (``forward_chunked``),
so a misjudged probe costs speed, never the run. On the CPU there is nothing to probe (running out of
memory kills the process instead of raising), and larger batches do not run faster: ``auto`` is 8.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

from zsad_bench.api import Detector, Prediction
from zsad_bench.engine.runtime import autocast
from zsad_bench.errors import ZsadError
from zsad_bench.ops.maps import upsample

__all__ = [
    "CPU_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "CudaMemory",
    "auto_batch_size",
    "auto_num_workers",
    "batch_limit",
    "find_batch_size",
    "forward_chunked",
    "is_out_of_memory",
    "parse_auto_int",
    "parse_batch_size",
    "parse_num_workers",
    "probe_batch_size",
    "probe_budget",
]

CPU_BATCH_SIZE = 8
MAX_BATCH_SIZE = 128  # ViT-L at 518 px: 175k tokens a batch, past where a GPU gains throughput
FRAGMENTATION_MARGIN = 0.10  # fraction of the device kept free for the caching allocator's leftovers
ACCUMULATOR_BYTES_PER_PIXEL = 8  # float32 score + int32 region id (metrics/accumulators.py)


def parse_auto_int(value: int | str, minimum: int, what: str) -> int | str:
    """``auto``, or an integer >= ``minimum`` (also from a string); anything else is a one-line error
    naming ``what``."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum or (isinstance(value, float) and not value.is_integer()):
        raise ZsadError(f"{what} '{value}' is not 'auto' or an integer >= {minimum}")
    return number


def parse_batch_size(value: int | str) -> int | str:
    return parse_auto_int(value, 1, "batch size")


def parse_num_workers(value: int | str) -> int | str:
    return parse_auto_int(value, 0, "number of loader workers")


def auto_num_workers(device: torch.device) -> int:
    """Loader workers for ``auto``: on a GPU, one per usable core but one, up to 16 (decoding feeds the
    device: decoding and resizing a 1024 px PNG took 40 ms on one EPYC core, so 325 images/s needs more
    than 8 workers); on the CPU none, since workers would compete with the model for the same cores."""
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(16, cores - 1))


def is_out_of_memory(exc: BaseException) -> bool:
    """A device allocation failure (CUDA's error class, or the message other backends raise)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def find_batch_size(fits: Callable[[int], bool], limit: int, start: int = 1) -> int:
    """The largest ``b`` in ``[1, limit]`` with ``fits(b)``, assuming fitting is monotone in ``b``.

    Doubles from ``start`` until a size fails or ``limit`` is reached, then bisects between the last
    size that fitted and the first that did not: O(log limit) calls. Returns 0 if not even 1 fits.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    good = 0
    size = max(1, min(start, limit))
    while fits(size):  # grow
        good = size
        if size == limit:
            return limit
        size = min(size * 2, limit)
    bad = size
    while bad - good > 1:  # bisect: good fits (or is 0), bad does not
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def probe_budget(total_bytes: int, largest_class: int, eval_size: int) -> int:
    """Bytes the probe's forward pass may peak at: the device minus the fragmentation margin minus the
    pixel accumulators of the largest class. Refuses (one line) when under a fifth of the device is left."""
    reserved = largest_class * eval_size * eval_size * ACCUMULATOR_BYTES_PER_PIXEL
    budget = int(total_bytes * (1.0 - FRAGMENTATION_MARGIN)) - reserved
    if budget < total_bytes // 5:
        raise ZsadError(
            f"the largest class ({largest_class} images at {eval_size} px) needs "
            f"{reserved / 2**30:.1f} GiB for exact pixel metrics, too much of this GPU's "
            f"{total_bytes / 2**30:.1f} GiB; use --pixel-mode histogram (fixed memory) or a smaller "
            "--eval-size"
        )
    return budget


def batch_limit(n_images: int, num_workers: int) -> int:
    """The largest batch ``auto`` may choose for ``n_images``: at most ``MAX_BATCH_SIZE`` and the images,
    and small enough that every loader worker gets a batch (a worker decodes a whole batch alone, so one
    huge batch would be decoded by one process while the GPU waits)."""
    per_worker = -(-n_images // max(1, num_workers))
    return max(1, min(MAX_BATCH_SIZE, n_images, per_worker))


class CudaMemory:
    """The memory counters the probe reads, on one CUDA device (tests pass a fake with the same methods)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def total(self) -> int:
        return torch.cuda.get_device_properties(self.device).total_memory

    def peak(self) -> int:
        """Peak bytes allocated since the last ``reset``, once the queued work has run."""
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device)

    def reset(self) -> None:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)


def auto_batch_size(
    detector: Detector,
    device: torch.device,
    *,
    eval_size: int,
    class_name: str,
    precision: str = "auto",
    largest_class: int = 0,
    limit: int = MAX_BATCH_SIZE,
) -> int:
    """The batch size ``auto`` stands for: probed on a GPU (see the module docstring), 8 elsewhere.

    largest_class: images in the largest class, whose accumulators the probe leaves room for.
    limit: no larger batch is tried (also pass the dataset size: a batch beyond it is never formed).
    """
    if device.type != "cuda":
        return min(CPU_BATCH_SIZE, max(1, limit))
    return probe_batch_size(
        detector,
        device,
        CudaMemory(device),
        eval_size=eval_size,
        class_name=class_name,
        precision=precision,
        largest_class=largest_class,
        limit=limit,
    )


def probe_batch_size(
    detector: Detector,
    device: torch.device,
    memory: CudaMemory,
    *,
    eval_size: int,
    class_name: str,
    precision: str,
    largest_class: int,
    limit: int,
) -> int:
    """The largest batch of dummy images whose forward pass (and upsampling to ``eval_size``) neither runs
    out of memory nor peaks above ``probe_budget``."""
    budget = probe_budget(memory.total(), largest_class, eval_size)
    size = detector.input_size

    def fits(batch: int) -> bool:
        try:
            images = torch.zeros(batch, 3, size, size, device=device)
            with torch.no_grad(), autocast(device, precision):
                prediction = detector(images, [class_name] * batch)
            upsample(prediction.anomaly_maps, eval_size)
            return memory.peak() <= budget
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            return False
        finally:
            memory.reset()

    memory.reset()
    best = find_batch_size(fits, limit, start=8)
    if best == 0:
        raise ZsadError(
            f"not even one image fits in GPU memory for {detector.name} at {size} px; "
            "use a smaller image size or another device"
        )
    return best


def forward_chunked(
    detector: Detector,
    images: torch.Tensor,
    class_names: Sequence[str],
    chunk: int,
    *,
    split_on_oom: bool,
) -> tuple[Prediction, int]:
    """``detector(images, class_names)`` in pieces of at most ``chunk`` images.

    With ``split_on_oom`` a piece that runs out of device memory is retried in halves (down to one
    image); returns the prediction for all images and the chunk size that worked, to reuse next time.
    """
    while True:
        try:
            parts = [
                detector(images[i : i + chunk], list(class_names[i : i + chunk]))
                for i in range(0, len(images), chunk)
            ]
            break
        except Exception as exc:
            if not (split_on_oom and is_out_of_memory(exc)) or chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            if images.is_cuda:
                torch.cuda.empty_cache()
    if len(parts) == 1:
        return parts[0], chunk
    joined = Prediction(
        image_scores=torch.cat([p.image_scores for p in parts]),
        anomaly_maps=torch.cat([p.anomaly_maps for p in parts]),
    )
    return joined, chunk
