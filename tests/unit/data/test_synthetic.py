"""The embedded synthetic dataset: determinism, layout, exact masks, distinct textures; ensure_prepared."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsad_bench.data import ensure_prepared, is_prepared, read_manifest, validate_manifest
from zsad_bench.data.manifest import read_info
from zsad_bench.data.spec import ClassSpec, DatasetSpec
from zsad_bench.data.synthetic import (
    CLASSES,
    DEFECTS,
    SPEC,
    TEXTURE_RANGE,
    add_defect,
    build,
    sample_rng,
    texture,
)
from zsad_bench.errors import ZsadError


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_same_seed_gives_identical_bytes(small_synthetic: Path, small_params: dict, tmp_path: Path) -> None:
    build(tmp_path, **small_params)
    assert _files(tmp_path) == _files(small_synthetic)


def test_other_seed_gives_other_images(small_synthetic: Path, small_params: dict, tmp_path: Path) -> None:
    build(tmp_path, **{**small_params, "seed": small_params["seed"] + 1})
    ours, theirs = _files(tmp_path), _files(small_synthetic)
    assert ours.keys() == theirs.keys()
    pngs = [k for k in ours if k.endswith(".png")]
    assert all(ours[k] != theirs[k] for k in pngs)
    pd_ours, pd_theirs = read_manifest(tmp_path), read_manifest(small_synthetic)
    assert pd_ours.equals(pd_theirs)  # same layout, different pixels


def test_images_do_not_depend_on_how_many_are_drawn(
    small_synthetic: Path, small_params: dict, tmp_path: Path
) -> None:
    build(tmp_path, **{**small_params, "n_test_anomalous": 7, "n_train": 1})
    ours, theirs = _files(tmp_path), _files(small_synthetic)
    common = [k for k in theirs if k.endswith(".png") and k in ours]
    assert len(common) == len(CLASSES) * (1 + 3 + 4 * 2)
    assert all(ours[k] == theirs[k] for k in common)


def test_layout_and_counts(small_synthetic: Path, small_params: dict) -> None:
    manifest = validate_manifest(read_manifest(small_synthetic), small_synthetic)
    assert len(CLASSES) >= 3 and sorted(manifest["class_name"].unique()) == sorted(CLASSES)
    for cls in CLASSES:
        rows = manifest[manifest["class_name"] == cls]
        train, test = rows[rows["split"] == "train"], rows[rows["split"] == "test"]
        assert (len(train), train["label"].sum()) == (small_params["n_train"], 0)
        assert ((test["label"] == 0).sum(), (test["label"] == 1).sum()) == (3, 4)
        assert sorted(test.loc[test["label"] == 1, "defect_type"]) == ["blob", "hole", "scratch", "scratch"]
    assert (manifest["sample_id"] == manifest["image_path"]).all()
    assert manifest.loc[manifest["label"] == 0, "mask_path"].isna().all()
    anomalous = manifest[manifest["label"] == 1]
    for image, mask in zip(anomalous["image_path"], anomalous["mask_path"], strict=True):
        assert mask == image.replace("/test/", "/ground_truth/").replace(".png", "_mask.png")
    info = json.loads((small_synthetic / "dataset.json").read_text())
    assert info["id"] == "synthetic" and info["seed"] == small_params["seed"] and info["builder_version"] == 1
    assert info["counts"]["test"]["dots"] == {"normal": 3, "anomalous": 4, "masks": 4}
    assert all(_png(small_synthetic / p).shape == (48, 48, 3) for p in manifest["image_path"])


def test_masks_are_exactly_the_changed_pixels(small_synthetic: Path, small_params: dict) -> None:
    manifest = read_manifest(small_synthetic)
    for row in manifest[manifest["label"] == 1].itertuples():
        index = int(Path(row.image_path).stem)
        clean = texture(
            row.class_name,
            sample_rng(small_params["seed"], row.class_name, "test", row.defect_type, index),
            48,
        )
        image = _png(small_synthetic / row.image_path)
        mask = _png(small_synthetic / row.mask_path)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        changed = (image != clean).any(axis=-1)
        np.testing.assert_array_equal(changed, mask == 255)
        # Clearly visible: every channel of every defect pixel moved by at least 20 grey levels.
        delta = np.abs(image.astype(int) - clean.astype(int))[mask == 255]
        assert delta.min() >= 20
    for row in manifest[manifest["label"] == 0].itertuples():
        image = _png(small_synthetic / row.image_path)
        assert image.min() >= TEXTURE_RANGE[0] and image.max() <= TEXTURE_RANGE[1]


def test_defect_types_look_different() -> None:
    rng = np.random.default_rng(0)
    sizes = {d: [] for d in DEFECTS}
    for _ in range(10):
        base = texture("checker", rng, 96)
        for defect in DEFECTS:
            image, mask = add_defect(base, defect, rng)
            sizes[defect].append(mask.sum())
            if defect == "hole":
                assert image[mask].max() <= 14
            if defect == "scratch":
                assert image[mask].min() >= 236
    assert np.mean(sizes["scratch"]) < np.mean(sizes["blob"])
    assert min(min(s) for s in sizes.values()) > 0


def _features(image: np.ndarray) -> np.ndarray:
    """Mean colour, contrast and the share of spectral energy along x vs y: (8,)."""
    grey = image.astype(float).mean(axis=-1)
    spectrum = np.abs(np.fft.fft2(grey - grey.mean()))
    along_x, along_y = spectrum[0, 1:].sum(), spectrum[1:, 0].sum()
    return np.concatenate([image.reshape(-1, 3).mean(0), image.reshape(-1, 3).std(0), [along_x, along_y]])


def test_textures_of_different_classes_differ() -> None:
    features = {
        cls: np.stack([_features(texture(cls, sample_rng(9, cls, "test", "good", i), 96)) for i in range(6)])
        for cls in CLASSES
    }
    means = {cls: f[:, :3].mean(0) for cls, f in features.items()}
    for a, b in itertools.combinations(CLASSES, 2):
        assert np.linalg.norm(means[a] - means[b]) > 20, (a, b)
    # Nearest class centroid on standardised features recognises every image's class.
    stacked = np.concatenate(list(features.values()))
    mu, sigma = stacked.mean(0), stacked.std(0) + 1e-9
    centroids = {cls: ((f - mu) / sigma).mean(0) for cls, f in features.items()}
    for cls, f in features.items():
        for row in (f - mu) / sigma:
            assert min(centroids, key=lambda c: np.linalg.norm(row - centroids[c])) == cls
    # Within a class, images vary.
    assert all(np.ptp(f[:, 0]) > 0 for f in features.values())


def test_default_build_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    build(tmp_path)
    assert time.perf_counter() - start < 3.0
    manifest = read_manifest(tmp_path)
    assert len(manifest) == len(CLASSES) * (4 + 6 + 10)
    assert dict(SPEC.expected_counts) == {c: (6, 10) for c in CLASSES}


def test_spec() -> None:
    assert SPEC.id == "synthetic" and SPEC.has_masks and SPEC.builder is build
    assert [c.prompt_name for c in SPEC.classes] == list(CLASSES)


# -- ensure_prepared -----------------------------------------------------------------------------------


def test_ensure_prepared_builds_once(tmp_path: Path) -> None:
    folder = ensure_prepared(SPEC, tmp_path)
    assert folder == tmp_path / "synthetic" and is_prepared(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]  # no temporary folder left behind
    stamps = {p: p.stat().st_mtime_ns for p in (folder / "dataset.json", folder / "manifest.parquet")}

    def no_rebuild(folder: Path) -> None:
        raise AssertionError("rebuilt a prepared dataset")

    assert ensure_prepared(dataclasses.replace(SPEC, builder=no_rebuild), tmp_path) == folder
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_ensure_prepared_uses_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSAD_DATA", str(tmp_path / "root"))
    assert ensure_prepared(SPEC) == tmp_path / "root" / "synthetic"


def test_interrupted_build_never_looks_prepared(tmp_path: Path) -> None:
    def half_build(folder: Path) -> None:
        (folder / "stripes").mkdir()
        (folder / "manifest.parquet").write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_prepared(dataclasses.replace(SPEC, builder=half_build), tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert is_prepared(ensure_prepared(SPEC, tmp_path))


def test_ensure_prepared_without_builder_says_what_to_run(tmp_path: Path) -> None:
    spec = DatasetSpec(
        id="mvtec-ad",
        title="MVTec AD",
        domain="industrial",
        modality="RGB",
        licence="CC BY-NC-SA 4.0",
        citation="",
        homepage="",
        classes=(ClassSpec("bottle", "bottle"),),
        has_masks=True,
    )
    with pytest.raises(ZsadError) as info:
        ensure_prepared(spec, tmp_path)
    assert str(info.value) == (
        f"dataset 'mvtec-ad' is not prepared under {tmp_path / 'mvtec-ad'}; run 'zsad datasets download "
        f"mvtec-ad' or 'zsad datasets prepare mvtec-ad --from PATH'"
    )


def test_ensure_prepared_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "notes.txt").write_text("mine")
    with pytest.raises(ZsadError, match="exists but holds no prepared dataset"):
        ensure_prepared(SPEC, tmp_path)
    assert (tmp_path / "synthetic" / "notes.txt").read_text() == "mine"


def test_ensure_prepared_fills_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "synthetic").mkdir()
    assert is_prepared(ensure_prepared(SPEC, tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_ensure_prepared_keeps_a_concurrent_build(tmp_path: Path) -> None:
    def racing_build(folder: Path) -> None:
        build(folder, n_train=1)
        build(tmp_path / "synthetic", seed=5)  # another process finishes first

    folder = ensure_prepared(dataclasses.replace(SPEC, builder=racing_build), tmp_path)
    assert read_info(folder)["seed"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_built_files_are_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = ensure_prepared(SPEC, tmp_path)
    finally:
        os.umask(old)
    for path in (folder, folder / "manifest.parquet", folder / "dataset.json"):
        assert path.stat().st_mode & 0o044 == 0o044, path


def test_importing_the_data_package_does_not_import_torch() -> None:
    code = (
        "import sys, zsad_bench.data, zsad_bench.data.synthetic;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
