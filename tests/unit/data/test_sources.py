"""Downloads against a local HTTP server on 127.0.0.1: resume, sha256, Drive confirm page, Kaggle, Hub, and
the fallback loop over a spec's sources."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from zsad_bench.data.sources import DownloadError, alternatives, fetch, fetch_any, gdrive, http, kaggle
from zsad_bench.data.spec import Source
from zsad_bench.errors import ZsadError

DATA = random.Random(0).randbytes(2_500_000)  # a bit over two 1 MiB chunks
SHA = hashlib.sha256(DATA).hexdigest()

Route = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def hub_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub as when online: not in offline mode, and the quick reachability request answered."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *args, **kwargs: None)


# --- a local server --------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # HTTP/1.0: one request per connection, closed after the response

    def do_GET(self) -> None:
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self.send_error(404)
        else:
            route(self)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if urlsplit(p).path == path]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for name in ("NO_PROXY", "no_proxy"):  # a proxy configured for the package index must not see these
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setattr(http, "TIMEOUT_S", 5.0)
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def send_bytes(
    handler: BaseHTTPRequestHandler,
    data: bytes,
    *,
    ranges: bool = True,
    cut: int | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with ``data`` (206 for ``Range: bytes=N-`` when ``ranges``); stop after ``cut`` bytes."""
    start = 0
    requested = handler.headers.get("Range")
    if ranges and requested:
        start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
        if start >= len(data):
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.end_headers()
            return
    body = data[start:]
    handler.send_response(206 if start else 200)
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Content-Type", "application/octet-stream")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body if cut is None else body[:cut])


def send_html(handler: BaseHTTPRequestHandler, page: str) -> None:
    body = page.encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# --- https -----------------------------------------------------------------------------------------


def test_https_download_verifies_sha256(server: _Server, tmp_path: Path) -> None:
    server.routes["/files/data.tar.gz"] = lambda h: send_bytes(h, DATA)
    path = fetch(Source("https", server.url("/files/data.tar.gz"), sha256=SHA), tmp_path, progress=False)
    assert path == tmp_path / "data.tar.gz"
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tar.gz"]
    assert server.hits("/files/data.tar.gz")[0]["user-agent"].startswith("zsad-bench/")


