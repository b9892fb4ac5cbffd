"""Archive extraction: round trips, refusal of unsafe members, atomicity, RAR without a RAR tool."""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

from zsad_bench.data import extract as extract_mod
from zsad_bench.data.extract import extract, extract_all
from zsad_bench.errors import ZsadError

TREE = {
    "mvtec/bottle/test/good/000.png": b"\x89PNG good",
    "mvtec/bottle/ground_truth/broken_large/000_mask.png": b"\x89PNG mask",
    "mvtec/readme.txt": "Ünïcode text\n".encode(),
}


# --- helpers: tiny archives ------------------------------------------------------------------------


def write_tree(root: Path, tree: dict[str, bytes]) -> Path:
    for name, data in tree.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how Info-ZIP stores a symlink
    return info, target.encode()


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return path


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def leftovers(dest: Path) -> list[str]:
    """What an extraction left next to ``dest`` (its hidden temporary folder included)."""
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith((dest.name, f".{dest.name}")))


# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode"),
    [("d.tar", "w"), ("d.tar.gz", "w:gz"), ("d.tgz", "w:gz"), ("d.tar.xz", "w:xz"), ("d.tar.bz2", "w:bz2")],
)
def test_tar_round_trip(tmp_path: Path, name: str, mode: str) -> None:
    src = write_tree(tmp_path / "src", TREE)
    with tarfile.open(tmp_path / name, mode) as tf:
        tf.add(src / "mvtec", arcname="mvtec")
    dest = extract(tmp_path / name, tmp_path / "out")
    assert dest == tmp_path / "out"
    assert read_tree(dest) == TREE
    assert leftovers(dest) == ["out"]


def test_zip_round_trip_with_inner_symlink(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "d.zip",
        [("mvtec/", b""), *TREE.items(), zip_symlink("mvtec/latest.png", "bottle/test/good/000.png")],
    )
    dest = extract(archive, tmp_path / "out")
    assert read_tree(dest) == {**TREE, "mvtec/latest.png": TREE["mvtec/bottle/test/good/000.png"]}
    assert (dest / "mvtec/latest.png").is_symlink()


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "gdrive-1AbC", list(TREE.items()))  # a Drive download without a name
    assert read_tree(extract(archive, tmp_path / "out")) == TREE
    (tmp_path / "notes.zip").write_text("not an archive")
    with pytest.raises(ZsadError, match="named like an archive but is not a readable one"):
        extract(tmp_path / "notes.zip", tmp_path / "out2")


def test_extract_all_merges_archives(tmp_path: Path) -> None:
    images = make_zip(tmp_path / "ISBI2016_Test_Data.zip", [("Data/ISIC_0000003.jpg", b"jpg")])
    masks = make_zip(
        tmp_path / "ISBI2016_Test_GroundTruth.zip", [("GT/ISIC_0000003_Segmentation.png", b"png")]
    )
    dest = extract_all([images, masks], tmp_path / "isic")
    assert read_tree(dest) == {"Data/ISIC_0000003.jpg": b"jpg", "GT/ISIC_0000003_Segmentation.png": b"png"}


def test_existing_destination_is_not_overwritten(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "d.zip", list(TREE.items()))
    (tmp_path / "out").mkdir()
    extract(archive, tmp_path / "out")  # an empty folder is fine
    with pytest.raises(ZsadError, match="already exists and is not empty; remove it"):
        extract(archive, tmp_path / "out")


def test_truncated_archive_is_reported_as_corrupt(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"big.bin": bytes(range(256)) * 4000})
    with tarfile.open(tmp_path / "d.tar.xz", "w:xz") as tf:
        tf.add(src / "big.bin", arcname="big.bin")
    data = (tmp_path / "d.tar.xz").read_bytes()
    (tmp_path / "d.tar.xz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZsadError, match=r"cannot extract d\.tar\.xz .*incomplete or corrupt"):
        extract(tmp_path / "d.tar.xz", tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


# --- unsafe members --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("../evil", b"x"), "'../evil' points outside the destination"),
        (("ok/../../evil", b"x"), "'ok/../../evil' points outside"),
        (("/tmp/evil", b"x"), "'/tmp/evil' has an absolute path"),
        (zip_symlink("link", "../../x"), "'link' is a link to '../../x', outside the destination"),
        (zip_symlink("link", "/etc/passwd"), "'link' is a link to the absolute path '/etc/passwd'"),
    ],
)
def test_unsafe_zip_is_refused(tmp_path: Path, member: tuple[Any, bytes], why: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", [("fine.txt", b"ok"), member])
    with pytest.raises(ZsadError, match=r"refusing to extract evil\.zip: member " + why.replace(".", r"\.")):
        extract(archive, tmp_path / "sub" / "out")
    assert leftovers(tmp_path / "sub" / "out") == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / "sub" / "evil").exists()


def fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([("/etc/evil", b"x")], "'/etc/evil' has an absolute path"),
        ([("../evil", b"x")], "'../evil' points outside"),
        ([tar_link("passwd", "/etc/passwd")], "'passwd' is a link to the absolute path '/etc/passwd'"),
        ([tar_link("a/b/x", "../../../x")], "'a/b/x' is a link to '../../../x', outside"),
        ([tar_link("hard", "../outside", tarfile.LNKTYPE)], "'hard' is a link to '../outside', outside"),
        ([tar_link("hard", "/etc/shadow", tarfile.LNKTYPE)], "'hard' is a link to the absolute path"),
        # each link stays inside on its own, but writing through the first one escapes
        ([tar_link("sub/up", ".."), tar_link("sub/up/up", ".."), ("sub/up/up/evil", b"x")], "'sub/up/up'"),
        ([fifo("pipe")], "'pipe' is a device file, fifo"),
    ],
)
@pytest.mark.parametrize("data_filter", [True, False], ids=["data-filter", "no-filter"])
def test_unsafe_tar_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: list[Any], why: str, data_filter: bool
) -> None:
    if not data_filter:  # as on a Python older than 3.11.4: the checks must not depend on tarfile's
        monkeypatch.setattr(extract_mod, "_TAR_FILTER", {})
    archive = make_tar(tmp_path / "evil.tar.gz", [("fine.txt", b"ok"), *members])
    with pytest.raises(
        ZsadError, match=r"refusing to extract evil\.tar\.gz: member " + why.replace(".", r"\.")
    ):
        extract(archive, tmp_path / "sub" / "out")
    assert leftovers(tmp_path / "sub" / "out") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "sub"]


def test_safe_tar_links_are_kept(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "d.tar",
        [
            ("data/a.png", b"png"),
            tar_link("data/b.png", "a.png"),
            tar_link("copy.png", "data/a.png", tarfile.LNKTYPE),
        ],
        mode="w",
    )
    dest = extract(archive, tmp_path / "out")
    assert (dest / "data/b.png").is_symlink()
    assert read_tree(dest) == {"copy.png": b"png", "data/a.png": b"png", "data/b.png": b"png"}


# --- atomicity -------------------------------------------------------------------------------------


def test_interrupted_zip_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_zip(tmp_path / "d.zip", list(TREE.items()))
    copied = []
    real_copy = extract_mod._copy

    def copy_then_stop(src: Any, out: Any) -> None:
        if copied:
            raise KeyboardInterrupt
        copied.append(1)
        real_copy(src, out)

    monkeypatch.setattr(extract_mod, "_copy", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, tmp_path / "out")
    assert copied == [1]
    assert leftovers(tmp_path / "out") == []


