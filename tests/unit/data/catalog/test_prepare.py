"""`zsad datasets prepare / verify / export-meta` on a miniature MVTec AD, and the atomicity guarantees."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from zsad_bench.cli import main
from zsad_bench.data import is_prepared, read_manifest, validate_manifest
from zsad_bench.data import prepare as prepare_module
from zsad_bench.data.catalog.mvtec_ad import SPEC
from zsad_bench.data.meta import export_meta, rows_from_meta
from zsad_bench.data.prepare import prepare_dataset


@pytest.fixture
def data_root(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.mktemp("root") / "data"
    monkeypatch.setenv("ZSAD_DATA", str(root))
    return root


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_prepare_from_folder_writes_manifest_and_reports_count_differences(mvtec_raw, data_root):
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent))
    assert result.exit_code == 0, result.output
    folder = data_root / "mvtec-ad"
    table = read_manifest(folder)
    expected_rows = sum(n + a for n, a in mvtec_raw.counts.values())
    assert len(table) == expected_rows
    assert all(p.startswith("raw/") for p in table.image_path)
    assert (folder / table.image_path.iloc[0]).is_file()
    # a miniature copy cannot have the paper's counts: every difference is reported, never silent
    assert "warning: count differs" in result.stderr and "bottle" in result.stderr
    info = json.loads((folder / "dataset.json").read_text())
    assert info["count_differences"] and info["licence"] == SPEC.licence


def test_prepare_from_archive_and_linked_folder(mvtec_raw, tmp_path, data_root):
    archive = tmp_path / "mvtec_anomaly_detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mvtec_raw.root, arcname=mvtec_raw.top)
    report = prepare_dataset(SPEC, [archive], data_root)
    assert report.images == len(read_manifest(report.folder))
    linked = prepare_dataset(SPEC, [mvtec_raw.parent], data_root, link=True, force=True)
    assert (linked.folder / "raw").is_symlink()
    assert linked.images == report.images


def test_existing_dataset_is_never_replaced_without_force_and_failures_leave_nothing(mvtec_raw, data_root):
    prepare_dataset(SPEC, [mvtec_raw.parent], data_root)
    manifest_before = (data_root / "mvtec-ad" / "manifest.parquet").read_bytes()
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent))
    assert result.exit_code == 2 and "--force" in result.stderr
    # a broken raw copy (an extra mask) fails with the file named; the prepared dataset is untouched
    extra = mvtec_raw.root / mvtec_raw.extra_mask
    Image.new("L", (8, 8), 255).save(extra)
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent), "--force")
    assert result.exit_code == 2 and extra.name in result.stderr
    assert (data_root / "mvtec-ad" / "manifest.parquet").read_bytes() == manifest_before
    assert [p.name for p in data_root.iterdir() if p.name.startswith(".mvtec")] == []


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("stage", ["converter", "after the manifest"])
def test_failure_midway_through_prepare_keeps_the_prepared_dataset(mvtec_raw, data_root, monkeypatch, stage):
    report = prepare_dataset(SPEC, [mvtec_raw.parent], data_root)
    before = _files(report.folder)
    spec = SPEC
    if stage == "converter":

        def convert_then_stop(raw: Path, spec: object) -> object:
            SPEC.converter(raw, SPEC)  # the raw copy is complete by now
            raise KeyboardInterrupt

        spec = dataclasses.replace(SPEC, converter=convert_then_stop)
    else:
        real = prepare_module.write_manifest

        def write_then_stop(*args: object, **kwargs: object) -> None:
            real(*args, **kwargs)  # the staging folder now looks prepared; it must never replace the old
            raise KeyboardInterrupt

        monkeypatch.setattr(prepare_module, "write_manifest", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(spec, [mvtec_raw.parent], data_root, force=True)
    assert _files(report.folder) == before and len(read_manifest(report.folder)) == report.images
    assert [p.name for p in data_root.iterdir() if p.name != ".locks"] == ["mvtec-ad"]  # no staging left


def test_prepared_files_get_the_umask_modes(mvtec_raw, data_root, tmp_path):
    # the raw copy as a user has it (0o755 folders, 0o644 files), whatever umask the fixture ran under
    for path in [mvtec_raw.parent, *mvtec_raw.parent.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    archive = tmp_path / "mvtec_anomaly_detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mvtec_raw.root, arcname=mvtec_raw.top)
    old = os.umask(0o022)
    try:
        folders = [
            prepare_dataset(SPEC, [mvtec_raw.parent], data_root).folder,  # copied (hard links)
            prepare_dataset(SPEC, [archive], tmp_path / "other").folder,  # extracted
        ]
        meta = export_meta(folders[0])
    finally:
        os.umask(old)
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            expected = 0o755 if path.is_dir() else 0o644
            assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert stat.S_IMODE(meta.stat().st_mode) == 0o644


def test_verify_passes_on_synthetic_and_names_a_corrupt_image(data_root):
    assert _invoke("datasets", "verify", "synthetic", "--quiet").exit_code == 0
    table = read_manifest(data_root / "synthetic")
    victim = data_root / "synthetic" / table.image_path.iloc[3]
    victim.write_bytes(b"not an image")
    result = _invoke("datasets", "verify", "synthetic", "--quiet")
    assert result.exit_code == 1
    assert table.image_path.iloc[3] in result.stdout


def test_meta_json_round_trip(mvtec_raw, data_root, tmp_path):
    report = prepare_dataset(SPEC, [mvtec_raw.parent], data_root)
    result = _invoke("datasets", "export-meta", "mvtec-ad")
    assert result.exit_code == 0
    meta_path = Path(result.stdout.strip())
    meta = json.loads(meta_path.read_text())
    assert set(meta) == {"train", "test"}
    entry = next(e for e in meta["test"]["bottle"] if e["anomaly"] == 1)
    assert entry["mask_path"].endswith("_mask.png") and entry["specie_name"] != "good"
    table = read_manifest(report.folder)
    again = validate_manifest(rows_from_meta(meta, SPEC, report.folder))
    columns = ["sample_id", "split", "class_name", "defect_type", "label", "image_path", "mask_path"]
    assert again[columns].reset_index(drop=True).equals(table[columns].reset_index(drop=True))
    # and a dataset prepared from that meta.json has the same rows (under raw/)
    other = tmp_path / "other"
    from_meta = prepare_dataset(SPEC, [meta_path], other)
    assert from_meta.images == report.images
    assert export_meta(from_meta.folder).is_file()


def test_data_root_inside_the_source_is_refused(mvtec_raw, monkeypatch):
    monkeypatch.setenv("ZSAD_DATA", str(mvtec_raw.parent / "data"))
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(mvtec_raw.parent))
    assert result.exit_code == 2 and "is inside" in result.stderr


def test_meta_json_with_absolute_paths_outside_its_folder_is_refused(tmp_path, data_root):
    meta = {
        "test": {
            "bottle": [
                {
                    "img_path": "/etc/x.png",
                    "mask_path": "",
                    "cls_name": "bottle",
                    "specie_name": "good",
                    "anomaly": 0,
                }
            ]
        }
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    result = _invoke("datasets", "prepare", "mvtec-ad", "--from", str(tmp_path / "meta.json"))
    assert result.exit_code == 2 and "outside the meta.json folder" in result.stderr
    assert not is_prepared(data_root / "mvtec-ad")


def test_prepared_dataset_loads_and_converts_to_hf(mvtec_raw, data_root):
    import zsad_bench

    prepare_dataset(SPEC, [mvtec_raw.parent], data_root)
    dataset = zsad_bench.load_dataset("mvtec-ad", mask_size=16)
    assert dataset.classes == sorted({c for (split, c) in mvtec_raw.counts if split == "test"})
    item = dataset[0]
    assert item["image"].shape == (3, 16, 16) and item["mask"].shape == (16, 16)
    hf = dataset.to_hf()
    assert hf.info.license == SPEC.licence and hf.features["label"].names == ["normal", "anomalous"]
    assert hf[0]["image"].size == (8, 8)


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve a folder on 127.0.0.1 for the duration of a test."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_fetches_verifies_extracts_and_prepares(mvtec_raw, data_root, http_root):
    import dataclasses
    import hashlib

    from zsad_bench.data.prepare import download_dataset
    from zsad_bench.data.spec import Source
    from zsad_bench.errors import ZsadError

    served, base = http_root
    archive = served / "mvtec_anomaly_detection.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(mvtec_raw.root, arcname=mvtec_raw.top)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()

    tampered = dataclasses.replace(
        SPEC, sources=(Source("https", f"{base}/{archive.name}", sha256="0" * 64),)
    )
    with pytest.raises(ZsadError, match="prepare mvtec-ad --from PATH"):
        download_dataset(tampered, data_root, progress=False)
    assert not is_prepared(data_root / "mvtec-ad")

    good = dataclasses.replace(
        SPEC,
        sources=(
            Source("https", f"{base}/missing.tar.xz", sha256=digest),  # a dead mirror is skipped
            Source("https", f"{base}/{archive.name}", sha256=digest),
        ),
    )
    report = download_dataset(good, data_root, progress=False)
    assert report.images == sum(n + a for n, a in mvtec_raw.counts.values())
    info = json.loads((report.folder / "dataset.json").read_text())
    assert info["origin"].endswith(archive.name)
