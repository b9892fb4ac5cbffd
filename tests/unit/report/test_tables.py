"""Every label, title, paper name and direction the reports show comes from the metric table."""

import dataclasses

import pandas as pd

from zsad_bench.metrics import table as metric_table
from zsad_bench.metrics.table import METRIC_KEYS, METRICS, get_metric
from zsad_bench.report import RunResult, leaderboard, render
from zsad_bench.report.published import paper_table
from zsad_bench.report.tables import headers, metric_label, table_rows


def _result(model, values):
    mean = {k: values.get(k) for k in METRIC_KEYS}
    return RunResult(model=model, dataset="d", per_class={"c": mean}, mean=mean)


def test_headers_are_the_table_labels_with_their_arrows():
    table = leaderboard([_result("a", {})])
    assert headers(table) == ["dataset", "model", *(f"{m.label} {m.arrow}" for m in METRICS)]
    assert [metric_label(m.key) for m in METRICS] == [m.label for m in METRICS]
    assert metric_label("not_a_metric") == "not_a_metric"  # a column the table does not know keeps its name


def test_a_lower_is_better_metric_flips_best_arrow_and_first_sort(monkeypatch):
    # Declare image_ap lower-is-better in the table only: every renderer must follow.
    flipped = dataclasses.replace(get_metric("image_ap"), higher_is_better=False)
    monkeypatch.setitem(metric_table._BY_KEY, "image_ap", flipped)
    results = [
        _result("a", {"image_auroc": 0.9, "image_ap": 0.2}),
        _result("b", {"image_auroc": 0.8, "image_ap": 0.4}),
    ]
    table = leaderboard(results, ["image_auroc", "image_ap"])
    best = {key[1]: [c.best for c in cells] for key, cells in table_rows(table)}
    assert best == {"a": [True, True], "b": [False, False]}  # 90 > 80 is best, and so is 20 < 40
    assert "| I-AUROC ↑ | I-AP ↓ |" in render(table, "md")
    assert r"I-AUROC $\uparrow$ & I-AP $\downarrow$" in render(table, "latex")
    page = render(table, "html")
    assert page.count('data-first="descending"') == 1 and page.count('data-first="ascending"') == 3


def test_paper_tables_name_metrics_as_the_papers_print_them():
    rows = [
        ("P (2024) Table 1", "M", "d", level, key, "50.0", "")
        for key, level in (("image_auroc", "image"), ("pixel_auroc", "pixel"), ("pixel_aupro", "pixel"))
    ]
    published = pd.DataFrame(
        rows, columns=["source", "method", "dataset", "level", "metric", "value", "note"]
    )
    published = published.assign(printed=published["value"], value=published["value"].astype(float))
    text = paper_table(published, "P (2024) Table 1")
    assert "## Image level (AUROC)" in text
    assert f"## Pixel level ({get_metric('pixel_auroc').paper} / {get_metric('pixel_aupro').paper})" in text
    assert "## Pixel level (AUROC / PRO)" in text
