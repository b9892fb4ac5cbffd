"""`zsad datasets prepare` with awkward sources: a meta.json above the data root, several --from folders,
--link with an archive, leftovers of killed prepares, messages in the user's paths, corrupt listings."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.data import is_prepared, read_manifest
from zsad_bench.data.catalog.mvtec_ad import SPEC
from zsad_bench.data.meta import export_meta
from zsad_bench.data.prepare import prepare_dataset


@pytest.fixture
def data_root(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.mktemp("root") / "data"
    monkeypatch.setenv("ZSAD_DATA", str(root))
    return root


def _invoke(*args: str):
    quiet = ["-q"] if args[1] == "prepare" and "-q" not in args else []  # no progress bars on stderr
    return CliRunner().invoke(main, [*args, *quiet])


def _one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and ".staging-" not in result.stderr
    return lines[0]


def _images(raw) -> int:
    return sum(n + a for n, a in raw.counts.values())


def test_meta_json_above_the_data_root_copies_only_its_files(mvtec_raw, tmp_path, monkeypatch):
    # meta.json in a folder that holds the data root: copying that folder would copy it into itself.
    first = prepare_dataset(SPEC, [mvtec_raw.root], tmp_path / "first")
    meta = export_meta(first.folder)
    root = first.folder / "nested" / "data"
    monkeypatch.setenv("ZSAD_DATA", str(root))
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(meta), "-q")
    assert result.exit_code == 0, result.output
    prepared = root / "mvtec-ad"
    table = read_manifest(prepared)
    assert len(table) == first.images
    copied = {
        p.relative_to(prepared / "raw").as_posix() for p in (prepared / "raw").rglob("*") if p.is_file()
    }
    listed = {*table.image_path, *table.mask_path.dropna()}
    assert copied == {p.removeprefix("raw/") for p in listed}  # the listed files, nothing else
    assert not (prepared / "raw" / "nested").exists()


def test_meta_json_listing_a_missing_file_names_it(mvtec_raw, tmp_path, data_root):
    first = prepare_dataset(SPEC, [mvtec_raw.root], tmp_path / "first")
    meta = export_meta(first.folder)
    victim = first.folder / read_manifest(first.folder).image_path.iloc[0]
    victim.unlink()
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(meta)))
    assert f"{victim}, listed in {meta}, does not exist" in line
    assert not (data_root / "mvtec-ad").exists()


def test_stale_staging_folders_of_killed_prepares_are_removed(mvtec_raw, data_root):
    data_root.mkdir(parents=True)
    stale = [
        data_root / ".mvtec-ad.staging-0a1b2c",
        data_root / ".mvtec-ad.preparing-x1",
        data_root / ".mvtec-ad.replaced-9",
    ]
    for folder in stale:
        (folder / "raw").mkdir(parents=True)
        (folder / "raw" / "big.png").write_bytes(b"x" * 100)
    other = data_root / ".visa.staging-123456"  # another dataset's: not this prepare's business
    other.mkdir()
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent), "-q")
    assert result.exit_code == 0, result.output
    assert not any(folder.exists() for folder in stale)
    assert other.is_dir() and is_prepared(data_root / "mvtec-ad")


def test_a_prepare_in_progress_is_neither_cleaned_nor_raced(mvtec_raw, data_root):
    (data_root / ".locks").mkdir(parents=True)
    busy = data_root / ".mvtec-ad.staging-live"
    busy.mkdir()
    fd = os.open(data_root / ".locks" / "mvtec-ad.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running prepare holds it
        line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent)))
        assert "is being prepared by another process" in line
        assert busy.is_dir()
    finally:
        os.close(fd)


def test_errors_name_the_from_path_not_the_staging_folder(mvtec_raw, tmp_path, data_root):
    empty = tmp_path / "empty-download"
    empty.mkdir()
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(empty)))
    assert f"found under {empty};" in line
    # a converter error deep in the copy: the stray mask is named where the user has it
    extra = mvtec_raw.root / mvtec_raw.extra_mask
    shutil.copy(next(mvtec_raw.root.rglob("*_mask.png")), extra)
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent)))
    assert str(extra) in line or str(extra.parent) in line, line


def _split(mvtec_raw, parts: dict[str, str]) -> dict[str, Path]:
    """The classes of the miniature MVTec AD moved into several folders: class -> folder it now lies in."""
    folders = {}
    for cls, parent in parts.items():
        target = mvtec_raw.parent / parent / mvtec_raw.top / cls
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(mvtec_raw.root / cls, target)
        folders[cls] = target.parent
    return folders


def test_same_named_folders_are_merged(mvtec_raw, data_root):
    # two partial downloads, each extracting into mvtec_anomaly_detection/: before, the second was ignored
    folders = _split(mvtec_raw, {"bottle": "a", "metal_nut": "b"})
    args = ["datasets", "prepare", "mvtec-ad", "-q"]
    result = _invoke(*args, "--from", str(folders["bottle"]), "--from", str(folders["metal_nut"]))
    assert result.exit_code == 0, result.output
    table = read_manifest(data_root / "mvtec-ad")
    assert set(table.class_name) == {"bottle", "metal_nut"} and len(table) == _images(mvtec_raw)


def test_folders_holding_the_same_file_are_refused(mvtec_raw, tmp_path, data_root):
    copy = tmp_path / "copy" / mvtec_raw.top
    shutil.copytree(mvtec_raw.root, copy)
    line = _one_error(
        _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.root), "--from", str(copy))
    )
    assert f"--from {mvtec_raw.root} and --from {copy} both hold" in line
    assert not (data_root / "mvtec-ad").exists()


def test_a_folder_the_converter_passes_over_is_refused(mvtec_raw, data_root):
    folders = _split(mvtec_raw, {"bottle": "a", "metal_nut": "b"})
    part_a, part_b = folders["bottle"].parent, folders["metal_nut"].parent  # different names: a/ and b/
    line = _one_error(
        _invoke("datasets", "prepare", "mvtec-ad", "--from", str(part_a), "--from", str(part_b))
    )
    assert f"--from {part_b} was not used" in line
    assert not (data_root / "mvtec-ad").exists()


def test_link_with_an_archive_is_refused(mvtec_raw, tmp_path, data_root):
    archive = tmp_path / "mvtec_anomaly_detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mvtec_raw.root, arcname=mvtec_raw.top)
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(archive), "--link"))
    assert f"{archive} is an archive" in line and "drop --link" in line
    assert not (data_root / "mvtec-ad").exists()


def test_an_archive_past_the_limit_is_refused_and_the_flag_raises_it(
    mvtec_raw, tmp_path, data_root, monkeypatch
):
    archive = tmp_path / "mvtec_anomaly_detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mvtec_raw.root, arcname=mvtec_raw.top)
    monkeypatch.setenv("ZSAD_MAX_EXTRACT_SIZE", "1K")
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(archive)))
    assert "unpacks to more than 1.0 KiB" in line and "--max-extract-size" in line
    assert not (data_root / "mvtec-ad").exists() and [p.name for p in data_root.iterdir()] == [".locks"]
    result = _invoke(
        "datasets", "prepare", "mvtec-ad", "--from", str(archive), "--max-extract-size", "1G", "-q"
    )
    assert result.exit_code == 0, result.output
    line = _one_error(
        _invoke(
            "datasets", "prepare", "mvtec-ad", "--from", str(archive), "--force", "--max-extract-ratio", "0.5"
        )
    )
    assert "--max-extract-ratio=0.5 is not a ratio" in line  # the flag reaches the limits


def test_a_corrupt_dataset_json_marks_its_row_in_the_listing(mvtec_raw, data_root):
    prepare_dataset(SPEC, [mvtec_raw.parent], data_root)
    (data_root / "mvtec-ad" / "dataset.json").write_text("{ truncated")
    result = _invoke("datasets", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "corrupt: re-run prepare" in rows["mvtec-ad"]
    assert "visa" in rows and "synthetic" in rows  # the other rows are still listed
    info = _invoke("datasets", "info", "mvtec-ad")
    assert info.exit_code == 0 and "prepared: corrupt" in info.stdout


def test_meta_json_alone_keeps_its_one_line(tmp_path, data_root):
    (tmp_path / "meta.json").write_text(json.dumps([1, 2]))
    line = _one_error(_invoke("datasets", "prepare", "mvtec-ad", "--from", str(tmp_path / "meta.json")))
    assert "not an AnomalyCLIP meta.json" in line
