"""Fetching a dataset's raw files from the ``Source`` entries of its spec: HTTPS, Google Drive, Kaggle, Hub.

Every HTTP download streams into ``<name>.part`` beside the final file, resumes it with a ``Range``
request after an interruption, checks the sha256 the spec pins and only then renames it into place, so a
half-finished or corrupt download never looks finished. Failures are ``DownloadError`` (a ``ZsadError``)
lines that say what to do; ``fetch_first`` tries a spec's sources in order and lists why each failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html.parser
import http.client
import http.cookiejar
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from zsad_bench import __version__
from zsad_bench.data.spec import Source
from zsad_bench.errors import ZsadError

__all__ = ["DownloadError", "fetch", "fetch_first", "file_sha256"]

GDRIVE_URL = "https://drive.usercontent.google.com/download"
KAGGLE_URL = "https://www.kaggle.com/api/v1/datasets/download"
USER_AGENT = f"zsad-bench/{__version__} (python-urllib)"
TIMEOUT_S = 60.0  # per socket operation, not for the whole transfer
CHUNK = 1 << 20
_HTML_LIMIT = 1 << 20  # a Drive confirm page is a few kB; never buffer a whole file by mistake
_KAGGLE_MISSING = (
    "Kaggle credentials missing: put kaggle.json (from kaggle.com → Settings → API) in ~/.kaggle/ "
    "or set KAGGLE_USERNAME and KAGGLE_KEY"
)
_KAGGLE_HINTS = {
    401: "Kaggle rejected the credentials; create a new token on kaggle.com → Settings → API",
    403: "Kaggle refused access; accept the dataset's rules on its kaggle.com page first",
    404: "no such Kaggle dataset; check the owner/dataset slug",
}

_Handler = Callable[[Source, Path, bool], Path]


class DownloadError(ZsadError):
    """A source that could not be fetched; ``reason`` is the few words ``fetch_first`` lists for it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def fetch(source: Source, dest_dir: Path, *, progress: bool = True) -> Path:
    """Download one source into ``dest_dir``; the local file, or folder for a Hub snapshot.

    A finished file already in ``dest_dir`` (matching ``source.sha256`` when given) is not downloaded
    again; an interrupted one resumes from its ``.part``. Hub files go to the Hugging Face cache, not
    ``dest_dir``. Raises ``DownloadError`` with what to do.
    """
    handler = _HANDLERS.get(source.kind)
    if handler is None:
        raise DownloadError(
            f"unknown source kind '{source.kind}' for {source.location}; use one of {', '.join(_HANDLERS)}",
            f"unknown kind '{source.kind}'",
        )
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return handler(source, dest_dir, progress)


