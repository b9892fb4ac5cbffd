"""What an archive may unpack to: a total size and a ratio, overridable, refusing zip and tar bombs."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from zsad_bench.data import limits
from zsad_bench.data.extract import extract
from zsad_bench.data.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_RATIO, ExtractLimits, parse_size
from zsad_bench.errors import ZsadError

BOMB = 8 * 1024**2  # zeros: deflate packs them about 1000:1


@pytest.fixture
def low_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check the ratio from the first byte, so a few MiB of zeros stand for a real bomb."""
    monkeypatch.setattr(limits, "RATIO_FLOOR", 0)


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bmp", bytes(BOMB))
    return path


def _tar_bomb(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bmp")
        info.size = BOMB
        tf.addfile(info, io.BytesIO(bytes(BOMB)))
    return path


def test_sizes_parse_and_bad_ones_are_one_line():
    assert parse_size("200G") == 200 * 1024**3 and parse_size("1.5M") == int(1.5 * 1024**2)
    assert parse_size("4096") == 4096 and parse_size("2 GiB") == 2 * 1024**3
    for bad in ("abc", "-1G", "0", "5X"):
        with pytest.raises(ZsadError, match="is not a size") as info:
            parse_size(bad)
        assert "\n" not in str(info.value)


def test_flags_override_the_environment_which_overrides_the_defaults(monkeypatch):
    assert ExtractLimits.resolve() == ExtractLimits(DEFAULT_MAX_BYTES, DEFAULT_MAX_RATIO)
    monkeypatch.setenv("ZSAD_MAX_EXTRACT_SIZE", "1T")
    monkeypatch.setenv("ZSAD_MAX_EXTRACT_RATIO", "500")
    assert ExtractLimits.resolve() == ExtractLimits(1024**4, 500.0)
    assert ExtractLimits.resolve("2G", 7) == ExtractLimits(2 * 1024**3, 7.0)
    monkeypatch.setenv("ZSAD_MAX_EXTRACT_RATIO", "0.5")
    with pytest.raises(ZsadError, match=r"ZSAD_MAX_EXTRACT_RATIO='0\.5' is not a ratio"):
        ExtractLimits.resolve()


def test_defaults_fit_the_largest_dataset():
    # MVTec AD: a ~5 GB tar.xz of PNGs that unpacks to about as much (reference/datasets.md).
    assert DEFAULT_MAX_BYTES >= 10 * 5 * 1000**3 and DEFAULT_MAX_RATIO >= 20


@pytest.mark.usefixtures("low_floor")
@pytest.mark.parametrize("make", [_zip_bomb, _tar_bomb], ids=["zip", "tar.gz"])
def test_a_bomb_is_refused_in_one_line_and_nothing_is_written(tmp_path, make):
    archive = make(tmp_path / ("bomb.zip" if make is _zip_bomb else "bomb.tar.gz"))
    assert archive.stat().st_size * DEFAULT_MAX_RATIO < BOMB
    with pytest.raises(ZsadError) as info:
        extract(archive, tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        f"refusing to extract {archive.name}: it unpacks to over"
    )
    assert "zip bomb" in message and "--max-extract-ratio" in message and "ZSAD_MAX_EXTRACT_RATIO" in message
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # no staging folder left
    # raised by the user, the same archive unpacks
    extract(archive, tmp_path / "out", ExtractLimits(max_ratio=1e6))
    assert (tmp_path / "out" / "zeros.bmp").stat().st_size == BOMB


def test_the_total_size_limit(tmp_path):
    archive = _tar_bomb(tmp_path / "big.tar.gz")
    with pytest.raises(ZsadError, match=r"unpacks to more than 1\.0 MiB .*--max-extract-size"):
        extract(archive, tmp_path / "out", ExtractLimits(max_bytes=1024**2))
    assert not (tmp_path / "out").exists()


def test_small_archives_of_tiny_files_pass_the_ratio(tmp_path):
    # Below the floor the ratio is not checked: tar headers and empty masks compress very well.
    archive = tmp_path / "masks.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(50):
            zf.writestr(f"mask_{i}.bmp", bytes(20_000))
    assert extract(archive, tmp_path / "out", ExtractLimits(max_ratio=2)).is_dir()
