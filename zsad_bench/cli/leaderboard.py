"""``zsad leaderboard RESULTS_DIR``: render a folder of result files as a table (or the papers' tables)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from zsad_bench.atomic import atomic_write
from zsad_bench.errors import ZsadError

if TYPE_CHECKING:
    import pandas as pd


@click.command()
@click.argument("results_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["md", "csv", "latex", "html"]), default="md", show_default=True
)
@click.option(
    "--per-class", is_flag=True, help="One row per (dataset, class, model) instead of dataset means."
)
@click.option(
    "--compare",
    type=click.Choice(["published"]),
    help="Show the paper's number and our delta beside each value (CSV: <metric>_published, <metric>_delta).",
)
@click.option(
    "--published",
    "paper",
    is_flag=True,
    help="Render the AnomalyCLIP paper's Tables 1 and 2 from the published CSV instead of results "
    "(--out is then a folder, one file per table).",
)
@click.option(
    "--published-csv",
    type=click.Path(path_type=Path),
    help="The papers' numbers [default: the published_results.csv shipped with zsad-bench].",
)
@click.option("--out", type=click.Path(path_type=Path), help="Write the table to a file instead of stdout.")
def leaderboard(
    results_dir: Path | None,
    fmt: str,
    per_class: bool,
    compare: str | None,
    paper: bool,
    published_csv: Path | None,
    out: Path | None,
) -> None:
    """Dataset means per model (percent), and each model's mean over datasets.

    --per-class shows every class; --compare published puts the paper's number and the delta beside each
    value; --published renders the AnomalyCLIP paper's tables from the published CSV instead.
    """
    from zsad_bench.report import published as papers
    from zsad_bench.report.renderers import render
    from zsad_bench.report.tables import RANDOM_WEIGHTS_NOTE, per_class_leaderboard, uses_random_weights
    from zsad_bench.report.tables import leaderboard as build
    from zsad_bench.results.schema import read_results

    csv_path = published_csv or papers.DEFAULT_PUBLISHED
    if paper:
        if results_dir is not None or fmt != "md" or per_class or compare:
            raise ZsadError(
                "--published renders the papers' markdown tables alone; drop RESULTS_DIR and options"
            )
        _write_paper_tables(papers.read_published(csv_path), out)
        return
    if results_dir is None:
        raise ZsadError("give a RESULTS_DIR (a folder written by 'zsad run --out DIR'), or --published")
    if per_class and compare:
        raise ZsadError("--compare published needs dataset means: the papers publish no per-class numbers")

    results = read_results(results_dir)
    table = per_class_leaderboard(results) if per_class else build(results)
    if compare:
        table = papers.compare_published(table, papers.read_published(csv_path))
    notes = [RANDOM_WEIGHTS_NOTE] if uses_random_weights(table) and fmt != "csv" else []
    text = render(table, fmt, caption=f"zsad-bench leaderboard: {results_dir}", notes=notes)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write(out, text)
        click.echo(f"wrote {out}", err=True)


def _write_paper_tables(published: pd.DataFrame, out: Path | None) -> None:
    from zsad_bench.report.published import paper_tables, write_paper_tables

    if out is None:
        click.echo("\n".join(paper_tables(published).values()), nl=False)
        return
    for path in write_paper_tables(published, out):
        click.echo(f"wrote {path}", err=True)
