"""Running models on datasets and writing result files: what ``zsad run``, ``zsad demo`` and
``zsad reproduce`` share. Validates every name first, so a typo fails before any work is done."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = ["execute"]


def info(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def quiet_libraries() -> None:
    """Keep third-party chatter (open_clip's logging, QuickGELU warnings) out of the terminal."""
    logging.getLogger("root").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*QuickGELU mismatch.*")


def execute(
    model_names: list[str],
    dataset_ids: list[str],
    *,
    out: Path,
    backbone: str | None = None,
    checkpoint: Path | None = None,
    protocol_name: str = "default",
    protocol_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    batch_size: int | str = "auto",
    precision: str = "auto",
    num_workers: int | str = "auto",
    seed: int = 0,
    options: dict[str, Any] | None = None,
    ci: float | None = None,
    ci_replicates: int = 1000,
    shots: int = 0,
    cache: bool = True,
    quiet: bool = False,
) -> list[Path]:
    """Validate every name first (so a typo fails before any work), then run each unit.

    Under ``torchrun`` every rank takes part in each evaluation (see ``engine.distributed``) and rank 0
    alone writes the result files (the others return an empty list).

    With ``cache``, predictions go to ``OUT/predictions/<model>__<dataset>/``; classes already there
    under the same key (same detector, weights, data and size) are not run again.
    """
    import torch

    from zsad_bench._factory import get_dataset_spec, get_protocol, load_dataset, load_model, model_class
    from zsad_bench.engine import evaluate
    from zsad_bench.engine.distributed import current, setup
    from zsad_bench.engine.few_shot import remember_references
    from zsad_bench.results.cache import PredictionCache, cache_key

    quiet_libraries()
    if not model_names or not dataset_ids:
        raise ZsadError("name at least one model and one dataset")
    for name in model_names:
        if shots and not model_class(name).few_shot:
            raise ZsadError(f"model '{name}' has no few-shot mode; run it without --shots")
    specs = [get_dataset_spec(d) for d in dataset_ids]
    protocol = get_protocol(protocol_name).with_overrides(**(protocol_overrides or {}))
    torch_device = setup(device)  # under torchrun: joins the process group, takes this rank's GPU
    ranks = current()
    quiet = quiet or not ranks.main  # one voice: rank 0

    written = []
    for name in model_names:
        torch.manual_seed(seed)
        detector = load_model(
            name, backbone=backbone, checkpoint=checkpoint, device=torch_device, **(options or {})
        )
        detector_record = _detector_provenance(detector, checkpoint)
        trained_on = detector.config().get("trained_on")
        for spec in specs:
            if protocol.refuses(trained_on, spec.id):
                raise ZsadError(
                    f"model '{detector.name}' was trained on {spec.id}; a zero-shot protocol never "
                    f"evaluates on the training data (evaluate mvtec-ad with a visa-trained model)"
                )
            dataset = load_dataset(spec.id, transform=detector.transform(), mask_size=protocol.eval_size)
            unit_record = dict(detector_record)
            if shots:
                references = remember_references(detector, spec.id, shots, seed, torch_device)
                unit_record["few_shot"] = {"shots": shots, "seed": seed, "references": references}
            info(
                f"{detector.name} on {spec.id}: {len(dataset)} images, {len(dataset.classes)} classes", quiet
            )
            data_record = _data_provenance(dataset)
            predictions = None
            if cache:
                key = cache_key(
                    {"config": detector.config(), **unit_record},
                    data_record["manifest_sha256"],
                    protocol.eval_size,
                )
                predictions = PredictionCache(
                    out / "predictions" / f"{_model_label(detector.name, shots)}__{spec.id}",
                    key,
                    {"model": detector.name, "dataset": spec.id, "eval_size": protocol.eval_size},
                )
                resumed = [c for c in dataset.classes if predictions.has(c)]
                if resumed:
                    info(f"  resuming: {len(resumed)} of {len(dataset.classes)} classes are cached", quiet)
            result = evaluate(
                detector,
                dataset,
                protocol,
                dataset_id=spec.id,
                batch_size=batch_size,
                device=torch_device,
                precision=precision,
                num_workers=num_workers,
                progress=not quiet,
                provenance={"detector": unit_record, "data": data_record},
                cache=predictions,
                ci=ci,
                ci_replicates=ci_replicates,
                seed=seed,
            )
            result.shots = shots
            if not ranks.main:  # every rank holds the same result; rank 0 writes it
                continue
            if predictions is not None:  # relative to the results folder, so the folder can move
                result.predictions["folder"] = str(predictions.folder.relative_to(out))
            path = result.write(out)
            written.append(path)
            info(f"  wrote {path}", quiet)
    return written


def _model_label(name: str, shots: int) -> str:
    return f"{name}-{shots}shot" if shots else name


def _detector_provenance(detector: Any, checkpoint: Path | None) -> dict[str, Any]:
    from zsad_bench.backbones import weights_sha256

    record: dict[str, Any] = {"random_weights": detector.uses_random_weights}
    backbone = getattr(detector, "backbone", None)
    if backbone is not None:
        record["backbone"] = str(backbone.spec)
        record["backbone_weights_sha256"] = weights_sha256(backbone)
    if checkpoint is not None:
        import hashlib

        weights = Path(checkpoint) / "model.safetensors"
        record["checkpoint"] = str(checkpoint)
        record["checkpoint_sha256"] = (
            hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None
        )
    return record


def _data_provenance(dataset: Any) -> dict[str, Any]:
    from zsad_bench.data import manifest_sha256

    return {
        "folder": str(dataset.folder),
        "split": dataset.split,
        "manifest_sha256": manifest_sha256(dataset.folder),
        "images": len(dataset),
        "classes": dataset.classes,
        "has_masks": dataset.has_masks,
    }
