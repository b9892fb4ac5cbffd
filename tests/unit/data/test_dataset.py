"""AnomalyDataset: items, ordering, filtering, masks, errors and DataLoader workers."""

from __future__ import annotations

import pickle
import shutil
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from zsad_bench.data import AnomalyDataset, read_manifest, squash_transform, write_manifest
from zsad_bench.errors import ZsadError


def _dataset(folder: Path, **kwargs) -> AnomalyDataset:
    options = {"transform": squash_transform(32), "mask_size": 48, **kwargs}
    return AnomalyDataset(folder, read_manifest(folder), **options)


def test_item_keys_types_and_shapes(small_synthetic: Path) -> None:
    ds = _dataset(small_synthetic, mask_size=24)
    assert len(ds) == 4 * (3 + 4)
    for i in (0, len(ds) - 1):
        item = ds[i]
        assert set(item) == {"image", "mask", "label", "class_name", "prompt_name", "sample_id", "has_mask"}
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (24, 24) and item["mask"].dtype == torch.bool
        assert isinstance(item["label"], int) and item["has_mask"] is True
        assert isinstance(item["sample_id"], str) and item["prompt_name"] == item["class_name"]


def test_masks_follow_labels_at_native_size(small_synthetic: Path) -> None:
    ds = _dataset(small_synthetic)
    for i, row in enumerate(ds.manifest.itertuples()):
        item = ds[i]
        assert item["sample_id"] == row.sample_id and item["label"] == row.label
        if row.label == 0:
            assert not item["mask"].any()
        else:  # at the file's own size the resize is the identity
            expected = np.asarray(Image.open(small_synthetic / row.mask_path)) > 0
            assert torch.equal(item["mask"], torch.from_numpy(expected))


def test_order_is_grouped_by_class_then_sample_id(small_synthetic: Path) -> None:
    ds = _dataset(small_synthetic)
    names = ds.manifest["class_name"].tolist()
    assert ds.classes == sorted(set(names)) == ["checker", "dots", "stripes", "weave"]
    for cls, indices in ds.class_indices.items():
        assert indices == list(range(indices[0], indices[-1] + 1))  # contiguous
        ids = [ds.manifest["sample_id"][i] for i in indices]
        assert ids == sorted(ids) and {names[i] for i in indices} == {cls}
    assert ds.labels == ds.manifest["label"].tolist()


def test_order_ignores_manifest_row_order(small_synthetic: Path) -> None:
    manifest = read_manifest(small_synthetic)
    shuffled = manifest.sample(frac=1.0, random_state=1)
    a = AnomalyDataset(small_synthetic, manifest, transform=squash_transform(8), mask_size=8)
    b = AnomalyDataset(small_synthetic, shuffled, transform=squash_transform(8), mask_size=8)
    pd.testing.assert_frame_equal(a.manifest, b.manifest)


def test_split_and_class_filters(small_synthetic: Path) -> None:
    train = _dataset(small_synthetic, split="train")
    assert len(train) == 8 and set(train.labels) == {0} and train.has_masks
    some = _dataset(small_synthetic, classes=["weave", "dots"])
    assert some.classes == ["dots", "weave"] and len(some) == 14
    with pytest.raises(ZsadError, match=r"class 'dot' is not in the dataset .* did you mean dots"):
        _dataset(small_synthetic, classes=["dot"])
    with pytest.raises(ZsadError, match="unknown split 'val'"):
        _dataset(small_synthetic, split="val")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_classification_only_rows_have_no_mask(small_synthetic: Path, tmp_path: Path) -> None:
    folder = _copy(small_synthetic, tmp_path / "copy")
    manifest = read_manifest(folder)
    manifest["mask_path"] = None
    write_manifest(manifest, folder, {"id": "no-masks"})
    ds = _dataset(folder)
    assert not ds.has_masks
    anomalous = ds.labels.index(1)
    item = ds[anomalous]
    assert item["label"] == 1 and item["has_mask"] is False and not item["mask"].any()
    assert ds[ds.labels.index(0)]["has_mask"] is True


def test_corrupt_image_names_the_file(small_synthetic: Path, tmp_path: Path) -> None:
    folder = _copy(small_synthetic, tmp_path / "copy")
    ds = _dataset(folder)
    victim = ds.manifest["image_path"][5]
    path = folder / victim
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ZsadError, match=f"cannot decode image .*{victim}"):
        ds[5]
    ds[4]  # the others still load


def test_pickles(small_synthetic: Path) -> None:
    ds = _dataset(small_synthetic)
    clone = pickle.loads(ForkingPickler.dumps(ds))
    assert len(clone) == len(ds) and clone.classes == ds.classes
    a, b = ds[3], clone[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])


def test_carries_its_spec_into_workers(small_synthetic: Path) -> None:
    from zsad_bench.data.catalog.mvtec_ad import SPEC as MVTEC
    from zsad_bench.data.synthetic import SPEC

    assert _dataset(small_synthetic).spec is None
    ds = _dataset(small_synthetic, spec=SPEC)
    assert ds.spec is SPEC
    clone = pickle.loads(ForkingPickler.dumps(ds))  # what a spawn worker receives
    assert clone.spec == SPEC and clone.spec.builder is SPEC.builder
    assert dict(clone.spec.expected_counts) == dict(SPEC.expected_counts)
    with pytest.raises(TypeError):  # the spec's mappings stay read-only after the round trip
        clone.spec.expected_counts["stripes"] = (0, 0)  # type: ignore[index]
    assert pickle.loads(pickle.dumps(MVTEC)).converter is MVTEC.converter


def test_dataloader_workers(small_synthetic: Path) -> None:
    # Fork workers here; spawn/forkserver workers (macOS, Windows, Python >= 3.14) receive the dataset
    # through ForkingPickler, which test_pickles covers without paying for a fresh interpreter.
    ds = _dataset(small_synthetic, mask_size=16)
    loader = DataLoader(ds, batch_size=5, num_workers=2)
    ids, labels = [], []
    for batch in loader:
        assert batch["image"].shape[1:] == (3, 32, 32) and batch["mask"].shape[1:] == (16, 16)
        assert batch["mask"].dtype == torch.bool and batch["has_mask"].dtype == torch.bool
        ids += batch["sample_id"]
        labels += batch["label"].tolist()
    assert ids == ds.manifest["sample_id"].tolist() and labels == ds.labels
