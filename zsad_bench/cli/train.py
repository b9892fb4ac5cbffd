"""``zsad train MODEL --dataset ID [--dataset ID ...] --out CKPT``: train a trainable detector on auxiliary
data (several datasets are trained on together, as AdaCLIP trains on MVTec AD + CVC-ColonDB)."""

from __future__ import annotations

from pathlib import Path

import click

from zsad_bench.cli._common import info, parse_options, quiet_libraries, quiet_option


@click.command()
@click.argument("model")
@click.option(
    "--dataset",
    "dataset_ids",
    required=True,
    multiple=True,
    help="Auxiliary dataset id, e.g. mvtec-ad; repeat it (or join ids with '+') to train on several at once.",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="Split to train on (the AnomalyCLIP protocol trains on the auxiliary test split).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Default: the model's (15 for AnomalyCLIP).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: the model's own, else 8.")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), help="Default: the model's own, else 1e-3."
)
@click.option(
    "--optimizer", type=click.Choice(["adam", "adamw"]), help="Default: the model's own, else adam."
)
@click.option(
    "--weight-decay", type=click.FloatRange(min=0), help="Default: the model's own, else 0 (AdaCLIP: 0.01)."
)
@click.option("--seed", type=int, default=111, show_default=True)
@click.option("--backbone", help="MODEL[:PRETRAINED] overriding the model's default.")
@click.option("--device", default="auto", show_default=True)
@click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--feature-cache/--no-feature-cache",
    default=True,
    show_default=True,
    help="Compute the frozen image features once instead of every epoch (where the model allows it).",
)
@click.option(
    "-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Model option, repeatable."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder to write.")
@quiet_option
def train(model: str, dataset_ids: tuple[str, ...], split: str, epochs: int | None, batch_size: int | None,
          lr: float | None, optimizer: str | None, weight_decay: float | None, seed: int,
          backbone: str | None, device: str, num_workers: int,
          feature_cache: bool, options: tuple[str, ...], out: Path, quiet: bool) -> None:  # fmt: skip
    """Train MODEL on DATASET(s) and write OUT/{model.safetensors, config.json, train.json}."""
    from zsad_bench._factory import model_class
    from zsad_bench.engine.checkpoint import train_checkpoint
    from zsad_bench.engine.training import train_config_for

    quiet_libraries()
    cls = model_class(model)
    # what the user passed wins over the model's own defaults (train_defaults), which win over TrainConfig's
    config = None
    if cls.trainable:  # a training-free model is refused by train_checkpoint, in one line
        config = train_config_for(cls, batch_size=batch_size, lr=lr, optimizer=optimizer,
                                  weight_decay=weight_decay, seed=seed, num_workers=num_workers,
                                  device=device, feature_cache=feature_cache)  # fmt: skip
    record = train_checkpoint(
        model,
        [part for given in dataset_ids for part in given.split("+")],
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
