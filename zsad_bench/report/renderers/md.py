"""Markdown: a pipe table, the best of each group in bold, "–" where missing, then the notes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from zsad_bench.report.tables import MISSING, Cell, headers, metric_columns, table_rows

__all__ = ["render"]


def render(
    table: pd.DataFrame, decimals: int = 1, caption: str | None = None, notes: Sequence[str] = ()
) -> str:
    """The frame as a markdown table followed by one paragraph per note (``caption`` is not shown)."""
    levels = table.index.nlevels
    lines = [
        "| " + " | ".join(headers(table)) + " |",
        "|" + "|".join(["---"] * levels + ["---:"] * len(metric_columns(table))) + "|",
    ]
    for key, cells in table_rows(table, decimals):
        lines.append("| " + " | ".join([*key, *(_cell(c) for c in cells)]) + " |")
    text = "\n".join(lines) + "\n"
    return text + "".join(f"\n{note}\n" for note in notes)


def _cell(cell: Cell) -> str:
    text = MISSING if cell.text is None else f"**{cell.text}**" if cell.best else cell.text
    return f"{text} ({cell.paper})" if cell.paper else text
