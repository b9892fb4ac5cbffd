"""Renderers of a leaderboard frame: one module per format, each a ``render(table, decimals, caption,
notes) -> str`` function. A new format is one module here and one entry of ``RENDERERS``.

``notes`` (and the notes a comparison with published numbers left in ``table.attrs["notes"]``) follow the
table in md and LaTeX and sit in the HTML caption; CSV is data only. ``caption`` is used by HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from zsad_bench.errors import ZsadError
from zsad_bench.report.renderers import csv, html, latex, md

__all__ = ["FORMATS", "RENDERERS", "render"]

Renderer = Callable[[pd.DataFrame, int, str | None, Sequence[str]], str]
RENDERERS: dict[str, Renderer] = {
    "md": md.render,
    "csv": csv.render,
    "latex": latex.render,
    "html": html.render,
}
FORMATS = tuple(RENDERERS)


def render(
    table: pd.DataFrame,
    fmt: str = "md",
    decimals: int = 1,
    *,
    caption: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Render a leaderboard frame as ``md``, ``csv``, ``latex`` or ``html``."""
    if fmt not in RENDERERS:
        raise ZsadError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
    return RENDERERS[fmt](table, decimals, caption, [*table.attrs.get("notes", ()), *notes])
