"""The embedded ``synthetic`` dataset: textures with pasted defects and exact masks, made from a seed.

No download; used by tests and ``zsad demo``. The layout is MVTec's::

    <class>/train/good/000.png  <class>/test/good/000.png  <class>/test/<defect>/000.png
    <class>/ground_truth/<defect>/000_mask.png          (0/255 8-bit grey)

Every image has its own ``numpy.random.Generator`` derived from (seed, class, split, defect type,
index), so images do not depend on the order they are drawn in and the same seed gives byte-identical
PNGs (on one platform; numpy's vectorised ``sin`` may differ in the last bit between CPUs).

Textures are kept inside ``[40, 215]`` on every channel and defects are painted outside that range
(scratch >= 236, hole <= 14, blob a >= 75 % blend towards a saturated colour), so each defect changes
every pixel of its mask by at least 21 grey levels on every channel and nothing else: the mask is exactly
the set of changed pixels.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from PIL import Image

from zsad_bench.data.manifest import write_manifest
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.data.spec import ClassSpec, DatasetSpec

__all__ = ["BUILDER_VERSION", "CLASSES", "DEFECTS", "SPEC", "add_defect", "build", "sample_rng", "texture"]

CLASSES = ("stripes", "checker", "dots", "weave")
DEFECTS = ("scratch", "blob", "hole")
BUILDER_VERSION = 1
TEXTURE_RANGE = (40, 215)

_DEFAULT_COUNTS = {"n_train": 4, "n_test_normal": 6, "n_test_anomalous": 10}


def sample_rng(seed: int, class_name: str, split: str, defect_type: str, index: int) -> np.random.Generator:
    """The generator of one image, independent of every other image's draws."""
    key = [
        seed,
        CLASSES.index(class_name),
        ("train", "test").index(split),
        ("good", *DEFECTS).index(defect_type),
    ]
    return np.random.default_rng(np.random.SeedSequence([*key, index]))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    return yy.astype(np.float64), xx.astype(np.float64)


