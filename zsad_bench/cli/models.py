"""``zsad models list | info NAME | download NAME``."""

from __future__ import annotations

import inspect

import click

from zsad_bench.cli._common import info, quiet_libraries, quiet_option


@click.group()
def models() -> None:
    """Registered detectors (built-in and plugins)."""


@models.command("list")
def list_() -> None:
    """Every registered model and the distribution it comes from (imports nothing heavy)."""
    from zsad_bench.registry import MODELS

    rows = [("name", "source", "target")]
    rows += [
        (e.name, f"{e.source} (built-in)" if e.builtin else e.source, e.target) for e in MODELS.entries()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, source, target in rows:
        click.echo(f"{name:<{widths[0]}}  {source:<{widths[1]}}  {target}")


@models.command("info")
@click.argument("name")
def info_(name: str) -> None:
    """What a model is, whether it trains, and its options (set them with -o KEY=VALUE)."""
    from zsad_bench._factory import model_class
    from zsad_bench.registry import MODELS

    cls = model_class(name)
    entry = MODELS.entry(name)
    click.echo(f"{cls.name}  ({entry.target}, from {entry.source})")
    click.echo(f"trainable: {'yes' if cls.trainable else 'no (zero-shot)'}")
    doc = inspect.getdoc(cls)
    if doc:
        click.echo(doc.splitlines()[0])
    rows = [(o.name, o.type, o.default, o.allowed, o.help) for o in cls.Options.describe()]
    if not rows:
        click.echo("options: none")
        return
    click.echo("options (-o KEY=VALUE):")
    rows.insert(0, ("name", "type", "default", "allowed", "help"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo(("  " + "  ".join([*cells, row[4]])).rstrip())


@models.command("download")
@click.argument("name")
@click.option("--backbone", help="MODEL[:PRETRAINED] to fetch instead of the model's default backbone.")
@quiet_option
def download(name: str, backbone: str | None, quiet: bool) -> None:
    """Fetch the backbone weights a model needs into the Hugging Face cache.

    NAME is a registered model (its default backbone is fetched) or a backbone spec MODEL[:PRETRAINED].
    """
    from zsad_bench.backbones import download_weights
    from zsad_bench.registry import MODELS

    quiet_libraries()
    if backbone is None:
        if name in MODELS:
            from zsad_bench._factory import model_class

            declared = {o.name: o for o in model_class(name).Options.describe()}
            backbone = declared["backbone"].default if "backbone" in declared else None
        else:
            backbone = name
    if not backbone:
        raise click.UsageError(f"model '{name}' declares no default backbone; pass --backbone")
    info(f"fetching weights for {backbone} ...", quiet)
    path = download_weights(backbone)
    click.echo(path)
