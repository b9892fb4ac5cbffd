"""``zsad leaderboard RESULTS_DIR``: render a folder of result files as a table."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Write the table to a file instead of stdout.")
def leaderboard(results_dir: Path, fmt: str, out: Path | None) -> None:
    """Dataset means per model (percent), and each model's mean over datasets."""
    from zsad_bench.report import leaderboard as build
    from zsad_bench.report import read_results, render

    results = read_results(results_dir)
    text = render(build(results), fmt)
    if any(r.random_weights for r in results) and fmt == "md":
        text += (
            "\nRows marked '(random weights)' come from untrained test weights: their numbers mean nothing.\n"
        )
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)
