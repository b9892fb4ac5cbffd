"""HTTPS sources, and the resumable, checksummed transfer the Drive and Kaggle transports use too.

A file streams into ``<name>.part`` beside its final name, resumes with a ``Range`` request after an
interruption, and is renamed to its final name only once its sha256 matches the spec's, so a
half-finished or corrupt download never looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from zsad_bench import __version__
from zsad_bench.atomic import commit_file
from zsad_bench.data.sources.common import CHUNK, DownloadError, abbrev, clip, hash_file, is_done, safe_name
from zsad_bench.data.spec import Source

__all__ = [
    "TIMEOUT_S",
    "USER_AGENT",
    "content_length",
    "download",
    "fetch",
    "finish",
    "open_url",
    "part_path",
    "reported",
    "stream_to_part",
]

USER_AGENT = f"zsad-bench/{__version__} (python-urllib)"
TIMEOUT_S = 60.0  # per socket operation, not for the whole transfer


def fetch(source: Source, dest_dir: Path, progress: bool) -> Path:
    """Download an ``https`` (or ``http``) source into ``dest_dir``, named by ``source.filename`` or URL."""
    url = source.location.strip()
    host = urllib.parse.urlsplit(url).hostname or "download"
    name = safe_name(source.filename or _url_filename(url), host)
    return download(url, dest_dir / name, sha256=source.sha256, progress=progress)


def download(
    url: str,
    final: Path,
    *,
    sha256: str | None,
    progress: bool,
    auth: str | None = None,
    hints: Mapping[int, str] | None = None,
) -> Path:
    """``url`` into ``final``, resuming its ``.part``; ``auth`` is an ``Authorization`` value, ``hints``
    the advice to give for an HTTP status."""
    if is_done(final, sha256):
        return final
    part = part_path(final)
    with reported(url, final.name, hints):
        hasher = _resume(url, part, auth=auth, progress=progress)
    return finish(part, final, hasher, sha256)


def _resume(url: str, part: Path, *, auth: str | None, progress: bool) -> Any:
    """Append the rest of ``url`` to ``part`` (from zero when the server ignores ``Range``); its sha256."""
    for _ in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        try:
            response = open_url(url, {"Range": f"bytes={offset}-"} if offset else {}, auth)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not offset:
                raise
            exc.close()
            if _content_range(exc.headers.get("Content-Range", ""))[1] == offset:
                return hash_file(part)  # complete already; stopped before the rename
            part.unlink()
            continue
        with response:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if response.status == 206 and start != offset:
                part.unlink(missing_ok=True)
                continue
            if response.status != 206:  # the server ignored Range: start again from zero
                offset, total = 0, content_length(response)
            return stream_to_part(response, part, offset, total, progress)
    raise DownloadError(
        f"{abbrev(url)} answers byte-range requests inconsistently; delete {part} and run again",
        "inconsistent Range answers",
    )


def stream_to_part(response: Any, part: Path, offset: int, total: int | None, progress: bool) -> Any:
    """Stream ``response`` into ``part`` after its first ``offset`` bytes; the sha256 of the whole file.

    The ``.part`` is written in place, not through ``atomic_file``: what arrived must survive a failed
    run under this fixed name so that the next run resumes it.
    """
    from tqdm.auto import tqdm

    hasher = hash_file(part) if offset else hashlib.sha256()
    name = part.name.removesuffix(".part")
    with (
        part.open("ab" if offset else "wb") as out,
        tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
            disable=not progress,
        ) as bar,
    ):  # fmt: skip
        while chunk := response.read(CHUNK):
            out.write(chunk)
            hasher.update(chunk)
            bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(
            f"download of {name} stopped after {size} of {total} bytes; run the command again to resume",
            f"interrupted at {size} of {total} bytes",
        )
    return hasher


def finish(part: Path, final: Path, hasher: Any, sha256: str | None) -> Path:
    """Check the sha256 of a complete ``part`` and move it to ``final``; a mismatch deletes it."""
    actual = hasher.hexdigest()
    if sha256 and actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{final.name} has sha256 {actual}, expected {sha256.lower()}; the file was deleted, run again "
            "or use another source if it keeps happening",
            "sha256 mismatch",
        )
    return commit_file(part, final)  # the final name only ever holds a complete, verified file


def open_url(
    url: str,
    headers: Mapping[str, str] | None = None,
    auth: str | None = None,
    cookies: http.cookiejar.CookieJar | None = None,
) -> Any:
    """The open response to a GET of ``url`` (redirects followed), or ``urllib.error.HTTPError``."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    if auth is not None:
        # Not forwarded on redirect: Kaggle redirects to a signed storage URL that rejects a second
        # credential (requests drops it too when the host changes).
        request.add_unredirected_header("Authorization", auth)
    handlers = [urllib.request.HTTPCookieProcessor(cookies)] if cookies is not None else []
    opener = urllib.request.build_opener(*handlers)  # one per call, so proxy settings are read now
    return opener.open(request, timeout=TIMEOUT_S)


@contextlib.contextmanager
def reported(url: str, what: str, hints: Mapping[int, str] | None = None) -> Iterator[None]:
    """Turn network errors into ``DownloadError``; a ``.part`` written so far stays for resuming."""
    try:
        yield
    except urllib.error.HTTPError as exc:
        hint = (hints or {}).get(exc.code, "check the address or try again later")
        raise DownloadError(
            f"{what}: {abbrev(url)} answered HTTP {exc.code} {exc.reason}; {hint}", f"HTTP {exc.code}"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, short reads
        reason = clip(str(getattr(exc, "reason", None) or exc or type(exc).__name__), 80)
        # URLError is raised before any answer: the host could not be reached (no network, no DNS).
        unreachable = isinstance(exc, urllib.error.URLError)
        raise DownloadError(
            f"{what}: download from {abbrev(url)} failed ({reason}); run the command again to resume",
            f"{'unreachable' if unreachable else 'network error'} ({reason})",
            offline=unreachable,
        ) from exc


def part_path(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def content_length(response: Any) -> int | None:
    return _int(response.headers.get("Content-Length"))


def _content_range(value: str) -> tuple[int | None, int | None]:
    """``(start, total)`` of a ``Content-Range: bytes START-END/TOTAL`` (or ``*/TOTAL``) header."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value.strip())
    if match is None:
        return None, None
    return _int(match[1]), _int(match[2])


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _url_filename(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rpartition("/")[2])
