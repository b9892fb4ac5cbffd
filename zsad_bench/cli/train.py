"""``zsad train MODEL --dataset ID --out CKPT``: train a trainable detector on an auxiliary dataset."""

from __future__ import annotations

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
    from zsad_bench.api import TrainConfig
    from zsad_bench.engine.checkpoint import train_checkpoint

    quiet_libraries()
    config = TrainConfig(batch_size=batch_size, lr=lr, seed=seed, num_workers=num_workers, device=device,
                         feature_cache=feature_cache)  # fmt: skip
    record = train_checkpoint(
        model,
        dataset_id,
        out,
        config,
        epochs=epochs,
        backbone=backbone,
        options=parse_options(options, [model], backbone=backbone),
        split=split,
        progress=not quiet,
        log=lambda line: info(line, quiet),
    )
    info(f"final loss {record['epoch_losses'][-1]:.4f}; wrote {out}", quiet)
