"""Preparing a dataset: raw files (a folder, an archive or an AnomalyCLIP ``meta.json``) -> the dataset
folder ``<data_root>/<id>/`` holding the files as shipped under ``raw/`` plus ``manifest.parquet`` and
``dataset.json``.

Everything is built in a hidden staging folder beside the target (``atomic_folder``) and renamed into
place at the end, so an interrupted or failed prepare never leaves a folder that looks prepared, and never
touches a dataset that was already prepared (unless ``force`` replaces it, again by rename).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from zsad_bench.atomic import atomic_folder
from zsad_bench.data.limits import ExtractLimits
from zsad_bench.data.manifest import data_root, is_prepared, validate_manifest, write_manifest
from zsad_bench.data.meta import rows_from_meta
from zsad_bench.data.placing import (
    check_all_used,
    in_user_terms,
    place_folder,
    place_meta_files,
    place_sources,
)
from zsad_bench.data.spec import DatasetSpec
from zsad_bench.data.staging import prepare_lock
from zsad_bench.errors import ZsadError

__all__ = [
    "PrepareReport",
    "compare_counts",
    "download_dataset",
    "prepare_dataset",
    "test_counts",
]

RAW = "raw"
CONVERTER_VERSION = 1


@dataclass
class PrepareReport:
    """What ``prepare_dataset`` did: where, how many images, and every count that differs from the spec."""

    folder: Path
    images: int
    counts: dict[str, tuple[int, int]]
    differences: list[str] = field(default_factory=list)


def prepare_dataset(
    spec: DatasetSpec,
    sources: Sequence[Path],
    root: Path | None = None,
    *,
    link: bool = False,
    force: bool = False,
    origin: str = "",
    progress: bool = False,
    limits: ExtractLimits | None = None,
) -> PrepareReport:
    """Build ``root/spec.id`` from ``sources``: folders, archives, or one ``meta.json``.

    Folders are copied under ``raw/`` (as hard links when on the same file system), or symlinked there
    with ``link=True`` (nothing copied; the folder must stay where it is; archives are refused then).
    Several sources are placed side by side (``data.placing``) and each must give the converter at least
    one file. Archives are extracted there safely, within ``limits``. A ``meta.json`` is read instead of
    the dataset's converter: its paths are relative to its folder, whose listed files are copied (or
    which is linked). Errors name the paths the user gave, never the hidden staging folder.
    """
    root = Path(root) if root is not None else data_root()
    folder = root / spec.id
    if is_prepared(folder) and not force:
        raise ZsadError(f"dataset '{spec.id}' is already prepared in {folder}; pass --force to replace it")
    sources = [Path(s).expanduser() for s in sources]
    _check_sources(spec, sources, root, link)
    meta = [s for s in sources if s.is_file() and s.name.endswith(".json")]
    with prepare_lock(root, spec.id), atomic_folder(folder) as staging:
        raw = staging / RAW
        places: list[tuple[Path, Path]] = [(staging, folder)]
        try:
            if meta:
                base = meta[0].parent
                places.insert(0, (raw, base))
                table = validate_manifest(rows_from_meta(_read_json(meta[0]), spec, base))  # no ../ paths
                if link:
                    place_folder(base, raw, link=True)
                else:
                    place_meta_files(base, table, raw, meta[0], progress)
            else:
                placed = place_sources(sources, raw, link, progress, limits)
                places[:0] = [(p.at, p.source) for p in placed]
                if all(p.at != raw for p in placed):  # several sources side by side: name them all
                    places.append((raw, Path(" + ".join(str(p.source) for p in placed))))
                table = spec.convert(raw)
                check_all_used(table, placed, raw, spec.id)
            table = _under(table, RAW)
            table = validate_manifest(table, folder=staging)
        except ZsadError as exc:
            in_user_terms(exc, places)
            raise
        counts = test_counts(table)
        differences = compare_counts(spec, counts)
        write_manifest(
            table,
            staging,
            info={
                "id": spec.id,
                "title": spec.title,
                "licence": spec.licence,
                "citation": spec.citation,
                "origin": origin or ", ".join(str(s) for s in sources),
                "linked": link,
                "converter": "meta.json" if meta else _qualified_name(spec.converter),
                "converter_version": CONVERTER_VERSION,
                "count_differences": differences,
                "prepared": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
    return PrepareReport(folder, len(table), counts, differences)


def _check_sources(spec: DatasetSpec, sources: Sequence[Path], root: Path, link: bool) -> None:
    """Refuse, before anything is written, sources that cannot be placed as asked."""
    if not sources:
        raise ZsadError(f"no source given; pass --from with the folder or archive of dataset '{spec.id}'")
    for source in sources:
        if not source.exists():
            raise ZsadError(f"{source} does not exist; pass the folder or archive of dataset '{spec.id}'")
        if source.is_dir() and root.resolve().is_relative_to(source.resolve()):
            raise ZsadError(
                f"the data root {root} is inside {source}; point --from at the dataset's own folder "
                f"(or set ZSAD_DATA elsewhere)"
            )
        if link and source.resolve().is_relative_to((root / spec.id).resolve()):
            raise ZsadError(
                f"--link would point into {root / spec.id}, which this prepare replaces; drop --link to copy"
            )
    meta = [s for s in sources if s.is_file() and s.name.endswith(".json")]
    if meta and len(sources) > 1:
        raise ZsadError("pass a meta.json alone, not together with other folders or archives")
    archives = [s for s in sources if s.is_file() and not s.name.endswith(".json")]
    if link and archives:
        raise ZsadError(
            f"--link keeps a folder where it is, but {archives[0]} is an archive, which is extracted into "
            "the data root; drop --link, or extract it yourself and --link the folder"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZsadError(f"{path} is not readable JSON ({exc}); pass an AnomalyCLIP meta.json") from exc
    if not isinstance(meta, dict):
        raise ZsadError(f"{path} is not an AnomalyCLIP meta.json (not a JSON object)")
    return meta


def _qualified_name(function: Any) -> str:
    """``module:function``, the converter's name as ``dataset.json`` records it."""
    return f"{function.__module__}:{function.__qualname__}"


