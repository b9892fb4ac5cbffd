"""One prepare of a dataset at a time, and the leftovers of killed prepares removed by the next one.

A prepare builds ``<root>/<id>`` in a hidden sibling (``.<id>.staging-*``; ``.<id>.preparing-*`` in
older versions) and swaps an old dataset out through ``.<id>.replaced-*``. A prepare killed outright
(SIGKILL, power loss) cannot remove them, and a raw copy there may hold gigabytes. ``prepare_lock`` takes
an exclusive ``flock`` on ``<root>/.locks/<id>.lock`` for the whole prepare: a second prepare of the same
dataset refuses in one line, and the holder knows that no other prepare of that dataset is running, so
every such sibling is stale and is removed. The kernel drops the lock however its holder ends, so a lock
file left by a killed prepare holds nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from zsad_bench.atomic import remove_tree
from zsad_bench.errors import ZsadError

__all__ = ["LOCKS", "STALE_KINDS", "prepare_lock", "stale_siblings"]

LOCKS = ".locks"
STALE_KINDS = ("staging", "preparing", "replaced")


def stale_siblings(root: Path, dataset_id: str) -> list[Path]:
    """The hidden work folders of prepares of ``dataset_id`` in ``root`` (stale when the lock is held)."""
    if not root.is_dir():
        return []
    prefixes = tuple(f".{dataset_id}.{kind}-" for kind in STALE_KINDS)
    return sorted(p for p in root.iterdir() if p.name.startswith(prefixes))


@contextlib.contextmanager
def prepare_lock(root: Path, dataset_id: str) -> Iterator[None]:
    """Hold the lock of ``dataset_id`` in ``root`` and remove what killed prepares of it left behind."""
    locks = root / LOCKS
    try:
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{dataset_id}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ZsadError(
            f"cannot write into the data root {root} ({exc.strerror or exc}); check its permissions or set "
            "ZSAD_DATA elsewhere"
        ) from None
    try:
        if _lock(fd, root, dataset_id):
            for path in stale_siblings(root, dataset_id):
                remove_tree(path)
        yield
    finally:
        os.close(fd)  # drops the flock


def _lock(fd: int, root: Path, dataset_id: str) -> bool:
    """True once locked; False where there is no ``flock`` (Windows: nothing is cleaned there)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ZsadError(f"cannot lock {root / LOCKS / dataset_id}.lock ({exc.strerror or exc})") from None
        raise ZsadError(
            f"dataset '{dataset_id}' is being prepared by another process in {root}; wait for it to finish"
        ) from None
    return True
