"""What the transports share: the error they raise, file hashing, and the short forms used in messages."""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = [
    "CHUNK",
    "DownloadError",
    "abbrev",
    "clip",
    "file_sha256",
    "hash_file",
    "is_done",
    "one_line",
    "safe_name",
]

CHUNK = 1 << 20


class DownloadError(ZsadError):
    """A source that could not be fetched; ``reason`` is the few words the fallback loop lists for it;
    ``offline`` is true when its host could not be reached at all (no network, no name resolution)."""

    def __init__(self, message: str, reason: str, *, offline: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.offline = offline


def hash_file(path: Path) -> Any:
    """The sha256 hasher of a file's bytes, read in 1 MiB chunks (a resumed download keeps updating it)."""
    hasher = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return hash_file(Path(path)).hexdigest()


def is_done(final: Path, sha256: str | None) -> bool:
    """True when ``final`` is there (and, when the spec pins one, has the sha256): nothing to download."""
    return final.is_file() and (not sha256 or file_sha256(final) == sha256.lower())


def safe_name(name: str, fallback: str) -> str:
    """A plain file name (no folders, never ``..``), else ``fallback``."""
    name = name.replace("\\", "/").rpartition("/")[2].strip()
    return name if name not in ("", ".", "..") else fallback


def abbrev(location: str) -> str:
    """``host/…/last-segment`` for a URL (query dropped: it may hold tokens); ids and slugs as they are."""
    parts = urllib.parse.urlsplit(location)
    if not parts.scheme or not parts.netloc:
        return clip(location, 48)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) <= 1:
        return parts.netloc + parts.path
    return f"{parts.netloc}/…/{clip(segments[-1], 48)}"


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())