def _under(table: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Paths relative to ``raw/`` -> relative to the dataset folder."""
    table = table.copy()
    for column in ("sample_id", "image_path"):
        table[column] = prefix + "/" + table[column].astype(str)
    table["mask_path"] = [None if m is None or pd.isna(m) else f"{prefix}/{m}" for m in table["mask_path"]]
    return table


# -- counts ---------------------------------------------------------------------------------------
def test_counts(table: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """class -> (normal, anomalous) images of the test split."""
    test = table[table["split"] == "test"]
    return {
        str(name): (int((group["label"] == 0).sum()), int((group["label"] == 1).sum()))
        for name, group in test.groupby("class_name", sort=True)
    }


def compare_counts(spec: DatasetSpec, counts: dict[str, tuple[int, int]]) -> list[str]:
    """One line per difference from the spec's expected test counts (empty when all match)."""
    differences = []
    for name, expected in spec.expected_counts.items():
        found = counts.get(name, (0, 0))
        if found != tuple(expected):
            differences.append(
                f"{name}: {found[0]} normal / {found[1]} anomalous, expected {expected[0]} / {expected[1]}"
            )
    for name in sorted(set(counts) - set(spec.class_names)):
        differences.append(f"{name}: a class the spec does not list")
    if spec.expected_total is not None:
        total = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
        if total != tuple(spec.expected_total):
            differences.append(
                f"total: {total[0]} normal / {total[1]} anomalous, expected "
                f"{spec.expected_total[0]} / {spec.expected_total[1]} (the paper's figure)"
            )
    return differences


# -- downloading ------------------------------------------------------------------------------------
def download_dataset(
    spec: DatasetSpec,
    root: Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    limits: ExtractLimits | None = None,
) -> PrepareReport:
    """Fetch the first alternative of ``spec.sources`` that works, then prepare from what was fetched.

    Downloads go to ``<data_root>/.downloads/<id>/`` (resumable, checksummed) and are kept there, so a
    failed prepare can be retried without downloading again.
    """
    from zsad_bench.data.sources import fetch_any

    root = Path(root) if root is not None else data_root()
    if is_prepared(root / spec.id) and not force:
        raise ZsadError(
            f"dataset '{spec.id}' is already prepared in {root / spec.id}; pass --force to replace it"
        )
    cache = root / ".downloads" / spec.id
    alternative, paths = fetch_any(spec.sources, cache, dataset_id=spec.id, progress=progress)
    paths = [p for p in paths if not _later_rar_part(p)]
    origin = "; ".join(f"{s.kind}:{s.location}" for s in alternative)
    return prepare_dataset(spec, paths, root, force=force, origin=origin, progress=progress, limits=limits)


def _later_rar_part(path: Path) -> bool:
    """``x.part2.rar`` and later parts are read by the extractor through ``x.part1.rar``."""
    name = path.name.lower()
    if not name.endswith(".rar") or ".part" not in name:
        return False
    number = name.rsplit(".part", 1)[1].removesuffix(".rar")
    return number.isdigit() and int(number) > 1
