"""The papers' numbers: read them, join them to a leaderboard, and render the papers' tables from them.

``published_data/published_results.csv`` (package data next to this module, so an installed wheel has it)
holds one row per (source, method, dataset, metric):
columns ``source, method, dataset, level, metric, value, note``, values in percent as printed, ``note``
carrying † (a number AnomalyCLIP took from the original publication), every "recalled, unverified"
mark (a number not checked against the paper's own text) and, first, "transductive" for a method whose
scores use the other test images of a class (MuSc): such rows are compared only with our transductive
rows, and ours only with them. It is the only place these numbers live: ``leaderboards/published/*.md``
are rendered from it by ``paper_tables`` (``zsad leaderboard --published``), and ``compare_published``
joins it to our results.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from zsad_bench.atomic import atomic_write
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS, get_metric
from zsad_bench.report.comparable import affecting, describe_choice
from zsad_bench.report.tables import (
    DELTA_SUFFIX,
    MEAN_ROW,
    PUBLISHED_SUFFIX,
    RANDOM_WEIGHTS,
    metric_columns,
    metric_label,
)

__all__ = [
    "DEFAULT_PUBLISHED",
    "METHOD_NAMES",
    "PAPER_TABLES",
    "compare_published",
    "paper_table",
    "paper_tables",
    "published_methods",
    "read_published",
    "write_paper_tables",
]

# Shipped as package data (pyproject's package-data), found through importlib.resources so that a wheel
# installed anywhere reads the same file as a checkout; --published-csv overrides it.
DEFAULT_PUBLISHED = Path(str(resources.files(__package__).joinpath("published_data/published_results.csv")))
COLUMNS = ("source", "method", "dataset", "level", "metric", "value", "note")
# Our model names -> the method names the papers (and the CSV) use.
METHOD_NAMES = {
    "anomalyclip": "AnomalyCLIP",
    "clip": "CLIP",
    "clip-ac": "CLIP-AC",
    "winclip": "WinCLIP",
    "april-gan": "APRIL-GAN",
    "coop": "CoOp",
    "adaclip": "AdaCLIP",
    "musc": "MuSc",
}
# The paper this suite reproduces; its tables are preferred over a method's own paper for the same cell,
# since they are the numbers our protocol (datasets, prompts, metric code) is meant to match.
PREFERRED_SOURCE = "AnomalyCLIP (ICLR 2024) Table"
UNVERIFIED = "recalled, unverified"
TRANSDUCTIVE = "transductive"  # a note starting with it: the paper's scores are transductive
# File in leaderboards/published/ -> (source, title).
PAPER_TABLES = {
    "anomalyclip_table1.md": (
        "AnomalyCLIP (ICLR 2024) Table 1",
        "zero-shot anomaly detection on industrial datasets",
    ),
    "anomalyclip_table2.md": (
        "AnomalyCLIP (ICLR 2024) Table 2",
        "zero-shot anomaly detection on medical datasets",
    ),
    "adaclip_eccv2024.md": (
        "AdaCLIP (ECCV 2024)",
        "zero-shot, the cells found in text (the paper's tables are images); mvtec-ad trained on "
        "VisA + CVC-ClinicDB, visa on MVTec AD + CVC-ColonDB",
    ),
    "musc_iclr2024.md": (
        "MuSc (ICLR 2024)",
        "zero-shot (transductive) anomaly classification and segmentation",
    ),
    "musc_code_release.md": (
        "MuSc code release (README, 2024-03-22)",
        "the released code at the paper's settings, per dataset",
    ),
}
# How each source computed its numbers, as far as a result records the choice (reference/anomalyclip.md
# section 6, reference/baselines.md): AnomalyCLIP's tables and APRIL-GAN run the official test scripts
# (518 px, cal_pro_score's 200 thresholds, FPR 0.3, fp32); WinCLIP evaluates at 240 px with the MVTec
# AUPRO. A number AnomalyCLIP took from the original publication (†) keeps that publication's setup.
# AdaCLIP's tools/metrics.py reports no PRO (AUROC, max-F1, AP at both levels, exact scikit-learn curves,
# 518 px masks), so it has no AUPRO entry. MuSc's utils/metrics.py cal_pro_score is the same 200-threshold
# loop with FPR < 0.3 as AnomalyCLIP's, on 518 px masks. Both official test scripts run under fp16
# autocast on a GPU (reference/adaclip.md, musc.md); the others ran in fp32.
PAPER_SETUPS: dict[str, dict[str, Any]] = {
    "AnomalyCLIP": {"aupro": "anomalyclip-200", "fpr_limit": 0.3, "eval_size": 518, "pixel": "exact"},
    "APRIL-GAN": {"aupro": "anomalyclip-200", "fpr_limit": 0.3, "eval_size": 518, "pixel": "exact"},
    "WinCLIP": {"aupro": "mvtec", "fpr_limit": 0.3, "eval_size": 240, "pixel": "exact"},
    "AdaCLIP": {"eval_size": 518, "pixel": "exact", "precision": "fp16"},
    "MuSc": {
        "aupro": "anomalyclip-200",
        "fpr_limit": 0.3,
        "eval_size": 518,
        "pixel": "exact",
        "precision": "fp16",
    },
}
PAPER_SETUPS["MuSc code release"] = PAPER_SETUPS["MuSc"]  # the same official code, rerun by its authors
PAPER_PRECISION = "fp32"  # a setup without "precision"
_LABEL = re.compile(r"^(?P<model>.+?)(?: \((?P<shots>\d+)-shot\))?(?P<transductive> \(transductive\))?$")


def read_published(path: str | Path = DEFAULT_PUBLISHED) -> pd.DataFrame:
    """The published-results CSV (a file, or a folder holding ``published_results.csv``) as a frame.

    ``value`` is a float; ``printed`` keeps the value's text exactly as in the CSV.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "published_results.csv"
    if not path.is_file():
        raise ZsadError(
            f"published results {path} not found; pass --published-csv PATH to a CSV with columns "
            f"{','.join(COLUMNS)}, or leave it out to use the copy shipped with zsad-bench"
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZsadError(
            f"{path} is not a readable CSV ({first}); expected columns {','.join(COLUMNS)}"
        ) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ZsadError(f"{path} lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    values = pd.to_numeric(table["value"], errors="coerce")
    if values.isna().any():
        bad = table.loc[values.isna()].iloc[0]
        raise ZsadError(f"{path}: value '{bad.value}' of {bad.method} on {bad.dataset} is not a number")
    return table.assign(printed=table["value"], value=values)


def published_methods(label: str) -> list[str]:
    """The CSV method names a leaderboard model label may match, most specific first.

    ``"anomalyclip"`` -> ``["AnomalyCLIP"]``; ``"winclip (4-shot)"`` -> ``["WinCLIP+ (4-shot)",
    "WinCLIP (4-shot)"]`` (the papers name few-shot variants either way); ``"musc (transductive)"`` ->
    ``["MuSc"]`` (``compare_published`` then keeps only the transductive rows). A zero-shot label never
    matches a few-shot row; unknown models and random-weight rows match nothing.
    """
    if label.endswith(RANDOM_WEIGHTS):
        return []  # a paper's number beside untrained weights would read as a reproduction gap
    match = _LABEL.match(label)
    base = METHOD_NAMES.get(match["model"]) if match else None
    if base is None:
        return []
    if match["shots"] is None:
        return [base]
    return [f"{base}+ ({match['shots']}-shot)", f"{base} ({match['shots']}-shot)"]


def compare_published(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """``table`` (a ``(dataset, model)`` leaderboard) with ``<metric>_published`` and ``<metric>_delta``.

    Each metric column is followed by the paper's number and ours minus it, only where a published number
    exists for that (method, dataset, metric); the ``mean`` block is never compared (the papers print no
    means over our set of datasets). A ``(transductive)`` row is compared only with transductive numbers
    (MuSc's), any other row never with them. Of several sources for one cell, AnomalyCLIP's Tables 1/2
    win, then the method's own paper, then any other (MuSc's code-release README). ``attrs["notes"]``
    keeps the table's notes and adds the sources used and any value marked unverified.

    A paper's number stands beside ours only when our row was computed as the paper computed it
    (``PAPER_SETUPS``, read against the row's recorded choices in ``table.attrs["choices"]``): an MVTec
    AUPRO is never set beside the paper's 200-threshold one, nor a 256 px pixel AUROC beside a 518 px one.
    Such a cell is left empty and a footnote names it and the command that makes it comparable. Rows
    computed in another precision than the paper's (fp32, or the fp16 autocast of AdaCLIP's and MuSc's
    official code) are compared, and footnoted.
    """
    if list(table.index.names) != ["dataset", "model"]:
        raise ZsadError("--compare published needs dataset means: the papers publish no per-class numbers")
    metrics = metric_columns(table)
    row_choices = table.attrs.get("choices", {})
    chosen, withheld, precisions = [], [], {}
    transductive_rows = published["note"].str.startswith(TRANSDUCTIVE)
    for dataset, label in table.index:
        methods = published_methods(label)
        if dataset == MEAN_ROW or not methods:
            continue
        rows = published[
            published["method"].isin(methods)
            & (published["dataset"] == dataset)
            & published["metric"].isin(metrics)
            & (transductive_rows == label.endswith(f"({TRANSDUCTIVE})"))
        ]
        if rows.empty:
            continue
        base = _base(methods[-1])
        rank = [_source_rank(source, base) for source in rows["source"]]
        specificity = rows["method"].map(methods.index)
        rows = rows.assign(_rank=rank, _specificity=specificity, model=label)
        rows = rows.sort_values(["_rank", "_specificity"], kind="stable").drop_duplicates("metric")
        ours = row_choices.get((dataset, label))
        if ours is not None:
            keep = [not _differs(row, ours, f"{label} on {dataset}", withheld) for row in rows.itertuples()]
            rows = rows[keep]
            mine = ours.get("precision", PAPER_PRECISION)
            for paper in sorted({_precision(row) for row in rows.itertuples()} - {mine}):
                precisions.setdefault(paper, []).append(f"{label} on {dataset} ({mine})")
        chosen.append(rows)
    found = pd.concat(chosen) if chosen else published.iloc[:0].assign(model="", _rank=0)
    values = found.pivot(index=["dataset", "model"], columns="metric", values="value")
    columns = {}
    for m in metrics:
        paper = values[m].reindex(table.index) if m in values else pd.Series(float("nan"), index=table.index)
        columns[m] = table[m]
        columns[m + PUBLISHED_SUFFIX] = paper.astype(float)
        columns[m + DELTA_SUFFIX] = table[m] - paper
    compared = pd.DataFrame(columns, index=table.index)
    compared.attrs = {**table.attrs, "notes": [*table.attrs.get("notes", ()), *_notes(found)]}
    if withheld:
        compared.attrs["notes"].append(
            "Paper numbers left out where our row was computed differently from the paper: "
            f"{'; '.join(withheld)}."
        )
    for paper, rows_of in precisions.items():
        if paper == PAPER_PRECISION:
            compared.attrs["notes"].append(
                f"Compared although not run in the papers' {paper} "
                f"(scores move by about 3e-3): {', '.join(rows_of)}."
            )
        else:
            compared.attrs["notes"].append(
                f"Compared although the paper's official code ran under {paper} autocast and these rows "
                f"did not: {', '.join(rows_of)}."
            )
    return compared


def _setup(row: Any) -> dict[str, Any] | None:
    """The setup a published row was computed under (see ``PAPER_SETUPS``), None when unknown."""
    base = _base(row.method)
    name = base if row.note.startswith("†") else row.source.split(" (")[0]
    return PAPER_SETUPS.get(name)


def _precision(row: Any) -> str:
    """The precision a published row was computed in (``PAPER_PRECISION`` unless its setup says)."""
    return (_setup(row) or {}).get("precision", PAPER_PRECISION)


def _differs(row: Any, ours: dict[str, Any], where: str, withheld: list[str]) -> bool:
    """Whether our row's choices differ from the paper's in one that changes ``row.metric``; if so, the
    cell is recorded in ``withheld`` with what differs and the command that would make it comparable."""
    setup = _setup(row)
    if setup is None:
        return False
    for choice in affecting(row.metric):
        value = describe_choice(choice, ours)
        if choice in setup and value != describe_choice(choice, {**ours, **_as_choices(choice, setup)}):
            paper = describe_choice(choice, {**ours, **_as_choices(choice, setup)})
            withheld.append(
                f"{metric_label(row.metric)} of {where} ({value}, paper {paper}: {_fix(choice, setup)})"
            )
            return True
    return False


def _as_choices(choice: str, setup: dict[str, Any]) -> dict[str, Any]:
    if choice == "pixel":
        return {"pixel_mode": setup["pixel"], "histogram_bins": None}
    return {choice: setup[choice]}


def _fix(choice: str, setup: dict[str, Any]) -> str:
    if choice == "aupro":
        return f"zsad score RESULTS_DIR --aupro-variant {setup['aupro']} --out NEW_DIR"
    if choice == "fpr_limit":
        return f"zsad score RESULTS_DIR --fpr-limit {setup['fpr_limit']} --out NEW_DIR"
    if choice == "pixel":
        return "zsad score RESULTS_DIR --pixel-mode exact --out NEW_DIR"
    return f"a new zsad run --eval-size {setup['eval_size']}"


def _base(method: str) -> str:
    """``"WinCLIP+ (4-shot)"`` -> ``"WinCLIP"``: the name a method's own paper goes by."""
    return re.sub(r"\+? \(\d+-shot\)$", "", method)


def _source_rank(source: str, base: str) -> int:
    if source.startswith(PREFERRED_SOURCE):
        return 0
    return 1 if source.split(" (")[0] == base else 2  # "WinCLIP (CVPR 2023)" is WinCLIP's own paper


def _notes(found: pd.DataFrame) -> list[str]:
    if found.empty:
        return ["No published number matches these rows."]
    sources = found.sort_values(["_rank", "source"])["source"].drop_duplicates()
    notes = [f"Paper numbers: {'; '.join(sources)}."]
    unverified = found[found["note"].str.contains(UNVERIFIED, regex=False)]
    if not unverified.empty:
        cells = [
            f"{r.method} on {r.dataset} {metric_label(r.metric)} in {r.source}"
            for r in unverified.itertuples()
        ]
        notes.append(f"Recalled, unverified against the paper: {'; '.join(cells)}.")
    return notes


# ------------------------------------------------------------------------------------ the paper tables


def paper_table(published: pd.DataFrame, source: str, title: str = "") -> str:
    """One paper table in markdown: per level, rows dataset and columns method, cells as printed.

    A cell joins the level's metrics as the paper does ("91.5 / 96.2" for image AUROC / AP); a value
    the paper took from another publication carries †, one not checked against the paper's text *, and
    "–" marks a value the paper did not report. A method whose numbers are transductive is said so.
    """
    rows = published[published["source"] == source]
    if rows.empty:
        raise ZsadError(f"no rows of source '{source}' in the published results")
    methods = list(dict.fromkeys(rows["method"]))
    header = f"# {source}" + (f": {title}" if title else "")
    lines = [
        "<!-- Rendered from published_results.csv by `zsad leaderboard --published`; do not edit. -->",
        "",
        header,
        "",
        "Numbers in percent, as printed in the paper; one row per dataset (zsad-bench ids), one column per",
        "method. Where they come from: README.md next to this file.",
    ]
    unreported = False
    for level, block in rows.groupby("level", sort=False):
        metrics = [m for m in METRIC_KEYS if m in set(block["metric"])]
        # The metric names inside a level as the papers print them: "(AUROC, PRO)".
        shorts = " / ".join(get_metric(m).paper for m in metrics)
        lines += ["", f"## {level.capitalize()} level ({shorts})", ""]
        lines.append("| dataset | " + " | ".join(methods) + " |")
        lines.append("|---|" + "---:|" * len(methods))
        cells = {(r.dataset, r.method, r.metric): r for r in block.itertuples()}
        for dataset in dict.fromkeys(block["dataset"]):
            row = [
                " / ".join(_printed(cells.get((dataset, method, m))) for m in metrics) for method in methods
            ]
            unreported |= any((dataset, method, m) not in cells for method in methods for m in metrics)
            lines.append(f"| {dataset} | " + " | ".join(row) + " |")
    for line in _legend(rows, unreported):
        lines += ["", line]
    return "\n".join(lines) + "\n"


def _printed(row: Any) -> str:  # a row of DataFrame.itertuples, or None
    if row is None:
        return "–"
    dagger = "†" if row.note.startswith("†") else ""
    return f"{row.printed}{dagger}{'*' if UNVERIFIED in row.note else ''}"


def _legend(rows: pd.DataFrame, unreported: bool) -> list[str]:
    legend = ["– not reported."] if unreported else []
    if rows["note"].str.startswith("†").any():
        dagger = rows.loc[rows["note"].str.startswith("†"), "note"].iloc[0].split(";")[0]
        legend.insert(0, f"{dagger}.")
    for method, notes in rows.groupby("method", sort=False)["note"]:
        labelled = notes.str.extract(r"column labelled (\w[\w-]*)")[0].dropna()
        if not labelled.empty:
            legend.append(f"{method}: the column the paper labels {labelled.iloc[0]}.")
        if notes.str.startswith(TRANSDUCTIVE).all():
            legend.append(f"{method}: transductive, {notes.iloc[0].split(';')[0].split(': ')[1]}.")
    if rows["note"].str.contains(UNVERIFIED, regex=False).any():
        legend.append("Cells marked * are recalled, unverified: not checked against the paper's own text.")
    return legend


def paper_tables(published: pd.DataFrame) -> dict[str, str]:
    """``{file name: markdown}`` for every table of ``PAPER_TABLES``."""
    return {name: paper_table(published, source, title) for name, (source, title) in PAPER_TABLES.items()}


def write_paper_tables(published: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Write ``paper_tables`` into ``folder``; returns the paths written."""
    folder = Path(folder)
    return [atomic_write(folder / name, text) for name, text in paper_tables(published).items()]
