"""The ``zsad`` command line. Each command group is a module; heavy imports happen inside commands."""

from __future__ import annotations

import click

from zsad_bench import __version__
from zsad_bench.cli._common import ZsadGroup, accept_quiet_everywhere
from zsad_bench.cli.datasets import datasets
from zsad_bench.cli.demo import demo
from zsad_bench.cli.leaderboard import leaderboard
from zsad_bench.cli.models import models
from zsad_bench.cli.plot import plot
from zsad_bench.cli.reproduce import reproduce
from zsad_bench.cli.run import run
from zsad_bench.cli.score import score
from zsad_bench.cli.train import train

__all__ = ["main"]


@click.group(cls=ZsadGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zsad")
def main() -> None:
    """zsad-bench: zero-shot anomaly detection benchmarks (AnomalyCLIP and baselines, 17 datasets)."""


for command in (demo, models, datasets, train, run, score, leaderboard, reproduce, plot):
    main.add_command(command)
accept_quiet_everywhere(main)
