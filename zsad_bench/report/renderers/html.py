"""The HTML leaderboard: one static page, sortable by any column, that works offline.

Everything is inline (CSS and a few lines of vanilla JavaScript, no external assets) so the page can be
attached to a release or opened from disk. Clicking a header sorts the rows by that column: metric
columns numerically from the data-value attribute (best first, missing values last in either direction),
text columns alphabetically; clicking again reverses, and an arrow shows the direction. All text is
escaped with ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from zsad_bench.report.tables import MISSING, Cell, headers, higher_is_better, metric_columns, table_rows

__all__ = ["render"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; font-size: 0.9rem; }
caption { text-align: left; padding-bottom: 0.6rem; }
caption .title { display: block; font-weight: 600; font-size: 1.05rem; }
caption .note { display: block; font-size: 0.8rem; color: #555; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { cursor: pointer; user-select: none; background: #f4f4f4; border-bottom: 2px solid #999; }
th:hover, th:focus { background: #e6e6e6; }
th[data-type="text"] { text-align: left; }
th[data-type="number"] { text-align: right; }
td.metric { text-align: right; font-variant-numeric: tabular-nums; }
.arrow { display: inline-block; width: 1em; color: #06c; }
.paper { color: #666; font-size: 0.85em; }
"""

# Sort rows by the clicked column. Metric cells carry their number in data-value ("" when missing, which
# sorts last both ways); the first click puts the best first, the next one reverses.
_SCRIPT = """
(() => {
  const table = document.getElementById("leaderboard");
  const body = table.tBodies[0];
  const heads = Array.from(table.tHead.rows[0].cells);
  const sortBy = (th, column) => {
    const numeric = th.dataset.type === "number";
    const current = th.getAttribute("aria-sort");
    const direction = current ? (current === "ascending" ? "descending" : "ascending") : th.dataset.first;
    const sign = direction === "ascending" ? 1 : -1;
    const key = (row) => numeric ? row.cells[column].dataset.value : row.cells[column].textContent;
    const ordered = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      if (!numeric) return sign * x.localeCompare(y);
      if (x === "" || y === "") return (x === "") - (y === "");
      return sign * (Number(x) - Number(y));
    });
    ordered.forEach((row) => body.appendChild(row));
    heads.forEach((h) => { h.removeAttribute("aria-sort"); h.querySelector(".arrow").textContent = ""; });
    th.setAttribute("aria-sort", direction);
    th.querySelector(".arrow").textContent = direction === "ascending" ? "▲" : "▼";
  };
  heads.forEach((th, column) => {
    th.addEventListener("click", () => sortBy(th, column));
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(th, column); }
    });
  });
})();
"""


def render(
    table: pd.DataFrame, decimals: int = 1, caption: str | None = None, notes: Sequence[str] = ()
) -> str:
    """A complete HTML page holding the leaderboard ``table`` with ``caption`` and ``notes`` above it."""
    esc = html.escape
    levels = table.index.nlevels
    metrics = metric_columns(table)
    head = []
    for position, label in enumerate(headers(table)):
        if position < levels:
            kind, first = "text", "ascending"
        else:
            kind = "number"
            first = "descending" if higher_is_better(metrics[position - levels]) else "ascending"
        head.append(
            f'<th scope="col" tabindex="0" data-type="{kind}" data-first="{first}" title="sort">'
            f'{esc(str(label))}<span class="arrow"></span></th>'
        )
    body = []
    for key, cells in table_rows(table, decimals):
        row = [f"<td>{esc(k)}</td>" for k in key] + [_cell(c) for c in cells]
        body.append("<tr>" + "".join(row) + "</tr>")
    title = f'<span class="title">{esc(caption or "zsad-bench leaderboard")}</span>'
    caption_html = title + "".join(f'<span class="note">{esc(note)}</span>' for note in notes)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(caption or 'zsad-bench leaderboard')}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            '<table id="leaderboard">',
            f"<caption>{caption_html}</caption>",
            "<thead><tr>" + "".join(head) + "</tr></thead>",
            "<tbody>",
            *body,
            "</tbody>",
            "</table>",
            f"<script>{_SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _cell(cell: Cell) -> str:
    value = "" if cell.text is None else repr(cell.value)
    text = MISSING if cell.text is None else f"<strong>{cell.text}</strong>" if cell.best else cell.text
    paper = f' <span class="paper">({html.escape(cell.paper)})</span>' if cell.paper else ""
    return f'<td class="metric" data-value="{value}">{text}{paper}</td>'
