"""``zsad run``: evaluate models on datasets and write one result file per (model, dataset)."""

from __future__ import annotations

from pathlib import Path

import click

from zsad_bench.cli._common import Interrupted, batch_options, parse_options, quiet_option, split_names


@click.command()
@click.option("--model", "models", required=True, help="Model name(s), comma-separated: clip,clip-ac.")
@click.option("--dataset", "datasets", required=True, help="Dataset id(s), comma-separated: mvtec-ad,visa.")
@click.option("--backbone", help="MODEL[:PRETRAINED] overriding each model's default, e.g. test-tiny.")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="[MODEL=]PATH",
    help="Checkpoint of a trained model, repeatable: MODEL=PATH for each (a bare PATH with one model).",
)
@click.option("--protocol", default="default", show_default=True, help="Evaluation protocol.")
@click.option("--eval-size", type=click.IntRange(min=8), help="Override the protocol's evaluation size.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@batch_options
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    help="auto = bf16 autocast on GPU, fp32 on CPU [default: the protocol's; anomalyclip-paper: fp32].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the run and of the bootstrap.")
@click.option(
    "--aupro-variant",
    type=click.Choice(["mvtec", "anomalyclip-200"]),
    help="AUPRO definition (default: the protocol's, mvtec).",
)
@click.option(
    "--pixel-mode",
    type=click.Choice(["exact", "histogram"]),
    help="exact (default) or histogram: fixed memory for huge classes, AUROC/AUPRO with error bounds.",
)
@click.option("--bins", type=click.IntRange(min=2), help="Histogram-mode bins (default 65536).")
@click.option(
    "--ci",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Image-level bootstrap confidence level, e.g. 0.95.",
)
@click.option("--ci-replicates", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option(
    "--shots",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Few-shot: K normal training images per class as references (seeded by --seed).",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Keep predictions under OUT/predictions/ (for 'zsad score' and resuming).",
)
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
    checkpoints: tuple[str, ...],
    protocol: str,
    eval_size: int | None,
    device: str,
    batch_size: int | str,
    precision: str | None,
    num_workers: int | str,
    seed: int,
    aupro_variant: str | None,
    pixel_mode: str | None,
    bins: int | None,
    ci: float | None,
    ci_replicates: int,
    shots: int,
    cache: bool,
    options: tuple[str, ...],
    out: Path,
    quiet: bool,
) -> None:
    """Evaluate each model on each dataset; results go to OUT/<model>__<dataset>.json."""
    from zsad_bench._factory import checkpoint_map, get_protocol
    from zsad_bench.engine import EvalConfig
    from zsad_bench.engine.runner import RunRequest, execute

    overrides = {"eval_size": eval_size, "aupro_variant": aupro_variant, "pixel_mode": pixel_mode}
    evaluation = EvalConfig(
        protocol=get_protocol(protocol).with_overrides(**overrides, histogram_bins=bins),
        batch_size=batch_size,
        device=device,
        precision=precision,
        num_workers=num_workers,
        ci=ci,
        ci_replicates=ci_replicates,
        seed=seed,
    )
    request = RunRequest(
        models=split_names(models),
        datasets=split_names(datasets),
        out=out,
        evaluation=evaluation,
        backbone=backbone,
        checkpoint=checkpoint_map(split_names(models), checkpoints),
        options=parse_options(options),  # checked in execute, over each checkpoint and with --backbone
        shots=shots,
        cache=cache,
        quiet=quiet,
    )
    try:
        execute(request)
    except KeyboardInterrupt:
        predictions = out / "predictions"
        kept = (
            f"classes already finished are cached under {predictions}"
            if cache
            else "results written are kept"
        )
        raise Interrupted(f"stopped by Ctrl-C; rerun the same command to resume ({kept})") from None
