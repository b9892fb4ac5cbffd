"""Kaggle sources: an ``owner/dataset`` slug, fetched from Kaggle's download API with the user's token.

Credentials are read as the Kaggle CLI reads them (``KAGGLE_USERNAME``/``KAGGLE_KEY``, else
``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle`` ``/kaggle.json``); the transfer is the resumable HTTPS one.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from pathlib import Path

from zsad_bench.data.sources.common import DownloadError, safe_name
from zsad_bench.data.sources.http import download
from zsad_bench.data.spec import Source

__all__ = ["KAGGLE_URL", "fetch"]

KAGGLE_URL = "https://www.kaggle.com/api/v1/datasets/download"
_MISSING = (
    "Kaggle credentials missing: put kaggle.json (from kaggle.com → Settings → API) in ~/.kaggle/ "
    "or set KAGGLE_USERNAME and KAGGLE_KEY"
)
_HINTS = {
    401: "Kaggle rejected the credentials; create a new token on kaggle.com → Settings → API",
    403: "Kaggle refused access; accept the dataset's rules on its kaggle.com page first",
    404: "no such Kaggle dataset; check the owner/dataset slug",
}


def fetch(source: Source, dest_dir: Path, progress: bool) -> Path:
    """Download a ``kaggle`` source into ``dest_dir`` as ``<dataset>.zip`` (or ``source.filename``)."""
    owner, _, dataset = source.location.strip().strip("/").partition("/")
    if not owner or not dataset or "/" in dataset:
        raise DownloadError(f"Kaggle source '{source.location}' is not 'owner/dataset'", "bad Kaggle slug")
    auth = _auth()
    url = f"{KAGGLE_URL}/{urllib.parse.quote(owner)}/{urllib.parse.quote(dataset)}"
    final = dest_dir / safe_name(source.filename or "", f"{dataset}.zip")
    return download(url, final, sha256=source.sha256, progress=progress, auth=auth, hints=_HINTS)


def _auth() -> str:
    """``Authorization`` header value from KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json, as the Kaggle CLI."""
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not (user and key):
        config = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle") / "kaggle.json"
        if not config.is_file():
            raise DownloadError(_MISSING, "Kaggle credentials missing (~/.kaggle/kaggle.json)")
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
