"""Unpacking downloaded archives (zip, tar, tar.gz/xz/bz2, rar) safely and atomically.

Safe: a member with an absolute path or one that leaves the destination (``../``), a link whose target
leaves it, a write through an extracted link, and device files or fifos are refused with a ``ZsadError``
naming the member; tarfile's ``data`` filter is applied too where this Python has it, but the checks here
do not depend on it. Atomic: archives are unpacked into a hidden sibling folder that is renamed to the
destination only when every archive is complete, so an interrupted extraction never looks finished.
Bounded: what the archives unpack to is counted before it is written (declared sizes) against a total
size and a compression ratio (``data.limits``), so a zip bomb is refused in one line.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, NoReturn

from zsad_bench.atomic import atomic_folder
from zsad_bench.data.limits import Budget, ExtractLimits
from zsad_bench.errors import ZsadError

__all__ = ["extract", "extract_all"]

_CHUNK = 1 << 20
_RAR_MAGIC = b"Rar!\x1a\x07"
_RAR_VOLUME = re.compile(r"\.part(\d+)\.rar$", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")
_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".rar")
_TAR_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_TAR_FILTER_ERRORS: tuple[type[Exception], ...] = (
    (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
)
_RAR_HINT = (
    "extracting .rar needs 'unrar' (or bsdtar/7z) on PATH, or pip install rarfile; "
    "or extract it yourself and use --from FOLDER"
)
_RAR_TOOLS = ("bsdtar", "unrar", "7z", "7zz")


def extract(archive: Path, dest: Path, limits: ExtractLimits | None = None) -> Path:
    """Unpack ``archive`` into the new folder ``dest`` (returned); see ``extract_all``."""
    return extract_all([archive], dest, limits)


def extract_all(paths: Sequence[Path], dest: Path, limits: ExtractLimits | None = None) -> Path:
    """Unpack every archive of ``paths`` into the one new folder ``dest`` (returned).

    The format comes from the file's first bytes (zip, tar with any compression, rar). For a multi-part
    RAR pass the first volume (``x.part1.rar``) or all of them; later volumes are read through the first.
    ``dest`` must not exist or be an empty folder. Raises ``ZsadError`` naming an unsafe member, a
    corrupt archive, a missing RAR tool, or a size past ``limits`` (``ExtractLimits.resolve()``: flags,
    environment, defaults); nothing is left at ``dest`` then.
    """
    dest = Path(dest)
    archives = [(path, _detect(path)) for path in _first_volumes(paths)]  # fail before writing anything
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ZsadError(f"{dest} already exists and is not empty; remove it to extract again")
    budget = Budget([archive for archive, _ in archives], limits or ExtractLimits.resolve())
    try:
        with atomic_folder(dest, replace=False) as tmp:  # fills an empty folder, never a full one
            for archive, kind in archives:
                _EXTRACTORS[kind](archive, tmp, budget)
                _verify_tree(archive, tmp)
    except FileExistsError as exc:
        if exc.filename != str(dest):  # from an extractor, not from the move into place
            raise
        raise ZsadError(f"cannot move the extracted files into {dest} ({exc}); remove it, run again") from exc
    return dest


# --- formats ---------------------------------------------------------------------------------------


def _detect(archive: Path) -> str:
    """``zip``, ``tar`` or ``rar`` by content (names lie: a ``.zip`` link may serve anything)."""
    if not archive.is_file():
        raise ZsadError(f"{archive} is not a file; pass the downloaded archive")
    with archive.open("rb") as f:
        head = f.read(8)
    if head.startswith(_RAR_MAGIC):
        return "rar"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    if zipfile.is_zipfile(archive):  # a zip behind a prefix (self-extracting)
        return "zip"
    if archive.name.lower().endswith(_SUFFIXES):
        raise ZsadError(
            f"{archive} is named like an archive but is not a readable one; delete it, download again"
        )
    raise ZsadError(f"{archive} is not a zip, tar or rar archive; extract it yourself and use --from FOLDER")


def _extract_zip(archive: Path, dest: Path, budget: Budget) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():  # zipfile never writes more than a member declares
                budget.take(archive, 0 if info.is_dir() else info.file_size)
            for info in zf.infolist():
                rel = _member_path(archive, info.filename)
                if rel is None:
                    continue
                target = _target(archive, dest, rel, info.filename)
                kind = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, as Info-ZIP stores it
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif kind == stat.S_IFLNK:  # Info-ZIP stores a symlink as a member holding its target
                    link = zf.read(info).decode("utf-8", "surrogateescape")
                    _check_link(archive, info.filename, rel, link, hard=False)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(link, target)
                elif kind in (0, stat.S_IFREG):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as out:
                        _copy(src, out)
                else:
                    _refuse(archive, info.filename, "is a device file, fifo or socket")
    except NotImplementedError as exc:  # e.g. Deflate64, which Windows uses for large zips
        raise ZsadError(
            f"{archive.name} uses a compression Python cannot read ({exc}); extract it yourself (7z, unzip) "
            "and use --from FOLDER"
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, OSError) as exc:
        _corrupt(archive, exc)


def _extract_tar(archive: Path, dest: Path, budget: Budget) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:  # one pass: a .tar.xz is never decompressed twice
                rel = _member_path(archive, member.name)
                if rel is None:
                    continue
                target = _target(archive, dest, rel, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)  # own mode: a read-only folder must not block
                    continue
                if member.issym():
                    _check_link(archive, member.name, rel, member.linkname, hard=False)
                elif member.islnk():
                    _check_link(archive, member.name, rel, member.linkname, hard=True)
                elif not member.isreg():
                    _refuse(archive, member.name, "is a device file, fifo or other special file")
                else:
                    budget.take(archive, member.size)  # a tar member holds exactly its declared size
                tf.extract(member, dest, **_TAR_FILTER)
    except _TAR_FILTER_ERRORS as exc:
        name = getattr(getattr(exc, "tarinfo", None), "name", "?")
        _refuse(archive, name, f"was refused by tarfile ({exc})")
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        _corrupt(archive, exc)


def _extract_rar(archive: Path, dest: Path, budget: Budget) -> None:
    try:
        import rarfile
    except ImportError:
        rarfile = None
    if rarfile is not None:
        _extract_rar_module(rarfile, archive, dest, budget)
        return
    tool = next((t for t in _RAR_TOOLS if shutil.which(t)), None)
    if tool is None:
        raise ZsadError(_RAR_HINT)
    exe = shutil.which(tool) or tool
    listing, unpack = _rar_commands(tool, exe, archive, dest)
    for name in _tool_listing(tool, _run(listing, archive)):
        _member_path(archive, name)  # link targets are checked on the result by _verify_tree
    before = _tree_size(dest)
    _run(unpack, archive)
    # A command-line tool's listing gives no reliable sizes: the result is counted once written (the
    # atomic folder removes it when a limit is passed).
    budget.take(archive, _tree_size(dest) - before)


def _tree_size(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, name)).st_size for d, _, names in os.walk(root) for name in names)


_EXTRACTORS: dict[str, Callable[[Path, Path, Budget], None]] = {
    "zip": _extract_zip,
    "tar": _extract_tar,
    "rar": _extract_rar,
}


# --- RAR -------------------------------------------------------------------------------------------


def _extract_rar_module(rarfile: Any, archive: Path, dest: Path, budget: Budget) -> None:
    """Check every member the ``rarfile`` package lists, then let it unpack (through unrar/unar/bsdtar)."""
    unix = getattr(rarfile, "RAR_OS_UNIX", 3)
    try:
        with rarfile.RarFile(str(archive)) as rf:
            links: set[PurePosixPath] = set()
            for info in rf.infolist():
                rel = _member_path(archive, info.filename)
                if rel is None:
                    continue
                if any(parent in links for parent in rel.parents):
                    _refuse(archive, info.filename, "would be written through a symbolic link")
                # RAR5 links: file_redir = (type, flags, target); types 4 and 5 are a hard link and a copy.
                redir = getattr(info, "file_redir", None)
                if redir:
                    hard = redir[0] in (4, 5)
                    _check_link(archive, info.filename, rel, str(redir[2]), hard=hard)
                    if not hard:
                        links.add(rel)
                elif info.is_symlink():  # RAR3 keeps the target as the member's data
                    link = rf.read(info).decode("utf-8", "surrogateescape")
                    _check_link(archive, info.filename, rel, link, hard=False)
                    links.add(rel)
                elif getattr(info, "host_os", None) == unix and _special(getattr(info, "mode", 0) or 0):
                    _refuse(archive, info.filename, "is a device file, fifo or socket")
                if not info.is_dir():
                    budget.take(archive, getattr(info, "file_size", 0) or 0)
            rf.extractall(str(dest))
    except rarfile.RarCannotExec as exc:
        raise ZsadError(_RAR_HINT) from exc
    except (rarfile.Error, OSError) as exc:
        _corrupt(archive, exc)


def _rar_commands(tool: str, exe: str, archive: Path, dest: Path) -> tuple[list[str], list[str]]:
    """``(list names, unpack into dest)`` command lines for one RAR tool."""
    a, d = str(archive), str(dest)
    if tool == "bsdtar":  # refuses absolute paths, '..' and writes through links by default
        return [exe, "-tf", a], [exe, "-xf", a, "-C", d]
    if tool == "unrar":
        return [exe, "lb", "-p-", a], [exe, "x", "-p-", "-o-", "-y", a, d + os.sep]
    return [exe, "l", "-slt", a], [exe, "x", "-y", f"-o{d}", a]  # 7z, 7zz


def _tool_listing(tool: str, output: str) -> list[str]:
    lines = output.splitlines()
    if tool not in ("7z", "7zz"):
        return [line for line in lines if line.strip()]
    # 7z -slt: a header block about the archive, "----------", then "Path = NAME" per member.
    body = lines[lines.index("----------") + 1 :] if "----------" in lines else []
    return [line[len("Path = ") :] for line in body if line.startswith("Path = ")]


def _run(command: list[str], archive: Path) -> str:
    done = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()[-1]
        raise ZsadError(
            f"{Path(command[0]).name} could not read {archive.name} ({last}); extract it yourself and use "
            "--from FOLDER"
        )
    return done.stdout


def _first_volumes(paths: Sequence[Path]) -> list[Path]:
    """``paths`` without repeats, a later RAR volume (``x.part2.rar``) replaced by its first one."""
    out: list[Path] = []
    for path in map(Path, paths):
        match = _RAR_VOLUME.search(path.name)
        if match and int(match[1]) != 1:
            one = "1".zfill(len(match[1]))
            first = path.with_name(path.name[: match.start(1)] + one + path.name[match.end(1) :])
            if not first.is_file():
                raise ZsadError(
                    f"{path.name} is a later volume of a multi-part RAR; put {first.name} next to it"
                )
            path = first
        if path not in out:
            out.append(path)
    return out


# --- safety ----------------------------------------------------------------------------------------


def _member_path(archive: Path, name: str) -> PurePosixPath | None:
    """The member's normalised path inside the destination; ``None`` for the root itself."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        _refuse(archive, name, "has an absolute path")
    norm = posixpath.normpath(name)
    if norm == ".":
        return None
    if norm == ".." or norm.startswith("../"):
        _refuse(archive, name, "points outside the destination")
    return PurePosixPath(norm)


