"""Leaderboards: a folder of result files -> one pandas table -> markdown or CSV.

Rows are (dataset, model) with the dataset means over classes, then one "mean" block per model over
the datasets it was run on. Tables show percent; the best value per dataset and metric is bold in
markdown (every metric here is higher-is-better).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from zsad_bench.errors import ZsadError
from zsad_bench.report.schema import METRICS, RunResult

__all__ = ["FORMATS", "METRIC_LABELS", "leaderboard", "render"]

FORMATS = ("md", "csv")
METRIC_LABELS = {
    "image_auroc": "I-AUROC ↑",
    "image_ap": "I-AP ↑",
    "image_f1_max": "I-F1max ↑",
    "pixel_auroc": "P-AUROC ↑",
    "pixel_ap": "P-AP ↑",
    "pixel_f1_max": "P-F1max ↑",
    "pixel_aupro": "P-AUPRO ↑",
}
MEAN_ROW = "mean"


def leaderboard(results: Sequence[RunResult], metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """A ``(dataset, model)``-indexed frame of dataset means in percent (NaN where undefined).

    The last rows, dataset ``mean``, average each model over its datasets (only where every dataset
    defines the metric, so a mean never silently covers fewer datasets than it claims).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ZsadError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    rows = []
    for r in results:
        row = {"dataset": r.dataset, "model": _label(r)}
        row.update({m: _percent(r.mean.get(m)) for m in metrics})
        rows.append(row)
    table = pd.DataFrame(rows, columns=["dataset", "model", *metrics])
    if table.duplicated(["dataset", "model"]).any():
        dup = table[table.duplicated(["dataset", "model"], keep=False)].iloc[0]
        raise ZsadError(f"two results for model {dup.model} on {dup.dataset}; keep one file per pair")
    table = table.set_index(["dataset", "model"]).sort_index()
    if table.index.get_level_values("dataset").nunique() > 1:
        grouped = table.groupby(level="model")
        means = grouped.mean().where(grouped.count() == grouped.size().to_numpy()[:, None])
        means.index = pd.MultiIndex.from_product([[MEAN_ROW], means.index], names=["dataset", "model"])
        table = pd.concat([table, means])
    return table


def _label(result: RunResult) -> str:
    return f"{result.label} (random weights)" if result.random_weights else result.label


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100.0 * value


def render(table: pd.DataFrame, fmt: str = "md", decimals: int = 1) -> str:
    """Render a leaderboard frame as ``md`` (bold best per dataset, "–" for missing) or ``csv``."""
    if fmt == "csv":
        return table.round(2).to_csv(na_rep="")
    if fmt == "md":
        return _markdown(table, decimals)
    raise ZsadError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")


def _markdown(table: pd.DataFrame, decimals: int) -> str:
    metrics = list(table.columns)
    header = ["dataset", "model", *(METRIC_LABELS.get(m, m) for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(metrics)) + "|"]
    for dataset, block in table.groupby(level="dataset", sort=False):
        best = block.max()
        for (_, model), values in block.iterrows():
            cells = [dataset, model]
            for m in metrics:
                v = values[m]
                if pd.isna(v):
                    cells.append("–")
                else:
                    text = f"{v:.{decimals}f}"
                    cells.append(f"**{text}**" if len(block) > 1 and v == best[m] else text)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
