"""APRIL-GAN's mosaic augmentation: the 2 x 2 layout on hand-made images, the dataset on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zsad_bench.data import AnomalyDataset, data_root, ensure_prepared, read_manifest
from zsad_bench.data.transforms import load_mask, squash_transform
from zsad_bench.ops.augment import MosaicDataset, tile_2x2


# -- layout -------------------------------------------------------------------------------------------
def _flat(colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_tile_2x2_puts_the_quarters_in_reading_order():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [_flat(c, (3, 2)) for c in colours]  # w = 3, h = 2
    masks = [Image.new("L", (3, 2), 255 if q in (1, 2) else 0) for q in range(4)]
    canvas, mask = tile_2x2(images, masks)
    assert canvas.size == mask.size == (6, 4)
    pixels, grey = np.asarray(canvas), np.asarray(mask)
    # quarter q covers rows (q // 2) * h .. + h and columns (q % 2) * w .. + w
    for q, colour in enumerate(colours):
        y, x = (q // 2) * 2, (q % 2) * 3
        assert (pixels[y : y + 2, x : x + 3] == colour).all()
        assert (grey[y : y + 2, x : x + 3] == (255 if q in (1, 2) else 0)).all()


def test_tile_2x2_resizes_to_the_first_image_and_keeps_masks_binary():
    images = [
        _flat((10, 20, 30), (4, 4)),
        _flat((200, 0, 0), (8, 6)),
        _flat((0, 0, 0), (4, 4)),
        _flat((0, 0, 0), (2, 2)),
    ]
    big_mask = Image.fromarray(np.tile(np.array([[0, 255]], dtype=np.uint8), (6, 4)))  # 8 x 6 stripes
    masks = [Image.new("L", (4, 4), 0), big_mask, Image.new("L", (4, 4), 0), Image.new("L", (2, 2), 255)]
    canvas, mask = tile_2x2(images, masks)
    assert canvas.size == mask.size == (8, 8)
    assert (np.asarray(canvas)[0:4, 4:8] == (200, 0, 0)).all()  # the 8 x 6 image squashed into 4 x 4
    grey = np.asarray(mask)
    assert set(np.unique(grey)) <= {0, 255}  # nearest neighbours: no grey from interpolation
    assert (grey[4:8, 4:8] == 255).all() and (grey[4:8, 0:4] == 0).all()


def test_tile_2x2_needs_four_of_each():
    with pytest.raises(ValueError, match="4 images and 4 masks"):
        tile_2x2([_flat((0, 0, 0), (2, 2))] * 3, [Image.new("L", (2, 2))] * 3)


# -- the dataset --------------------------------------------------------------------------------------
def _synthetic(size: int, classes: list[str]) -> AnomalyDataset:
    from zsad_bench.data.synthetic import SPEC

    folder = ensure_prepared(SPEC, data_root())
    return AnomalyDataset(folder, read_manifest(folder), transform=squash_transform(size), mask_size=size,
                          classes=classes)  # fmt: skip


def test_mosaic_stitches_four_images_and_their_masks_of_the_same_class():
    # Synthetic images are 96 px: at 192 px the mosaic is not resized, so quarters compare exactly.
    data = _synthetic(192, ["dots", "weave"])
    mosaic = MosaicDataset(data, prob=1.0)
    assert mosaic.augmented and len(mosaic) == len(data) and mosaic.classes == data.classes
    indices = (0, 5, len(data) - 1)
    torch.manual_seed(3)
    items = [mosaic[i] for i in indices]
    torch.manual_seed(3)
    assert all(torch.equal(a["image"], mosaic[i]["image"]) for a, i in zip(items, indices, strict=True))
    rows = data.manifest
    for item in items:
        sources = item["mosaic_of"].tolist()
        assert all(rows.class_name[s] == item["class_name"] for s in sources)
        assert item["label"] == int(any(rows.label[s] == 1 for s in sources))
        for q, s in enumerate(sources):
            y, x = (q // 2) * 96, (q % 2) * 96
            image = Image.open(data.folder / rows.image_path[s]).convert("RGB")
            mask_path = rows.mask_path[s]
            mask = load_mask(data.folder / mask_path if isinstance(mask_path, str) else None, 96)
            assert torch.equal(item["image"][:, y : y + 96, x : x + 96], squash_transform(96)(image))
            assert torch.equal(item["mask"][y : y + 96, x : x + 96], mask)


def test_mosaic_draws_are_seeded_and_sometimes_skipped():
    data = _synthetic(64, ["dots"])
    mosaic = MosaicDataset(data, prob=0.5)

    def draw(seed: int) -> list[list[int]]:
        torch.manual_seed(seed)
        return [mosaic[i]["mosaic_of"].tolist() for i in range(len(data))]

    first = draw(0)
    assert first == draw(0) and first != draw(1)
    plain = [i for i, sources in enumerate(first) if sources == [-1] * 4]
    assert 0 < len(plain) < len(data)
    torch.manual_seed(0)
    item = [mosaic[i] for i in range(plain[0] + 1)][-1]  # the same draws as in ``first``
    assert torch.equal(item["image"], data[plain[0]]["image"]) and item["label"] == data[plain[0]]["label"]
