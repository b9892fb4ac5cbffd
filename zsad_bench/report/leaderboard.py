"""Leaderboards: a folder of result files -> one pandas table -> markdown, CSV, LaTeX or HTML.

Two views of the same results, both in percent with NaN where a metric is undefined:

- ``leaderboard``: rows ``(dataset, model)`` with the dataset means over classes, then one ``mean`` block per
  model over the datasets it was run on;
- ``per_class_leaderboard``: rows ``(dataset, class, model)``, with a ``mean`` class closing each dataset of
  more than one class.

Renderers mark the best value of each group (the rows that differ only by model) in bold, the metric
direction in the header (↑) and a missing value as "–". A table joined with the papers' numbers by
``zsad_bench.report.published.compare_published`` also carries ``<metric>_published`` and
``<metric>_delta`` columns: CSV writes them as columns, the other formats as ``91.5 (paper 91.8, −0.3)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from zsad_bench.errors import ZsadError
from zsad_bench.results.schema import METRICS, RunResult

__all__ = [
    "FORMATS",
    "METRIC_LABELS",
    "METRIC_NAMES",
    "RANDOM_WEIGHTS_NOTE",
    "leaderboard",
    "per_class_leaderboard",
    "render",
    "uses_random_weights",
]

FORMATS = ("md", "csv", "latex", "html")
METRIC_NAMES = {
    "image_auroc": "I-AUROC",
    "image_ap": "I-AP",
    "image_f1_max": "I-F1max",
    "pixel_auroc": "P-AUROC",
    "pixel_ap": "P-AP",
    "pixel_f1_max": "P-F1max",
    "pixel_aupro": "P-AUPRO",
}
# Every metric of the suite is higher-is-better; a lower-is-better one (an error rate) would go here and
# flip its arrow, its "best" and the first sort direction of the HTML page.
LOWER_IS_BETTER: frozenset[str] = frozenset()
METRIC_LABELS = {m: f"{name} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m, name in METRIC_NAMES.items()}
MEAN_ROW = "mean"
MISSING = "–"
PUBLISHED_SUFFIX = "_published"
DELTA_SUFFIX = "_delta"
RANDOM_WEIGHTS = "(random weights)"
RANDOM_WEIGHTS_NOTE = (
    "Rows marked '(random weights)' come from untrained test weights: their numbers mean nothing."
)


def leaderboard(results: Sequence[RunResult], metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """A ``(dataset, model)``-indexed frame of dataset means in percent (NaN where undefined).

    The last rows, dataset ``mean``, average each model over its datasets (only where every dataset
    defines the metric, so a mean never silently covers fewer datasets than it claims).
    """
    _check(results, metrics)
    rows = [{"dataset": r.dataset, "model": _label(r), **_percents(r.mean, metrics)} for r in results]
    table = pd.DataFrame(rows, columns=["dataset", "model", *metrics])
    table = table.set_index(["dataset", "model"]).sort_index()
    if table.index.get_level_values("dataset").nunique() > 1:
        grouped = table.groupby(level="model")
        means = grouped.mean().where(grouped.count() == grouped.size().to_numpy()[:, None])
        means.index = pd.MultiIndex.from_product([[MEAN_ROW], means.index], names=["dataset", "model"])
        table = pd.concat([table, means])
    return table


def per_class_leaderboard(results: Sequence[RunResult], metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """A ``(dataset, class, model)``-indexed frame of per-class values in percent (NaN where undefined).

    Datasets of more than one class end with a ``mean`` class: the result file's mean over classes, the
    number the dataset view shows.
    """
    _check(results, metrics)
    rows = []
    for r in results:
        for name, values in r.per_class.items():
            rows.append(
                {"dataset": r.dataset, "class": name, "model": _label(r), **_percents(values, metrics)}
            )
        if len(r.per_class) > 1:
            rows.append(
                {"dataset": r.dataset, "class": MEAN_ROW, "model": _label(r), **_percents(r.mean, metrics)}
            )
    table = pd.DataFrame(rows, columns=["dataset", "class", "model", *metrics])
    order = table.assign(_mean=table["class"] == MEAN_ROW).sort_values(["dataset", "_mean", "class", "model"])
    return order.drop(columns="_mean").set_index(["dataset", "class", "model"])


def _check(results: Sequence[RunResult], metrics: Sequence[str]) -> None:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ZsadError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    seen: set[tuple[str, str]] = set()
    for r in results:
        if (r.dataset, _label(r)) in seen:
            raise ZsadError(f"two results for model {_label(r)} on {r.dataset}; keep one file per pair")
        seen.add((r.dataset, _label(r)))


def _label(result: RunResult) -> str:
    return f"{result.label} {RANDOM_WEIGHTS}" if result.random_weights else result.label


def _percents(values: dict[str, float | None], metrics: Sequence[str]) -> dict[str, float]:
    return {m: float("nan") if values.get(m) is None else 100.0 * values[m] for m in metrics}


def uses_random_weights(table: pd.DataFrame) -> bool:
    """Whether any row of a leaderboard frame comes from random (untrained) weights."""
    return any(label.endswith(RANDOM_WEIGHTS) for label in table.index.get_level_values("model"))


# ---------------------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One metric cell as every renderer needs it; ``text`` is None when the value is missing."""

    value: float
    text: str | None
    best: bool
    paper: str | None = None  # "paper 91.8, −0.3", only where a published number exists


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The measured metrics of a frame, without the ``_published``/``_delta`` columns a comparison adds."""
    return [c for c in table.columns if not str(c).endswith((PUBLISHED_SUFFIX, DELTA_SUFFIX))]


def table_rows(table: pd.DataFrame, decimals: int = 1) -> Iterator[tuple[tuple[str, ...], list[Cell]]]:
    """``(index values, metric cells)`` per row, with the best of each group marked.

    A group is the rows that differ only by model (a dataset, or a dataset and class); the best is marked
    only where the group has more than one row.
    """
    metrics = metric_columns(table)
    group_levels = list(range(table.index.nlevels - 1))
    grouped = table[metrics].groupby(level=group_levels, sort=False)
    best = {m: grouped[m].transform("min" if m in LOWER_IS_BETTER else "max") for m in metrics}
    size = grouped[metrics[0]].transform("size") if metrics else pd.Series(0, index=table.index)
    for position, key in enumerate(table.index):
        record = table.iloc[position]
        cells = []
        for m in metrics:
            value = float(record[m])
            text = None if pd.isna(value) else f"{value:.{decimals}f}"
            is_best = text is not None and size.iloc[position] > 1 and value == best[m].iloc[position]
            cells.append(Cell(value, text, bool(is_best), _paper(record, m, value, decimals)))
        yield tuple(str(k) for k in key), cells


def _paper(record: pd.Series, metric: str, value: float, decimals: int) -> str | None:
    published = record.get(metric + PUBLISHED_SUFFIX)
    if published is None or pd.isna(published):
        return None
    text = f"paper {published:.{decimals}f}"
    if pd.isna(value):
        return text
    # The delta of the numbers as shown, so a reader can check it by subtraction.
    return f"{text}, {signed(round(value, decimals) - published, decimals)}"


def signed(delta: float, decimals: int = 1) -> str:
    """``-0.3`` -> ``"−0.3"``, ``0.2`` -> ``"+0.2"``, ``0.0`` -> ``"±0.0"`` (typographic minus)."""
    text = f"{abs(delta):.{decimals}f}"
    if float(text) == 0:
        return f"±{text}"
    return f"{'−' if delta < 0 else '+'}{text}"


def headers(table: pd.DataFrame) -> list[str]:
    """The index names, then each metric's label with its direction arrow."""
    return [*table.index.names, *(METRIC_LABELS.get(m, m) for m in metric_columns(table))]


