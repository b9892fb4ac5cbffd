"""``zsad reproduce PROTOCOL``: a protocol's whole table as a list of units, run (or resumed) in order.

A unit is either "train MODEL on AUX" (trainable models, once per training pair of the protocol; AUX is
one dataset or several trained on together, ``a+b``) or "evaluate MODEL on DATASET" (with the checkpoint of
the pair whose targets hold DATASET; training-free models are evaluated on every target). A unit whose
output exists is skipped, and an evaluation unit interrupted half-way resumes class by class from its
prediction cache, so rerunning after an interruption redoes no finished work. Layout of OUT::

    checkpoints/<model>__<aux>/     trained models (written whole, then renamed: present = finished);
                                    <aux> is the pair's key, e.g. adaclip__mvtec-ad+cvc-colondb
    results/<model>__<dataset>.json result files (+ results/predictions/ caches)
    leaderboard.{md,csv}            rendered at the end (and html where available)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError
from zsad_bench.protocols import Protocol

__all__ = ["Unit", "missing_datasets", "plan", "run_plan"]


@dataclass(frozen=True)
class Unit:
    """One step of a reproduction: ``train`` (model on aux, a key ``a+b`` for several datasets) or
    ``evaluate`` (model on dataset)."""

    kind: str
    model: str
    dataset: str
    checkpoint: Path | None
    output: Path

    @property
    def done(self) -> bool:
        return (self.output / "config.json").is_file() if self.kind == "train" else self.output.is_file()

    def describe(self) -> str:
        state = "done" if self.done else "to do"
        if self.kind == "train":
            return f"[{state}] train {self.model} on {self.dataset} -> {self.output}"
        using = f" with {self.checkpoint}" if self.checkpoint else ""
        return f"[{state}] evaluate {self.model} on {self.dataset}{using} -> {self.output}"


def plan(protocol: Protocol, models: list[str], out: Path) -> list[Unit]:
    """Every unit of ``protocol`` for ``models``, training before the evaluations that need it."""
    from zsad_bench._factory import model_class

    if not protocol.training:
        raise ZsadError(f"protocol '{protocol.name}' lists no (auxiliary -> targets) pairs to reproduce")
    results = out / "results"
    units: list[Unit] = []
    for name in models:
        cls = model_class(name)
        if cls.trainable:
            for pair in protocol.training:
                checkpoint = out / "checkpoints" / f"{cls.name}__{pair.aux}"
                units.append(Unit("train", cls.name, pair.aux, None, checkpoint))
                units += [
                    Unit("evaluate", cls.name, target, checkpoint, results / f"{cls.name}__{target}.json")
                    for target in pair.targets
                ]
        else:
            targets = dict.fromkeys(t for pair in protocol.training for t in pair.targets)
            units += [Unit("evaluate", cls.name, t, None, results / f"{cls.name}__{t}.json") for t in targets]
    return units


def missing_datasets(units: list[Unit]) -> list[str]:
    """Datasets the plan needs that are neither prepared here nor generated on use (each dataset of a
    training unit's ``a+b``)."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import data_root, is_prepared
    from zsad_bench.protocols import aux_datasets

    needed = dict.fromkeys(d for u in units if not u.done for d in aux_datasets(u.dataset))
    return [d for d in needed if not is_prepared(data_root() / d) and not get_dataset_spec(d).builder]


def run_plan(
    units: list[Unit],
    protocol: Protocol,
    *,
    backbone: str | None = None,
    options: dict[str, Any] | None = None,
    epochs: int | None = None,
    seed: int = 111,
    device: str = "auto",
    batch_size: int | str = "auto",
    num_workers: int | str = "auto",
    quiet: bool = False,
    on_unit: Any = None,
) -> list[Unit]:
    """Run every unit that is not done, in order; returns the units that ran.

    Under ``torchrun`` rank 0 alone trains (the others wait) and every rank takes part in evaluating.
    """
    from zsad_bench.engine import distributed

    missing = missing_datasets(units)
    if missing:
        commands = "; ".join(f"zsad datasets download {d}" for d in missing)
        raise ZsadError(f"datasets not prepared: {', '.join(missing)}; first run: {commands}")
    distributed.setup(device)
    ranks = distributed.current()
    ran = []
    for unit in units:
        if unit.done:
            continue
        if on_unit is not None and ranks.main:
            on_unit(unit)
        if unit.kind == "train":
            if not ranks.main:
                distributed.barrier(ranks)  # until rank 0 has written the checkpoint
                ran.append(unit)
                continue
            _train(
                unit,
                backbone=backbone,
                options=options,
                epochs=epochs,
                seed=seed,
                device=device,
                num_workers=num_workers,
                quiet=quiet,
            )
            distributed.barrier(ranks)
        else:
            _evaluate(
                unit,
                protocol,
                backbone=backbone,
                options=options,
                device=device,
                batch_size=batch_size,
                num_workers=num_workers,
                quiet=quiet,
            )
        ran.append(unit)
    return ran


def _train(
    unit: Unit,
    *,
    backbone: str | None,
    options: dict[str, Any] | None,
    epochs: int | None,
    seed: int,
    device: str,
    num_workers: int | str,
    quiet: bool,
) -> None:
    from zsad_bench._factory import model_class
    from zsad_bench.devices import resolve_device
    from zsad_bench.engine.batching import auto_num_workers, parse_num_workers
    from zsad_bench.engine.checkpoint import train_checkpoint
    from zsad_bench.engine.training import train_config_for

    torch_device = resolve_device(device)
    workers = parse_num_workers(num_workers)
    config = train_config_for(  # the model's own lr, batch size and betas (train_defaults)
        model_class(unit.model),
        seed=seed,
        device=str(torch_device),
        num_workers=auto_num_workers(torch_device) if workers == "auto" else int(workers),
    )
    train_checkpoint(
        unit.model,
        unit.dataset,
        unit.output,
        config,
        epochs=epochs,
        backbone=backbone,
        options=options,
        progress=not quiet,
    )


def _evaluate(
    unit: Unit,
    protocol: Protocol,
    *,
    backbone: str | None,
    options: dict[str, Any] | None,
    device: str,
    batch_size: int | str,
    num_workers: int | str,
    quiet: bool,
) -> None:
    from zsad_bench.engine.config import EvalConfig
    from zsad_bench.engine.runner import RunRequest, execute

    # the checkpoint stores the backbone and options it was trained with
    evaluation = EvalConfig(protocol=protocol, device=device, batch_size=batch_size, num_workers=num_workers)
    request = RunRequest(
        models=[unit.model],
        datasets=[unit.dataset],
        out=unit.output.parent,
        evaluation=evaluation,
        backbone=None if unit.checkpoint else backbone,
        checkpoint=unit.checkpoint,
        options={} if unit.checkpoint else (options or {}),
        quiet=quiet,
    )
    execute(request)
