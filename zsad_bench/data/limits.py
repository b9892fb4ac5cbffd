"""How much an archive may unpack to: a total size and a compression ratio, so a zip bomb is refused.

The defaults leave room for every dataset of the catalogue (the largest, MVTec AD, is a 5 GB ``tar.xz``
of PNG images that unpacks to about as much; images are compressed already, so real archives unpack to
one to a few times their size). A zip bomb unpacks to hundreds or thousands of times its size. Both
limits can be raised: ``zsad datasets prepare|download --max-extract-size/--max-extract-ratio``, or the
environment variables ``ZSAD_MAX_EXTRACT_SIZE`` (bytes, or a number with K, M, G or T: ``200G``) and
``ZSAD_MAX_EXTRACT_RATIO``. The ratio is checked only beyond ``RATIO_FLOOR`` bytes: small archives of
tiny files (tar headers, empty masks) compress well and can do no harm.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zsad_bench.errors import ZsadError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RATIO",
    "RATIO_FLOOR",
    "Budget",
    "ExtractLimits",
    "format_size",
    "parse_size",
]

DEFAULT_MAX_BYTES = 64 * 1024**3
DEFAULT_MAX_RATIO = 100.0
RATIO_FLOOR = 256 * 1024**2
SIZE_ENV = "ZSAD_MAX_EXTRACT_SIZE"
RATIO_ENV = "ZSAD_MAX_EXTRACT_RATIO"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, what: str = SIZE_ENV) -> int:
    """``"80G"`` -> bytes (K, M, G, T are powers of 1024; a trailing ``B``/``iB`` is allowed)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if match is None or float(match[1]) <= 0:
        raise ZsadError(f"{what}={text!r} is not a size; give bytes or a number with K, M, G, T (e.g. 200G)")
    return int(float(match[1]) * _UNITS[match[2]])


def format_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@dataclass(frozen=True)
class ExtractLimits:
    """The most an extraction may write (bytes) and the most it may unpack per byte of archive."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def resolve(
        cls, max_bytes: str | int | None = None, max_ratio: float | str | None = None
    ) -> ExtractLimits:
        """The limits given (a flag), else the environment's, else the defaults."""
        size = max_bytes if max_bytes is not None else os.environ.get(SIZE_ENV) or None
        ratio = max_ratio if max_ratio is not None else os.environ.get(RATIO_ENV) or None
        what = "--max-extract-size" if max_bytes is not None else SIZE_ENV
        limit_bytes = DEFAULT_MAX_BYTES if size is None else (
            size if isinstance(size, int) else parse_size(size, what)
        )  # fmt: skip
        limit_ratio = DEFAULT_MAX_RATIO if ratio is None else _ratio(ratio, max_ratio is not None)
        return cls(limit_bytes, limit_ratio)


def _ratio(value: float | str, flag: bool) -> float:
    try:
        ratio = float(value)
    except ValueError:
        ratio = 0.0
    if not ratio >= 1:  # also NaN
        what = "--max-extract-ratio" if flag else RATIO_ENV
        raise ZsadError(f"{what}={value!r} is not a ratio; give a number of at least 1 (e.g. 500)")
    return ratio


class Budget:
    """Counts what the archives of one extraction unpack to and refuses past a limit, before writing."""

    def __init__(self, archives: Sequence[Path], limits: ExtractLimits) -> None:
        self.limits = limits
        self.packed = max(1, sum(_packed_size(Path(a)) for a in archives))
        self.total = 0

    def take(self, archive: Path, size: int) -> None:
        """Count ``size`` more bytes of ``archive``; a ``ZsadError`` line when a limit is passed."""
        self.total += max(0, int(size))
        if self.total > self.limits.max_bytes:
            limit = format_size(self.limits.max_bytes)
            raise ZsadError(
                f"refusing to extract {archive.name}: it unpacks to more than {limit}"
                f" (a zip bomb, or larger than any dataset here); if you trust it, raise the limit with "
                f"--max-extract-size or {SIZE_ENV}"
            )
        ratio = self.total / self.packed
        if self.total > RATIO_FLOOR and ratio > self.limits.max_ratio:
            raise ZsadError(
                f"refusing to extract {archive.name}: it unpacks to over {ratio:.0f} times its size (limit "
                f"{self.limits.max_ratio:g}, a zip bomb?); if you trust it, raise the limit with "
                f"--max-extract-ratio or {RATIO_ENV}"
            )


def _packed_size(archive: Path) -> int:
    """The archive's bytes; for a multi-part RAR (``x.part1.rar``) every part beside it."""
    match = re.search(r"\.part(\d+)\.rar$", archive.name, re.IGNORECASE)
    if match is None:
        return archive.stat().st_size if archive.is_file() else 0
    prefix = archive.name[: match.start()]
    return sum(
        p.stat().st_size
        for p in archive.parent.iterdir()
        if p.name.startswith(prefix) and re.fullmatch(r"\.part\d+\.rar", p.name[len(prefix) :], re.IGNORECASE)
    )
