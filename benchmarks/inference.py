"""Inference speed: ``evaluate()`` end to end against the official evaluation loop, per detector, in one run.

    python benchmarks/inference.py [--quick] [--device cpu|cuda] [--models anomalyclip,...] [--backbone B]
                                   [--images N] [--official-images M] [--count-real-flops] [--write-results]

For each detector, on one synthetic set of PNG files (zsad_bench.data.synthetic, built before timing):

1. Ours: ``zsad_bench.evaluate`` from PNG decode to per-class metrics (batched, bf16 autocast on CUDA, maps
   blurred and scored on the device), after one short warm-up evaluate.
2. The official loop: AnomalyCLIP's ``test.py`` re-created (benchmarks/_official_loop.py: batch 1, fp32,
   scipy blur per map on the CPU, scikit-learn metrics, the CFlow-200 AUPRO loop) on the same images, or on
   the first ``--official-images`` of them. Ratio = our images/s ÷ its images/s; both legs must agree on
   image AUROC (fp32 on CPU: to 1e-6; bf16 against fp32 on CUDA: loosely).
3. FLOPs per image (2·MAC of matmuls, convolutions and attention), counted with ``FlopCounterMode`` on a
   fake-tensor copy of the detector (nothing is computed), and the fraction of two ceilings they reach: the
   matmul peak measured here (bf16 on CUDA, fp32 on CPU) and, on known GPUs, the spec-sheet dense bf16 peak.
4. How long the ``anomalyclip-paper`` protocol (17 evaluations, 2 trainings) would take at AnomalyCLIP's rate.

Random weights throughout (speed only; scores mean nothing). On CPU every detector runs the tiny random
backbone ``test-tiny`` at its native input size (518 rounded to the tiny patch size: 520; WinCLIP 240);
``--count-real-flops`` also counts the real architectures. On CUDA ``--backbone real`` (the default) runs
each detector's own architecture. Targets (AnomalyCLIP on one H200, real architecture): >= 325 images/s
and >= 20× the official loop. ``--write-results`` replaces this script's section for the device in
benchmarks/RESULTS.md; ``--quick`` is a < 1 min smoke test (AnomalyCLIP, 4 images at 224 px, 1 CPU thread).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from _official_loop import official_loop
from _results import RESULTS, read_section, write_section
from metrics import machine, region_fractions
from torch._subclasses.fake_tensor import FakeCopyMode, FakeTensorMode
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import zsad_bench
from zsad_bench._factory import get_dataset_spec, model_class
from zsad_bench.api import Detector, TrainConfig
from zsad_bench.backbones.spec import TINY_CONFIG, TINY_NAME, parse_backbone
from zsad_bench.data import AnomalyDataset, read_manifest, synthetic
from zsad_bench.engine.batching import auto_num_workers, parse_batch_size
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import Protocol, anomalyclip_paper
from zsad_bench.protocols import default as default_protocol

REPO = Path(__file__).resolve().parent.parent
TARGET_IMAGES_PER_S = 325.0  # AnomalyCLIP, real architecture, one H200
TARGET_RATIO = 20.0
TARGET_PROTOCOL_S = 600.0
AGREEMENT = {"cpu": 1e-6, "cuda": 0.02}  # image AUROC, ours vs official: fp32 both / bf16 against fp32
# Spec-sheet dense bf16 peaks, most specific name first.
SPEC_PEAKS = (("H200 NVL", 835e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H200", 989e12),
              ("H100", 989e12), ("A100", 312e12))  # fmt: skip
# The figures the issue and reference/metrics.md §4.1 state for the real architectures (FLOP per image).
STATED_FLOPS = {
    "anomalyclip": (1.21e12, "issue: ViT-L/14@518 + DPAM"),
    "winclip": (673e9, "reference/metrics.md §4.1: ViT-B/16+@240 windows"),
}
PLAIN_VIT_L_518 = (1.01e12, "issue: ViT-L/14@518")
CACHED_EPOCH_ASSUMED = 0.1  # forward passes per cached epoch, when RESULTS.md has no train-* section


@dataclass(frozen=True)
class Workload:
    models: tuple[str, ...]
    backbone: str  # "real", or a backbone spec given to every detector
    images: int  # ours, spread over the first classes of the synthetic set
    official_images: int
    image_size: int  # side of the synthetic PNG files
    batch_size: int | str  # or "auto": the product's probe (the largest batch that fits, up to 128)
    num_workers: int
    input_size: int | None = None  # None: each detector's native size
    warmup_images: int = 2
    count_real_flops: bool = False

    @property
    def n_classes(self) -> int:
        return min(len(synthetic.CLASSES), max(1, self.images // 8))


def defaults(device: torch.device, quick: bool) -> Workload:
    if quick:
        return Workload(("anomalyclip",), TINY_NAME, 4, 4, 64, 4, 0, input_size=224)
    if device.type == "cuda":
        return Workload(
            tuple(zsad_bench.list_models()), "real", 512, 16, 256, "auto", auto_num_workers(device),
            warmup_images=64, count_real_flops=True,
        )  # fmt: skip
    return Workload(tuple(zsad_bench.list_models()), TINY_NAME, 8, 8, 256, 8, 0)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- Detectors and data -----------------------------------------------------------------------------------


def _default_option(name: str, option: str) -> Any:
    return inspect.signature(model_class(name).__init__).parameters[option].default


def backbone_for(name: str, choice: str) -> str:
    """``real``: the detector's own architecture with random weights; anything else is used as given."""
    if choice != "real":
        return choice
    return f"{parse_backbone(_default_option(name, 'backbone')).model}:random"


