"""Image and mask preprocessing as AnomalyCLIP does it (``utils.py:14-24``, ``train.py:65-66``).

Images: squash-resize to ``(S, S)`` with PIL bicubic (the aspect ratio is not kept; no shortest-side
resize, no crop), ``[0, 1]`` float, OpenAI CLIP mean/std. Masks: 8-bit grey, any non-zero value is
defect (VisA masks hold class ids), PIL bilinear resize to ``(S, S)``, then ``> 0.5`` on ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from zsad_bench.errors import ZsadError

__all__ = ["OPENAI_MEAN", "OPENAI_STD", "SquashTransform", "load_mask", "open_image", "squash_transform"]

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file; ``ZsadError`` naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside a transform
            return image
    except FileNotFoundError:
        raise ZsadError(
            f"image file {path} is missing; re-run 'zsad datasets prepare' for its dataset"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ZsadError(
            f"cannot decode image {path} ({reason}); replace the file or re-prepare the dataset"
        ) from exc


class SquashTransform:
    """PIL image -> ``(3, S, S)`` float32 tensor: RGB, bicubic squash resize, ``[0, 1]``, normalise.

    Equal to torchvision ``Compose([Resize((S, S), BICUBIC), ToTensor(), Normalize(mean, std)])`` on a
    PIL RGB image. A plain class, so DataLoader workers can pickle it.
    """

    def __init__(
        self, size: int, mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD
    ) -> None:
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std need one value per RGB channel")
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        # AnomalyCLIP: Resize((518, 518), BICUBIC) squashes the image; PIL antialiases when shrinking.
        image = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)  # (S, S, 3)
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div(255)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return tensor.sub_(mean).div_(std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, mean={self.mean}, std={self.std})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SquashTransform):
            return NotImplemented
        return (self.size, self.mean, self.std) == (other.size, other.mean, other.std)

    def __hash__(self) -> int:
        return hash((self.size, self.mean, self.std))


def squash_transform(
    size: int, mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD
) -> SquashTransform:
    """The AnomalyCLIP image transform at input size ``size``: PIL image -> ``(3, size, size)`` float32."""
    return SquashTransform(size, mean, std)


def load_mask(path: str | Path | None, size: int) -> torch.Tensor:
    """Ground-truth mask as a ``(size, size)`` bool tensor; ``None`` (no mask) gives all ``False``.

    The file is read as 8-bit grey and every non-zero value becomes 255 (VisA stores class ids, MVTec
    255). Then, as AnomalyCLIP does: PIL bilinear resize to ``(size, size)`` and ``> 0.5`` after
    ``ToTensor`` -- on 8-bit values, ``> 127.5``.
    """
    if path is None:
        return torch.zeros((size, size), dtype=torch.bool)
    grey = np.asarray(open_image(path).convert("L"))
    binary = Image.fromarray(np.where(grey > 0, 255, 0).astype(np.uint8))  # 2-D uint8 -> mode "L"
    resized = np.asarray(binary.resize((size, size), Image.Resampling.BILINEAR))
    return torch.from_numpy(resized > 127)
