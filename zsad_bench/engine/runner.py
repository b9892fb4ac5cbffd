"""Running models on datasets and writing result files: what ``zsad run``, ``zsad demo`` and
``zsad reproduce`` share. Validates every name first, so a typo fails before any work is done."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsad_bench.engine.config import EvalConfig
from zsad_bench.errors import ZsadError

if TYPE_CHECKING:
    import torch

    from zsad_bench.data import DatasetSpec

__all__ = ["RunRequest", "check_request", "execute"]


def _run_defaults() -> EvalConfig:
    # the command line's defaults: the device, batch size and loader workers that suit the machine
    return EvalConfig(device="auto", batch_size="auto", num_workers="auto")


@dataclass(frozen=True)
class RunRequest:
    """Evaluate every model of ``models`` on every dataset of ``datasets`` under ``evaluation``; write
    one result file per pair into ``out``.

    backbone: MODEL[:PRETRAINED] replacing each model's default; checkpoint: a trained model's folder
    (or official file), or {model: path} giving each model its own (``_factory.checkpoint_map``);
    options: detector options (``-o key=value``); shots: few-shot references per class (0: zero-shot);
    cache: keep predictions under ``out/predictions/`` (and resume from them); quiet: no progress output.
    """

    models: Sequence[str]
    datasets: Sequence[str]
    out: Path
    evaluation: EvalConfig = field(default_factory=_run_defaults)
    backbone: str | None = None
    checkpoint: Path | Mapping[str, Path] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    shots: int = 0
    cache: bool = True
    quiet: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "out", Path(self.out))


def info(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def quiet_libraries() -> None:
    """Keep third-party chatter (open_clip's logging, QuickGELU warnings) out of the terminal."""
    logging.getLogger("root").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*QuickGELU mismatch.*")


def execute(request: RunRequest) -> list[Path]:
    """Check everything first, then run each (model, dataset) and write its result.

    Before the first unit runs: every model name, option and backbone, every dataset (found prepared, or
    built when embedded), the zero-shot guard against a checkpoint's training data, and the output folder
    (a folder, writable, and locked against a second run on it, see ``engine.output``). So a typo in the
    last name fails before the first result is written, and a failed run leaves earlier results as they
    were. A refused write (a full disk, a read-only folder) is one ``ZsadError`` line.

    Under ``torchrun`` every rank takes part in each evaluation (see ``engine.distributed``) and rank 0
    alone locks the folder and writes the result files (the others return an empty list).

    With ``request.cache``, predictions go to ``OUT/predictions/<model>__<dataset>/``; classes already
    there under the same key (same detector, weights, data and size) are not run again, and a unit
    replayed wholly from the cache keeps the timings its result measured (``record.keep_measured_timings``).
    """
    from zsad_bench.engine.distributed import broadcast, current, setup
    from zsad_bench.engine.output import claim_output, write_failure

    quiet_libraries()
    specs = check_request(request)
    device = setup(request.evaluation.device)  # under torchrun: joins the process group, takes its GPU
    ranks = current()
    lock, problem = None, None
    if ranks.main:  # one lock per folder: rank 0 holds it for all ranks
        try:
            lock = claim_output(request.out)
        except ZsadError as exc:
            problem = str(exc)
    problem = broadcast(problem, ranks)
    if problem is not None:
        raise ZsadError(problem)
    failed = True
    try:
        written = _run_units(request, specs, device)
        failed = False
        return written
    except OSError as exc:
        failure = write_failure(exc, request.out)
        if failure is None:
            raise
        raise failure from None
    finally:
        if lock is not None:
            lock.release(failed=failed)


def check_request(request: RunRequest) -> list[DatasetSpec]:
    """Every check that needs no model built and no image read, on every unit of ``request``; returns
    the datasets' specs. Raises the first problem as a ``ZsadError`` line."""
    from zsad_bench._factory import check_options, checkpoint_map, get_dataset_spec, model_class
    from zsad_bench.backbones.spec import parse_backbone
    from zsad_bench.data import ensure_prepared

    if not request.models or not request.datasets:
        raise ZsadError("name at least one model and one dataset")
    for name in request.models:
        if not model_class(name).few_shot and request.shots:  # an unknown name fails here, first
            raise ZsadError(f"model '{name}' has no few-shot mode; run it without --shots")
    if request.backbone is not None:
        parse_backbone(request.backbone)
    checkpoints = checkpoint_map(request.models, request.checkpoint)
    check_options(request.models, request.options, backbone=request.backbone, checkpoints=checkpoints)
    specs = [get_dataset_spec(d) for d in request.datasets]
    protocol = request.evaluation.protocol
    for name, path in checkpoints.items():
        # the zero-shot guard: ``trained_on`` as the checkpoint's options store it (a folder's config.json,
        # or what the import of an official file knows), one id or several joined by '+', each refused
        trained_on = getattr(model_class(name).checkpoint_options(path), "trained_on", None)
        for spec in specs:
            if protocol.refuses(trained_on, spec.id):
                assert trained_on is not None
                raise ZsadError(protocol.refusal(model_class(name).name, trained_on))
    for name, path in checkpoints.items():  # an empty or truncated weights file, before any unit runs
        model_class(name).check_checkpoint(path)
    for spec in specs:
        ensure_prepared(spec)
    return specs


def _run_units(request: RunRequest, specs: list[DatasetSpec], device: torch.device) -> list[Path]:
    import torch

    from zsad_bench._factory import checkpoint_map, load_dataset, load_model
    from zsad_bench.engine.distributed import current
    from zsad_bench.engine.few_shot import remember_references
    from zsad_bench.engine.loop import run_detector
    from zsad_bench.engine.record import Provenance, build_result, keep_measured_timings, write_result
    from zsad_bench.engine.runtime import resolve_precision
    from zsad_bench.results.cache import PredictionCache

    shots, out = request.shots, request.out
    protocol = request.evaluation.protocol
    quiet = request.quiet or not current().main  # one voice: rank 0
    config = replace(request.evaluation, device=device, progress=request.evaluation.progress and not quiet)

    checkpoints = checkpoint_map(request.models, request.checkpoint)
    written = []
    for name in request.models:
        torch.manual_seed(config.seed)
        checkpoint = checkpoints.get(name)
        detector = load_model(
            name, backbone=request.backbone, checkpoint=checkpoint, device=device, **request.options
        )
        trained_on = detector.config().get("trained_on")
        for spec in specs:
            if protocol.refuses(trained_on, spec.id):
                raise ZsadError(protocol.refusal(detector.name, trained_on))
            dataset = load_dataset(spec.id, transform=detector.transform(), mask_size=protocol.eval_size)
            few_shot = None
            if shots:
                references = remember_references(detector, spec.id, shots, config.seed, device)
                few_shot = {"shots": shots, "seed": config.seed, "references": references}
            info(
                f"{detector.name} on {spec.id}: {len(dataset)} images, {len(dataset.classes)} classes", quiet
            )
            provenance = Provenance.of(detector, dataset, checkpoint=checkpoint, few_shot=few_shot)
            cache = None
            if request.cache:
                label = f"{detector.name}-{shots}shot" if shots else detector.name
                cache = PredictionCache(
                    out / "predictions" / f"{label}__{spec.id}",
                    provenance.cache_key(protocol.eval_size, resolve_precision(device, config.precision)),
                    {"model": detector.name, "dataset": spec.id, "eval_size": protocol.eval_size},
                )
                resumed = [c for c in dataset.classes if cache.has(c)]
                if resumed:
                    info(f"  resuming: {len(resumed)} of {len(dataset.classes)} classes are cached", quiet)
            outcome = run_detector(detector, dataset, config, cache)
            result = build_result(
                detector, dataset, config, outcome, provenance, shots=shots, cache=cache, out=out
            )
            result = keep_measured_timings(result, out)
            path = write_result(result, out)
            if path is not None:
                written.append(path)
                info(f"  wrote {path}", quiet)
    return written
