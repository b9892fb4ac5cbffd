"""Image squash transform and mask loading against AnomalyCLIP's torchvision pipeline and hand cases."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from zsad_bench.data.transforms import OPENAI_MEAN, OPENAI_STD, load_mask, open_image, squash_transform
from zsad_bench.errors import ZsadError


def _noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array)


def _reference(size: int) -> T.Compose:
    # AnomalyCLIP utils.py: Resize((S, S), BICUBIC), CenterCrop(S) (a no-op), RGB, ToTensor, Normalize.
    return T.Compose(
        [
            T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(OPENAI_MEAN, OPENAI_STD),
        ]
    )


@pytest.mark.parametrize(
    ("width", "height", "size"), [(50, 30, 24), (17, 64, 32), (40, 40, 40), (20, 10, 56)]
)
def test_squash_matches_reference_pipeline(width: int, height: int, size: int) -> None:
    image = _noise_image(width, height)
    out = squash_transform(size)(image)
    assert out.shape == (3, size, size) and out.dtype == torch.float32
    torch.testing.assert_close(out, _reference(size)(image), rtol=0, atol=0)


def test_squash_keeps_the_whole_image() -> None:
    # A tall image whose top sixth is red: a shortest-side resize + centre crop would cut the red off.
    array = np.full((60, 20, 3), 255, dtype=np.uint8)
    array[:10] = (255, 0, 0)
    out = squash_transform(30, mean=(0, 0, 0), std=(1, 1, 1))(Image.fromarray(array))
    assert torch.allclose(out[:, 0, :], torch.tensor([1.0, 0.0, 0.0]).view(3, 1).expand(3, 30))
    assert torch.allclose(out[:, -1, :], torch.ones(3, 30))


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_squash_converts_to_rgb(mode: str) -> None:
    image = _noise_image(33, 21, mode=mode)
    out = squash_transform(16)(image)
    assert out.shape == (3, 16, 16)
    torch.testing.assert_close(out, squash_transform(16)(image.convert("RGB")), rtol=0, atol=0)


def test_squash_transform_pickles() -> None:
    transform = squash_transform(20)
    clone = pickle.loads(pickle.dumps(transform))
    assert clone == transform and "size=20" in repr(clone)
    image = _noise_image(25, 31)
    assert torch.equal(clone(image), transform(image))


def _save(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_load_mask_none_is_all_false() -> None:
    mask = load_mask(None, 12)
    assert mask.shape == (12, 12) and mask.dtype == torch.bool and not mask.any()


def test_load_mask_binarises_class_ids(tmp_path: Path) -> None:
    # VisA masks store class ids (1, 2, 3 ...) rather than 255.
    array = np.zeros((8, 8), dtype=np.uint8)
    array[2:5, 1:4] = 3
    array[6, 6] = 1
    mask = load_mask(_save(array, tmp_path / "m.png"), 8)
    assert torch.equal(mask, torch.from_numpy(array > 0))


def test_load_mask_bilinear_then_threshold_by_hand(tmp_path: Path) -> None:
    # 2x2 -> 4x4 bilinear (pixel centres, edges clamped): output centres fall at source coordinates
    # -0.25, 0.25, 0.75, 1.25, so the weights of the single 255 pixel are 1, 0.75, 0.25, 0 per axis:
    # [[255, 191, 64, 0], [191, 143, 48, 0], [64, 48, 16, 0], [0, 0, 0, 0]]; > 127.5 keeps the 2x2 corner.
    array = np.array([[255, 0], [0, 0]], dtype=np.uint8)
    mask = load_mask(_save(array, tmp_path / "m.png"), 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("size", [7, 20, 33, 64])
def test_load_mask_matches_reference_pipeline(tmp_path: Path, size: int) -> None:
    rng = np.random.default_rng(size)
    yy, xx = np.mgrid[0:45, 0:37]
    array = ((yy - 20) ** 2 / 90 + (xx - 15) ** 2 / 40 < 1).astype(np.uint8) * 255
    array[rng.random(array.shape) < 0.05] = 255
    path = _save(array, tmp_path / "m.png")
    # AnomalyCLIP: Resize((S, S)) (bilinear) on the 0/255 'L' image, ToTensor, then > 0.5.
    pil = Image.open(path).convert("L")
    reference = T.ToTensor()(T.Resize((size, size))(pil))[0] > 0.5
    assert torch.equal(load_mask(path, size), reference)


def test_open_image_errors_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(ZsadError, match=r"cannot decode image .*garbage.png"):
        open_image(garbage)
    good = _save(np.zeros((64, 64, 3), dtype=np.uint8) + 7, tmp_path / "good.png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ZsadError, match=r"cannot decode image .*truncated.png"):
        open_image(truncated)
    with pytest.raises(ZsadError, match=r"image file .*absent.png is missing"):
        open_image(tmp_path / "absent.png")
    with pytest.raises(ZsadError, match=r"garbage.png"):
        load_mask(garbage, 8)
    assert open_image(good).size == (64, 64)
