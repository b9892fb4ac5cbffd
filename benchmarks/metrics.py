"""Pixel-metric benchmark: ``zsad_bench.metrics`` at MVTec scale, against scikit-learn and the research loop.

    python benchmarks/metrics.py [--quick] [--device cpu|cuda] [--write-results]

Measures, in one run, on synthetic MVTec-like maps (benchmarks/_synthetic_maps.py, reference/metrics.md §7.2):

1. MVTec scale: 1725 maps at 518² (463 M px) in MVTec AD's 15 test-set class sizes, each class streamed
   through a ``PixelAccumulator`` (update + compute of AUROC, AP, F1-max, AUPRO), in a child process so its
   peak RSS is the metric work's own. Targets: peak RSS < 8 GiB on CPU, < 2 s in total on a GPU.
2. scikit-learn ``roc_auc_score`` + ``average_precision_score`` vs ``pixel_metrics`` (all four metrics) on one
   160-map class; AUROC and AP must agree to 1e-6 (reference/metrics.md §2.1).
3. The AUPRO loop of AnomalyCLIP / APRIL-GAN (``cal_pro_score``, CFlow-AD style: 200 equal-width score
   thresholds, GT re-labelled per threshold; reference/metrics.md §1.3, anomalyclip.md §6) vs all four of
   our metrics on 24 maps (target >= 20×), and the loop's time extrapolated linearly to MVTec scale.
4. Update cost: an ``ImageAccumulator`` fed 100k scores as 32-score updates vs one update of 100k, each
   followed by ``compute`` (target <= 1.5×: per-update work must stay small next to the one sort).

Ratios are baseline time / our time, both measured in this run. ``--write-results`` replaces this script's
section for the device in benchmarks/RESULTS.md. ``--quick`` is a < 1 min smoke test (256², 60 maps).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.ndimage
import sklearn
import sklearn.metrics
import torch
from _results import RESULTS, write_section
from _synthetic_maps import map_batches

from zsad_bench.metrics import ImageAccumulator, PixelAccumulator, pixel_metrics
from zsad_bench.metrics.image import image_metrics_from_tensors
from zsad_bench.metrics.table import result_keys

# MVTec AD test-set sizes (normal + anomalous images) per class: 1725 in all.
MVTEC_TEST_SIZES = {
    "bottle": 83, "cable": 150, "capsule": 132, "carpet": 117, "grid": 78,
    "hazelnut": 110, "leather": 124, "metal_nut": 115, "pill": 167, "screw": 160,
    "tile": 117, "toothbrush": 42, "transistor": 100, "wood": 79, "zipper": 151,
}  # fmt: skip
GIB = 2**30
CPU_PEAK_TARGET = 8 * GIB
GPU_SECONDS_TARGET = 2.0
RESEARCH_RATIO_TARGET = 20.0
AGREEMENT = 1e-6
UPDATE_SCORES, UPDATE_BATCH, UPDATE_RATIO_TARGET = 100_000, 32, 1.5
REPO = Path(__file__).resolve().parent.parent
# Taken at import, when the code being timed was loaded: the metric module may be edited while this runs.
METRICS_SOURCE_HASH = hashlib.sha256(
    b"".join(p.read_bytes() for p in sorted((REPO / "zsad_bench" / "metrics").glob("*.py")))
).hexdigest()[:12]


@dataclass(frozen=True)
class Workload:
    res: int
    classes: dict[str, int]  # class -> number of maps (the MVTec-scale part)
    sklearn_maps: int  # one class, for the scikit-learn comparison
    research_maps: int  # for the research AUPRO loop
    batch_size: int = 16  # maps per PixelAccumulator.update
    distinct: int | None = None  # see map_batches; None = every map drawn independently

    @property
    def n_maps(self) -> int:
        return sum(self.classes.values())

    @property
    def n_pixels(self) -> int:
        return self.n_maps * self.res * self.res


FULL = Workload(res=518, classes=MVTEC_TEST_SIZES, sklearn_maps=160, research_maps=24)
QUICK = Workload(
    res=256, classes={"bottle": 20, "cable": 20, "capsule": 20}, sklearn_maps=20, research_maps=4
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and its wall time, with the device's queue drained before and after."""
    _sync(device)
    start = time.perf_counter()
    out = fn(*args)
    _sync(device)
    return out, time.perf_counter() - start


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _warm_up(device: torch.device) -> None:
    """Pay one-time costs (CUDA context, kernel loading, thread pools) before anything is timed."""
    maps, masks = next(map_batches(4, 64, seed=12345))
    pixel_metrics(maps.to(device), masks.to(device))
    _sync(device)