def _check_link(archive: Path, name: str, rel: PurePosixPath, target: str, *, hard: bool) -> None:
    """Refuse a link whose target is absolute or leaves the destination (hard links: from the root)."""
    plain = target.replace("\\", "/")  # a Windows-style target is judged as a path, whatever the OS
    if not plain or plain.startswith("/") or _DRIVE.match(plain):
        _refuse(archive, name, f"is a link to the absolute path '{target}'")
    base = "" if hard else posixpath.dirname(str(rel))
    resolved = posixpath.normpath(posixpath.join(base, plain))
    if resolved == ".." or resolved.startswith("../"):
        _refuse(archive, name, f"is a link to '{target}', outside the destination")


def _target(archive: Path, dest: Path, rel: PurePosixPath, name: str) -> Path:
    """Where a member goes; refuses a path through an extracted link, clears a file or link already there."""
    path = dest
    for part in rel.parts[:-1]:
        path = path / part
        if path.is_symlink():
            _refuse(archive, name, "would be written through a symbolic link")
    target = path / rel.parts[-1]
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()  # a repeated member replaces the earlier one; never write through a link
    return target


def _verify_tree(archive: Path, root: Path) -> None:
    """Refuse what a member check cannot see: links that resolve outside ``root`` through other links."""
    real_root = os.path.realpath(root)
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = os.path.join(folder, entry)
            mode = os.lstat(path).st_mode
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(mode):
                real = os.path.realpath(path)
                if os.path.commonpath([real_root, real]) != real_root:
                    _refuse(archive, rel, f"is a link to '{os.readlink(path)}', outside the destination")
            elif _special(mode):
                _refuse(archive, rel, "is a device file, fifo or socket")


def _special(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    shutil.copyfileobj(src, out, _CHUNK)


def _refuse(archive: Path, name: str, why: str) -> NoReturn:
    shown = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
    raise ZsadError(
        f"refusing to extract {archive.name}: member '{shown}' {why}; the archive is unsafe or corrupt, "
        "get it from the dataset's official source"
    )


def _corrupt(archive: Path, exc: BaseException) -> NoReturn:
    detail = " ".join(str(exc).split())[:120] or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno is not None:  # disk full, permissions: not the archive's fault
        raise ZsadError(
            f"cannot write the files of {archive.name} ({detail}); check space and permissions"
        ) from exc
    raise ZsadError(
        f"cannot extract {archive.name} ({detail}); the file may be incomplete or corrupt: delete it and "
        "download again"
    ) from exc
