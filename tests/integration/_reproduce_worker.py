"""Run by tests/integration/test_torchrun.py under ``torchrun``: the tiny reproduce protocol of
test_reproduce.py (two synthetic datasets, AnomalyCLIP trained on each and CLIP), through the CLI.

    torchrun --standalone --nproc-per-node N _reproduce_worker.py OUT
"""

import dataclasses
import os
import sys

import zsad_bench.engine.training as training
from zsad_bench.cli import main
from zsad_bench.data.synthetic import SPEC
from zsad_bench.protocols import Protocol, TrainingPair
from zsad_bench.registry import DATASETS, PROTOCOLS

DATASETS.register("synthetic-b", dataclasses.replace(SPEC, id="synthetic-b", builder_options={"seed": 7}))
PROTOCOLS.register(
    "tiny-paper",
    Protocol(
        name="tiny-paper",
        eval_size=32,
        training=(TrainingPair("synthetic", ("synthetic-b",)), TrainingPair("synthetic-b", ("synthetic",))),
    ),
)
_fit = training.fit


def fit_and_log_the_rank(*args, **kwargs):
    """The training loop, and a line naming this rank in OUT.trained (beside OUT), so the test can tell
    that rank 0 alone trained."""
    with open(f"{sys.argv[1]}.trained", "a") as log:
        log.write(f"{os.environ.get('RANK', '0')}\n")
    return _fit(*args, **kwargs)


training.fit = fit_and_log_the_rank  # checkpoint.train_checkpoint imports it when it trains

ARGS = ["reproduce", "tiny-paper", "--models", "anomalyclip,clip", "--backbone", "test-tiny"]
ARGS += ["--device", "cpu", "-o", "image_size=64", "--epochs", "1", "--batch-size", "1", "--quiet"]
ARGS += ["--out", sys.argv[1]]
main(ARGS)
