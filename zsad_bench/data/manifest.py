"""The manifest: one row per image of a prepared dataset, and the files that mark a dataset as prepared.

A prepared dataset folder ``<data_root>/<id>/`` holds the images as shipped, ``manifest.parquet`` (the
columns of ``MANIFEST_COLUMNS``) and ``dataset.json`` (facts, counts, the manifest's sha256). Both files
are replaced atomically and ``dataset.json`` is written last, so its presence means "prepared".

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from zsad_bench.atomic import atomic_file
from zsad_bench.errors import ZsadError

__all__ = [
    "INFO_FILE",
    "MANIFEST_COLUMNS",
    "MANIFEST_FILE",
    "SPLITS",
    "data_root",
    "is_prepared",
    "manifest_counts",
    "manifest_sha256",
    "read_info",
    "read_manifest",
    "validate_manifest",
    "write_manifest",
]

MANIFEST_COLUMNS = (
    "sample_id",
    "split",
    "class_name",
    "prompt_name",
    "defect_type",
    "label",
    "image_path",
    "mask_path",
)
MANIFEST_FILE = "manifest.parquet"
INFO_FILE = "dataset.json"
SPLITS = ("test", "train")
NORMAL = "good"

_STRING_COLUMNS = ("sample_id", "split", "class_name", "prompt_name", "defect_type", "image_path")
_PATH_COLUMNS = ("sample_id", "image_path", "mask_path")


def data_root() -> Path:
    """Where prepared datasets live: ``$ZSAD_DATA``, else ``$XDG_CACHE_HOME/zsad-bench/data``
    (``~/.cache/zsad-bench/data`` when ``XDG_CACHE_HOME`` is unset)."""
    explicit = os.environ.get("ZSAD_DATA")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "zsad-bench" / "data"


# -- validation --------------------------------------------------------------------------------------


def _fail(problem: str, sample_id: object | None = None) -> ZsadError:
    where = f"manifest row '{sample_id}': " if sample_id is not None else "manifest: "
    return ZsadError(where + problem)


def _bad_relative_path(value: str) -> bool:
    """True for paths that are not plain relative POSIX paths inside the dataset folder."""
    if "\\" in value or value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        return True
    parts = PurePosixPath(value).parts
    return not parts or any(p in ("..", ".", "") for p in parts)


def validate_manifest(df: pd.DataFrame, folder: str | Path | None = None) -> pd.DataFrame:
    """Check a manifest and return it normalised.

    Checks: exactly the columns of ``MANIFEST_COLUMNS``; string columns hold non-empty strings
    (``mask_path`` may be null); ``label`` is an integer 0/1; ``sample_id`` is unique; ``split`` is
    ``test``/``train``; one ``prompt_name`` per class; ``label == 0`` exactly when ``defect_type`` is
    ``good``; normal rows have no mask; paths are relative and stay inside the dataset folder. With
    ``folder``, every image and mask file must exist under it.

    Returns a new frame with the columns in order, string columns as ``object`` (Python ``str``;
    ``mask_path`` ``None`` where absent), ``label`` as ``int64``, rows stably sorted by
    (split, class_name, sample_id) and a fresh ``RangeIndex``. Raises ``ZsadError`` naming the first
    problem and the offending sample id.
    """
    if not isinstance(df, pd.DataFrame):
        raise _fail(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise _fail(f"missing column(s) {', '.join(missing)}; expected {', '.join(MANIFEST_COLUMNS)}")
    extra = [str(c) for c in df.columns if c not in MANIFEST_COLUMNS]
    if extra:
        raise _fail(f"unknown column(s) {', '.join(extra)}; expected {', '.join(MANIFEST_COLUMNS)}")
    if len(df) == 0:
        raise _fail("no rows; a dataset needs at least one image")

    ids = df["sample_id"].tolist()
    row_name = [v if isinstance(v, str) and v else f"#{i}" for i, v in enumerate(ids)]

    out: dict[str, list[Any]] = {}
    for col in (*_STRING_COLUMNS, "mask_path"):
        values = df[col].tolist()
        clean: list[str | None] = []
        for i, v in enumerate(values):
            if isinstance(v, str) and v:
                clean.append(v)
            elif col == "mask_path" and (v is None or _is_na(v)):
                clean.append(None)
            else:
                raise _fail(f"column '{col}' must hold non-empty strings, got {v!r}", row_name[i])
        out[col] = clean

    label = df["label"]
    if not (pd.api.types.is_integer_dtype(label.dtype) or pd.api.types.is_bool_dtype(label.dtype)):
        raise _fail(f"column 'label' must hold integers 0/1, got dtype {label.dtype}")
    if label.isna().any():
        first = int(label.isna().to_numpy().argmax())
        raise _fail("label is null; use 0 (normal) or 1 (anomalous)", row_name[first])
    labels = [int(v) for v in label.tolist()]
    out["label"] = labels

    seen: set[str] = set()
    for sid in out["sample_id"]:
        if sid in seen:
            raise _fail("sample_id is not unique; every image must appear once", sid)
        seen.add(sid)

    prompt_of: dict[str, str] = {}
    for i, sid in enumerate(out["sample_id"]):
        split, cls, prompt = out["split"][i], out["class_name"][i], out["prompt_name"][i]
        defect, lab, mask = out["defect_type"][i], labels[i], out["mask_path"][i]
        if split not in SPLITS:
            raise _fail(f"split is '{split}'; use 'test' or 'train'", sid)
        if lab not in (0, 1):
            raise _fail(f"label is {lab}; use 0 (normal) or 1 (anomalous)", sid)
        if (lab == 0) != (defect == NORMAL):
            raise _fail(
                f"label {lab} with defect_type '{defect}'; normal images (label 0) and only they "
                f"have defect_type '{NORMAL}'",
                sid,
            )
        if lab == 0 and mask is not None:
            raise _fail(f"normal image has mask_path '{mask}'; normal images have no mask", sid)
        if prompt_of.setdefault(cls, prompt) != prompt:
            raise _fail(f"class '{cls}' has two prompt names, '{prompt_of[cls]}' and '{prompt}'", sid)
        for col in _PATH_COLUMNS:
            value = out[col][i]
            if value is not None and _bad_relative_path(value):
                raise _fail(f"{col} '{value}' is not a relative POSIX path inside the dataset folder", sid)

    if folder is not None:
        base = Path(folder)
        for i, sid in enumerate(out["sample_id"]):
            for col in ("image_path", "mask_path"):
                rel = out[col][i]
                if rel is not None and not (base / rel).is_file():
                    raise _fail(f"{col} file {base / rel} does not exist", sid)

    frame = pd.DataFrame(
        {col: pd.Series(out[col], dtype="int64" if col == "label" else object) for col in MANIFEST_COLUMNS}
    )
    frame = frame.sort_values(["split", "class_name", "sample_id"], kind="stable", ignore_index=True)
    return frame


def _is_na(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# -- reading and writing -------------------------------------------------------------------------------


def is_prepared(folder: str | Path) -> bool:
    """True when ``folder`` holds both ``manifest.parquet`` and ``dataset.json``."""
    base = Path(folder)
    return (base / MANIFEST_FILE).is_file() and (base / INFO_FILE).is_file()


def _prepare_hint(folder: Path, dataset_id: object = None) -> str:
    name = dataset_id if isinstance(dataset_id, str) and dataset_id else (folder.name or "ID")
    return f"run 'zsad datasets prepare {name} --from PATH' or 'zsad datasets download {name}'"


def manifest_sha256(folder: str | Path) -> str:
    """Hex sha256 of the bytes of ``folder/manifest.parquet``."""
    path = Path(folder) / MANIFEST_FILE
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ZsadError(f"no manifest at {path}; {_prepare_hint(Path(folder))}") from None


def read_info(folder: str | Path) -> dict[str, Any]:
    """The contents of ``folder/dataset.json``."""
    base = Path(folder)
    path = base / INFO_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = _prepare_hint(base)
        raise ZsadError(f"dataset at {base} is not prepared (no {INFO_FILE}); {hint}") from None
    except (OSError, ValueError) as exc:
        raise ZsadError(f"{path} is corrupt ({_one_line(exc)}); {_prepare_hint(base)}") from exc
    if not isinstance(info, dict):
        raise ZsadError(f"{path} is corrupt (not a JSON object); {_prepare_hint(base)}")
    return info


def read_manifest(folder: str | Path) -> pd.DataFrame:
    """Read and validate the manifest of a prepared dataset folder (see ``validate_manifest``).

    The manifest must match the sha256 recorded in ``dataset.json``. Raises ``ZsadError`` with the
    command to run when the folder is not prepared or its files are corrupt.
    """
    base = Path(folder)
    if not is_prepared(base):
        hint = _prepare_hint(base)
        raise ZsadError(f"dataset at {base} is not prepared (needs {MANIFEST_FILE} and {INFO_FILE}); {hint}")
    info = read_info(base)
    hint = _prepare_hint(base, info.get("id"))
    data = (base / MANIFEST_FILE).read_bytes()
    recorded = info.get("manifest_sha256")
    if recorded is not None and recorded != hashlib.sha256(data).hexdigest():
        raise ZsadError(
            f"{base / MANIFEST_FILE} does not match the sha256 in {INFO_FILE} (edited or corrupt); {hint}"
        )
    try:
        import pyarrow.parquet as pq

        df = pq.read_table(io.BytesIO(data)).to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise ZsadError(f"{base / MANIFEST_FILE} is corrupt ({_one_line(exc)}); {hint}") from exc
    try:
        return validate_manifest(df)
    except ZsadError as exc:
        raise ZsadError(f"{base / MANIFEST_FILE} is invalid ({exc}); {hint}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # An explicit schema keeps an all-null mask_path a string column (pyarrow would infer "null").
    schema = pa.schema(
        [(c, pa.int64() if c == "label" else pa.string(), c == "mask_path") for c in MANIFEST_COLUMNS]
    )
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def manifest_counts(df: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    """split -> class -> {"normal", "anomalous", "masks"} image counts of a valid manifest."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (split, cls), group in df.groupby(["split", "class_name"], sort=True):
        counts.setdefault(str(split), {})[str(cls)] = {
            "normal": int((group["label"] == 0).sum()),
            "anomalous": int((group["label"] == 1).sum()),
            "masks": int(group["mask_path"].notna().sum()),
        }
    return counts


