"""Google Drive sources: a file id (or Drive URL), fetched past Drive's "cannot scan for viruses" page.

Drive answers a large file with an HTML form instead of the file; its hidden inputs (and a warning cookie)
confirm the download. Folders cannot be fetched without the Drive API, so the error says to download them
in a browser. Drive ignores ``Range``: an interrupted file starts again from zero.
"""

from __future__ import annotations

import contextlib
import html.parser
import http.cookiejar
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zsad_bench.data.sources.common import DownloadError, is_done, safe_name
from zsad_bench.data.sources.http import (
    content_length,
    finish,
    open_url,
    part_path,
    reported,
    stream_to_part,
)
from zsad_bench.data.spec import Source

__all__ = ["GDRIVE_URL", "fetch"]

GDRIVE_URL = "https://drive.usercontent.google.com/download"
_HTML_LIMIT = 1 << 20  # a Drive confirm page is a few kB; never buffer a whole file by mistake


def fetch(source: Source, dest_dir: Path, progress: bool) -> Path:
    """Download a ``gdrive`` source into ``dest_dir``, named by ``source.filename`` or Drive's file name."""
    file_id, is_folder = _drive_id(source.location)
    if is_folder or re.search(r"\bfolder\b", source.note, re.IGNORECASE):
        raise DownloadError(
            f"Google Drive id {file_id} is a folder, which cannot be downloaded here; download "
            f"https://drive.google.com/drive/folders/{file_id} in a browser and run "
            "'zsad datasets prepare ID --from PATH'",
            f"Drive folder, download https://drive.google.com/drive/folders/{file_id} in a browser",
        )
    named = dest_dir / safe_name(source.filename, f"gdrive-{file_id}") if source.filename else None
    if named is not None and is_done(named, source.sha256):
        return named
    query = urllib.parse.urlencode({"id": file_id, "export": "download", "confirm": "t"})
    url = f"{GDRIVE_URL}?{query}"
    with reported(url, f"Google Drive file {file_id}"), _drive_response(url, file_id) as response:
        final = named or dest_dir / safe_name(response.headers.get_filename() or "", f"gdrive-{file_id}")
        if is_done(final, source.sha256):
            return final
        part = part_path(final)  # Drive ignores Range: always from zero
        hasher = stream_to_part(response, part, 0, content_length(response), progress)
    return finish(part, final, hasher, source.sha256)


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
    response = open_url(url, cookies=cookies)
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
            response = open_url(f"{action}{joiner}{urllib.parse.urlencode(form[1])}", cookies=cookies)
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


def _is_html(response: Any) -> bool:
    return response.headers.get_content_type() == "text/html"
