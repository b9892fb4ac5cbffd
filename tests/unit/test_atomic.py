"""zsad_bench.atomic: whole files and folders appear at once, with the modes the umask gives, and a
failure leaves the old content and no debris."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from zsad_bench.atomic import atomic_file, atomic_folder, atomic_write, commit_file, remove_tree


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_creates_parents_and_respects_the_umask(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "a" / "b.json"
    assert atomic_write(target, "{}\n") == target
    assert target.read_text() == "{}\n"
    assert _mode(target) == 0o644
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _debris(target.parent) == []


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert _debris(tmp_path) == []


def test_atomic_file_refuses_append_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whole files"), atomic_file(tmp_path / "x", "ab"):
        pass


def test_atomic_folder_replaces_a_folder_whole(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".")
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert _mode(target) == 0o755  # mkdtemp would give 0o700
    assert _debris(tmp_path) == []


def test_a_failed_folder_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as staging:
        (staging / "new.txt").write_text("new")
        raise KeyboardInterrupt
    assert (target / "old.txt").read_text() == "old"
    assert _debris(tmp_path) == []


def test_atomic_folder_without_replace_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "extracted"
    target.mkdir()  # an empty folder may be taken
    with atomic_folder(target, replace=False) as staging:
        (staging / "mine.txt").write_text("mine")
    assert (target / "mine.txt").read_text() == "mine"
    with pytest.raises(FileExistsError), atomic_folder(target, replace=False) as staging:
        (staging / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    assert _debris(tmp_path) == []


def test_commit_file_moves_a_finished_part_into_place(tmp_path: Path) -> None:
    part = tmp_path / "archive.zip.part"
    part.write_bytes(b"complete")
    assert commit_file(part, tmp_path / "archive.zip") == tmp_path / "archive.zip"
    assert (tmp_path / "archive.zip").read_bytes() == b"complete"
    assert not part.exists()


def test_remove_tree_removes_links_not_their_targets(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(kept, target_is_directory=True)
    remove_tree(link)
    assert not link.exists() and (kept / "file").exists()
    remove_tree(kept)
    assert not kept.exists()
    remove_tree(tmp_path / "absent")  # nothing to do
