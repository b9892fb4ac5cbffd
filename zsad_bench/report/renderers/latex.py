"""LaTeX: a booktabs ``tabular`` with a rule between groups, the best of each group in bold, notes as
footnote-size rows under the table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from zsad_bench.report.tables import Cell, higher_is_better, metric_columns, metric_label, table_rows

__all__ = ["latex_escape", "render"]

_SPECIAL = {
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
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


def render(
    table: pd.DataFrame, decimals: int = 1, caption: str | None = None, notes: Sequence[str] = ()
) -> str:
    """The frame as a ``tabular`` (needs ``booktabs``); ``caption`` is left to the including document."""
    metrics = metric_columns(table)
    levels = table.index.nlevels
    header = [latex_escape(str(n)) for n in table.index.names]
    arrows = [r"$\uparrow$" if higher_is_better(m) else r"$\downarrow$" for m in metrics]
    header += [f"{latex_escape(metric_label(m))} {a}" for m, a in zip(metrics, arrows, strict=True)]
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
        lines.append(" & ".join([*(latex_escape(k) for k in key), *(_cell(c) for c in cells)]) + r" \\")
    lines.append(r"\bottomrule")
    width = levels + len(metrics)
    lines += [rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {latex_escape(note)}}} \\" for note in notes]
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _cell(cell: Cell) -> str:
    text = "--" if cell.text is None else rf"\textbf{{{cell.text}}}" if cell.best else cell.text
    return f"{text} ({latex_escape(cell.paper)})" if cell.paper else text