def _load_class(n: int, res: int, seed: int, stream: int, distinct: int | None) -> tuple[torch.Tensor, ...]:
    pairs = list(map_batches(n, res, seed=seed, stream=stream, distinct=distinct))
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])


# --- 1. MVTec scale (runs in a child process) -----------------------------------------------------------


def mvtec_scale(workload: Workload, device: torch.device, seed: int) -> dict[str, Any]:
    """Stream every class through a PixelAccumulator; time update + compute only (not map generation)."""
    _warm_up(device)
    baseline_rss = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows, generation = [], 0.0
    for stream, (name, n) in enumerate(workload.classes.items()):
        acc = PixelAccumulator(fpr_limit=0.3)
        update_s, start = 0.0, time.perf_counter()
        for maps, masks in map_batches(
            n, workload.res, seed, stream, workload.batch_size, distinct=workload.distinct
        ):
            maps, masks = maps.to(device), masks.to(device)  # as the evaluate loop hands them over
            generation += time.perf_counter() - start
            update_s += _timed(device, acc.update, maps, masks)[1]
            start = time.perf_counter()
        n_regions = acc.n_regions
        result, compute_s = _timed(device, acc.compute)
        del acc
        rows.append(
            {"class": name, "maps": n, "regions": n_regions, "update_s": update_s, "compute_s": compute_s}
            | {name: result[key] for name, key in result_keys("pixel").items()}
        )
        _log(f"  {name:<11} {n:>4} maps  update {update_s:6.2f} s  compute {compute_s:6.2f} s")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    out = {
        "rows": rows,
        "generation_s": generation,
        "peak_rss": peak_rss,
        "baseline_rss": baseline_rss,
        "metric_s": sum(r["update_s"] + r["compute_s"] for r in rows),
        "source_hash": METRICS_SOURCE_HASH,
    }
    if device.type == "cuda":
        out["cuda_peak"] = torch.cuda.max_memory_allocated(device)
    return out


