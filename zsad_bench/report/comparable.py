"""Which rows of a table may be ranked against each other, and what a table must say when they differ.

Every result records the choices that change its numbers (``RunResult.choices()``, defaults for files
written before a choice was recorded). A table ranks rows (bold best, means over datasets) only where
these agree, or says where they do not:

- **Refused** (one line pointing at ``zsad score``): rows that differ in the AUPRO variant (``mvtec`` vs
  ``anomalyclip-200``) or the AUPRO FPR limit, when the table shows AUPRO. Both definitions read the same
  maps yet differ by up to tens of points on a map with an outlier pixel; a footnote would still leave a
  bold number that means nothing, and ``zsad score DIR --aupro-variant ... --fpr-limit ...`` re-scores
  every cache under one definition in seconds, so there is no reason to mix them.
- **Shown in a footnote naming the rows**: the evaluation size (cannot be re-scored: it needs a new
  ``zsad run``), the pixel mode and histogram bins (histogram values are within their recorded error
  bounds of the exact ones; AP and F1-max are missing there anyway), and the precision of the forward pass
  (bf16 moves scores by about 3e-3; it is a property of the run, not of the scoring).
- **Shown in the row's label**: shots (``winclip (4-shot)``) and transductive scoring
  (``musc (transductive)``); such rows are different entries, as the papers print them.
- **Partial data**: a row whose dataset copy differs from the paper's counts (``data.count_differences``)
  is marked ``(partial data)`` and its differences are footnoted.

Means over datasets are taken over the datasets every model of the table has; the others are named in a
footnote, and with fewer than two shared datasets the means are left empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import PIXEL_METRICS
from zsad_bench.results.schema import RunResult

__all__ = [
    "PARTIAL",
    "affecting",
    "check_comparable",
    "describe_choice",
    "partial_note",
]

PARTIAL = "(partial data)"
# refused choice -> (words, the ``zsad score`` flag that re-scores every cache under one value)
_REFUSED = {
    "aupro": ("AUPRO variant", "--aupro-variant"),
    "fpr_limit": ("AUPRO FPR limit", "--fpr-limit"),
}
# shown choice -> words; _AFFECTS: the metrics a choice changes (precision: every metric)
_SHOWN = {
    "eval_size": "evaluation size",
    "pixel": "pixel metrics",
    "precision": "precision",
}
_AFFECTS: dict[str, tuple[str, ...]] = {
    "aupro": ("pixel_aupro",),
    "fpr_limit": ("pixel_aupro",),
    "eval_size": PIXEL_METRICS,
    "pixel": PIXEL_METRICS,
}


def affecting(metric: str) -> list[str]:
    """The recorded choices that change ``metric`` (precision changes every metric, and is only shown)."""
    return [choice for choice, metrics in _AFFECTS.items() if metric in metrics]


def row_name(result: RunResult, label: str) -> str:
    return f"{label} on {result.dataset}"


def describe_choice(choice: str, choices: dict[str, Any]) -> str:
    """``518 px``, ``histogram, 4096 bins``, ``anomalyclip-200``: a choice's value as a note says it."""
    if choice == "eval_size":
        return f"{choices['eval_size']} px"
    if choice == "pixel":
        mode = choices["pixel_mode"]
        return f"histogram, {choices['histogram_bins']} bins" if mode == "histogram" else str(mode)
    return str(choices[choice])


def _groups(results: Sequence[RunResult], labels: Sequence[str], choice: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for result, label in zip(results, labels, strict=True):
        groups.setdefault(describe_choice(choice, result.choices()), []).append(row_name(result, label))
    return groups


def _listing(groups: dict[str, list[str]], limit: int = 3) -> str:
    parts = []
    for value, rows in groups.items():
        shown = ", ".join(rows[:limit]) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
        parts.append(f"{value}: {shown}")
    return "; ".join(parts)


def check_comparable(
    results: Sequence[RunResult], labels: Sequence[str], metrics: Sequence[str]
) -> list[str]:
    """Raise the one-line refusal for rows that must not share a table; else the footnotes naming the
    rows that differ in a shown choice (empty when every row agrees)."""
    notes = []
    for choice, (words, flag) in _REFUSED.items():
        if not any(m in _AFFECTS[choice] for m in metrics):
            continue
        groups = _groups(results, labels, choice)
        if len(groups) > 1:
            most = max(groups, key=lambda value: len(groups[value]))
            raise ZsadError(
                f"results differ in the {words} ({_listing(groups, 2)}); re-score them under one with "
                f"'zsad score RESULTS_DIR {flag} {most}'"
            )
    for choice, words in _SHOWN.items():
        if choice in _AFFECTS and not any(m in _AFFECTS[choice] for m in metrics):
            continue
        groups = _groups(results, labels, choice)
        if len(groups) > 1:
            notes.append(f"Rows differ in {words}, compare them with care: {_listing(groups, 6)}.")
    return notes


def partial_note(results: Sequence[RunResult], labels: Sequence[str]) -> str | None:
    """The footnote of rows on a partial copy of their dataset, or None when every copy is complete."""
    parts = []
    for result, label in zip(results, labels, strict=True):
        differences = result.count_differences
        if differences:
            more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
            parts.append(f"{row_name(result, label)}: {differences[0]}{more}")
    if not parts:
        return None
    return (
        f"Rows marked {PARTIAL} ran on a copy of the dataset whose test counts differ from the paper's "
        f"(see 'zsad datasets verify'): {'; '.join(parts)}."
    )
