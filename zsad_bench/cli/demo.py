"""``zsad demo``: the whole pipeline offline in under a minute, on synthetic data and a tiny backbone."""

from __future__ import annotations

from pathlib import Path

import click

from zsad_bench.cli._common import info, quiet_option

DEMO_MODELS = ["clip", "clip-ac"]
DEMO_SIZE = 64

RANDOM_WEIGHTS_NOTE = (
    "The demo uses the 'test-tiny' backbone with RANDOM weights: its numbers mean nothing. It shows that "
    "data, models, metrics, result files and leaderboards work end to end, offline."
)


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("zsad-demo-results"),
    show_default=True,
    help="Folder for the result files.",
)
@click.option("--device", default="auto", show_default=True)
@quiet_option
def demo(out: Path, device: str, quiet: bool) -> None:
    """Run CLIP and CLIP-AC on the synthetic dataset with random tiny weights, then print the leaderboard."""
    from zsad_bench._factory import get_protocol
    from zsad_bench.engine import EvalConfig
    from zsad_bench.engine.runner import RunRequest, execute
    from zsad_bench.report import leaderboard, read_results, render

    info(RANDOM_WEIGHTS_NOTE, quiet)
    evaluation = EvalConfig(
        protocol=get_protocol("default").with_overrides(eval_size=DEMO_SIZE),
        device=device,
        batch_size=16,
        num_workers="auto",
        ci=0.95,
    )
    request = RunRequest(
        models=DEMO_MODELS,
        datasets=["synthetic"],
        out=out,
        evaluation=evaluation,
        backbone="test-tiny",
        options={"image_size": DEMO_SIZE},
        quiet=quiet,
    )
    paths = execute(request)
    names = {p.name for p in paths}
    results = [r for r in read_results(out) if r.filename in names]
    click.echo(render(leaderboard(results), "md"), nl=False)
    click.echo(f"\nresults: {out.resolve()}  (zsad leaderboard {out} --format csv)")
    click.echo("note: random weights -- these numbers are not a benchmark result.")
