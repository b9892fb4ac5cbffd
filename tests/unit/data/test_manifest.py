"""Manifest validation, atomic writing, reading, the data root and pairing masks by name."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pandas as pd
import pytest

from zsad_bench import atomic
from zsad_bench.data import manifest as mf
from zsad_bench.data.manifest import (
    MANIFEST_COLUMNS,
    data_root,
    is_prepared,
    manifest_sha256,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from zsad_bench.data.pairing import pair_masks_by_name
from zsad_bench.errors import ZsadError


def _row(sample_id: str, split: str = "test", cls: str = "bottle", defect: str = "good", mask=None) -> dict:
    return {
        "sample_id": sample_id,
        "split": split,
        "class_name": cls,
        "prompt_name": cls.replace("_", " "),
        "defect_type": defect,
        "label": int(defect != "good"),
        "image_path": sample_id,
        "mask_path": mask,
    }


def _manifest() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("metal_nut/test/good/000.png", cls="metal_nut"),
            _row(
                "bottle/test/broken/000.png", defect="broken", mask="bottle/ground_truth/broken/000_mask.png"
            ),
            _row("bottle/train/good/000.png", split="train"),
            _row("bottle/test/good/000.png"),
        ]
    )


def _touch_files(folder: Path, df: pd.DataFrame) -> None:
    for rel in [*df["image_path"], *df["mask_path"].dropna()]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"x")


# -- validation ----------------------------------------------------------------------------------


def test_validate_normalises_order_and_dtypes() -> None:
    out = validate_manifest(_manifest())
    assert tuple(out.columns) == MANIFEST_COLUMNS
    assert list(out["sample_id"]) == [
        "bottle/test/broken/000.png",
        "bottle/test/good/000.png",
        "metal_nut/test/good/000.png",
        "bottle/train/good/000.png",
    ]
    assert out["label"].dtype == "int64"
    assert out["sample_id"].dtype == object
    assert out["mask_path"].tolist()[1:] == [None, None, None]
    assert isinstance(out.index, pd.RangeIndex)


def test_validate_accepts_nan_masks_and_bool_labels() -> None:
    df = _manifest()
    df["mask_path"] = df["mask_path"].astype("string")  # pd.NA for the missing masks
    df["label"] = df["label"].astype(bool)
    out = validate_manifest(df)
    assert out["mask_path"].isna().sum() == 3 and out["label"].dtype == "int64"


def _break(column: str, value, row: int = 1) -> pd.DataFrame:
    df = _manifest()
    df[column] = df[column].astype(object)
    df.at[row, column] = value
    return df


@pytest.mark.parametrize(
    ("df", "needle"),
    [
        (_manifest().drop(columns=["mask_path"]), "missing column(s) mask_path"),
        (_manifest().assign(width=1), "unknown column(s) width"),
        (_manifest().iloc[:0], "no rows"),
        (
            _break("sample_id", "bottle/test/good/000.png"),
            "'bottle/test/good/000.png': sample_id is not unique",
        ),
        (_break("split", "val"), "'bottle/test/broken/000.png': split is 'val'"),
        (_break("defect_type", "good"), "'bottle/test/broken/000.png': label 1 with defect_type 'good'"),
        (_break("defect_type", "scratch", row=0), "'metal_nut/test/good/000.png': label 0 with defect_type"),
        (_break("mask_path", "m.png", row=0), "'metal_nut/test/good/000.png': normal image has mask_path"),
        (_break("class_name", ""), "column 'class_name' must hold non-empty strings"),
        (_break("image_path", "/abs/000.png"), "image_path '/abs/000.png' is not a relative"),
        (_break("mask_path", "../x_mask.png"), "mask_path '../x_mask.png' is not a relative"),
        (_break("prompt_name", "a bottle"), "class 'bottle' has two prompt names"),
        (_manifest().assign(label=[0.0, 1.0, 0.0, 0.0]), "column 'label' must hold integers"),
        (_manifest().assign(label=[0, 2, 0, 0]), "'bottle/test/broken/000.png': label is 2"),
    ],
)
def test_validate_errors_name_the_problem(df: pd.DataFrame, needle: str) -> None:
    with pytest.raises(ZsadError) as info:
        validate_manifest(df)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_validate_with_folder_names_missing_file(tmp_path: Path) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)
    validate_manifest(df, tmp_path)
    (tmp_path / "bottle/ground_truth/broken/000_mask.png").unlink()
    with pytest.raises(
        ZsadError, match=r"mask_path file .*bottle/ground_truth/broken/000_mask.png does not exist"
    ):
        validate_manifest(df, tmp_path)


# -- writing and reading ---------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)
    write_manifest(df, tmp_path, {"id": "toy", "converter_version": 2})
    assert is_prepared(tmp_path)
    back = read_manifest(tmp_path)
    pd.testing.assert_frame_equal(back, validate_manifest(df))
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["id"] == "toy" and info["converter_version"] == 2 and info["n_samples"] == 4
    assert info["counts"]["test"]["bottle"] == {"normal": 1, "anomalous": 1, "masks": 1}
    assert info["counts"]["train"]["bottle"] == {"normal": 1, "anomalous": 0, "masks": 0}
    assert info["manifest_sha256"] == manifest_sha256(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bottle",
        "dataset.json",
        "manifest.parquet",
        "metal_nut",
    ]


def test_round_trip_without_any_mask(tmp_path: Path) -> None:
    df = _manifest()
    df["mask_path"] = None  # a classification-only dataset: anomalous rows without masks
    _touch_files(tmp_path, df)
    write_manifest(df, tmp_path, {"id": "toy"})
    back = read_manifest(tmp_path)
    assert back["mask_path"].isna().all() and back["label"].sum() == 1


def test_write_is_deterministic(tmp_path: Path) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)
    write_manifest(df, tmp_path, {"id": "toy"})
    first = manifest_sha256(tmp_path)
    write_manifest(df.sample(frac=1, random_state=0), tmp_path, {"id": "toy"})
    assert manifest_sha256(tmp_path) == first


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]  # atomic_file's are hidden


def test_failed_write_leaves_nothing_in_a_fresh_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_manifest(df, tmp_path, {"id": "toy"})
    assert not is_prepared(tmp_path)
    assert not (tmp_path / "manifest.parquet").exists() and _no_temp_files(tmp_path)


@pytest.mark.parametrize("fail_on", ["manifest.parquet", "dataset.json"])
def test_interrupted_replace_never_leaves_a_mismatched_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on: str
) -> None:
    old = _manifest()
    _touch_files(tmp_path, old)
    write_manifest(old, tmp_path, {"id": "toy"})
    new = old[old["split"] == "test"]
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == fail_on:
            raise OSError("interrupted")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="interrupted"):
        write_manifest(new, tmp_path, {"id": "toy"})
    monkeypatch.undo()
    # Either state is whole: no dataset.json means "not prepared"; the manifest is a complete file.
    assert not is_prepared(tmp_path) and _no_temp_files(tmp_path)
    assert len(pd.read_parquet(tmp_path / "manifest.parquet")) == (4 if fail_on == "manifest.parquet" else 3)
    write_manifest(new, tmp_path, {"id": "toy"})
    assert len(read_manifest(tmp_path)) == 3


def test_failed_serialisation_keeps_the_old_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)
    write_manifest(df, tmp_path, {"id": "toy"})
    sha = manifest_sha256(tmp_path)

    def explode(frame: pd.DataFrame) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(mf, "_parquet_bytes", explode)
    with pytest.raises(RuntimeError):
        write_manifest(df.iloc[:2], tmp_path, {"id": "toy"})
    assert is_prepared(tmp_path) and manifest_sha256(tmp_path) == sha and _no_temp_files(tmp_path)


def test_read_unprepared_folder_tells_what_to_run(tmp_path: Path) -> None:
    folder = tmp_path / "mvtec-ad"
    folder.mkdir()
    with pytest.raises(ZsadError) as info:
        read_manifest(folder)
    message = str(info.value)
    assert "zsad datasets prepare mvtec-ad --from PATH" in message
    assert "zsad datasets download mvtec-ad" in message


def test_read_detects_edited_and_corrupt_manifests(tmp_path: Path) -> None:
    df = _manifest()
    _touch_files(tmp_path, df)
    write_manifest(df, tmp_path, {"id": "toy"})
    data = (tmp_path / "manifest.parquet").read_bytes()
    (tmp_path / "manifest.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZsadError, match="does not match the sha256"):
        read_manifest(tmp_path)
    info = json.loads((tmp_path / "dataset.json").read_text())
    del info["manifest_sha256"]
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ZsadError, match=r"manifest.parquet is corrupt .*zsad datasets download"):
        read_manifest(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(ZsadError, match=r"dataset.json is corrupt"):
        read_manifest(tmp_path)


def test_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZSAD_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "d"
    monkeypatch.delenv("ZSAD_DATA")
    assert data_root() == tmp_path / "cache" / "zsad-bench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "zsad-bench" / "data"


# -- pairing masks by name ----------------------------------------------------------------------------


def test_pairing_is_by_name_not_by_position() -> None:
    # Sorted position would pair 10.png with 2_mask.png ("10" < "2" as strings, not as listed here).
    images = ["test/crack/2.png", "test/crack/10.png", "test/crack/1.png"]
    masks = ["gt/crack/10_mask.png", "gt/crack/1_mask.png", "gt/crack/2_mask.png"]
    for seed in range(5):
        random.Random(seed).shuffle(masks)
        pairs = pair_masks_by_name(images, masks)
        assert list(pairs) == images
        assert {Path(i).stem: Path(m).stem for i, m in pairs.items()} == {
            "2": "2_mask",
            "10": "10_mask",
            "1": "1_mask",
        }


def test_pairing_with_paths_other_suffix_and_extensions() -> None:
    images = [Path("Images/Anomaly/000.JPG"), Path("Images/Anomaly/001.JPG")]
    masks = [Path("Masks/Anomaly/001.png"), Path("Masks/Anomaly/000.png")]
    assert pair_masks_by_name(images, masks, mask_suffix="") == {images[0]: masks[1], images[1]: masks[0]}
    label = pair_masks_by_name(["Test/0007.PNG"], ["Test/Label/0007_label.PNG"], mask_suffix="_label")
    assert label == {"Test/0007.PNG": "Test/Label/0007_label.PNG"}


def test_missing_mask_names_the_image() -> None:
    with pytest.raises(
        ZsadError, match=r"no mask for image test/crack/001.png \(expected a file named '001_mask"
    ):
        pair_masks_by_name(["test/crack/001.png", "test/crack/000.png"], ["gt/crack/000_mask.png"])
    pairs = pair_masks_by_name(["a/001.png", "a/000.png"], ["m/000_mask.png"], missing_ok=True)
    assert pairs == {"a/001.png": None, "a/000.png": "m/000_mask.png"}


def test_extra_mask_names_the_mask() -> None:
    with pytest.raises(ZsadError, match=r"mask gt/crack/007_mask.png has no image"):
        pair_masks_by_name(["test/crack/000.png"], ["gt/crack/007_mask.png", "gt/crack/000_mask.png"])


@pytest.mark.parametrize(
    ("images", "masks", "needle"),
    [
        (["a/000.png", "b/000.jpg"], ["m/000_mask.png"], "same name key '000'"),
        (["a/000.png"], ["m/000_mask.png", "n/000_mask.bmp"], "same name key '000'"),
        (["a/000.png"], ["m/000.png"], "does not end in '_mask'"),
    ],
)
def test_ambiguous_names_are_errors(images: list[str], masks: list[str], needle: str) -> None:
    with pytest.raises(ZsadError, match=needle):
        pair_masks_by_name(images, masks)
