"""Running models on datasets and writing result files: what ``zsad run``, ``zsad demo`` and
``zsad reproduce`` share. Validates every name first, so a typo fails before any work is done."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zsad_bench.engine.config import EvalConfig
from zsad_bench.errors import ZsadError

__all__ = ["RunRequest", "execute"]


def _run_defaults() -> EvalConfig:
    # the command line's defaults: the device, batch size and loader workers that suit the machine
    return EvalConfig(device="auto", batch_size="auto", num_workers="auto")


@dataclass(frozen=True)
class RunRequest:
    """Evaluate every model of ``models`` on every dataset of ``datasets`` under ``evaluation``; write
    one result file per pair into ``out``.

    backbone: MODEL[:PRETRAINED] replacing each model's default; checkpoint: a trained model's folder;
    options: detector options (``-o key=value``); shots: few-shot references per class (0: zero-shot);
    cache: keep predictions under ``out/predictions/`` (and resume from them); quiet: no progress output.
    """

    models: Sequence[str]
    datasets: Sequence[str]
    out: Path
    evaluation: EvalConfig = field(default_factory=_run_defaults)
    backbone: str | None = None
    checkpoint: Path | None = None
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
    """Validate every name first (so a typo fails before any work), then run each (model, dataset).

    Under ``torchrun`` every rank takes part in each evaluation (see ``engine.distributed``) and rank 0
    alone writes the result files (the others return an empty list).

    With ``request.cache``, predictions go to ``OUT/predictions/<model>__<dataset>/``; classes already
    there under the same key (same detector, weights, data and size) are not run again.
    """
    import torch

    from zsad_bench._factory import get_dataset_spec, load_dataset, load_model, model_class
    from zsad_bench.engine.distributed import current, setup
    from zsad_bench.engine.few_shot import remember_references
    from zsad_bench.engine.loop import run_detector
    from zsad_bench.engine.record import Provenance, build_result, write_result
    from zsad_bench.results.cache import PredictionCache

    quiet_libraries()
    if not request.models or not request.datasets:
        raise ZsadError("name at least one model and one dataset")
    shots, out = request.shots, request.out
    for name in request.models:
        if not model_class(name).few_shot and shots:  # model_class: an unknown name fails here, first
            raise ZsadError(f"model '{name}' has no few-shot mode; run it without --shots")
    specs = [get_dataset_spec(d) for d in request.datasets]
    protocol = request.evaluation.protocol
    device = setup(request.evaluation.device)  # under torchrun: joins the process group, takes its GPU
    quiet = request.quiet or not current().main  # one voice: rank 0
    config = replace(request.evaluation, device=device, progress=request.evaluation.progress and not quiet)

    written = []
    for name in request.models:
        torch.manual_seed(config.seed)
        detector = load_model(
            name, backbone=request.backbone, checkpoint=request.checkpoint, device=device, **request.options
        )
        trained_on = detector.config().get("trained_on")
        for spec in specs:
            if protocol.refuses(trained_on, spec.id):
                raise ZsadError(
                    f"model '{detector.name}' was trained on {spec.id}; a zero-shot protocol never "
                    f"evaluates on the training data (evaluate mvtec-ad with a visa-trained model)"
                )
            dataset = load_dataset(spec.id, transform=detector.transform(), mask_size=protocol.eval_size)
            few_shot = None
            if shots:
                references = remember_references(detector, spec.id, shots, config.seed, device)
                few_shot = {"shots": shots, "seed": config.seed, "references": references}
            info(
                f"{detector.name} on {spec.id}: {len(dataset)} images, {len(dataset.classes)} classes", quiet
            )
            provenance = Provenance.of(detector, dataset, checkpoint=request.checkpoint, few_shot=few_shot)
            cache = None
            if request.cache:
                label = f"{detector.name}-{shots}shot" if shots else detector.name
                cache = PredictionCache(
                    out / "predictions" / f"{label}__{spec.id}",
                    provenance.cache_key(protocol.eval_size),
                    {"model": detector.name, "dataset": spec.id, "eval_size": protocol.eval_size},
                )
                resumed = [c for c in dataset.classes if cache.has(c)]
                if resumed:
                    info(f"  resuming: {len(resumed)} of {len(dataset.classes)} classes are cached", quiet)
            outcome = run_detector(detector, dataset, config, cache)
            result = build_result(
                detector, dataset, config, outcome, provenance, shots=shots, cache=cache, out=out
            )
            path = write_result(result, out)
            if path is not None:
                written.append(path)
                info(f"  wrote {path}", quiet)
    return written
