"""Leaderboard tables: result files -> one pandas frame, and the frame's cells as the renderers see them.

Two views of the same results, both in percent with NaN where a metric is undefined:

- ``leaderboard``: rows ``(dataset, model)`` with the dataset means over classes, then one ``mean`` block per
  model over the datasets every model of the table was run on (named in a footnote when some were left
  out; empty when fewer than two are shared);
- ``per_class_leaderboard``: rows ``(dataset, class, model)``, with a ``mean`` class closing each dataset of
  more than one class.

``table_rows`` turns a frame into cells with the best value of each group (the rows that differ only by
model) marked, in the direction the metric table gives. A frame joined with the papers' numbers by
``zsad_bench.report.published.compare_published`` also carries ``<metric>_published`` and
``<metric>_delta`` columns; its cells then carry ``paper 91.8, −0.3``. Renderers live in
``zsad_bench.report.renderers``.

Both frames compare like with like (``zsad_bench.report.comparable``): results that differ in a choice
that must not be mixed are refused in one line, other differences and partial datasets are footnoted
(``attrs["notes"]``), rows on a partial dataset are marked (``attrs["partial"]``), and each row's
recorded choices travel in ``attrs["choices"]`` for the comparison with the papers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS, get_metric
from zsad_bench.report.comparable import PARTIAL, check_comparable, partial_note
from zsad_bench.results.schema import RunResult

__all__ = [
    "DELTA_SUFFIX",
    "MEAN_ROW",
    "MISSING",
    "PUBLISHED_SUFFIX",
    "RANDOM_WEIGHTS",
    "RANDOM_WEIGHTS_NOTE",
    "Cell",
    "headers",
    "higher_is_better",
    "leaderboard",
    "metric_columns",
    "metric_label",
    "model_label",
    "per_class_leaderboard",
    "signed",
    "table_rows",
    "uses_random_weights",
]

MEAN_ROW = "mean"
MISSING = "–"
PUBLISHED_SUFFIX = "_published"
DELTA_SUFFIX = "_delta"
RANDOM_WEIGHTS = "(random weights)"
RANDOM_WEIGHTS_NOTE = (
    "Rows marked '(random weights)' come from untrained test weights: their numbers mean nothing."
)


# ---------------------------------------------------------------------------------------------- frames


def leaderboard(results: Sequence[RunResult], metrics: Sequence[str] = METRIC_KEYS) -> pd.DataFrame:
    """A ``(dataset, model)``-indexed frame of dataset means in percent (NaN where undefined).

    The last rows, dataset ``mean``, average each model over the datasets that every model of the table
    has (only where each of them defines the metric), so no model's mean covers other datasets than its
    neighbours'; datasets left out are footnoted, and with fewer than two shared the means stay empty.
    """
    notes = _check(results, metrics)
    rows = [{"dataset": r.dataset, "model": model_label(r), **_percents(r.mean, metrics)} for r in results]
    table = pd.DataFrame(rows, columns=["dataset", "model", *metrics])
    table = table.set_index(["dataset", "model"]).sort_index()
    partial = {(r.dataset, model_label(r)) for r in results if r.count_differences}
    if table.index.get_level_values("dataset").nunique() > 1:
        means, shared, note = _means(table)
        if note:
            notes.append(note)
        partial |= {(MEAN_ROW, model) for dataset, model in partial if dataset in shared}
        table = pd.concat([table, means])
    return _with_attrs(table, results, notes, partial)


def _means(table: pd.DataFrame) -> tuple[pd.DataFrame, set[str], str | None]:
    """The ``mean`` block over the datasets every model has, those datasets, and the footnote saying
    which were left out (None when none was)."""
    datasets = table.index.get_level_values("dataset")
    models = table.index.get_level_values("model")
    has = {m: set(datasets[models == m]) for m in models.unique()}
    shared = set.intersection(*has.values())
    left_out = sorted(set(datasets) - shared)
    within = table[datasets.isin(sorted(shared))]
    grouped = within.groupby(level="model")
    means = grouped.mean().where(grouped.count() == grouped.size().to_numpy()[:, None])
    means = means.reindex(sorted(has))
    note = None
    if len(shared) < 2:
        means.loc[:, :] = float("nan")
        note = (
            "Means left empty: the models share fewer than two datasets "
            f"({', '.join(sorted(shared)) or 'none'}), so no mean would compare like with like."
        )
    elif left_out:
        only = "; ".join(f"{d} ({', '.join(sorted(m for m in has if d in has[m]))} only)" for d in left_out)
        note = f"Means are over the datasets every model has ({', '.join(sorted(shared))}); left out: {only}."
    means.index = pd.MultiIndex.from_product([[MEAN_ROW], means.index], names=["dataset", "model"])
    return means, shared, note


def _with_attrs(
    table: pd.DataFrame, results: Sequence[RunResult], notes: list[str], partial: set[tuple[str, str]]
) -> pd.DataFrame:
    note = partial_note(results, [model_label(r) for r in results])
    table.attrs["notes"] = [*notes, *([note] if note else [])]
    table.attrs["partial"] = sorted(partial)
    table.attrs["choices"] = {(r.dataset, model_label(r)): r.choices() for r in results}
    return table


def per_class_leaderboard(results: Sequence[RunResult], metrics: Sequence[str] = METRIC_KEYS) -> pd.DataFrame:
    """A ``(dataset, class, model)``-indexed frame of per-class values in percent (NaN where undefined).

    Datasets of more than one class end with a ``mean`` class: the result file's mean over classes, the
    number the dataset view shows.
    """
    notes = _check(results, metrics)
    rows = []
    for r in results:
        model = model_label(r)
        for name, values in r.per_class.items():
            rows.append({"dataset": r.dataset, "class": name, "model": model, **_percents(values, metrics)})
        if len(r.per_class) > 1:
            rows.append(
                {"dataset": r.dataset, "class": MEAN_ROW, "model": model, **_percents(r.mean, metrics)}
            )
    table = pd.DataFrame(rows, columns=["dataset", "class", "model", *metrics])
    order = table.assign(_mean=table["class"] == MEAN_ROW).sort_values(["dataset", "_mean", "class", "model"])
    table = order.drop(columns="_mean").set_index(["dataset", "class", "model"])
    partial = {(r.dataset, model_label(r)) for r in results if r.count_differences}
    return _with_attrs(table, results, notes, partial)


def _check(results: Sequence[RunResult], metrics: Sequence[str]) -> list[str]:
    """Refuse duplicate rows, unknown metrics and incomparable results; the notes of shown differences."""
    unknown = [m for m in metrics if m not in METRIC_KEYS]
    if unknown:
        raise ZsadError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_KEYS)}")
    seen: set[tuple[str, str]] = set()
    for r in results:
        if (r.dataset, model_label(r)) in seen:
            raise ZsadError(f"two results for model {model_label(r)} on {r.dataset}; keep one file per pair")
        seen.add((r.dataset, model_label(r)))
    return check_comparable(results, [model_label(r) for r in results], metrics)


def model_label(result: RunResult) -> str:
    """The model as every table and figure names it: ``winclip (4-shot)``, marked when untrained."""
    return f"{result.label} {RANDOM_WEIGHTS}" if result.random_weights else result.label


def _percents(values: dict[str, float | None], metrics: Sequence[str]) -> dict[str, float]:
    return {m: float("nan") if values.get(m) is None else 100.0 * values[m] for m in metrics}


def uses_random_weights(table: pd.DataFrame) -> bool:
    """Whether any row of a leaderboard frame comes from random (untrained) weights."""
    return any(label.endswith(RANDOM_WEIGHTS) for label in table.index.get_level_values("model"))


# --------------------------------------------------------------------------------------------- columns


def metric_label(column: str) -> str:
    """The metric table's short label of a column (``I-AUROC``); a column it does not know keeps its name."""
    return get_metric(column).label if column in METRIC_KEYS else column