def native_size(name: str, backbone: str, override: int | None = None) -> int:
    """The detector's default ``image_size`` (or ``override``), rounded to a multiple of the patch size."""
    import open_clip

    spec = parse_backbone(backbone)
    config = TINY_CONFIG if spec.model == TINY_NAME else open_clip.get_model_config(spec.model)
    patch = config["vision_cfg"]["patch_size"]
    size = override or _default_option(name, "image_size")
    return max(patch, round(size / patch) * patch)


def load(name: str, backbone: str, size: int, device: torch.device) -> Detector:
    torch.manual_seed(0)  # random weights: the same in every run
    return zsad_bench.load_model(name, backbone=backbone, device=device, image_size=size)


def test_rows(manifest: pd.DataFrame, classes: list[str], per_class: int) -> pd.DataFrame:
    """The first ``per_class // 2`` normal and the rest anomalous test images of each of ``classes``."""
    rows = manifest[(manifest["split"] == "test") & manifest["class_name"].isin(classes)]
    rows = rows.sort_values("sample_id")
    normal = rows[rows["label"] == 0].groupby("class_name").head(per_class // 2)
    anomalous = rows[rows["label"] == 1].groupby("class_name").head(per_class - per_class // 2)
    return pd.concat([normal, anomalous], ignore_index=True)


def dataset(folder: Path, rows: pd.DataFrame, detector: Detector, protocol: Protocol) -> AnomalyDataset:
    return AnomalyDataset(folder, rows, transform=detector.transform(), mask_size=protocol.eval_size)


# --- FLOPs and ceilings -----------------------------------------------------------------------------------


def flops(detector: Detector, class_name: str = "bottle") -> dict[str, int]:
    """FLOPs of a forward at batch 1 (``batch1``), split into per-image (``image``) and per-forward parts
    (``batch``: text encoders run once per forward) from a second count at batch 2.

    Counted on a fake-tensor copy of the detector: nothing is computed, so any architecture can be counted on
    any machine. Per-class caches (text prototypes) are filled by a forward before the counts, as in a run.
    The fused kernels FlopCounterMode cannot see are off meanwhile: nn.MultiheadAttention's fast path
    (torch._native_multi_head_attention) and the CPU's fused SDPA (the math backend runs the two matmuls).
    """
    mode = FakeTensorMode()
    tokenizer = getattr(getattr(detector, "backbone", None), "tokenizer", None)
    with FakeCopyMode(mode):  # the tokenizer holds no tensor, only a large vocabulary: share it
        fake = copy.deepcopy(detector, memo={id(tokenizer): tokenizer} if tokenizer is not None else None)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    counts = []
    try:
        with mode, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            size, device = fake.input_size, next(fake.parameters()).device
            images = torch.zeros(2, 3, size, size, device=device)
            fake(images[:1], [class_name])
            for batch in (1, 2):
                with FlopCounterMode(display=False) as counter:
                    fake(images[:batch], [class_name] * batch)
                counts.append(counter.get_total_flops())
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    one, two = counts
    return {"batch1": one, "image": two - one, "batch": 2 * one - two}


def matmul_peak(device: torch.device, quick: bool = False) -> float:
    """FLOP/s of the best of a few large square matmuls: bf16 on CUDA, fp32 on CPU."""
    n, dtype, reps = (8192, torch.bfloat16, 20) if device.type == "cuda" else (2048, torch.float32, 5)
    if quick:
        n, reps = n // 4, 3
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def spec_peak(device: torch.device) -> tuple[str, float] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next(((name, peak) for key, peak in SPEC_PEAKS if key in name), None)


# --- The two legs -----------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    backbone: str
    size: int
    flops: dict[str, int]
    ours_s: float = 0.0
    ours_images: int = 0
    ours_inner_rate: float | None = None
    official_s: float = 0.0
    official_images: int = 0
    official_loop_s: float = 0.0  # of official_s: decode, forward, CPU blur; the rest is the metrics
    batch_size: int = 1  # what ours ran with (``auto`` resolved)
    auroc: dict[str, tuple[float | None, float]] = field(default_factory=dict)  # class -> (ours, official)
    pixel_auroc: dict[str, tuple[float | None, float]] = field(default_factory=dict)
    real_flops: dict[str, int] | None = None

    @property
    def ours_rate(self) -> float:
        return self.ours_images / self.ours_s

    @property
    def official_rate(self) -> float:
        return self.official_images / self.official_s

    @property
    def d_auroc(self) -> float:
        return max(abs(o - r) if o is not None else float("inf") for o, r in self.auroc.values())


def run_detector(
    name: str, workload: Workload, device: torch.device, folder: Path, manifest: pd.DataFrame, fractions: Any
) -> Row:
    """Time ours and the official loop on the same images; count FLOPs; compare image AUROC per class."""
    backbone = backbone_for(name, workload.backbone)
    size = native_size(name, backbone, workload.input_size)
    _log(f"{name}: {backbone} at {size} px")
    detector = load(name, backbone, size, device)
    protocol = default_protocol.with_overrides(eval_size=size)
    classes = list(synthetic.CLASSES[: workload.n_classes])
    per_class = workload.images // workload.n_classes
    ours_rows = test_rows(manifest, classes, per_class)
    official_rows = test_rows(manifest, classes, workload.official_images // workload.n_classes)
    row = Row(name, backbone, size, flops(detector))

    def ours(rows: pd.DataFrame) -> Any:
        return zsad_bench.evaluate(
            detector, dataset(folder, rows, detector, protocol), protocol, batch_size=workload.batch_size,
            device=device, num_workers=workload.num_workers, progress=False, cache=None,
        )  # fmt: skip

    warmup = test_rows(manifest, classes[:1], min(workload.warmup_images, per_class))
    ours(warmup)
    _sync(device)
    start = time.perf_counter()
    result = ours(ours_rows)
    _sync(device)
    row.ours_s, row.ours_images = time.perf_counter() - start, len(ours_rows)
    row.ours_inner_rate = result.timings["images_per_s"]
    row.batch_size = result.timings["batch_size"]
    _log(f"  ours: {row.ours_images} images in {row.ours_s:.2f} s")

    if device.type == "cuda":  # load the fp32 batch-1 kernels before timing (the process is warm on CPU)
        with torch.no_grad():
            detector(dataset(folder, warmup, detector, protocol)[0]["image"][None].to(device), ["warm-up"])
    _sync(device)
    start = time.perf_counter()
    official = official_loop(detector, dataset(folder, official_rows, detector, protocol), device, fractions)
    _sync(device)
    row.official_s, row.official_images = time.perf_counter() - start, len(official_rows)
    row.official_loop_s = official.loop_s
    _log(f"  official loop: {row.official_images} images in {row.official_s:.2f} s")

    if len(official_rows) != len(ours_rows):  # the check needs the same images: score them again, untimed
        result = ours(official_rows)
    for c, theirs in official.per_class.items():
        mine = result.per_class[c]
        row.auroc[c] = (mine["image_auroc"], theirs["image_auroc"])
        row.pixel_auroc[c] = (mine["pixel_auroc"], theirs["pixel_auroc"])

    if workload.count_real_flops:
        real = backbone_for(name, "real")
        if real == backbone and size == native_size(name, real):
            row.real_flops = row.flops
        else:
            _log(f"  counting FLOPs of {real}")
            row.real_flops = flops(load(name, real, native_size(name, real), torch.device("cpu")))
    return row


# --- The whole protocol -----------------------------------------------------------------------------------


def test_images(dataset_id: str) -> int:
    spec = get_dataset_spec(dataset_id)
    if spec.expected_total is not None:
        return sum(spec.expected_total)
    return sum(n + a for n, a in spec.expected_counts.values())


def cached_epoch_cost(device: torch.device) -> tuple[float, str]:
    """A cached training epoch in forward passes over the training set (benchmarks/train.py's figures)."""
    for kind in dict.fromkeys((device.type, "cuda", "cpu")):
        body = read_section(f"train-{kind}")
        if body is None:
            continue
        cells = {
            line.split("|")[1].strip(): line.split("|")[2].strip() for line in body.splitlines()
            if line.startswith("| ") and line.count("|") == 3
        }  # fmt: skip
        forward = float(cells["one forward pass over the training set"])
        epoch = next(float(v) for k, v in cells.items() if k.startswith("epoch with the feature cache"))
        note = "" if kind == device.type else f" (measured on {kind}, not on this device)"
        return epoch / forward, f"RESULTS.md train-{kind}{note}"
    return CACHED_EPOCH_ASSUMED, "assumed: no train-* section in RESULTS.md"


def protocol_estimate(images_per_s: float, device: torch.device) -> dict[str, Any]:
    """Seconds for anomalyclip-paper at ``images_per_s``: 17 evaluations, 2 trainings with feature cache."""
    targets = [d for pair in anomalyclip_paper.training for d in pair.targets]
    evaluated = sum(test_images(d) for d in targets)
    epoch, source = cached_epoch_cost(device)
    epochs = TrainConfig().epochs
    training = {  # a forward over the auxiliary test split fills the feature cache, then the cached epochs
        pair.aux: test_images(pair.aux) / images_per_s * (1 + epochs * epoch)
        for pair in anomalyclip_paper.training
    }
    return {
        "datasets": len(targets),
        "images": evaluated,
        "eval_s": evaluated / images_per_s,
        "training_s": training,
        "epochs": epochs,
        "epoch_cost": epoch,
        "epoch_source": source,
        "total_s": evaluated / images_per_s + sum(training.values()),
    }


# --- Report -----------------------------------------------------------------------------------------------


def _checkout() -> str:
    try:
        git = ["git", "-C", str(REPO)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "zsad_bench", "baselines"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = " + uncommitted changes in zsad_bench/ or baselines/" if dirty.stdout.strip() else ""
    return head.stdout.strip() + changed


def _g(value: float) -> str:
    return f"{value / 1e9:,.1f}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _pct(value: float) -> str:
    return f"{100 * value:.2g} %" if value < 0.1 else f"{100 * value:.0f} %"


def report(
    workload: Workload, device: torch.device, info: dict[str, str], rows: list[Row], peaks: list[float],
    spec: tuple[str, float] | None, quick: bool,
) -> str:  # fmt: skip
    tolerance = AGREEMENT[device.type]
    peak = max(peaks)
    lines = [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        f"- data: synthetic PNG files, {workload.image_size}² (MVTec images are 700–1024 px: slower "
        f"to decode), {workload.n_classes} class(es); ours {workload.images} images, batch "
        f"{workload.batch_size} ({', '.join(f'{r.name} {r.batch_size}' for r in rows)}), "
        f"{workload.num_workers} loader workers, after a warm-up evaluate on "
        f"{workload.warmup_images}; the official loop {workload.official_images} images"
        + (
            ""
            if workload.official_images == workload.images
            else " (the first of each class; rates are per image)"
        ),
        "- weights: random (speed only); evaluation size = each detector's input size; default protocol",
        f"- ceilings: matmul peak measured here {peak / 1e12:.3g} TFLOP/s "
        f"({'bf16' if device.type == 'cuda' else 'fp32'}; the better of "
        + " and ".join(f"{p / 1e12:.3g}" for p in peaks)
        + " before and after the detectors)"
        + (f"; spec-sheet dense bf16 of {spec[0]}: {spec[1] / 1e12:.0f} TFLOP/s" if spec else ""),
        "",
        "| detector | backbone | input px | GFLOP/image (batch 1) | ours img/s | official img/s | ratio | "
        "FLOP/s ÷ measured peak"
        + (" | ÷ spec peak" if spec else "")
        + " | image AUROC ours / official (max abs Δ) |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if spec else "") + "---|",
    ]
    for r in rows:
        achieved = r.ours_rate * (r.flops["image"] + r.flops["batch"] / r.batch_size)
        mean = [sum(v) / len(v) if None not in v else None for v in zip(*r.auroc.values(), strict=True)]
        check = f"{r.d_auroc:.1e} ≤ {tolerance:g}: {'PASS' if r.d_auroc <= tolerance else 'FAIL'}"
        lines.append(
            f"| {r.name} | {r.backbone} | {r.size} | {_g(r.flops['batch1'])} | {r.ours_rate:.2f} | "
            f"{r.official_rate:.2f} | **{r.ours_rate / r.official_rate:.1f}×** | {_pct(achieved / peak)} | "
            + (f"{_pct(achieved / spec[1])} | " if spec else "")
            + f"{_fmt(mean[0])} / {_fmt(mean[1])} ({check}) |"
        )
    lines += [
        "",
        "- ours img/s: images ÷ wall time of `evaluate()` (decode → metrics) measured around the call; "
        + ", ".join(f"{r.name} {r.ours_inner_rate:.2f}" for r in rows)
        + " img/s by evaluate()'s own timings (without its set-up)",
        "- official: AnomalyCLIP `test.py` re-created (benchmarks/_official_loop.py): batch 1, fp32, scipy "
        "blur σ=4 on the CPU for the smoothed detectors, scikit-learn image AUROC/AP and pixel AUROC, the "
        "CFlow-200 AUPRO loop; the same loop for every detector. Its time, per image loop (decode, forward, "
        "blur) + metrics: "
        + ", ".join(
            f"{r.name} {r.official_loop_s:.1f} + {r.official_s - r.official_loop_s:.1f} s" for r in rows
        ),
        "- GFLOP/image: FlopCounterMode (2·MAC of matmuls, convolutions, attention) on a fake-tensor copy; "
        "per-forward parts (text encoders run per batch) at batch 1: "
        + (", ".join(f"{r.name} {_g(r.flops['batch'])}" for r in rows if r.flops["batch"]) or "none")
        + "; the fractions count the work of the timed run (per-forward parts ÷ batch size)",
        "- pixel AUROC ours vs official, max abs Δ: "
        + ", ".join(f"{r.name} {max(abs((o or 0) - t) for o, t in r.pixel_auroc.values()):.1e}" for r in rows)
        + " (σ=4 blur on the device vs scipy on the CPU)",
    ]
    real = [r for r in rows if r.real_flops is not None]
    if real:
        lines += [
            "",
            "**FLOPs of the real architectures** (random weights, native size, one forward at batch 1):",
            "",
        ]
        lines += ["| detector | architecture | px | counted GFLOP/image | per image + per forward | stated |",
                  "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for r in real:
            assert r.real_flops is not None
            arch = backbone_for(r.name, "real")
            stated, source = STATED_FLOPS.get(r.name, PLAIN_VIT_L_518)
            lines.append(
                f"| {r.name} | {arch} | {native_size(r.name, arch)} | {_g(r.real_flops['batch1'])} | "
                f"{_g(r.real_flops['image'])} + {_g(r.real_flops['batch'])} | {_g(stated)} ({source}) |"
            )
    lines += targets(workload, device, rows, quick)
    return "\n".join(lines)


def targets(workload: Workload, device: torch.device, rows: list[Row], quick: bool) -> list[str]:
    ours = next((r for r in rows if r.name == "anomalyclip"), None)
    if ours is None:
        return ["", "- AnomalyCLIP not measured (--models): no target lines, no protocol estimate"]
    judged = device.type == "cuda" and workload.backbone == "real" and not quick
    where = "" if judged else " — not judged here: the target is set for one H200 with the real architecture"
    rate, ratio = ours.ours_rate, ours.ours_rate / ours.official_rate
    estimate = protocol_estimate(rate, device)
    training = " + ".join(f"{aux} {s:.0f} s" for aux, s in estimate["training_s"].items())
    return [
        "",
        "**AnomalyCLIP targets**",
        "",
        f"- {rate:.2f} images/s (target >= {TARGET_IMAGES_PER_S:g} on an H200): "
        f"**{('PASS' if rate >= TARGET_IMAGES_PER_S else 'FAIL') if judged else 'n/a'}**{where}",
        f"- {ratio:.1f}× the official loop (target >= {TARGET_RATIO:g}× on an H200): "
        f"**{('PASS' if ratio >= TARGET_RATIO else 'FAIL') if judged else 'n/a'}**{where}",
        f"- anomalyclip-paper on this device at {rate:.2f} images/s ({ours.backbone}): "
        f"**{estimate['total_s']:.0f} s ({estimate['total_s'] / 60:.1f} min)** = evaluation of "
        f"{estimate['datasets']} datasets, {estimate['images']} test images, {estimate['eval_s']:.0f} s + "
        f"training {training}, each = one forward over the auxiliary test split to build the feature cache + "
        f"{estimate['epochs']} cached epochs of {estimate['epoch_cost']:.3f} forward passes "
        f"({estimate['epoch_source']}); model loading and dataset preparation not included. "
        f"Target <= {TARGET_PROTOCOL_S / 60:g} min on one H200"
        + (
            f": **{'PASS' if estimate['total_s'] <= TARGET_PROTOCOL_S else 'FAIL'}**"
            if judged
            else f" (not judged here: {ours.backbone} on {device.type})"
        ),
    ]


def _batch_size(value: str) -> int | str:
    try:
        return parse_batch_size(value)
    except ZsadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: AnomalyCLIP, 4 images at 224 px, 1 thread"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--models", help="comma-separated detector names (default: every registered one)")
    parser.add_argument("--backbone", help="'real' (each detector's architecture, random weights) or a spec")
    parser.add_argument("--images", type=int, help="images for ours (default 8 on CPU, 512 on CUDA)")
    parser.add_argument(
        "--official-images", type=int, help="images for the official loop (default: all on CPU, 16 on CUDA)"
    )
    parser.add_argument("--image-size", type=int, help="side of the synthetic PNG files (default 256)")
    parser.add_argument("--input-size", type=int, help="detector input size (default: each one's native)")
    parser.add_argument(
        "--batch-size", type=_batch_size, help="ours: N or auto (default 8 on CPU, auto on CUDA)"
    )
    parser.add_argument("--num-workers", type=int, help="ours (default: as zsad run)")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default torch's; 1 is steadier on busy shared cores)"
    )
    parser.add_argument("--count-real-flops", action="store_true", help="also count the real architectures")
    parser.add_argument("--write-results", action="store_true", help="replace the section in RESULTS.md")
    args = parser.parse_args(argv)

    if args.quick and args.write_results:
        parser.error("--quick figures are a smoke test; rerun without --quick to write RESULTS.md")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device; run with --device cpu")
    device = torch.device(args.device)
    workload = defaults(device, args.quick)
    changes = {
        "models": tuple(m.strip() for m in args.models.split(",")) if args.models else None,
        "backbone": args.backbone,
        "images": args.images,
        "official_images": args.official_images,
        "image_size": args.image_size,
        "input_size": args.input_size,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "count_real_flops": args.count_real_flops or None,
    }
    workload = replace(workload, **{k: v for k, v in changes.items() if v is not None})
    if args.official_images is None:  # the same images on CPU; at most the default's on CUDA
        limit = workload.images if device.type == "cpu" else workload.official_images
        workload = replace(workload, official_images=min(limit, workload.images))
    unknown = sorted(set(workload.models) - set(zsad_bench.list_models()))
    if unknown:
        parser.error(
            f"unknown model(s) {', '.join(unknown)}; registered: {', '.join(zsad_bench.list_models())}"
        )
    if not 2 * workload.n_classes <= workload.official_images <= workload.images:
        parser.error(f"--official-images must lie in {2 * workload.n_classes}..--images ({workload.images})")

    if args.threads or args.quick:  # a smoke test should not fight for shared cores: 1 thread
        torch.set_num_threads(args.threads or 1)
    load_at_start = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights: nothing to download
    started = time.perf_counter()
    peaks, spec = [matmul_peak(device, args.quick)], spec_peak(device)
    with tempfile.TemporaryDirectory(prefix="zsad-inference-") as tmp:
        folder = Path(tmp)
        per_class = workload.images // workload.n_classes
        _log(f"building {workload.images} synthetic test images at {workload.image_size}² in {folder}")
        synthetic.build(
            folder, seed=0, image_size=workload.image_size, n_train=0,
            n_test_normal=per_class // 2, n_test_anomalous=per_class - per_class // 2,
        )  # fmt: skip
        manifest = read_manifest(folder)
        labeller, fractions = region_fractions()
        rows = [run_detector(name, workload, device, folder, manifest, fractions) for name in workload.models]

    info = machine(device, load_at_start)
    info["checkout"] = _checkout()
    info["official loop's AUPRO labeller"] = labeller
    info["wall time"] = f"{time.perf_counter() - started:.0f} s for the whole script"
    peaks.append(matmul_peak(device, args.quick))  # busy shared cores: the better of two is the ceiling
    text = report(workload, device, info, rows, peaks, spec, args.quick)
    print(text)
    if args.write_results:
        write_section(
            f"inference-{device.type}", f"## Inference — {device.type} (benchmarks/inference.py)", text
        )
        _log(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
