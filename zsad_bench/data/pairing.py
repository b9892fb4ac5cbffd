"""Pairing mask files with image files by name -- never by sorted position.

Research scripts pair the k-th mask with the k-th image of a sorted listing; one missing or extra file
then silently shifts every later pair. Here pairs are made by file-name key, and any image without a
mask, mask without an image, or duplicate key is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from pathlib import PurePosixPath
from typing import TypeVar

from zsad_bench.errors import ZsadError

__all__ = ["pair_masks_by_name"]

P = TypeVar("P", bound=Hashable)
M = TypeVar("M", bound=Hashable)


def _stem(path: object) -> str:
    name = PurePosixPath(str(path).replace("\\", "/")).name
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def pair_masks_by_name(
    images: Iterable[P],
    masks: Iterable[M],
    *,
    mask_suffix: str = "_mask",
    missing_ok: bool = False,
) -> dict[P, M | None]:
    """Pair each image with the mask of the same name, never by sorted position.

    The key of an image is its file name without extension (``test/crack/000.png`` -> ``000``); the
    key of a mask is the same after removing ``mask_suffix`` (``ground_truth/crack/000_mask.png`` ->
    ``000``); extensions may differ (``000.JPG`` <-> ``000.png`` with ``mask_suffix=""``). Paths may
    be ``str`` or ``Path``; the returned dict maps each given image object to its mask object, in the
    order the images were given.

    Raises ``ZsadError`` naming the first (in name order) image without a mask (unless ``missing_ok``,
    which pairs it with ``None``), the first mask without an image, or two files with the same key.
    """
    by_key: dict[str, M] = {}
    for mask in masks:
        stem = _stem(mask)
        if mask_suffix and not stem.endswith(mask_suffix):
            raise ZsadError(f"mask {mask} does not end in '{mask_suffix}'; cannot pair it with an image")
        key = stem[: len(stem) - len(mask_suffix)] if mask_suffix else stem
        if key in by_key:
            raise ZsadError(f"masks {by_key[key]} and {mask} have the same name key '{key}'; keep one")
        by_key[key] = mask

    image_list = list(images)
    image_keys: dict[str, P] = {}
    for image in image_list:
        key = _stem(image)
        if key in image_keys:
            raise ZsadError(f"images {image_keys[key]} and {image} have the same name key '{key}'; keep one")
        image_keys[key] = image

    unmasked = sorted(image_keys.keys() - by_key.keys())
    if unmasked and not missing_ok:
        key = unmasked[0]
        raise ZsadError(
            f"no mask for image {image_keys[key]} (expected a file named '{key}{mask_suffix}.*' "
            f"beside the other masks)"
        )
    orphans = sorted(by_key.keys() - image_keys.keys())
    if orphans:
        key = orphans[0]
        raise ZsadError(f"mask {by_key[key]} has no image (expected a file named '{key}.*' among the images)")

    return {image: by_key.get(_stem(image)) for image in image_list}
