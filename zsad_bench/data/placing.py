"""Placing a dataset's raw files under ``raw/`` of a prepare's staging folder, and speaking of them as the
user named them.

One folder is copied as ``raw/`` itself. Several folders keep their names side by side
(``raw/<name>/``, as archives extract), so converters that look for a folder by name still find it;
folders sharing a name are merged when no file is in both, else refused. Archives are extracted into
``raw/<stem>/``. After conversion every ``--from`` must have given at least one image or mask: a source
the converter passed over is refused, never silently ignored. For a ``meta.json`` only the files it lists
are copied, so a meta.json beside (or above) the data root never copies a folder into itself.

Copies are hard links where the file system allows (no second copy of a multi-GB dataset).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from zsad_bench.data.limits import ExtractLimits
from zsad_bench.errors import ZsadError

__all__ = ["Placed", "archive_stem", "check_all_used", "in_user_terms", "place_meta_files", "place_sources"]

_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.xz", ".tar.bz2", ".tgz", ".txz", ".zip", ".tar", ".rar")


@dataclass(frozen=True)
class Placed:
    """Where one ``--from`` went under the staging folder (``at``) and, for a merged folder, which files
    (relative to ``raw/``) are its own."""

    source: Path
    at: Path
    files: frozenset[str] | None = None


def place_sources(
    sources: Sequence[Path], raw: Path, link: bool, progress: bool, limits: ExtractLimits | None
) -> list[Placed]:
    """Folders and archives under the new folder ``raw``; where each went."""
    from zsad_bench.data.extract import extract

    folders = [s for s in sources if s.is_dir()]
    archives = [s for s in sources if not s.is_dir()]
    if len(folders) == 1 and not archives:
        place_folder(folders[0], raw, link, progress)
        return [Placed(folders[0], raw)]
    raw.mkdir()
    placed: list[Placed] = []
    groups: dict[str, list[Path]] = {}
    for folder in folders:
        groups.setdefault(folder.resolve().name or "root", []).append(folder)
    for name, group in groups.items():
        target = raw / name
        if len(group) == 1:
            place_folder(group[0], target, link, progress)
            placed.append(Placed(group[0], target))
            continue
        if link:
            raise ZsadError(
                f"--link cannot merge {group[0]} and {group[1]}, two folders named '{name}'; drop --link to "
                "copy them into one, or pass one of them"
            )
        owned = _disjoint_files(group)
        for folder, files in zip(group, owned, strict=True):
            place_folder(folder, target, link, progress, merge=True)
            placed.append(Placed(folder, target, frozenset(f"{name}/{f}" for f in files)))
    for archive in _bar(archives, progress, "extract", "archive"):
        stem = archive_stem(archive)
        target, n = raw / stem, 1
        while target.exists():  # a folder of that name was passed too
            n += 1
            target = raw / f"{stem}-{n}"
        extract(archive, target, limits)
        placed.append(Placed(archive, target))
    return placed


def _disjoint_files(folders: Sequence[Path]) -> list[set[str]]:
    """Each folder's files (relative paths); refuses a file that two folders both hold."""
    owner: dict[str, Path] = {}
    result = []
    for folder in folders:
        files = set()
        for base, _, names in os.walk(folder):
            for name in names:
                rel = Path(base, name).relative_to(folder).as_posix()
                if rel in owner:
                    raise ZsadError(
                        f"--from {owner[rel]} and --from {folder} both hold {rel}; merge them yourself or "
                        "pass one of them"
                    )
                owner[rel] = folder
                files.add(rel)
        result.append(files)
    return result


def archive_stem(archive: Path) -> str:
    name = archive.name
    for suffix in _ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "archive"
    return name


def place_folder(
    source: Path, target: Path, link: bool, progress: bool = False, *, merge: bool = False
) -> None:
    """``source`` at ``target``: a symlink (``link``), else a copy of hard links (files copied across file
    systems); ``merge`` copies into a folder other sources fill too."""
    if link:
        target.symlink_to(source.resolve(), target_is_directory=True)
        return
    bar = _bar(None, progress, f"copy {source.name}", "file")
    try:
        shutil.copytree(source, target, copy_function=_copier(bar), symlinks=True, dirs_exist_ok=merge)
    except OSError as exc:  # unreadable files, a full disk: shutil.Error lists (src, dst, why) triples
        raise _copy_failed(source, exc) from None
    finally:
        if bar is not None:
            bar.close()


def _copy_failed(source: Path, exc: OSError) -> ZsadError:
    return ZsadError(f"cannot copy {source} into the data root ({_why(exc)}); check permissions and space")


def place_meta_files(base: Path, table: pd.DataFrame, raw: Path, meta: Path, progress: bool) -> None:
    """Copy the images and masks ``table`` lists (paths relative to ``base``, checked already) to ``raw``."""
    paths = sorted({*table["image_path"], *(m for m in table["mask_path"] if isinstance(m, str))})
    copy = _copier(bar := _bar(None, progress, f"copy {base.name}", "file"))
    try:
        for rel in paths:
            source = base / rel
            if not source.is_file():
                raise ZsadError(f"{source}, listed in {meta}, does not exist; fix the meta.json or folder")
            (raw / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                copy(str(source), str(raw / rel))
            except OSError as exc:
                raise _copy_failed(source, exc) from None
    finally:
        if bar is not None:
            bar.close()


def _copier(bar: Any) -> Any:
    def copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)  # same file system: no second copy of a multi-GB dataset
        except OSError:
            shutil.copy2(src, dst)
        if bar is not None:
            bar.update()

    return copy


def _why(exc: OSError) -> str:
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        src, _, why = exc.args[0][0]
        return f"{src}: {why}"
    return f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)


def _bar(items: Any, enabled: bool, desc: str, unit: str) -> Any:
    """A progress bar over ``items`` (or a manual counter when ``items`` is None); off when not enabled."""
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False)


def check_all_used(table: pd.DataFrame, placed: Sequence[Placed], raw: Path, dataset_id: str) -> None:
    """Refuse a ``--from`` none of whose files the converter used (paths in ``table`` are under ``raw``)."""
    if len(placed) < 2:
        return
    used = {*table["image_path"], *(m for m in table["mask_path"] if isinstance(m, str))}
    for entry in placed:
        if entry.files is not None:
            hit = not used.isdisjoint(entry.files)
        else:
            prefix = entry.at.relative_to(raw).as_posix() + "/"
            hit = any(path.startswith(prefix) for path in used)
        if not hit:
            raise ZsadError(
                f"--from {entry.source} was not used: no image or mask of '{dataset_id}' was found in it "
                "beside the other --from paths; put the files in one folder (no file twice) and pass that, "
                "or leave it out"
            )


def in_user_terms(exc: ZsadError, places: Iterable[tuple[Path, Path]]) -> ZsadError:
    """``exc`` with every hidden staging path in its message replaced by the path the user gave."""
    message = str(exc)
    pairs = []
    for staged, user in places:
        pairs += [(str(staged), str(user)), (os.path.realpath(staged), str(user))]
    for staged, user in sorted(pairs, key=lambda pair: -len(pair[0])):
        message = message.replace(staged, user)
    exc.args = (message, *exc.args[1:])
    return exc
