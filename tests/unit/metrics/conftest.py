"""Shared fixtures for the metric tests: synthetic MVTec-like maps and scikit-learn reference values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

Maps = tuple[np.ndarray, np.ndarray]  # (N, H, W) float32 maps, (N, H, W) bool masks


def _ellipse(res: int, rng: np.random.Generator, centre: tuple[float, float] | None = None) -> np.ndarray:
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float64)
    cy, cx = centre if centre is not None else rng.uniform(0, res - 1, size=2)
    a = res * rng.uniform(0.06, 0.22)
    b = a * rng.uniform(0.3, 1.0)
    theta = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def synthetic_maps(
    seed: int,
    n: int = 12,
    res: int = 64,
    *,
    quantise: int | None = None,
    outlier: bool = False,
    border: bool = False,
    one_pixel: bool = False,
) -> Maps:
    """MVTec-like maps (reference/metrics.md §7.2, simplified): smoothed noise + blurred, shifted GT blobs.

    Image 0 is normal (all-zero mask), image 1 anomalous, the rest anomalous with probability 0.6.
    quantise: round the maps to multiples of 1/quantise (heavy ties). outlier: one pixel scores 50.
    border: regions centred on the image border. one_pixel: isolated one-pixel regions and a diagonal pair.
    """
    rng = np.random.default_rng(seed)
    maps = np.empty((n, res, res), np.float32)
    masks = np.zeros((n, res, res), bool)
    for i in range(n):
        anomalous = i == 1 or (i > 1 and rng.random() < 0.6)
        if anomalous:
            for _ in range(rng.integers(1, 4)):
                centre = None
                if border:
                    edge = rng.integers(4)
                    t = rng.uniform(0, res - 1)
                    centre = [(0.0, t), (res - 1.0, t), (t, 0.0), (t, res - 1.0)][edge]
                masks[i] |= _ellipse(res, rng, centre)
            if one_pixel:
                r, c = rng.integers(0, res - 1, size=2)
                masks[i, r, c] = True
                masks[i, (r + 3) % res, (c + 3) % res] = True
                masks[i, (r + 4) % res, (c + 4) % res] = True  # diagonal neighbour: same region
        noise = gaussian_filter(rng.standard_normal((res, res)), sigma=res / 64)
        noise /= noise.std()
        signal = gaussian_filter(masks[i].astype(np.float64), sigma=res / 128)
        signal = np.roll(signal, rng.integers(-res // 32, res // 32 + 1, size=2), axis=(0, 1))
        x = 0.35 * noise + rng.uniform(0.3, 2.5) * signal
        if rng.random() < 0.3:  # a spurious blob where there is no defect
            x += rng.uniform(0.2, 1.0) * gaussian_filter(_ellipse(res, rng).astype(np.float64), res / 128)
        x = gaussian_filter(x, sigma=4 * res / 518)
        maps[i] = 1.0 / (1.0 + np.exp(-4.0 * (x - 0.5)))
    if quantise is not None:
        maps = (np.round(maps * quantise) / quantise).astype(np.float32)
    if outlier:
        maps[n - 1, res // 2, res // 3] = 50.0
    return maps, masks


def sklearn_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC, AP and F1-max as the reference repositories compute them with scikit-learn."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, bool).ravel()
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
        "f1_max": float(np.max(f1[np.isfinite(f1)])),
    }


MAP_CASES = {
    "random": {},
    "tied": {"quantise": 16},
    "outlier": {"outlier": True},
    "border": {"border": True},
    "one_pixel": {"one_pixel": True},
}


@pytest.fixture
def make_maps() -> Callable[..., Maps]:
    return synthetic_maps


@pytest.fixture
def sklearn_reference() -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    return sklearn_metrics


@pytest.fixture(params=list(MAP_CASES))
def map_case(request: pytest.FixtureRequest) -> dict[str, object]:
    """Keyword arguments of ``synthetic_maps`` for each case: random, tied, outlier, border, one_pixel."""
    return MAP_CASES[request.param]
