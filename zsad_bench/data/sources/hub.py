"""Hugging Face Hub sources: a dataset repository, one file of it (``source.filename``) or a snapshot.

Files go to the Hugging Face cache (which resumes and deduplicates on its own), not to the download
folder; the path returned points there. The Hub's many error types become one ``DownloadError`` line.
Offline (``HF_HUB_OFFLINE`` set, or one quick request without retries fails to connect) a file is not
asked for at all: the Hub client would retry it for about half a minute before failing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zsad_bench.data.sources.common import DownloadError, clip, file_sha256, one_line
from zsad_bench.data.spec import Source
from zsad_bench.hub import is_offline_error, offline_by_setting, unreachable

__all__ = ["fetch"]


def fetch(source: Source, dest_dir: Path, progress: bool) -> Path:
    """The cached file (or snapshot folder) of an ``hf`` source; ``dest_dir`` is not used."""
    import huggingface_hub  # looked up at call time so tests can patch its functions

    repo = source.location.strip()
    try:
        if source.filename:
            _probe(huggingface_hub, repo, source.filename)
        with _progress(progress):
            if source.filename:
                got = huggingface_hub.hf_hub_download(
                    repo_id=repo, filename=source.filename, repo_type="dataset"
                )
            else:
                got = huggingface_hub.snapshot_download(repo_id=repo, repo_type="dataset")
    except Exception as exc:  # the Hub raises HTTP, offline, gated and validation errors of many types
        raise _error(repo, source.filename, exc) from exc
    path = Path(got)
    if source.sha256 and path.is_file() and (actual := file_sha256(path)) != source.sha256.lower():
        raise DownloadError(
            f"{path.name} from Hugging Face dataset {repo} has sha256 {actual}, expected {source.sha256}; "
            "the mirror holds a different file, use another source",
            "sha256 mismatch",
        )
    return path


def _probe(hub: Any, repo: str, filename: str) -> None:
    """Raise the Hub's offline error when it cannot be reached; any HTTP answer means it can."""
    if offline_by_setting():
        raise ConnectionError("HF_HUB_OFFLINE is set")
    failure = unreachable(hub, hub.hf_hub_url(repo, filename, repo_type="dataset"))
    if failure is not None:
        raise failure


@contextlib.contextmanager
def _progress(progress: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if progress or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _error(repo: str, filename: str | None, exc: Exception) -> DownloadError:
    kinds = {cls.__name__ for cls in type(exc).__mro__}  # by name: the classes moved between Hub versions
    offline = False
    if "GatedRepoError" in kinds:
        reason = f"gated: accept its terms on https://huggingface.co/datasets/{repo} and run 'hf auth login'"
    elif "RepositoryNotFoundError" in kinds:
        reason = "repository not found (or private)"
    elif is_offline_error(exc):  # before EntryNotFound: LocalEntryNotFoundError is one too
        reason, offline = "offline (HF_HUB_OFFLINE is set or the Hub is unreachable)", True
    elif kinds & {"EntryNotFoundError", "RemoteEntryNotFoundError"}:
        reason = f"no file '{filename}' in the repository" if filename else "the repository has no such files"
    else:
        reason = clip(f"{type(exc).__name__}: {exc}", 100)
    what = f"{repo}/{filename}" if filename else repo
    return DownloadError(
        one_line(f"cannot download Hugging Face dataset {what}: {reason}"), reason, offline=offline
    )
