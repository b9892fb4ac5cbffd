"""The one way zsad-bench writes a file or a folder: in full beside its target, then renamed into place.

A reader (another process, a resumed run, a user's browser) never sees half a file: it sees the old
content or the new, and an interrupted write leaves at most a hidden temporary beside the target, which
the next write ignores. New files and folders get the modes a plain ``open``/``mkdir`` would give under the
process umask (0o666 / 0o777 less the umask), so a shared data root or a published results folder stays
readable by others; ``tempfile.mkstemp``/``mkdtemp`` would make them private (0o600 / 0o700).

It sits at the bottom of the package (data, results and reports all write), beside ``errors``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "atomic_folder", "atomic_write", "commit_file", "remove_tree"]


def _hidden_sibling(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.{what}-{secrets.token_hex(6)}")


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8). On an exception the temporary file is removed and
    ``path`` is untouched. ``fsync`` flushes the data (and the folder entry) to disk before returning.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes whole files: mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _hidden_sibling(target, "tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(target.parent)


def atomic_write(path: str | Path, data: bytes | str, *, fsync: bool = True) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as handle:
        handle.write(data)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on a clean exit it replaces ``path`` (a folder that
    is there already, or a link, is swapped out and removed); on an exception it is removed.

    With ``replace=False`` the staging folder only takes the place of nothing or of an empty folder: when
    ``path`` holds anything else by then (another process finished first), ``FileExistsError`` is raised,
    the staging folder is removed and ``path`` is left as it is.

    A folder at ``path`` therefore always holds a complete result: readers need no marker file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _hidden_sibling(target, "staging")
    os.mkdir(staging, 0o777)  # the umask applies, unlike mkdtemp's 0o700
    try:
        yield staging
        if not replace:
            _rename_onto_nothing(staging, target)
        elif target.exists() or target.is_symlink():
            trash = _hidden_sibling(target, "replaced")
            os.replace(target, trash)
            os.replace(staging, target)
            remove_tree(trash)
        else:
            os.replace(staging, target)
    except BaseException:
        remove_tree(staging)
        raise
    _fsync_dir(target.parent)


def commit_file(temporary: str | Path, path: str | Path) -> Path:
    """Move a complete file the caller wrote itself onto ``path``: its data reaches the disk first, then
    the rename, then the folder entry. Returns ``path``.

    For a temporary that ``atomic_file`` cannot hold: a resumable download's ``.part`` keeps a fixed name
    and outlives failed runs so the next run can resume it, and is checked (sha256) only once complete.
    """
    temporary, target = Path(temporary), Path(path)
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _fsync_dir(target.parent)
    return target


def remove_tree(path: str | Path) -> None:
    """Remove a file, a link (never what it points to) or a folder tree; nothing if ``path`` is absent."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _rename_onto_nothing(staging: Path, target: Path) -> None:
    try:
        # POSIX renames a folder onto an empty folder and refuses a non-empty one, in one step: a
        # folder another process filled meanwhile is never overwritten.
        os.replace(staging, target)
    except OSError as exc:
        if not (target.exists() or target.is_symlink()):
            raise
        raise FileExistsError(errno.EEXIST, "exists and is not an empty folder", str(target)) from exc


def _fsync_dir(folder: Path) -> None:
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:  # Windows: folders cannot be opened for fsync
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | flag)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
