"""``zsad run``: evaluate models on datasets and write one result file per (model, dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zsad_bench.cli._common import info, parse_options, quiet_libraries, quiet_option, split_names


@click.command()
@click.option("--model", "models", required=True, help="Model name(s), comma-separated: clip,clip-ac.")
@click.option("--dataset", "datasets", required=True, help="Dataset id(s), comma-separated: mvtec-ad,visa.")
@click.option("--backbone", help="MODEL[:PRETRAINED] overriding each model's default, e.g. test-tiny.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Checkpoint folder of a trained model.")
@click.option("--protocol", default="default", show_default=True, help="Evaluation protocol.")
@click.option("--eval-size", type=click.IntRange(min=8), help="Override the protocol's evaluation size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="auto = bf16 autocast on GPU, fp32 on CPU.",
)
@click.option(
    "--num-workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Data-loader worker processes.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed recorded with the results.")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Detector option, repeatable (e.g. -o image_size=518); see 'zsad models info NAME'.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for result files.")
@quiet_option
def run(
    models: str,
    datasets: str,
    backbone: str | None,
    checkpoint: Path | None,
    protocol: str,
    eval_size: int | None,
    device: str,
    batch_size: int,
    precision: str,
    num_workers: int,
    seed: int,
    options: tuple[str, ...],
    out: Path,
    quiet: bool,
) -> None:
    """Evaluate each model on each dataset; results go to OUT/<model>__<dataset>.json."""
    execute(
        split_names(models),
        split_names(datasets),
        out=out,
        backbone=backbone,
        checkpoint=checkpoint,
        protocol_name=protocol,
        eval_size=eval_size,
        device=device,
        batch_size=batch_size,
        precision=precision,
        num_workers=num_workers,
        seed=seed,
        options=parse_options(options),
        quiet=quiet,
    )


def execute(
    model_names: list[str],
    dataset_ids: list[str],
    *,
    out: Path,
    backbone: str | None = None,
    checkpoint: Path | None = None,
    protocol_name: str = "default",
    eval_size: int | None = None,
    device: str = "auto",
    batch_size: int = 8,
    precision: str = "auto",
    num_workers: int = 0,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> list[Path]:
    """Validate every name first (so a typo fails before any work), then run each unit."""
    import torch

    from zsad_bench._factory import get_dataset_spec, get_protocol, load_dataset, load_model, model_class
    from zsad_bench.engine import evaluate
    from zsad_bench.engine.runtime import resolve_device

    quiet_libraries()
    if not model_names or not dataset_ids:
        raise click.UsageError("name at least one model and one dataset")
    for name in model_names:
        model_class(name)
    specs = [get_dataset_spec(d) for d in dataset_ids]
    protocol = get_protocol(protocol_name)
    if eval_size is not None:
        protocol = protocol.with_eval_size(eval_size)
    torch_device = resolve_device(device)

    written = []
    for name in model_names:
        torch.manual_seed(seed)
        detector = load_model(
            name, backbone=backbone, checkpoint=checkpoint, device=torch_device, **(options or {})
        )
        provenance_detector = _detector_provenance(detector, checkpoint)
        for spec in specs:
            dataset = load_dataset(spec.id, transform=detector.transform(), mask_size=protocol.eval_size)
            info(
                f"{detector.name} on {spec.id}: {len(dataset)} images, {len(dataset.classes)} classes", quiet
            )
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
                provenance={"detector": provenance_detector, "data": _data_provenance(dataset), "seed": seed},
            )
            path = result.write(out)
            written.append(path)
            info(f"  wrote {path}", quiet)
    return written


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
