"""What every figure shares: reading the results, checking the metric and format options, opening the
prediction caches, one colour per model, safe file names and reproducible saving.

Figures are plain ``matplotlib.figure.Figure`` objects (never registered with pyplot), so nothing leaks
and no display is needed. What cannot be drawn is skipped with a warning on ``log`` (the
``zsad_bench.report.figures`` logger, which ``zsad plot`` prints as ``warning: ...`` lines).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsad_bench.atomic import atomic_file
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.report.tables import RANDOM_WEIGHTS, model_label
from zsad_bench.results.cache import PredictionCache, open_predictions
from zsad_bench.results.schema import RunResult, read_results

__all__ = [
    "FORMATS",
    "Results",
    "by_dataset",
    "check_formats",
    "check_metrics",
    "load_results",
    "log",
    "matplotlib_figure",
    "note_random_weights",
    "open_caches",
    "palette",
    "safe_name",
    "save",
]

FORMATS = ("png", "svg", "pdf")
log = logging.getLogger("zsad_bench.report.figures")

# A folder of result files, or results already read.
Results = Sequence[RunResult] | str | Path


def load_results(results: Results, results_dir: str | Path | None) -> tuple[list[RunResult], Path]:
    """The results and the folder their cache paths are relative to (``results_dir``, else the folder
    they were read from, else the working directory)."""
    if isinstance(results, str | Path):
        return read_results(results), Path(results_dir or results)
    runs = list(results)
    if not runs:
        raise ZsadError("no results to plot")
    return runs, Path(results_dir) if results_dir is not None else Path.cwd()


def check_metrics(metric: str) -> list[str]:
    """``[metric]``, or every metric key for ``all``; an unknown name is a one-line error."""
    if metric == "all":
        return list(METRIC_KEYS)
    if metric not in METRIC_KEYS:
        raise ZsadError(f"unknown metric '{metric}'; choose from {', '.join(METRIC_KEYS)} or all")
    return [metric]


def check_formats(formats: Sequence[str]) -> list[str]:
    """The image formats in lower case without dots (``".PNG"`` -> ``"png"``); unknown ones are an error."""
    chosen = [f.lower().lstrip(".") for f in formats]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ZsadError(
            f"unknown image format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return chosen


def by_dataset(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """The results grouped by dataset, datasets and models in name order."""
    groups: dict[str, list[RunResult]] = {}
    for r in sorted(results, key=lambda r: (r.dataset, model_label(r))):
        groups.setdefault(r.dataset, []).append(r)
    return groups


def open_caches(
    results: Sequence[RunResult], base: Path, kind: str
) -> list[tuple[RunResult, PredictionCache, set[str]]]:
    """(result, its prediction cache, the cache's classes) for each result whose cache opens; the others
    are skipped with a ``<kind>: <model> on <dataset> skipped: <why>`` warning."""
    found = []
    for r in results:
        try:
            cache = open_predictions(r, base)
        except ZsadError as exc:
            log.warning("%s: %s on %s skipped: %s", kind, model_label(r), r.dataset, exc)
            continue
        found.append((r, cache, set(cache.classes())))
    return found


def palette(results: Sequence[RunResult]) -> dict[str, Any]:
    """One colour per model, the same in every figure of these results."""
    import seaborn as sns

    labels = sorted({model_label(r) for r in results})
    return dict(
        zip(labels, sns.color_palette("tab10" if len(labels) <= 10 else "husl", len(labels)), strict=True)
    )


def matplotlib_figure() -> tuple[Any, Any]:
    """seaborn and ``Figure``, with the Agg backend chosen if pyplot is not imported yet.

    The figures never go through pyplot, so they render without a display either way; choosing Agg only
    before pyplot's first import (seaborn imports it) leaves the backend of an interactive session alone.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import seaborn as sns
    from matplotlib.figure import Figure

    return sns, Figure


def note_random_weights(fig: Any, results: Sequence[RunResult]) -> None:
    """A footnote on figures that show untrained weights, as the leaderboard notes them."""
    if any(r.random_weights for r in results):
        fig.supxlabel(
            f"{RANDOM_WEIGHTS}: untrained test weights, the numbers mean nothing", fontsize="x-small"
        )


def safe_name(name: str) -> str:
    """A file-name part: anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "_"


def save(fig: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format; returns the paths."""
    import matplotlib

    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # A fixed hash salt and no dates make the SVG and PDF bytes reproducible.
    no_date = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
    with matplotlib.rc_context({"svg.hashsalt": "zsad-bench"}):
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            with atomic_file(path) as handle:  # a reader never sees half a figure
                fig.savefig(handle, format=fmt, dpi=150, metadata=no_date.get(fmt))
            paths.append(path)
            # The layout is in figure fractions, the same for every format: solve it once, not per format.
            fig.set_layout_engine("none")
    return paths
