"""Run by tests/integration/test_torchrun.py under ``torchrun``: the tiny reproduce protocol of
test_reproduce.py (two synthetic datasets, AnomalyCLIP trained on each and CLIP), through the CLI.

    torchrun --standalone --nproc-per-node N _reproduce_worker.py OUT
"""

import dataclasses
import sys

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
ARGS = ["reproduce", "tiny-paper", "--models", "anomalyclip,clip", "--backbone", "test-tiny"]
ARGS += ["--device", "cpu", "-o", "image_size=64", "--epochs", "1", "--batch-size", "1", "--quiet"]
ARGS += ["--out", sys.argv[1]]
main(ARGS)