def test_interrupted_tar_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_tar(tmp_path / "d.tar.gz", list(TREE.items()))
    real = tarfile.TarFile.extract
    calls = []

    def extract_then_fail(self: tarfile.TarFile, member: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(member)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", extract_then_fail)
    with pytest.raises(ZsadError, match=r"cannot write the files of d\.tar\.gz .*No space left"):
        extract(archive, tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


# --- RAR -------------------------------------------------------------------------------------------

RAR_HINT = "extracting .rar needs 'unrar' (or bsdtar/7z) on PATH, or pip install rarfile"


def make_rar(path: Path) -> Path:
    path.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\0" * 32)  # the magic is all detection reads
    return path


@pytest.fixture
def no_rarfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rarfile", None)  # makes 'import rarfile' fail


def test_rar_without_any_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_rarfile: None) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(
        ZsadError, match=r"needs 'unrar' \(or bsdtar/7z\) on PATH, or pip install rarfile; or"
    ):
        extract(make_rar(tmp_path / "test-mask.rar"), tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


def fake_bsdtar(bin_dir: Path, listing: str, unpack: str = 'printf hi > "$4/ok.txt"') -> None:
    """A ``bsdtar`` that lists ``listing`` and runs the shell line ``unpack`` to extract into ``$4``."""
    bin_dir.mkdir()
    script = bin_dir / "bsdtar"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-tf" ]; then printf \'{listing}\'; exit 0; fi\n{unpack}\n')
    script.chmod(0o755)


def test_rar_tool_listing_is_checked_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_rarfile: None
) -> None:
    fake_bsdtar(tmp_path / "bin", "ok.txt\\n../evil\\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ZsadError, match=r"member '\.\./evil' points outside"):
        extract(make_rar(tmp_path / "x.rar"), tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


def test_rar_through_a_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_rarfile: None) -> None:
    fake_bsdtar(tmp_path / "bin", "ok.txt\\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert read_tree(extract(make_rar(tmp_path / "x.rar"), tmp_path / "out")) == {"ok.txt": b"hi"}


@pytest.mark.skipif(not Path("/bin/ln").exists(), reason="needs /bin/ln")
def test_rar_tool_result_is_checked_for_links_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_rarfile: None
) -> None:
    # a tool that trusts the archive: names look fine, but the link it creates leaves the destination
    fake_bsdtar(tmp_path / "bin", "pw\\n", unpack='/bin/ln -s /etc/passwd "$4/pw"')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ZsadError, match="member 'pw' is a link to '/etc/passwd', outside the destination"):
        extract(make_rar(tmp_path / "x.rar"), tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


class _Info:
    def __init__(self, filename: str, *, redir: tuple[int, int, str] | None = None, link: str | None = None):
        self.filename, self.file_redir, self.link = filename, redir, link
        self.host_os, self.mode = 3, stat.S_IFREG | 0o644

    def is_symlink(self) -> bool:
        return self.link is not None

    def is_dir(self) -> bool:
        return False


def fake_rarfile(monkeypatch: pytest.MonkeyPatch, members: list[_Info]) -> dict[str, list[str]]:
    """Install a ``rarfile`` module whose archives hold ``members``; records what was opened and extracted."""
    seen: dict[str, list[str]] = {"opened": [], "extracted": []}
    module = types.ModuleType("rarfile")

    class Error(Exception):
        pass

    class RarCannotExec(Error):
        pass

    class RarFile:
        def __init__(self, path: str) -> None:
            seen["opened"].append(Path(path).name)

        def __enter__(self) -> RarFile:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def infolist(self) -> list[_Info]:
            return members

        def read(self, info: _Info) -> bytes:
            return (info.link or "").encode()

        def extractall(self, path: str) -> None:
            for info in members:
                seen["extracted"].append(info.filename)
                (Path(path) / info.filename).parent.mkdir(parents=True, exist_ok=True)
                (Path(path) / info.filename).write_bytes(b"img")

    module.__dict__.update(Error=Error, RarCannotExec=RarCannotExec, RarFile=RarFile, RAR_OS_UNIX=3)
    monkeypatch.setitem(sys.modules, "rarfile", module)
    return seen


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_Info("../evil.jpg"), "'../evil.jpg' points outside"),
        (_Info("C:/evil.jpg"), "'C:/evil.jpg' has an absolute path"),
        (_Info("l", redir=(1, 0, "/etc/passwd")), "'l' is a link to the absolute path"),
        (_Info("l", redir=(3, 0, "\\??\\C:\\Windows")), "'l' is a link to the absolute path"),
        (_Info("a/l", redir=(4, 0, "../x")), "'a/l' is a link to '../x', outside"),
        (_Info("a/l", link="../../x"), "'a/l' is a link to '../../x', outside"),
    ],
)
def test_rarfile_members_are_checked_before_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, member: _Info, why: str
) -> None:
    seen = fake_rarfile(monkeypatch, [_Info("tn3k/test-image/0000.jpg"), member])
    with pytest.raises(ZsadError, match="member " + why.replace(".", r"\.")):
        extract(make_rar(tmp_path / "test-image.part1.rar"), tmp_path / "out")
    assert seen["extracted"] == []
    assert leftovers(tmp_path / "out") == []


def test_rarfile_multi_part_opens_the_first_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = fake_rarfile(monkeypatch, [_Info("tn3k/test-image/0000.jpg")])
    parts = [make_rar(tmp_path / f"test-image.part{i}.rar") for i in (1, 2)]
    dest = extract_all([parts[1], parts[0], make_rar(tmp_path / "test-mask.rar")], tmp_path / "tn3k")
    assert seen["opened"] == ["test-image.part1.rar", "test-mask.rar"]
    assert read_tree(dest) == {"tn3k/test-image/0000.jpg": b"img"}
    parts[0].unlink()
    with pytest.raises(
        ZsadError, match=r"test-image\.part2\.rar is a later volume .* put test-image\.part1\.rar"
    ):
        extract(parts[1], tmp_path / "again")