def higher_is_better(column: str) -> bool:
    """The direction of "best" for a column; a column the metric table does not know counts as higher."""
    return get_metric(column).higher_is_better if column in METRIC_KEYS else True


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The measured metrics of a frame, without the ``_published``/``_delta`` columns a comparison adds."""
    return [c for c in table.columns if not str(c).endswith((PUBLISHED_SUFFIX, DELTA_SUFFIX))]


def headers(table: pd.DataFrame) -> list[str]:
    """The index names, then each metric's label with its direction arrow (``I-AUROC ↑``)."""
    labels = [
        f"{metric_label(m)} {get_metric(m).arrow}" if m in METRIC_KEYS else m for m in metric_columns(table)
    ]
    return [*table.index.names, *labels]


# ----------------------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One metric cell as every renderer needs it; ``text`` is None when the value is missing."""

    value: float
    text: str | None
    best: bool
    paper: str | None = None  # "paper 91.8, −0.3", only where a published number exists


def table_rows(table: pd.DataFrame, decimals: int = 1) -> Iterator[tuple[tuple[str, ...], list[Cell]]]:
    """``(index values, metric cells)`` per row, with the best of each group marked and the model of a
    row on a partial dataset marked ``(partial data)``.

    A group is the rows that differ only by model (a dataset, or a dataset and class); the best is marked
    only where the group has more than one row.
    """
    metrics = metric_columns(table)
    partial = {tuple(row) for row in table.attrs.get("partial", ())}
    group_levels = list(range(table.index.nlevels - 1))
    grouped = table[metrics].groupby(level=group_levels, sort=False)
    best = {m: grouped[m].transform("max" if higher_is_better(m) else "min") for m in metrics}
    size = grouped[metrics[0]].transform("size") if metrics else pd.Series(0, index=table.index)
    for position, key in enumerate(table.index):
        record = table.iloc[position]
        cells = []
        for m in metrics:
            value = float(record[m])
            text = None if pd.isna(value) else f"{value:.{decimals}f}"
            is_best = text is not None and size.iloc[position] > 1 and value == best[m].iloc[position]
            cells.append(Cell(value, text, bool(is_best), _paper(record, m, value, decimals)))
        names = [str(k) for k in key]
        if (names[0], names[-1]) in partial:  # (dataset, model), whatever levels lie between
            names[-1] = f"{names[-1]} {PARTIAL}"
        yield tuple(names), cells


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
