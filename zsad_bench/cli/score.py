"""``zsad score RESULTS_DIR``: recompute metrics from the prediction caches, without the model."""

from __future__ import annotations

from pathlib import Path

import click

from zsad_bench.cli._common import info, quiet_option


@click.command()
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--aupro-variant", type=click.Choice(["mvtec", "anomalyclip-200"]), help="AUPRO definition.")
@click.option("--pixel-mode", type=click.Choice(["exact", "histogram"]))
@click.option("--bins", type=click.IntRange(min=2), help="Histogram-mode bins.")
@click.option("--fpr-limit", type=click.FloatRange(0, 1, min_open=True), help="AUPRO integration limit.")
@click.option("--eval-size", type=int, help="Only to be told it needs a new 'zsad run'.")
@click.option(
    "--ci",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Image-level bootstrap confidence level, e.g. 0.95.",
)
@click.option("--ci-replicates", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the re-scored result files here (default: replace those in RESULTS_DIR).",
)
@quiet_option
def score(
    results_dir: Path,
    aupro_variant: str | None,
    pixel_mode: str | None,
    bins: int | None,
    fpr_limit: float | None,
    eval_size: int | None,
    ci: float | None,
    ci_replicates: int,
    seed: int,
    device: str,
    out: Path | None,
    quiet: bool,
) -> None:
    """Re-score every result in RESULTS_DIR from its cached predictions (another AUPRO variant, CIs).

    All or nothing: every cache is checked (present, written by the same run, holding every class) and
    every result re-scored before the first file is rewritten. An evaluation size other than the cached
    one cannot be re-scored: that needs a new 'zsad run'.
    """
    from zsad_bench.engine.scoring import check_cache, score_cached
    from zsad_bench.errors import ZsadError
    from zsad_bench.protocols import Protocol
    from zsad_bench.results.cache import open_predictions
    from zsad_bench.results.schema import read_results

    results = read_results(results_dir)
    jobs = []
    for result in results:  # check every cache before scoring any
        cache = open_predictions(result, results_dir)
        recorded = {k: v for k, v in result.protocol.items() if k in Protocol.__dataclass_fields__}
        try:
            protocol = Protocol(**{**recorded, "training": ()})
        except TypeError as exc:  # a protocol record without its name
            raise ZsadError(f"{result.filename}: its protocol record is incomplete ({exc})") from exc
        protocol = protocol.with_overrides(
            aupro_variant=aupro_variant,
            pixel_mode=pixel_mode,
            histogram_bins=bins,
            fpr_limit=fpr_limit,
            eval_size=eval_size,
        )
        check_cache(result, cache, protocol)
        jobs.append((result, cache, protocol))
    rescored = []
    for result, cache, protocol in jobs:  # score all (a corrupt class file fails here) before writing
        new = score_cached(
            result, cache, protocol, ci=ci, ci_replicates=ci_replicates, seed=seed, device=device
        )
        if out is not None:
            new.predictions["folder"] = str(cache.folder.resolve())
        rescored.append(new)
    target = out or results_dir
    for new in rescored:
        path = new.write(target)
        info(f"re-scored {path}", quiet)