def fetch_first(
    sources: Sequence[Source],
    dest_dir: Path,
    *,
    dataset_id: str,
    progress: bool = True,
    on_failure: Callable[[Source, ZsadError], None] | None = None,
) -> tuple[Source, Path]:
    """The first source of ``sources`` that downloads, with its local path.

    ``on_failure(source, error)`` is called for each source that fails before the next is tried. When
    all fail, one ``ZsadError`` line names every source tried and why, and tells the user how to use a
    copy they download themselves.
    """
    failures = []
    for source in sources:
        try:
            return source, fetch(source, dest_dir, progress=progress)
        except ZsadError as exc:
            if on_failure is not None:
                on_failure(source, exc)
            reason = getattr(exc, "reason", None) or _clip(str(exc), 80)
            failures.append(f"{source.kind} {_abbrev(source.location)}: {reason}")
    tried = "; ".join(failures) if failures else "it lists no download source"
    raise ZsadError(
        _one_line(
            f"could not download '{dataset_id}' ({tried}); download it yourself and run "
            f"'zsad datasets prepare {dataset_id} --from PATH'"
        )
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return _hash_file(Path(path)).hexdigest()


# --- kinds -----------------------------------------------------------------------------------------


def _fetch_url(source: Source, dest_dir: Path, progress: bool) -> Path:
    url = source.location.strip()
    host = urllib.parse.urlsplit(url).hostname or "download"
    name = _safe_name(source.filename or _url_filename(url), host)
    return _download(url, dest_dir / name, sha256=source.sha256, progress=progress)


def _fetch_gdrive(source: Source, dest_dir: Path, progress: bool) -> Path:
    file_id, is_folder = _drive_id(source.location)
    if is_folder or re.search(r"\bfolder\b", source.note, re.IGNORECASE):
        raise DownloadError(
            f"Google Drive id {file_id} is a folder, which cannot be downloaded here; download "
            f"https://drive.google.com/drive/folders/{file_id} in a browser and run "
            "'zsad datasets prepare ID --from PATH'",
            f"Drive folder, download https://drive.google.com/drive/folders/{file_id} in a browser",
        )
    named = dest_dir / _safe_name(source.filename, f"gdrive-{file_id}") if source.filename else None
    if named is not None and _is_done(named, source.sha256):
        return named
    query = urllib.parse.urlencode({"id": file_id, "export": "download", "confirm": "t"})
    url = f"{GDRIVE_URL}?{query}"
    with _reported(url, f"Google Drive file {file_id}"), _drive_response(url, file_id) as response:
        final = named or dest_dir / _safe_name(response.headers.get_filename() or "", f"gdrive-{file_id}")
        if _is_done(final, source.sha256):
            return final
        part = _part(final)  # Drive ignores Range: always from zero
        hasher = _write(response, part, 0, _int(response.headers.get("Content-Length")), progress)
    return _finish(part, final, hasher, source.sha256)


def _fetch_kaggle(source: Source, dest_dir: Path, progress: bool) -> Path:
    owner, _, dataset = source.location.strip().strip("/").partition("/")
    if not owner or not dataset or "/" in dataset:
        raise DownloadError(f"Kaggle source '{source.location}' is not 'owner/dataset'", "bad Kaggle slug")
    auth = _kaggle_auth()
    url = f"{KAGGLE_URL}/{urllib.parse.quote(owner)}/{urllib.parse.quote(dataset)}"
    final = dest_dir / _safe_name(source.filename or "", f"{dataset}.zip")
    return _download(url, final, sha256=source.sha256, progress=progress, auth=auth, hints=_KAGGLE_HINTS)


def _fetch_hf(source: Source, dest_dir: Path, progress: bool) -> Path:
    import huggingface_hub  # looked up at call time so tests can patch its functions

    repo = source.location.strip()
    try:
        with _hf_progress(progress):
            if source.filename:
                got = huggingface_hub.hf_hub_download(
                    repo_id=repo, filename=source.filename, repo_type="dataset"
                )
            else:
                got = huggingface_hub.snapshot_download(repo_id=repo, repo_type="dataset")
    except Exception as exc:  # the Hub raises HTTP, offline, gated and validation errors of many types
        raise _hf_error(repo, source.filename, exc) from exc
    path = Path(got)
    if source.sha256 and path.is_file() and (actual := file_sha256(path)) != source.sha256.lower():
        raise DownloadError(
            f"{path.name} from Hugging Face dataset {repo} has sha256 {actual}, expected {source.sha256}; "
            "the mirror holds a different file, use another source",
            "sha256 mismatch",
        )
    return path


_HANDLERS: Mapping[str, _Handler] = {
    "https": _fetch_url,
    "http": _fetch_url,
    "gdrive": _fetch_gdrive,
    "kaggle": _fetch_kaggle,
    "hf": _fetch_hf,
}


# --- resumable HTTP --------------------------------------------------------------------------------


def _download(
    url: str,
    final: Path,
    *,
    sha256: str | None,
    progress: bool,
    auth: str | None = None,
    hints: Mapping[int, str] | None = None,
) -> Path:
    if _is_done(final, sha256):
        return final
    part = _part(final)
    with _reported(url, final.name, hints):
        hasher = _resume(url, part, auth=auth, progress=progress)
    return _finish(part, final, hasher, sha256)


def _resume(url: str, part: Path, *, auth: str | None, progress: bool) -> Any:
    """Append the rest of ``url`` to ``part`` (from zero when the server ignores ``Range``); its sha256."""
    for _ in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        try:
            response = _open(url, {"Range": f"bytes={offset}-"} if offset else {}, auth)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not offset:
                raise
            exc.close()
            if _content_range(exc.headers.get("Content-Range", ""))[1] == offset:
                return _hash_file(part)  # complete already; stopped before the rename
            part.unlink()
            continue
        with response:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if response.status == 206 and start != offset:
                part.unlink(missing_ok=True)
                continue
            if response.status != 206:  # the server ignored Range: start again from zero
                offset, total = 0, _int(response.headers.get("Content-Length"))
            return _write(response, part, offset, total, progress)
    raise DownloadError(
        f"{_abbrev(url)} answers byte-range requests inconsistently; delete {part} and run again",
        "inconsistent Range answers",
    )


def _write(response: Any, part: Path, offset: int, total: int | None, progress: bool) -> Any:
    """Stream ``response`` into ``part`` after its first ``offset`` bytes; the sha256 of the whole file."""
    from tqdm.auto import tqdm

    hasher = _hash_file(part) if offset else hashlib.sha256()
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


def _finish(part: Path, final: Path, hasher: Any, sha256: str | None) -> Path:
    actual = hasher.hexdigest()
    if sha256 and actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{final.name} has sha256 {actual}, expected {sha256.lower()}; the file was deleted, run again "
            "or use another source if it keeps happening",
            "sha256 mismatch",
        )
    os.replace(part, final)  # atomic: the final name only ever holds a complete, verified file
    return final


