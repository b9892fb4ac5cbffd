"""MuSc's cost against class size: time and peak memory of ``score_class`` for classes of n images.

    python benchmarks/musc.py [--device cpu|cuda] [--sizes 8,16,32,64,128] [--backbone B] [--image-size S]
                              [--batch-size B] [--chunk-mb M] [--extrapolate 3000] [--write-results]

Mutual scoring compares every patch of every image with every patch of every other image of its class:
``n^2 L^2 C`` distances per layer and ``r``, so the time should grow as ``a n^2 + b n`` (the backbone's
forward pass is the linear part). For each size the script times one ``score_class`` on random images
(after a warm-up on the smallest size), measures the peak memory it adds (on CUDA
``torch.cuda.max_memory_allocated``; on the CPU the resident set size sampled every millisecond, after
giving freed memory back with ``malloc_trim``) and sets both beside the models: the time against
``(n / n_max)^2`` of the largest size's time and against a non-negative least-squares fit of
``a n^2 + b n``; the memory against ``zsad_bench.musc.model.memory_model``. The fit and the memory
model are then extrapolated to ``--extrapolate`` images (Br35H's 3,000, the largest class of the 17
datasets).

Defaults: on the CPU the tiny random backbone ``test-tiny`` at 112 px (14 x 14 tokens of width 32; the
time grows as L^2, so 224 px takes minutes); on CUDA the real architecture ``ViT-L-14-336:random`` at
518 px (37 x 37 tokens of width 1024) under bf16 autocast, as ``zsad run`` runs it. Random weights:
right for cost, meaningless as scores.
``--write-results`` replaces this script's section for the device in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import threading
import time
from contextlib import nullcontext, suppress

import numpy as np
import torch
from _results import write_section
from metrics import machine
from scipy.optimize import nnls

from zsad_bench.api import ClassImages
from zsad_bench.musc import MuSc
from zsad_bench.musc.model import memory_model

MIB = 1 << 20


class RssPeak:
    """The largest resident set size seen, sampled every millisecond in a thread, while in the block."""

    def __init__(self) -> None:
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.001)

    def __enter__(self) -> RssPeak:
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def trim_heap() -> None:
    """Give the C heap's freed pages back, so that the next peak starts from what is really held."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(detector: MuSc, n: int, device: torch.device, batch_size: int) -> tuple[float, int]:
    """Seconds and peak added bytes of one ``score_class`` on ``n`` random images."""
    size = detector.input_size
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(n))
    class_images = ClassImages(images, device, batch_size, dataset="benchmark")
    precision = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    trim_heap()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    with torch.no_grad(), precision, RssPeak() as rss:
        start = time.perf_counter()
        prediction = detector.score_class(class_images, "thing")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    if device.type == "cuda":
        added = torch.cuda.max_memory_allocated(device) - before
    else:
        added = rss.peak - rss.start
    del prediction
    return seconds, max(added, 0)


def table(detector: MuSc, sizes: list[int], results: list[tuple[float, int]], token_bytes: int,
          batch_size: int, extrapolate: int) -> str:  # fmt: skip
    """The markdown table, the quadratic fit and the extrapolation."""
    backbone = detector.backbone
    shape = {
        "tokens": backbone.grid_size**2,
        "channels": backbone.width,
        "layers": len(detector.layers),
        "radii": len(detector.options.r_list),
        "token_bytes": token_bytes,
        "image_size": detector.input_size,
        "batch_size": batch_size,
        "chunk_mb": detector.options.chunk_mb,
    }
    n = np.array(sizes, dtype=np.float64)
    seconds = np.array([r[0] for r in results])
    (a, b), _ = nnls(np.stack([n**2, n], axis=1), seconds)  # non-negative: no negative-time extrapolation
    lines = [
        f"backbone {backbone.spec}, {detector.input_size} px: L = {shape['tokens']} tokens of width "
        f"{shape['channels']}, {shape['layers']} layers, r in {list(detector.options.r_list)}; "
        f"chunk_mb {shape['chunk_mb']}, batch {batch_size}",
        "",
        "| n | time (s) | ms / image | time ÷ (n/n_max)² model | time ÷ fit | peak (MiB) | model (MiB) "
        "| peak ÷ model |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, (t, peak) in zip(sizes, results, strict=True):
        quadratic = seconds[-1] * (size / sizes[-1]) ** 2
        model = sum(memory_model(size, **shape).values())
        fitted = a * size**2 + b * size
        lines.append(
            f"| {size} | {t:.3f} | {1000 * t / size:.2f} | {t / quadratic:.2f} | {t / fitted:.2f} "
            f"| {peak / MIB:.1f} | {model / MIB:.1f} | {peak / model:.2f} |"
        )
    far = sum(memory_model(extrapolate, **shape).values())
    real = memory_model(extrapolate, tokens=1369, channels=1024, token_bytes=token_bytes)
    lines += [
        "",
        f"Fit: time = {a:.3e} n² + {b:.3e} n seconds. Extrapolated to n = {extrapolate}: "
        f"{a * extrapolate**2 + b * extrapolate:.0f} s and {far / 2**30:.1f} GiB (memory model) on this "
        f"backbone; the memory model with ViT-L/14 at 518 px ({token_bytes}-byte tokens) gives "
        f"{sum(real.values()) / 2**30:.1f} GiB plus the backbone.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default=None, help="class sizes, comma-separated (ascending)")
    parser.add_argument("--backbone", default=None, help="default: test-tiny on cpu, ViT-L-14-336:random")
    parser.add_argument("--image-size", type=int, default=None, help="default: 112 on cpu, 518 on cuda")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-mb", type=int, default=4096)
    parser.add_argument("--extrapolate", type=int, default=3000, help="class size to extrapolate to")
    parser.add_argument("--write-results", action="store_true", help="replace the section in RESULTS.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sizes = sorted(int(s) for s in (args.sizes or ("16,32,64,128" if cuda else "8,16,32,64,128")).split(","))
    if sizes[0] < 2 or len(sizes) < 2:
        parser.error("--sizes needs at least two class sizes of at least 2 images")
    load = os.getloadavg()[0]
    detector = MuSc(
        backbone=args.backbone or ("ViT-L-14-336:random" if cuda else "test-tiny"),
        image_size=args.image_size or (518 if cuda else 112),
        chunk_mb=args.chunk_mb,
    )
    detector = detector.to(device).eval()
    measure(detector, sizes[0], device, args.batch_size)  # warm-up: kernels, allocator, thread pools
    results = [measure(detector, size, device, args.batch_size) for size in sizes]
    token_bytes = 2 if cuda else 4
    body = table(detector, sizes, results, token_bytes, args.batch_size, args.extrapolate)
    info = machine(device, load)
    text = body + "\n\n" + "\n".join(f"- {key}: {value}" for key, value in info.items())
    print(text)
    if args.write_results:
        write_section(f"musc-{device.type}", f"## MuSc: cost against class size ({device.type})", text)


if __name__ == "__main__":
    main()