def write_manifest(df: pd.DataFrame, folder: str | Path, info: Mapping[str, Any]) -> None:
    """Validate ``df`` against the files in ``folder`` and write ``manifest.parquet`` and ``dataset.json``.

    ``dataset.json`` holds ``info`` plus ``n_samples``, ``counts`` (split -> class -> normal, anomalous,
    masks) and ``manifest_sha256``. Both files are written in full to temporary files in ``folder`` first
    (``atomic_file``, so they get the umask's modes); then the old ``dataset.json`` is removed, the
    manifest moved into place and ``dataset.json`` moved in last. An interruption at any point leaves
    either the old prepared dataset or a folder that is not prepared, never a half-written manifest.
    """
    base = Path(folder)
    frame = validate_manifest(df, base)
    data = _parquet_bytes(frame)
    record = {
        **dict(info),
        "n_samples": len(frame),
        "counts": manifest_counts(frame),
        "manifest_sha256": hashlib.sha256(data).hexdigest(),
    }
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"

    # Nested so that the inner file is renamed into place first and dataset.json, whose presence means
    # "prepared", last; an exception in either removes both temporaries.
    with atomic_file(base / INFO_FILE, "wb") as info_out:
        info_out.write(text.encode("utf-8"))
        with atomic_file(base / MANIFEST_FILE, "wb") as manifest_out:
            manifest_out.write(data)
            (base / INFO_FILE).unlink(missing_ok=True)  # not prepared while the manifest changes
