"""``zsad train MODEL --dataset ID --out CKPT``: train a trainable detector on an auxiliary dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zsad_bench.cli._common import info, parse_options, quiet_libraries, quiet_option


@click.command()
@click.argument("model")
@click.option("--dataset", "dataset_id", required=True, help="Auxiliary dataset id, e.g. mvtec-ad.")
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split to train on (the AnomalyCLIP protocol trains on the auxiliary test split).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Default: the model's (15 for AnomalyCLIP).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=111, show_default=True)
@click.option("--backbone", help="MODEL[:PRETRAINED] overriding the model's default.")
@click.option("--device", default="auto", show_default=True)
@click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--feature-cache/--no-feature-cache",
    default=True,
    show_default=True,
    help="Compute the frozen image features once instead of every epoch.",
)
@click.option(
    "-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Model option, repeatable."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder to write.")
@quiet_option
def train(model: str, dataset_id: str, split: str, epochs: int | None, batch_size: int, lr: float, seed: int,
          backbone: str | None, device: str, num_workers: int, feature_cache: bool, options: tuple[str, ...],
          out: Path, quiet: bool) -> None:  # fmt: skip
    """Train MODEL on DATASET and write OUT/{model.safetensors, config.json, train.json}."""
    import torch

    from zsad_bench._factory import get_dataset_spec, load_dataset, load_model, model_class
    from zsad_bench.api import TrainConfig
    from zsad_bench.devices import resolve_device
    from zsad_bench.engine.training import fit

    quiet_libraries()
    cls = model_class(model)
    if not cls.trainable:
        raise click.UsageError(f"model '{cls.name}' is training-free; evaluate it with 'zsad run'")
    spec = get_dataset_spec(dataset_id)
    if (out / "config.json").exists():
        raise click.UsageError(f"{out} already holds a checkpoint; choose another --out")
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    detector = load_model(cls.name, backbone=backbone, device=torch_device, trained_on=spec.id,
                          **parse_options(options))  # fmt: skip
    dataset = load_dataset(
        spec.id, split=split, transform=detector.transform(), mask_size=detector.input_size
    )
    config = TrainConfig(
        epochs=epochs or cls.epochs_for(spec.id),
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        num_workers=num_workers,
        device=str(torch_device),
        feature_cache=feature_cache,
    )
    info(
        f"training {cls.name} on {spec.id} ({split} split, {len(dataset)} images, {config.epochs} epochs)",
        quiet,
    )
    report = fit(detector, dataset, config, device=torch_device, progress=not quiet)
    detector.save(out)
    record = {"model": cls.name, "dataset": spec.id, "split": split, "config": config.__dict__,
              "epoch_losses": report.epoch_losses, "seconds": report.seconds, **report.extra}  # fmt: skip
    (out / "train.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    info(f"final loss {report.epoch_losses[-1]:.4f}; wrote {out}", quiet)