def test_sha256_mismatch_deletes_the_file(server: _Server, tmp_path: Path) -> None:
    server.routes["/files/data.zip"] = lambda h: send_bytes(h, DATA[:-1] + b"\0")
    source = Source("https", server.url("/files/data.zip"), sha256=SHA, filename="mvtec.zip")
    with pytest.raises(ZsadError, match=rf"mvtec\.zip has sha256 [0-9a-f]{{64}}, expected {SHA}"):
        fetch(source, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_from_part(server: _Server, tmp_path: Path) -> None:
    calls = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        send_bytes(handler, DATA, cut=1_200_000 if len(calls) == 1 else None)

    server.routes["/data.bin"] = flaky
    source = Source("https", server.url("/data.bin"), sha256=SHA)
    with pytest.raises(DownloadError, match="stopped after 1200000 of 2500000 bytes; run the command again"):
        fetch(source, tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin.part"]  # never the final name
    assert (tmp_path / "data.bin.part").stat().st_size == 1_200_000

    path = fetch(source, tmp_path, progress=False)
    assert server.hits("/data.bin")[1]["range"] == "bytes=1200000-"
    assert path.read_bytes() == DATA
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_server_ignoring_range_restarts_from_zero(server: _Server, tmp_path: Path) -> None:
    server.routes["/data.bin"] = lambda h: send_bytes(h, DATA, ranges=False)
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from another file")
    path = fetch(Source("https", server.url("/data.bin"), sha256=SHA), tmp_path, progress=False)
    assert server.hits("/data.bin")[0]["range"] == "bytes=29-"
    assert path.read_bytes() == DATA


def test_complete_part_left_before_rename_is_finished(server: _Server, tmp_path: Path) -> None:
    server.routes["/data.bin"] = lambda h: send_bytes(h, DATA)
    (tmp_path / "data.bin.part").write_bytes(DATA)  # the server answers 416 to bytes=len-
    path = fetch(Source("https", server.url("/data.bin"), sha256=SHA), tmp_path, progress=False)
    assert path.read_bytes() == DATA
    assert not (tmp_path / "data.bin.part").exists()


@pytest.mark.parametrize("sha256", [SHA, None])
def test_finished_file_is_not_downloaded_again(server: _Server, tmp_path: Path, sha256: str | None) -> None:
    server.routes["/data.bin"] = lambda h: send_bytes(h, DATA)
    source = Source("https", server.url("/data.bin"), sha256=sha256)
    first = fetch(source, tmp_path, progress=False)
    assert fetch(source, tmp_path, progress=False) == first
    assert len(server.hits("/data.bin")) == 1


def test_http_error_is_one_line(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"answered HTTP 404") as info:
        fetch(Source("https", server.url("/nowhere/x.zip")), tmp_path, progress=False)
    assert "\n" not in str(info.value)
    assert info.value.reason == "HTTP 404"


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ZsadError, match="unknown source kind 'ftp'"):
        fetch(Source("ftp", "ftp://example.org/x.zip"), tmp_path)


# --- Google Drive ----------------------------------------------------------------------------------

CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" value="Download anyway">
<input type="hidden" name="id" value="FILE123"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-42">
</form></body></html>"""


def test_gdrive_follows_the_virus_scan_form(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gdrive, "GDRIVE_URL", server.url("/gdrive/download"))
    server.routes["/gdrive/download"] = lambda h: send_html(
        h, CONFIRM_PAGE.format(action=server.url("/gdrive/go"))
    )

    def confirmed(handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        if query.get("uuid") != ["u-42"] or query.get("id") != ["FILE123"]:
            handler.send_error(400)
            return
        send_bytes(handler, DATA, headers={"Content-Disposition": 'attachment; filename="SDD.zip"'})

    server.routes["/gdrive/go"] = confirmed
    path = fetch(Source("gdrive", "FILE123", sha256=SHA), tmp_path, progress=False)
    assert path == tmp_path / "SDD.zip"
    assert path.read_bytes() == DATA
    first = parse_qs(urlsplit(server.requests[0][0]).query)
    assert first == {"id": ["FILE123"], "export": ["download"], "confirm": ["t"]}


def test_gdrive_html_only_answer_is_refused(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gdrive, "GDRIVE_URL", server.url("/gdrive/download"))
    page = "<html><body>Sorry, you can't view or download this file at this time. Too many users have viewed "
    page += "or downloaded this file recently. (Download quota exceeded)</body></html>"
    server.routes["/gdrive/download"] = lambda h: send_html(h, page)
    with pytest.raises(DownloadError, match=r"did not serve file FILE123 \(download quota exceeded"):
        fetch(Source("gdrive", "FILE123"), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_gdrive_folder_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(
        DownloadError, match=r"is a folder.*in a browser.*zsad datasets prepare ID --from PATH"
    ):
        fetch(
            Source("gdrive", "1oqaxUZYi44jlLT4WtT6D5T6onPTNZXsu", note="AnomalyCLIP's Drive folder"), tmp_path
        )
    with pytest.raises(DownloadError, match="is a folder"):
        fetch(Source("gdrive", "https://drive.google.com/drive/folders/1abcDEF"), tmp_path)


# --- Kaggle ----------------------------------------------------------------------------------------


def test_kaggle_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "home"
    empty.mkdir()
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(empty))
    hint = (
        "Kaggle credentials missing: put kaggle.json (from kaggle.com → Settings → API) in ~/.kaggle/ or set"
    )
    with pytest.raises(ZsadError, match=re.escape(hint)):
        fetch(Source("kaggle", "navoneel/brain-mri-images-for-brain-tumor-detection"), tmp_path / "dl")


@pytest.mark.parametrize("via", ["kaggle.json", "environment"])
def test_kaggle_sends_basic_auth(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    monkeypatch.setattr(kaggle, "KAGGLE_URL", server.url("/api/v1/datasets/download"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    if via == "environment":
        monkeypatch.setenv("KAGGLE_USERNAME", "ada")
        monkeypatch.setenv("KAGGLE_KEY", "s3cret")
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nothing-here"))
    else:
        config = tmp_path / "cfg"
        config.mkdir()
        (config / "kaggle.json").write_text(json.dumps({"username": "ada", "key": "s3cret"}))
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    expected = "Basic " + base64.b64encode(b"ada:s3cret").decode()

    def api(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != expected:
            handler.send_error(401)
            return
        handler.send_response(302)  # as Kaggle: to a signed storage URL
        handler.send_header("Location", server.url("/storage/head-ct.zip?signature=x"))
        handler.end_headers()

    def storage(handler: BaseHTTPRequestHandler) -> None:
        if "Authorization" in handler.headers:  # signed URLs reject a second credential
            handler.send_error(400)
        else:
            send_bytes(handler, DATA)

    server.routes["/api/v1/datasets/download/owner/head-ct"] = api
    server.routes["/storage/head-ct.zip"] = storage
    path = fetch(Source("kaggle", "owner/head-ct"), tmp_path / "dl", progress=False)
    assert path == tmp_path / "dl" / "head-ct.zip"
    assert path.read_bytes() == DATA


# --- Hugging Face ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("hub_reachable")
def test_hf_file_and_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls = []

    def fake_file(**kwargs: str) -> str:
        calls.append(("file", kwargs))
        return str(tmp_path / "cache" / kwargs["filename"])

    def fake_snapshot(**kwargs: str) -> str:
        calls.append(("snapshot", kwargs))
        return str(tmp_path / "cache" / "snapshot")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    got = fetch(Source("hf", "ProgrammerGnome/MVTecAD", filename="mvtec.tar.xz"), tmp_path, progress=False)
    assert got == tmp_path / "cache" / "mvtec.tar.xz"
    assert (
        fetch(Source("hf", "MedOtter/ISIC2016"), tmp_path, progress=False) == tmp_path / "cache" / "snapshot"
    )
    assert calls == [
        ("file", {"repo_id": "ProgrammerGnome/MVTecAD", "filename": "mvtec.tar.xz", "repo_type": "dataset"}),
        ("snapshot", {"repo_id": "MedOtter/ISIC2016", "repo_type": "dataset"}),
    ]


@pytest.mark.usefixtures("hub_reachable")
def test_hf_error_names_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    class RepositoryNotFoundError(Exception):
        pass

    def missing(**kwargs: str) -> str:
        raise RepositoryNotFoundError("404 Client Error")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", missing)
    with pytest.raises(ZsadError, match=r"Hugging Face dataset someone/gone/x\.zip: repository not found"):
        fetch(Source("hf", "someone/gone", filename="x.zip"), tmp_path, progress=False)


@pytest.mark.usefixtures("hub_reachable")
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("LocalEntryNotFoundError", "offline (HF_HUB_OFFLINE is set"),  # a subclass of EntryNotFoundError
        ("OfflineModeIsEnabled", "offline (HF_HUB_OFFLINE is set"),
        ("EntryNotFoundError", "no file 'x.zip' in the repository"),
    ],
)
def test_hf_offline_is_not_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: str, reason: str
) -> None:
    import huggingface_hub
    import huggingface_hub.errors

    def fail(**kwargs: str) -> str:
        raise getattr(huggingface_hub.errors, error)("cannot find the requested file")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    expected = re.escape(f"Hugging Face dataset someone/mirror/x.zip: {reason}")
    with pytest.raises(DownloadError, match=expected):
        fetch(Source("hf", "someone/mirror", filename="x.zip"), tmp_path, progress=False)


# --- the fallback loop -----------------------------------------------------------------------------


def test_fetch_any_falls_through_to_the_next_source(server: _Server, tmp_path: Path) -> None:
    server.routes["/mirror/data.zip"] = lambda h: send_bytes(h, DATA)
    broken = Source("https", server.url("/gone/data.zip"), sha256=SHA)
    mirror = Source("https", server.url("/mirror/data.zip"), sha256=SHA)
    alternative, paths = fetch_any([broken, mirror], tmp_path, dataset_id="demo", progress=False)
    assert alternative == [mirror] and [p.read_bytes() for p in paths] == [DATA]
    assert len(server.hits("/gone/data.zip")) == 1  # tried first


def test_fetch_any_takes_a_group_whole_or_not_at_all(server: _Server, tmp_path: Path) -> None:
    server.routes["/a/images.zip"] = lambda h: send_bytes(h, DATA)
    server.routes["/b/images.zip"] = lambda h: send_bytes(h, DATA)
    server.routes["/b/masks.zip"] = lambda h: send_bytes(h, DATA[:100])
    half = [
        Source("https", server.url("/a/images.zip"), group="a"),
        Source("https", server.url("/a/masks.zip"), group="a"),  # 404: the whole alternative fails
    ]
    whole = [
        Source("https", server.url("/b/images.zip"), filename="b-images.zip", group="b"),
        Source("https", server.url("/b/masks.zip"), filename="b-masks.zip", group="b"),
    ]
    assert alternatives([*half, *whole]) == [half, whole]
    alternative, paths = fetch_any([*half, *whole], tmp_path, dataset_id="isic", progress=False)
    assert alternative == whole and [p.name for p in paths] == ["b-images.zip", "b-masks.zip"]
    with pytest.raises(ZsadError, match=r"\(https 127\.0\.0\.1:\d+/…/masks\.zip: HTTP 404\)"):
        fetch_any(half, tmp_path / "other", dataset_id="isic", progress=False)


def test_fetch_any_without_sources_says_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(ZsadError, match=r"^dataset 'x' lists no download source; use 'zsad datasets prepare"):
        fetch_any([], tmp_path, dataset_id="x")


@pytest.mark.usefixtures("hub_reachable")
def test_fetch_any_lists_every_failure_in_one_line(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def offline(**kwargs: str) -> str:
        raise OSError("hub unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    sources = [
        Source(
            "https", server.url("/very/long/path/to/the/archive/mvtec_anomaly_detection.tar.xz?token=abc")
        ),
        Source("gdrive", "1oqaxUZYi44jlLT4WtT6D5T6onPTNZXsu", note="Drive folder"),
        Source("kaggle", "owner/dataset"),
        Source("hf", "someone/mirror", filename="x.tar.xz"),
    ]
    with pytest.raises(ZsadError) as info:
        fetch_any(sources, tmp_path, dataset_id="mvtec-ad", progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not download 'mvtec-ad' (https 127.0.0.1:")
    assert "/…/mvtec_anomaly_detection.tar.xz: HTTP 404" in message
    assert "token" not in message
    assert "gdrive 1oqaxUZYi44jlLT4WtT6D5T6onPTNZXsu: Drive folder" in message
    assert "kaggle owner/dataset: Kaggle credentials missing" in message
    assert "hf someone/mirror: OSError: hub unreachable" in message
    assert message.endswith("download it yourself and run 'zsad datasets prepare mvtec-ad --from PATH'")
