"""``zsad datasets verify``: every image decodes, every mask exists, decodes, pairs and fits, counts match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from zsad_bench.data.manifest import read_manifest
from zsad_bench.data.prepare import compare_counts, test_counts
from zsad_bench.data.spec import DatasetSpec

__all__ = ["verify_dataset"]


def verify_dataset(spec: DatasetSpec, folder: Path, *, progress: bool = True) -> list[str]:
    """One line per problem found in the prepared dataset ``folder`` (empty: all is well)."""
    table = read_manifest(folder)
    problems = [f"count: {line}" for line in compare_counts(spec, test_counts(table))]
    rows = table.itertuples(index=False)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(table), desc=f"verify {spec.id}", unit="img")
    for row in rows:
        problems += list(_check_row(folder, row.image_path, row.mask_path, int(row.label)))
    if spec.has_masks and not table.loc[table.label == 1, "mask_path"].notna().any():
        problems.append(f"no anomalous image has a mask, but {spec.id} ships masks")
    return problems


def _check_row(folder: Path, image_path: str, mask_path: str | None, label: int) -> Iterator[str]:
    from PIL import Image, UnidentifiedImageError

    size = None
    try:
        with Image.open(folder / image_path) as image:
            image.load()
            size = image.size
    except (OSError, UnidentifiedImageError) as exc:
        yield f"image {image_path} does not decode ({exc})"
    if mask_path is None:
        return
    image_stem, mask_stem = PurePosixPath(image_path).stem, PurePosixPath(mask_path).stem
    if mask_stem != image_stem and not mask_stem.startswith(image_stem + "_"):
        yield f"mask {mask_path} is not named after its image {image_path}"
    try:
        with Image.open(folder / mask_path) as mask:
            mask.load()
            if size is not None and mask.size != size:
                yield f"mask {mask_path} is {mask.size[0]}x{mask.size[1]}, its image {size[0]}x{size[1]}"
            if label == 1 and mask.getbbox() is None:
                yield f"mask {mask_path} of an anomalous image is empty"
    except (OSError, UnidentifiedImageError) as exc:
        yield f"mask {mask_path} does not decode ({exc})"
