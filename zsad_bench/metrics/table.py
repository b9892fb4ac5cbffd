"""The metric table: every metric of the suite named once, with how results, tables and plots show it.

A result file, a leaderboard column, a plot axis and the published-numbers comparison all read this
table; nothing else spells a metric's name. ``key`` is the result-file key (the column names of
``reference/published_results.csv``); ``name`` is the key inside its level, as ``image_metrics`` and
``pixel_metrics`` return it, and the key of the function that computes it from a class's ranking curve
(``zsad_bench.metrics.from_curve.CURVE_METRICS``): a new metric is that function plus one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from zsad_bench.errors import ZsadError

__all__ = [
    "IMAGE_METRICS",
    "LEVELS",
    "METRICS",
    "METRIC_KEYS",
    "PIXEL_METRICS",
    "Metric",
    "get_metric",
    "level_names",
    "result_keys",
]

LEVELS = ("image", "pixel")


@dataclass(frozen=True)
class Metric:
    """One metric: its result key, level and the words every report uses for it.

    key: result-file key, ``<level>_<name>`` (``pixel_aupro``).
    level: ``image`` or ``pixel``.
    name: key within the level (``aupro``), what ``image_metrics``/``pixel_metrics`` return.
    label: short table header (``P-AUPRO``).
    title: plot title (``Pixel AUPRO``).
    paper: how the papers print it inside a level's cell (``PRO`` in "(AUROC, PRO)").
    higher_is_better: direction of "best" (bold), of the arrow in headers and of the first sort.
    """

    key: str
    level: str
    name: str
    label: str
    title: str
    paper: str
    higher_is_better: bool = True

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


METRICS: tuple[Metric, ...] = (
    Metric("image_auroc", "image", "auroc", "I-AUROC", "Image AUROC", "AUROC"),
    Metric("image_ap", "image", "ap", "I-AP", "Image AP", "AP"),
    Metric("image_f1_max", "image", "f1_max", "I-F1max", "Image F1-max", "F1-max"),
    Metric("pixel_auroc", "pixel", "auroc", "P-AUROC", "Pixel AUROC", "AUROC"),
    Metric("pixel_ap", "pixel", "ap", "P-AP", "Pixel AP", "AP"),
    Metric("pixel_f1_max", "pixel", "f1_max", "P-F1max", "Pixel F1-max", "F1-max"),
    Metric("pixel_aupro", "pixel", "aupro", "P-AUPRO", "Pixel AUPRO", "PRO"),
)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
IMAGE_METRICS: tuple[str, ...] = tuple(m.key for m in METRICS if m.level == "image")
PIXEL_METRICS: tuple[str, ...] = tuple(m.key for m in METRICS if m.level == "pixel")
_BY_KEY = {m.key: m for m in METRICS}
_KEYS_BY_NAME = {level: {m.name: m.key for m in METRICS if m.level == level} for level in LEVELS}


def level_names(level: str) -> tuple[str, ...]:
    """The names of ``level``'s metrics in table order (``auroc``, ``ap``, ...): the keys that
    ``image_metrics`` / ``pixel_metrics`` return."""
    return tuple(result_keys(level))


def result_keys(level: str) -> dict[str, str]:
    """Name -> result key of ``level``'s metrics in table order (``auroc`` -> ``pixel_auroc``)."""
    try:
        return dict(_KEYS_BY_NAME[level])
    except KeyError:
        raise ValueError(f"unknown metric level '{level}'; choose from {', '.join(LEVELS)}") from None


def get_metric(key: str) -> Metric:
    """The table row of ``key`` (``image_auroc``); an unknown key is a one-line error listing the keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ZsadError(f"unknown metric '{key}'; choose from {', '.join(METRIC_KEYS)}") from None