def _lerp(dark: tuple[float, ...], light: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """``(H, W)`` weights in [0, 1] -> ``(H, W, 3)`` colours between ``dark`` and ``light``."""
    d, lt = np.asarray(dark, dtype=np.float64), np.asarray(light, dtype=np.float64)
    return d + t[..., None] * (lt - d)


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    """Wood: near-vertical sinusoidal stripes whose phase wanders down the board, plus fine grain."""
    yy, xx = _grid(size)
    theta = rng.uniform(-0.35, 0.35)
    period = size / rng.uniform(5.0, 8.0)
    warp = rng.uniform(1.5, 4.0) * np.sin(
        2 * np.pi * yy / (size * rng.uniform(0.6, 1.2)) + rng.uniform(0, 6.3)
    )
    u = xx * np.cos(theta) + yy * np.sin(theta) + warp
    rings = np.sin(2 * np.pi * u / period + rng.uniform(0, 6.3))
    grain = np.sin(2 * np.pi * 3.7 * u / period + rng.uniform(0, 6.3))
    t = np.clip(0.5 + 0.4 * rings + 0.1 * grain, 0, 1)
    return _lerp((105, 65, 42), (205, 155, 105), t)


def _checker(rng: np.random.Generator, size: int) -> np.ndarray:
    """Tiles: a checkerboard of cream and terracotta squares with dark grout lines."""
    yy, xx = _grid(size)
    tile = int(rng.integers(12, 18))
    ox, oy = rng.integers(0, tile, size=2)
    parity = ((xx + ox) // tile + (yy + oy) // tile) % 2
    out = _lerp((200, 195, 180), (175, 88, 62), parity)
    grout = ((xx + ox) % tile == 0) | ((yy + oy) % tile == 0)
    out[grout] = (88, 84, 80)
    return out


def _dots(rng: np.random.Generator, size: int) -> np.ndarray:
    """Polka dots: soft yellow discs on a jittered grid over a green ground."""
    yy, xx = _grid(size)
    spacing = int(rng.integers(12, 16))
    radius = rng.uniform(2.8, 4.2)
    off_x, off_y = rng.uniform(0, spacing, size=2)
    n_cells = size // spacing + 2
    jitter = rng.uniform(-1.0, 1.0, size=(2, n_cells, n_cells))
    cx, cy = np.floor((xx + off_x) / spacing).astype(int), np.floor((yy + off_y) / spacing).astype(int)
    centre_x = (cx + 0.5) * spacing - off_x + jitter[0, cy, cx]
    centre_y = (cy + 0.5) * spacing - off_y + jitter[1, cy, cx]
    dist = np.hypot(xx - centre_x, yy - centre_y)
    return _lerp((62, 122, 74), (210, 196, 86), np.clip(radius - dist + 0.5, 0, 1))


def _weave(rng: np.random.Generator, size: int) -> np.ndarray:
    """Denim-like plain weave: cells alternate horizontal and vertical threads, bright mid-thread."""
    yy, xx = _grid(size)
    period = int(rng.integers(6, 9))
    ox, oy = rng.integers(0, period, size=2)
    parity = ((xx + ox) // period + (yy + oy) // period) % 2
    across_h = np.sin(np.pi * (((yy + oy) % period) + 0.5) / period)
    across_v = np.sin(np.pi * (((xx + ox) % period) + 0.5) / period)
    return _lerp((48, 66, 118), (140, 160, 206), np.where(parity == 1, across_h, across_v))


_TEXTURES = {"stripes": _stripes, "checker": _checker, "dots": _dots, "weave": _weave}


def texture(class_name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A defect-free ``(size, size, 3)`` uint8 texture of ``class_name`` with values in ``TEXTURE_RANGE``."""
    base = _TEXTURES[class_name](rng, size)
    tint = rng.uniform(0.93, 1.07, size=3)  # per-image colour variation
    noisy = base * tint + rng.normal(0.0, 3.0, size=base.shape)
    return np.rint(np.clip(noisy, *TEXTURE_RANGE)).astype(np.uint8)


_BLOB_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255), (255, 255, 0))


def add_defect(
    image: np.ndarray, defect_type: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paint one defect into a texture from ``texture``: ``(S, S, 3)`` uint8 -> (new image, ``(S, S)`` bool).

    The defect is drawn as a binary mask first and only the pixels of the mask are changed; the mask
    always holds its (integer) centre pixel, so it is never empty.
    """
    size = image.shape[0]
    yy, xx = _grid(size)
    margin = max(2, size // 6)
    cx, cy = rng.integers(margin, size - margin, size=2)
    angle = rng.uniform(0.0, np.pi)
    along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    out = image.astype(np.float64)

    if defect_type == "scratch":  # thin bright line, 1-3 px wide
        half_length, width = rng.uniform(0.15, 0.35) * size, rng.uniform(1.0, 3.0)
        mask = (np.abs(across) <= width / 2) & (np.abs(along) <= half_length)
        out[mask] = np.clip(rng.uniform(244, 252) + rng.normal(0, 2.0, size=(int(mask.sum()), 1)), 236, 255)
    elif defect_type == "blob":  # colour blotch: a rotated ellipse blended towards a saturated colour
        a, b = rng.uniform(0.06, 0.16, size=2) * size
        mask = (along / a) ** 2 + (across / b) ** 2 <= 1
        colour = np.asarray(_BLOB_COLOURS[int(rng.integers(len(_BLOB_COLOURS)))], dtype=np.float64)
        alpha = rng.uniform(0.75, 0.9)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    elif defect_type == "hole":  # dark disc, slightly lighter towards the rim
        radius = max(3.0, rng.uniform(0.04, 0.1) * size)
        dist = np.hypot(xx - cx, yy - cy)
        mask = dist <= radius
        out[mask] = (4 + 10 * dist[mask] / radius)[:, None]
    else:
        raise ValueError(f"unknown defect type {defect_type!r}; expected one of {DEFECTS}")
    return np.rint(out).astype(np.uint8), mask


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def build(
    folder: Path,
    *,
    seed: int = 0,
    image_size: int = 96,
    n_train: int = _DEFAULT_COUNTS["n_train"],
    n_test_normal: int = _DEFAULT_COUNTS["n_test_normal"],
    n_test_anomalous: int = _DEFAULT_COUNTS["n_test_anomalous"],
) -> None:
    """Write the synthetic dataset into ``folder``: images, masks, ``manifest.parquet``, ``dataset.json``.

    Per class: ``n_train`` normal train images, ``n_test_normal`` normal and ``n_test_anomalous``
    anomalous test images (defect types in turn: scratch, blob, hole), all ``image_size`` square.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {image_size}")
    if min(n_train, n_test_normal, n_test_anomalous) < 0:
        raise ValueError("image counts must be >= 0")
    folder = Path(folder)
    rows: list[dict[str, object]] = []

    def row(rel: str, split: str, cls: str, defect: str, mask: str | None) -> dict[str, object]:
        return {
            "sample_id": rel,
            "split": split,
            "class_name": cls,
            "prompt_name": SPEC.prompt_name(cls),
            "defect_type": defect,
            "label": int(defect != "good"),
            "image_path": rel,
            "mask_path": mask,
        }

    for cls in CLASSES:
        for split, count in (("train", n_train), ("test", n_test_normal)):
            for i in range(count):
                rel = f"{cls}/{split}/good/{i:03d}.png"
                _save_png(texture(cls, sample_rng(seed, cls, split, "good", i), image_size), folder / rel)
                rows.append(row(rel, split, cls, "good", None))

        images: dict[str, list[str]] = {d: [] for d in DEFECTS}
        masks: dict[str, list[str]] = {d: [] for d in DEFECTS}
        for k in range(n_test_anomalous):
            defect = DEFECTS[k % len(DEFECTS)]
            i = k // len(DEFECTS)
            rng = sample_rng(seed, cls, "test", defect, i)
            image, mask = add_defect(texture(cls, rng, image_size), defect, rng)
            images[defect].append(f"{cls}/test/{defect}/{i:03d}.png")
            masks[defect].append(f"{cls}/ground_truth/{defect}/{i:03d}_mask.png")
            _save_png(image, folder / images[defect][-1])
            _save_png(mask.astype(np.uint8) * 255, folder / masks[defect][-1])
        for defect in DEFECTS:
            for rel, mask_rel in pair_masks_by_name(images[defect], masks[defect]).items():
                rows.append(row(rel, "test", cls, defect, mask_rel))

    info = {
        "id": SPEC.id,
        "title": SPEC.title,
        "licence": SPEC.licence,
        "seed": seed,
        "image_size": image_size,
        "n_train": n_train,
        "n_test_normal": n_test_normal,
        "n_test_anomalous": n_test_anomalous,
        "builder_version": BUILDER_VERSION,
    }
    write_manifest(pd.DataFrame(rows), folder, info)


SPEC = DatasetSpec(
    id="synthetic",
    title="Synthetic textures",
    domain="synthetic",
    modality="RGB",
    licence="CC0-1.0 (generated)",
    citation="zsad-bench synthetic generator",
    homepage="",
    classes=tuple(ClassSpec(name, name) for name in CLASSES),
    has_masks=True,
    expected_counts=MappingProxyType(
        {c: (_DEFAULT_COUNTS["n_test_normal"], _DEFAULT_COUNTS["n_test_anomalous"]) for c in CLASSES}
    ),
    builder=build,
)