# ------------------------------------------------------------------------------------------ renderers


def render(
    table: pd.DataFrame,
    fmt: str = "md",
    decimals: int = 1,
    *,
    caption: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Render a leaderboard frame as ``md``, ``csv``, ``latex`` or ``html``.

    ``notes`` (and the notes a comparison with published numbers left in ``table.attrs["notes"]``) follow
    the table in md and LaTeX and sit in the HTML caption; CSV is data only. ``caption`` is used by HTML.
    """
    notes = [*table.attrs.get("notes", ()), *notes]
    if fmt == "csv":
        return table.round(2).to_csv(na_rep="")
    if fmt == "md":
        return _markdown(table, decimals, notes)
    if fmt == "latex":
        return _latex(table, decimals, notes)
    if fmt == "html":
        from zsad_bench.report.html import render_html

        return render_html(table, decimals, caption=caption, notes=notes)
    raise ZsadError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")


def _markdown(table: pd.DataFrame, decimals: int, notes: Sequence[str]) -> str:
    levels = table.index.nlevels
    lines = [
        "| " + " | ".join(headers(table)) + " |",
        "|" + "|".join(["---"] * levels + ["---:"] * len(metric_columns(table))) + "|",
    ]
    for key, cells in table_rows(table, decimals):
        lines.append("| " + " | ".join([*key, *(_markdown_cell(c) for c in cells)]) + " |")
    text = "\n".join(lines) + "\n"
    return text + "".join(f"\n{note}\n" for note in notes)


def _markdown_cell(cell: Cell) -> str:
    text = MISSING if cell.text is None else f"**{cell.text}**" if cell.best else cell.text
    return f"{text} ({cell.paper})" if cell.paper else text


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "−": "$-$",
    "±": r"$\pm$",
    "–": "--",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and spell the minus and en dash the ASCII way)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(table: pd.DataFrame, decimals: int, notes: Sequence[str]) -> str:
    metrics = metric_columns(table)
    levels = table.index.nlevels
    arrows = [r"$\downarrow$" if m in LOWER_IS_BETTER else r"$\uparrow$" for m in metrics]
    header = [latex_escape(str(n)) for n in table.index.names]
    header += [f"{latex_escape(METRIC_NAMES.get(m, m))} {a}" for m, a in zip(metrics, arrows, strict=True)]
    lines = [
        r"\begin{tabular}{" + "l" * levels + "r" * len(metrics) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
    ]
    previous = None
    for key, cells in table_rows(table, decimals):
        if key[:-1] != previous:  # a rule between groups (datasets, or dataset and class)
            lines.append(r"\midrule")
            previous = key[:-1]
        lines.append(" & ".join([*(latex_escape(k) for k in key), *(_latex_cell(c) for c in cells)]) + r" \\")
    lines.append(r"\bottomrule")
    width = levels + len(metrics)
    lines += [rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {latex_escape(note)}}} \\" for note in notes]
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _latex_cell(cell: Cell) -> str:
    text = "--" if cell.text is None else rf"\textbf{{{cell.text}}}" if cell.best else cell.text
    return f"{text} ({latex_escape(cell.paper)})" if cell.paper else text
