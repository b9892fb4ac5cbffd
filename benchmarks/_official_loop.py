"""The evaluation loop of AnomalyCLIP's ``test.py``, re-created as the baseline of benchmarks/inference.py.

What it reproduces (reference/anomalyclip.md §5 and §6; APRIL-GAN's ``test.py`` has the same shape,
reference/baselines.md §3.6): a ``DataLoader`` with batch size 1, no shuffling and no workers (PIL decode and
resize on the main thread); an fp32 forward per image (no autocast); each map moved to the CPU and smoothed
there with ``scipy.ndimage.gaussian_filter`` one map at a time; ground truth binarised at 0.5; every map,
mask, label and score of a class kept in Python lists and concatenated at the end; then, per class,
scikit-learn ``roc_auc_score`` and ``average_precision_score`` on the image scores, ``roc_auc_score`` on all
pixels flattened, and the CFlow-200 AUPRO loop (``research_aupro`` of benchmarks/metrics.py).

The detector is one of ours, run with its own smoothing switched off (``sigma = 0``), so both loops see the
same weights and the same maps before smoothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage
import sklearn.metrics
import torch
from metrics import research_aupro
from torch.utils.data import DataLoader

from zsad_bench.api import Detector
from zsad_bench.data.dataset import AnomalyDataset

Fractions = Callable[[np.ndarray, np.ndarray], list[float]]


@dataclass
class OfficialRun:
    """Per-class metrics; seconds of the per-image loop (decode, forward, CPU blur) and of the metrics."""

    per_class: dict[str, dict[str, float]]
    loop_s: float
    metrics_s: float


@contextlib.contextmanager
def official_smoothing(detector: Detector) -> Iterator[float]:
    """Yield the sigma the official loop applies on the CPU, with the detector's own smoothing off meanwhile.

    Detectors whose maps are smoothed carry a ``sigma`` attribute read at every forward (AnomalyCLIP, CLIP,
    CLIP-AC, CoOp: 4); the others (APRIL-GAN, WinCLIP) are not smoothed by their official code either.
    """
    sigma = getattr(detector, "sigma", None)
    if sigma is None:
        yield 0.0
        return
    detector.sigma = 0.0  # maps.gaussian_blur treats sigma <= 0 as the identity
    try:
        yield float(sigma)
    finally:
        detector.sigma = sigma


def official_loop(
    detector: Detector, dataset: AnomalyDataset, device: torch.device, fractions: Fractions
) -> OfficialRun:
    """The re-created ``test.py`` on ``dataset``: per class image AUROC, AP, pixel AUROC, CFlow-200 AUPRO."""
    results: dict[str, dict[str, list[Any]]] = {}
    start = time.perf_counter()
    detector = detector.to(device).eval()
    with official_smoothing(detector) as sigma:
        for items in DataLoader(dataset, batch_size=1, shuffle=False):
            image = items["image"].to(device)
            gt_mask = items["mask"].float()  # (1, S, S)
            gt_mask[gt_mask > 0.5], gt_mask[gt_mask <= 0.5] = 1, 0
            lists = results.setdefault(
                items["class_name"][0], {"imgs_masks": [], "anomaly_maps": [], "gt_sp": [], "pr_sp": []}
            )
            lists["imgs_masks"].append(gt_mask)
            lists["gt_sp"].extend(items["label"].detach().cpu())
            with torch.no_grad():
                prediction = detector(image, list(items["prompt_name"]))
            lists["pr_sp"].extend(prediction.image_scores.detach().cpu())
            maps = prediction.anomaly_maps.detach().cpu()
            if sigma > 0:  # test.py: gaussian_filter per map, on the CPU
                maps = torch.stack(
                    [torch.from_numpy(scipy.ndimage.gaussian_filter(m, sigma=sigma)) for m in maps]
                )
            lists["anomaly_maps"].append(maps)
    loop_s = time.perf_counter() - start  # every map is on the CPU already: nothing left on the device
    per_class = {name: _class_metrics(lists, fractions) for name, lists in results.items()}
    return OfficialRun(per_class, loop_s, time.perf_counter() - start - loop_s)


def _class_metrics(lists: dict[str, list[Any]], fractions: Fractions) -> dict[str, float]:
    """test.py's per-class metrics (metrics.py: image_level_metrics, pixel_level_metrics, cal_pro_score)."""
    masks = torch.cat(lists["imgs_masks"]).numpy()
    maps = torch.cat(lists["anomaly_maps"]).numpy()
    labels, scores = np.array(lists["gt_sp"]), np.array(lists["pr_sp"])
    return {
        "image_auroc": float(sklearn.metrics.roc_auc_score(labels, scores)),
        "image_ap": float(sklearn.metrics.average_precision_score(labels, scores)),
        "pixel_auroc": float(sklearn.metrics.roc_auc_score(masks.ravel(), maps.ravel())),
        "pixel_aupro": research_aupro(masks, maps, fractions),
    }