def _open(
    url: str,
    headers: Mapping[str, str] | None = None,
    auth: str | None = None,
    cookies: http.cookiejar.CookieJar | None = None,
) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    if auth is not None:
        # Not forwarded on redirect: Kaggle redirects to a signed storage URL that rejects a second
        # credential (requests drops it too when the host changes).
        request.add_unredirected_header("Authorization", auth)
    handlers = [urllib.request.HTTPCookieProcessor(cookies)] if cookies is not None else []
    opener = urllib.request.build_opener(*handlers)  # one per call, so proxy settings are read now
    return opener.open(request, timeout=TIMEOUT_S)


@contextlib.contextmanager
def _reported(url: str, what: str, hints: Mapping[int, str] | None = None) -> Iterator[None]:
    """Turn network errors into ``DownloadError``; a ``.part`` written so far stays for resuming."""
    try:
        yield
    except urllib.error.HTTPError as exc:
        hint = (hints or {}).get(exc.code, "check the address or try again later")
        raise DownloadError(
            f"{what}: {_abbrev(url)} answered HTTP {exc.code} {exc.reason}; {hint}", f"HTTP {exc.code}"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, short reads
        reason = _clip(str(getattr(exc, "reason", None) or exc or type(exc).__name__), 80)
        raise DownloadError(
            f"{what}: download from {_abbrev(url)} failed ({reason}); run the command again to resume",
            f"network error ({reason})",
        ) from exc


# --- Google Drive, Kaggle, Hub helpers -------------------------------------------------------------


class _FormParser(html.parser.HTMLParser):
    """The forms of an HTML page: ``(action, hidden inputs)`` each."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attr.get("action", ""), {}))
            self._open = True
        elif tag == "input" and self._open and attr.get("type", "").lower() == "hidden" and attr.get("name"):
            self.forms[-1][1][attr["name"]] = attr.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


@contextlib.contextmanager
def _drive_response(url: str, file_id: str) -> Iterator[Any]:
    """The open response carrying the file, past Drive's "cannot scan for viruses" page if it shows one."""
    cookies = http.cookiejar.CookieJar()  # a warning cookie may have to accompany the confirmation
    response = _open(url, cookies=cookies)
    try:
        if _is_html(response):
            page = response.read(_HTML_LIMIT).decode("utf-8", "replace")
            response.close()
            parser = _FormParser()
            parser.feed(page)
            form = next((f for f in parser.forms if "id" in f[1]), None)
            if form is None:
                raise _drive_refused(file_id, page)
            action = urllib.parse.urljoin(url, form[0] or url)
            joiner = "&" if "?" in action else "?"
            response = _open(f"{action}{joiner}{urllib.parse.urlencode(form[1])}", cookies=cookies)
            if _is_html(response):
                raise _drive_refused(file_id, response.read(_HTML_LIMIT).decode("utf-8", "replace"))
        yield response
    finally:
        response.close()


def _drive_refused(file_id: str, page: str) -> DownloadError:
    text = page.lower()
    if "quota" in text or "too many users" in text:
        reason = "download quota exceeded; try again in a day"
    elif "accounts.google.com" in text or "sign in" in text:
        reason = "not shared publicly"
    else:
        reason = "Drive served a web page instead of the file"
    return DownloadError(
        f"Google Drive did not serve file {file_id} ({reason}); download "
        f"https://drive.google.com/file/d/{file_id}/view in a browser and use --from PATH",
        reason,
    )


def _drive_id(location: str) -> tuple[str, bool]:
    """The id in a bare Drive id or a Drive URL, and whether the URL is a folder's."""
    match = re.search(r"(?:/d/|/folders/|[?&]id=)([\w-]+)", location)
    return (match[1] if match else location.strip()), "/folders/" in location


def _kaggle_auth() -> str:
    """``Authorization`` header value from KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json, as the Kaggle CLI."""
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not (user and key):
        config = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle") / "kaggle.json"
        if not config.is_file():
            raise DownloadError(_KAGGLE_MISSING, "Kaggle credentials missing (~/.kaggle/kaggle.json)")
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            user, key = str(data["username"]), str(data["key"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DownloadError(
                f'{config} is not a valid kaggle.json (needs "username" and "key"); download a new one '
                "from kaggle.com → Settings → API",
                "unreadable kaggle.json",
            ) from exc
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode("ascii")


@contextlib.contextmanager
def _hf_progress(progress: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if progress or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _hf_error(repo: str, filename: str | None, exc: Exception) -> DownloadError:
    kinds = {cls.__name__ for cls in type(exc).__mro__}  # by name: the classes moved between Hub versions
    if "GatedRepoError" in kinds:
        reason = f"gated: accept its terms on https://huggingface.co/datasets/{repo} and run 'hf auth login'"
    elif "RepositoryNotFoundError" in kinds:
        reason = "repository not found (or private)"
    elif kinds & {"EntryNotFoundError", "RemoteEntryNotFoundError"}:
        reason = f"no file '{filename}' in the repository"
    elif kinds & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}:
        reason = "offline (HF_HUB_OFFLINE is set or the Hub is unreachable)"
    else:
        reason = _clip(f"{type(exc).__name__}: {exc}", 100)
    what = f"{repo}/{filename}" if filename else repo
    return DownloadError(_one_line(f"cannot download Hugging Face dataset {what}: {reason}"), reason)


# --- small helpers ---------------------------------------------------------------------------------


def _is_done(final: Path, sha256: str | None) -> bool:
    return final.is_file() and (not sha256 or file_sha256(final) == sha256.lower())


def _part(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def _hash_file(path: Path) -> Any:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher


def _is_html(response: Any) -> bool:
    return response.headers.get_content_type() == "text/html"


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


def _safe_name(name: str, fallback: str) -> str:
    """A plain file name (no folders, never ``..``), else ``fallback``."""
    name = name.replace("\\", "/").rpartition("/")[2].strip()
    return name if name not in ("", ".", "..") else fallback


def _abbrev(location: str) -> str:
    """``host/…/last-segment`` for a URL (query dropped: it may hold tokens); ids and slugs as they are."""
    parts = urllib.parse.urlsplit(location)
    if not parts.scheme or not parts.netloc:
        return _clip(location, 48)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) <= 1:
        return parts.netloc + parts.path
    return f"{parts.netloc}/…/{_clip(segments[-1], 48)}"


def _clip(text: str, limit: int) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())
