"""Fetching a dataset's raw files from the ``Source`` entries of its spec, one module per transport.

``http`` (HTTPS with resume and sha256), ``gdrive`` (Google Drive), ``kaggle`` (Kaggle API), ``hub``
(Hugging Face Hub); each is a ``fetch(source, dest_dir, progress) -> Path``. ``fetch_any`` is the one
fallback loop: it tries a spec's sources in order and, when none works, says in one line why each failed
and how to use a copy the user downloads themselves. Failures are ``DownloadError`` (a ``ZsadError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from zsad_bench.data.sources import gdrive, http, hub, kaggle
from zsad_bench.data.sources.common import DownloadError, abbrev, clip, file_sha256, one_line
from zsad_bench.data.spec import Source
from zsad_bench.errors import ZsadError

__all__ = ["TRANSPORTS", "DownloadError", "alternatives", "fetch", "fetch_any", "file_sha256"]

TRANSPORTS: Mapping[str, Callable[[Source, Path, bool], Path]] = {
    "https": http.fetch,
    "http": http.fetch,
    "gdrive": gdrive.fetch,
    "kaggle": kaggle.fetch,
    "hf": hub.fetch,
}


def fetch(source: Source, dest_dir: Path, *, progress: bool = True) -> Path:
    """Download one source into ``dest_dir``; the local file, or folder for a Hub snapshot.

    A finished file already in ``dest_dir`` (matching ``source.sha256`` when given) is not downloaded
    again; an interrupted one resumes from its ``.part``. Hub files go to the Hugging Face cache, not
    ``dest_dir``. Raises ``DownloadError`` with what to do.
    """
    transport = TRANSPORTS.get(source.kind)
    if transport is None:
        raise DownloadError(
            f"unknown source kind '{source.kind}' for {source.location}; use one of {', '.join(TRANSPORTS)}",
            f"unknown kind '{source.kind}'",
        )
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return transport(source, dest_dir, progress)


def alternatives(sources: Sequence[Source]) -> list[list[Source]]:
    """``sources`` as alternatives in order; consecutive sources sharing a ``group`` form one alternative
    (the parts of one download, such as ISIC's images and ground-truth zips)."""
    grouped: list[list[Source]] = []
    for source in sources:
        if source.group and grouped and grouped[-1][0].group == source.group:
            grouped[-1].append(source)
        else:
            grouped.append([source])
    return grouped


def fetch_any(
    sources: Sequence[Source], dest_dir: Path, *, dataset_id: str, progress: bool = True
) -> tuple[list[Source], list[Path]]:
    """The first alternative of ``sources`` (see ``alternatives``) whose every part downloads, with the
    local paths of its parts.

    When all fail, one ``ZsadError`` line names every source tried and why, and tells the user how to use
    a copy they download themselves.
    """
    if not sources:
        raise ZsadError(
            f"dataset '{dataset_id}' lists no download source; use "
            f"'zsad datasets prepare {dataset_id} --from PATH'"
        )
    failures, unreachable = [], []
    for alternative in alternatives(sources):
        paths = []
        for source in alternative:
            try:
                paths.append(fetch(source, dest_dir, progress=progress))
            except ZsadError as exc:
                reason = getattr(exc, "reason", None) or clip(str(exc), 80)
                failures.append(f"{source.kind} {abbrev(source.location)}: {reason}")
                unreachable.append(bool(getattr(exc, "offline", False)))
                break
        else:
            return alternative, paths
    if all(unreachable):
        # Every transport fails at once without a network (no retries), so this is said within seconds.
        raise ZsadError(
            one_line(
                f"cannot download '{dataset_id}': offline, no source could be reached "
                f"({'; '.join(failures)}); download it where there is network access and run "
                f"'zsad datasets prepare {dataset_id} --from PATH'"
            )
        )
    raise ZsadError(
        one_line(
            f"could not download '{dataset_id}' ({'; '.join(failures)}); download it yourself and run "
            f"'zsad datasets prepare {dataset_id} --from PATH'"
        )
    )