def run_mvtec_child(workload: Workload, device: torch.device, seed: int) -> dict[str, Any]:
    """Run ``mvtec_scale`` in a fresh interpreter so ru_maxrss is not inflated by the other parts."""
    spec = json.dumps({"workload": asdict(workload), "device": str(device), "seed": seed})
    proc = subprocess.run(
        [sys.executable, __file__, "--mvtec-child", spec], stdout=subprocess.PIPE, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- 2. scikit-learn --------------------------------------------------------------------------------------


def vs_sklearn(workload: Workload, device: torch.device, seed: int) -> dict[str, Any]:
    maps, masks = _load_class(workload.sklearn_maps, workload.res, seed, 100, workload.distinct)
    scores, truth = maps.numpy().reshape(-1), masks.numpy().reshape(-1)
    cpu = torch.device("cpu")
    sk_auroc, auroc_s = _timed(cpu, sklearn.metrics.roc_auc_score, truth, scores)
    sk_ap, ap_s = _timed(cpu, sklearn.metrics.average_precision_score, truth, scores)
    maps_d, masks_d = maps.to(device), masks.to(device)
    ours, ours_s = _timed(device, pixel_metrics, maps_d, masks_d)
    return {
        "maps": workload.sklearn_maps,
        "pixels": scores.size,
        "sklearn_s": auroc_s + ap_s,
        "sklearn_auroc_s": auroc_s,
        "sklearn_ap_s": ap_s,
        "ours_s": ours_s,
        "d_auroc": abs(ours["auroc"] - sk_auroc),
        "d_ap": abs(ours["ap"] - sk_ap),
    }


# --- 3. The research AUPRO loop ---------------------------------------------------------------------------


def _region_fractions_skimage() -> Callable[[np.ndarray, np.ndarray], list[float]]:
    from skimage import measure

    def fractions(binary: np.ndarray, mask: np.ndarray) -> list[float]:
        out = []
        for region in measure.regionprops(measure.label(mask)):  # default = 8-connectivity in 2-D
            hits = binary[region.coords[:, 0], region.coords[:, 1]].sum()
            out.append(hits / region.area)
        return out

    return fractions


def _region_fractions_scipy() -> Callable[[np.ndarray, np.ndarray], list[float]]:
    eight = np.ones((3, 3), dtype=bool)

    def fractions(binary: np.ndarray, mask: np.ndarray) -> list[float]:
        labels, _ = scipy.ndimage.label(mask, structure=eight)
        out = []
        for k, box in enumerate(scipy.ndimage.find_objects(labels), start=1):
            region = labels[box] == k
            out.append(binary[box][region].sum() / region.sum())
        return out

    return fractions


def region_fractions() -> tuple[str, Callable[[np.ndarray, np.ndarray], list[float]]]:
    """The research code's labeller (skimage) if importable, else scipy with the same 8-connectivity."""
    try:
        import skimage

        return f"skimage.measure.label + regionprops (scikit-image {skimage.__version__})", (
            _region_fractions_skimage()
        )
    except ImportError:
        return "scipy.ndimage.label (3×3 ones) + find_objects", _region_fractions_scipy()


def research_aupro(
    masks: np.ndarray,
    maps: np.ndarray,
    fractions: Callable[[np.ndarray, np.ndarray], list[float]],
    max_step: int = 200,
    expect_fpr: float = 0.3,
) -> float:
    """AnomalyCLIP/APRIL-GAN ``cal_pro_score`` semantics, re-created (reference/metrics.md §1.3).

    masks: (N, H, W) 0/1; maps: (N, H, W) scores. Kept deliberately slow in the same places as the original:
    the whole stack is thresholded twice per threshold, every mask is re-labelled per threshold, and the
    normal-pixel mask ``1 - masks`` is rebuilt per threshold.
    """
    binary = np.zeros_like(maps, dtype=bool)
    lo, hi = maps.min(), maps.max()
    pros, fprs = [], []
    for t in np.arange(lo, hi, (hi - lo) / max_step):  # half-open: hi is never a threshold
        binary[maps <= t], binary[maps > t] = False, True
        overlap: list[float] = []
        for b, m in zip(binary, masks, strict=True):
            overlap.extend(fractions(b, m))
        normal = 1 - masks
        fprs.append(np.logical_and(normal, binary).sum() / normal.sum())
        pros.append(np.mean(overlap))
    fpr, pro = np.asarray(fprs), np.asarray(pros)
    keep = fpr < expect_fpr  # strict, no interpolation at expect_fpr
    fpr = fpr[keep]
    fpr = (fpr - fpr.min()) / (fpr.max() - fpr.min())  # min-max rescale, not ÷ expect_fpr
    return float(sklearn.metrics.auc(fpr, pro[keep]))


def vs_research(workload: Workload, device: torch.device, seed: int) -> dict[str, Any]:
    maps, masks = _load_class(workload.research_maps, workload.res, seed, 200, workload.distinct)
    if not masks.any():
        raise RuntimeError(f"seed {seed} drew no anomalous map among {len(masks)}; pick another --seed")
    labeller, fractions = region_fractions()
    # Float 0/1 ground truth: test.py binarises the float GT tensor in place (assumed kept as such).
    gt = masks.numpy().astype(np.float32)
    research, research_s = _timed(torch.device("cpu"), research_aupro, gt, maps.numpy(), fractions)
    maps_d, masks_d = maps.to(device), masks.to(device)
    runs = [_timed(device, pixel_metrics, maps_d, masks_d) for _ in range(3)]
    times = sorted(s for _, s in runs)
    return {
        "maps": workload.research_maps,
        "pixels": maps.numel(),
        "labeller": labeller,
        "research_s": research_s,
        "ours_s": times[1],
        "ours_runs_s": times,
        "research_aupro": research,
        "ours_aupro": runs[0][0]["aupro"],
    }


# --- 4. Per-update cost of the image accumulator ---------------------------------------------------------


def update_cost(device: torch.device, seed: int, repeats: int) -> dict[str, Any]:
    """Many small updates vs one, each + ``compute``, and the floor: the same loop appending the batches
    as they are (no attribute checks) before the same one concatenation and metric call. ``update`` copies
    nothing: it keeps the tensors by reference after a few attribute reads (see ``metrics.state``), so the
    ratio above the floor is those reads, ~300 ns per update.

    The legs are interleaved and the fastest of ``repeats`` runs of each kept. On the CPU they run on one
    torch thread and are timed in CPU time of this thread, so other processes on the cores (and torch's
    spinning worker threads) do not swamp per-call overheads of a few microseconds.
    """
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.random(UPDATE_SCORES).astype(np.float32)).to(device)
    labels = torch.from_numpy(rng.random(UPDATE_SCORES) < 0.3).to(device)
    batches = list(zip(scores.split(UPDATE_BATCH), labels.split(UPDATE_BATCH), strict=True))

    def feed(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        acc = ImageAccumulator()
        for s, y in parts:
            acc.update(s, y)
        return acc.compute()

    def floor(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        kept_s, kept_y = [], []
        for s, y in parts:
            kept_s.append(s)
            kept_y.append(y)
        return image_metrics_from_tensors(torch.cat(kept_s), torch.cat(kept_y))

    def timed(fn: Callable[..., Any], parts: list) -> tuple[Any, float]:
        if device.type != "cpu":
            return _timed(device, fn, parts)
        start = time.thread_time()
        out = fn(parts)
        return out, time.thread_time() - start

    legs = {"one": (feed, [(scores, labels)]), "small": (feed, batches), "floor": (floor, batches)}
    times: dict[str, list[float]] = {leg: [] for leg in legs}
    results: dict[str, Any] = {}
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        for _ in range(repeats):
            for leg, (fn, parts) in legs.items():
                results[leg], seconds = timed(fn, parts)
                times[leg].append(seconds)
    finally:
        torch.set_num_threads(threads)
    best = {leg: min(t) for leg, t in times.items()}
    return {
        "updates": len(batches),
        "repeats": repeats,
        "clock": "CPU time of one torch thread" if device.type == "cpu" else "wall time, synchronised",
        **{f"{leg}_s": s for leg, s in best.items()},
        "ratio": best["small"] / best["one"],
        "floor_ratio": best["floor"] / best["one"],
        "identical": results["one"] == results["small"],
    }


# --- Report -----------------------------------------------------------------------------------------------


def machine(device: torch.device, load_at_start: float) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": f"{cpu}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"torch threads {torch.get_num_threads()}",
        "ram": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / GIB:.0f} GiB",
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{props.name}, {props.total_memory / GIB:.0f} GiB"
    info["versions"] = (
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}"
    )
    info["load"] = (
        f"1-min load average {load_at_start:.2f} before the run, {os.getloadavg()[0]:.2f} at its end "
        "(this run included): other processes on the cores slow every timing"
    )
    info["checkout"] = _checkout()
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def _checkout() -> str:
    """Commit, whether the metric code differs from it, and a hash of the metric sources as imported."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "zsad_bench/metrics"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return (
        f"{head}"
        + (" + uncommitted changes in zsad_bench/metrics" if dirty else "")
        + (f"; zsad_bench/metrics sources sha256 {METRICS_SOURCE_HASH} at import")
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _verdict(ok: bool, judged: bool = True) -> str:
    """PASS/FAIL, or a note when the workload is smaller than the one the target is set for (--quick)."""
    if not judged:
        return "not judged (target set for the full workload)"
    return "PASS" if ok else "FAIL"


def report(
    workload: Workload, device: torch.device, info: dict[str, str], mv: dict, sk: dict, rs: dict, up: dict
) -> str:
    mpx = workload.res * workload.res / 1e6
    full = replace(workload, distinct=None) == FULL  # the targets are set for the full workload
    lines = [f"- {k}: {v}" for k, v in info.items()]
    lines.append(
        f"- maps: synthetic MVTec-like (benchmarks/_synthetic_maps.py), {workload.res}², "
        + (
            "every map an independent draw"
            if workload.distinct is None
            else f"{workload.distinct} distinct maps reused under rotations/flips/rolls"
        )
        + f"; updates of {workload.batch_size} maps; generation ({mv['generation_s']:.1f} s) not timed"
    )
    lines += [
        "",
        f"**MVTec scale** ({workload.n_maps} maps, {workload.n_pixels / 1e6:.0f} M px), PixelAccumulator per "
        "class, AUPRO = MVTec definition to FPR 0.3:",
        "",
        "| class | maps | M px | regions | update s | compute s | AUROC | AP | F1-max | AUPRO |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mv["rows"]:
        lines.append(
            f"| {r['class']} | {r['maps']} | {r['maps'] * mpx:.1f} | {r['regions']} | {r['update_s']:.2f} "
            f"| {r['compute_s']:.2f} | "
            + " | ".join(_fmt(r[k]) for k in ("auroc", "ap", "f1_max", "aupro"))
            + " |"
        )
    update_s = sum(r["update_s"] for r in mv["rows"])
    compute_s = sum(r["compute_s"] for r in mv["rows"])
    lines.append(
        f"| **total** | {workload.n_maps} | {workload.n_pixels / 1e6:.1f} | "
        f"{sum(r['regions'] for r in mv['rows'])} | {update_s:.2f} | {compute_s:.2f} | | | | |"
    )
    above = mv["peak_rss"] - mv["baseline_rss"]
    lines.append("")
    if mv["source_hash"] != METRICS_SOURCE_HASH:
        lines.append(
            f"- WARNING: zsad_bench/metrics changed between imports; the MVTec-scale child timed sources "
            f"{mv['source_hash']}, the comparisons below {METRICS_SOURCE_HASH}"
        )
    lines += [
        f"- metric time (update + compute): **{mv['metric_s']:.2f} s**",
        f"- peak RSS of the child process: **{mv['peak_rss'] / GIB:.2f} GiB** "
        f"({above / GIB:.2f} GiB above the {mv['baseline_rss'] / GIB:.2f} GiB after imports and warm-up)",
    ]
    if device.type == "cuda":
        lines.append(f"- torch.cuda.max_memory_allocated: **{mv['cuda_peak'] / GIB:.2f} GiB**")
        fast = mv["metric_s"] < GPU_SECONDS_TARGET
        lines.append(f"- target < {GPU_SECONDS_TARGET:g} s on GPU: **{_verdict(fast, full)}**")
    else:
        lines.append(
            f"- target peak < {CPU_PEAK_TARGET / GIB:g} GiB on CPU: "
            f"**{_verdict(mv['peak_rss'] < CPU_PEAK_TARGET, full)}**"
        )

    research_px_s = rs["research_s"] / rs["pixels"]
    estimate_s = research_px_s * workload.n_pixels
    agree = sk["d_auroc"] <= AGREEMENT and sk["d_ap"] <= AGREEMENT
    research_ratio = rs["research_s"] / rs["ours_s"]
    runs = ", ".join(f"{t:.3f}" for t in rs["ours_runs_s"])
    lines += [
        "",
        "**Against baselines measured in the same run** (ratio = baseline time / our time; ours = AUROC, AP, "
        "F1-max and AUPRO together):",
        "",
        "| baseline | workload | baseline s | ours s | ratio | check |",
        "|---|---|---:|---:|---:|---|",
        f"| sklearn roc_auc_score + average_precision_score | {sk['maps']} × {workload.res}² "
        f"({sk['pixels'] / 1e6:.1f} M px) | {sk['sklearn_s']:.2f} ({sk['sklearn_auroc_s']:.1f} + "
        f"{sk['sklearn_ap_s']:.1f}) | {sk['ours_s']:.2f} | {sk['sklearn_s'] / sk['ours_s']:.1f}× | "
        f"abs ΔAUROC {sk['d_auroc']:.1e}, ΔAP {sk['d_ap']:.1e} ≤ {AGREEMENT:g}: {_verdict(agree)} |",
        f"| research AUPRO loop (cal_pro_score, 200 thresholds) | {rs['maps']} × {workload.res}² | "
        f"{rs['research_s']:.2f} | {rs['ours_s']:.3f} (median of {runs}) "
        f"| {research_ratio:.1f}× | "
        f"target ≥ {RESEARCH_RATIO_TARGET:g}×: {_verdict(research_ratio >= RESEARCH_RATIO_TARGET, full)} |",
        f"| research AUPRO loop, its {rs['maps']}-map time scaled linearly in pixels | "
        f"{workload.n_maps} × {workload.res}² | "
        f"~{estimate_s:.0f} (~{estimate_s / 60:.1f} min) | {mv['metric_s']:.2f} (measured above) | "
        f"~{estimate_s / mv['metric_s']:.0f}× | |",
        "",
        f"- research loop labeller: {rs['labeller']}; its AUPRO (CFlow-200 convention) "
        f"{rs['research_aupro']:.4f} vs ours (MVTec convention) {rs['ours_aupro']:.4f}: different "
        "definitions, not expected to agree (reference/metrics.md §1.6)",
        "",
        f"**Update cost** (ImageAccumulator, {UPDATE_SCORES // 1000}k scores, each leg + compute; "
        f"{up['clock']}, fastest of {up['repeats']} interleaved runs):",
        "",
        "| leg | updates | time | ratio to one update | check |",
        "|---|---:|---:|---:|---|",
        f"| one update of {UPDATE_SCORES} | 1 | {up['one_s'] * 1e3:.1f} ms | 1.00× | |",
        f"| {UPDATE_BATCH}-score updates | {up['updates']} | {up['small_s'] * 1e3:.1f} ms "
        f"| {up['ratio']:.2f}× "
        f"| target ≤ {UPDATE_RATIO_TARGET:g}×: {_verdict(up['ratio'] <= UPDATE_RATIO_TARGET)}; "
        f"same metrics: {_verdict(up['identical'])} |",
        f"| floor: the same loop appending the batches as given (no checks) | "
        f"{up['updates']} | {up['floor_s'] * 1e3:.1f} ms | {up['floor_ratio']:.2f}× | |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 classes × 20 maps at 256²")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--write-results", action="store_true", help="replace the section in RESULTS.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--distinct", type=int, default=None, help="generate only N distinct maps and reuse them transformed"
    )
    parser.add_argument("--mvtec-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.mvtec_child:  # the child process of part 1: print one JSON line
        spec = json.loads(args.mvtec_child)
        workload = Workload(**spec["workload"])
        print(json.dumps(mvtec_scale(workload, torch.device(spec["device"]), spec["seed"])))
        return 0

    if args.quick and args.write_results:
        parser.error("--quick figures are a smoke test; rerun without --quick to write RESULTS.md")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device; run with --device cpu")
    device = torch.device(args.device)
    workload = QUICK if args.quick else FULL
    if args.distinct is not None:
        workload = replace(workload, distinct=args.distinct)

    load_at_start = os.getloadavg()[0]
    _warm_up(device)
    _log(f"1/4 MVTec scale: {workload.n_maps} maps at {workload.res}² in a child process")
    mv = run_mvtec_child(workload, device, args.seed)
    _log(f"2/4 scikit-learn on {workload.sklearn_maps} maps")
    sk = vs_sklearn(workload, device, args.seed)
    _log(f"3/4 research AUPRO loop on {workload.research_maps} maps")
    rs = vs_research(workload, device, args.seed)
    _log(f"4/4 image accumulator: {UPDATE_SCORES} scores in {UPDATE_BATCH}-score updates vs one")
    up = update_cost(device, args.seed, repeats=5 if args.quick else 15)

    text = report(workload, device, machine(device, load_at_start), mv, sk, rs, up)
    print(text)
    if args.write_results:
        write_section(f"metrics-{device.type}", f"## Metrics — {device.type} (benchmarks/metrics.py)", text)
        _log(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
