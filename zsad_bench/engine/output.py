"""The output folder of a run: checked and locked before the first unit, write failures as one line.

``claim_output`` makes sure ``OUT`` is (or can become) a writable folder and takes an exclusive lock on
``OUT/.zsad-run.lock`` for the whole run, so two ``zsad run`` processes never write one folder at once:
the second refuses at once, naming the lock and the process holding it (it does not wait: a queue of
runs is the shell's job, and a run that silently waits an hour looks hung). The lock is ``flock`` on an
open file, so the kernel releases it when the holder exits, however it exits; a lock file left behind by
a killed run therefore holds nothing and the next run simply takes it.

``write_failure`` turns what the disk says while results are written (full, read-only, not allowed)
into the one line a user can act on. Every result and cache file is written through
``zsad_bench.atomic``, so such a failure leaves no half-written file and earlier files as they were.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from zsad_bench.errors import ZsadError

__all__ = ["LOCK_NAME", "OutputLock", "claim_output", "write_failure"]

LOCK_NAME = ".zsad-run.lock"

# What the disk or the file system answers to a write it will not take: the user's to fix, not a bug.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR}
)


class OutputLock:
    """The held lock of one output folder; ``release`` (or the process's exit) frees it.

    created: the run made the folder. A run that fails before writing anything then removes it again
    (``release(failed=True)``), so a failed run leaves no trace, not even an empty folder with a lock file.
    """

    def __init__(self, path: Path, fd: int | None, created: bool = False) -> None:
        self.path, self._fd, self.created = path, fd, created

    def release(self, failed: bool = False) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        folder = self.path.parent
        if failed and self.created and [p.name for p in folder.iterdir()] == [self.path.name]:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()


def claim_output(out: Path) -> OutputLock:
    """Create ``out`` if need be and lock it for this process; a ``ZsadError`` line when it is a file,
    cannot be created or written, or another run holds it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ZsadError(f"output folder {out} is a file; give a folder (new, or one holding results)")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZsadError(
            f"cannot create output folder {out} ({_reason(exc)}); choose another folder"
        ) from None
    lock = out / LOCK_NAME
    try:
        fd = open_lock_file(lock)
    except OSError as exc:
        raise ZsadError(
            f"cannot write into output folder {out} ({_reason(exc)}); choose another folder"
        ) from None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; runs there are not guarded
        return OutputLock(lock, fd, created)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ZsadError(
                f"cannot lock output folder {out} ({_reason(exc)}); choose another folder"
            ) from None
        raise ZsadError(
            f"output folder {out} is in use by another zsad run (pid {holder}, lock {lock}); wait for it to "
            "finish or choose another --out"
        ) from None
    # The holder's pid lives in the locked file itself (not written beside it and renamed, as every other
    # write is): a renamed-in file would be another inode, unlocked.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return OutputLock(lock, fd, created)


def open_lock_file(path: Path) -> int:
    """The lock file's descriptor, created with the umask's mode (a module function so tests can refuse)."""
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


def write_failure(exc: OSError, out: Path) -> ZsadError | None:
    """The one line for ``exc`` raised while writing results into ``out``; ``None`` when it is not a
    refused write (a bug, or a read that failed, which its reader reports)."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    name = exc.filename if isinstance(exc.filename, str) else None
    inside = name is not None and Path(name).resolve().is_relative_to(Path(out).resolve())
    if not inside and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    what = name or str(out)
    hint = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose another --out"
    return ZsadError(
        f"cannot write {what} ({_reason(exc)}); {hint} and rerun: result files already written are intact"
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
