import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.report import RunResult, leaderboard, read_results, render
from zsad_bench.report.published import compare_published, read_published
from zsad_bench.report.tables import per_class_leaderboard, signed

THREE = ["image_auroc", "image_ap", "pixel_auroc"]


def _result(model, dataset, mean, random_weights=False, per_class=None, shots=0):
    full = {k: mean.get(k) for k in METRIC_KEYS}
    classes = {c: {k: v.get(k) for k in METRIC_KEYS} for c, v in (per_class or {"c": full}).items()}
    return RunResult(
        model=model,
        dataset=dataset,
        per_class=classes,
        mean=full,
        random_weights=random_weights,
        shots=shots,
    )


@pytest.fixture
def results():
    return [
        _result("clip", "mvtec-ad", {"image_auroc": 0.741, "image_ap": 0.876, "pixel_auroc": 0.384}),
        _result("anomalyclip", "mvtec-ad", {"image_auroc": 0.915, "image_ap": 0.962, "pixel_auroc": 0.911}),
        _result("clip", "headct", {"image_auroc": 0.5, "image_ap": 0.6}),
        _result("anomalyclip", "headct", {"image_auroc": 0.937, "image_ap": 0.925}),
    ]


GOLDEN_MD = """\
| dataset | model | I-AUROC ↑ | I-AP ↑ | P-AUROC ↑ |
|---|---|---:|---:|---:|
| headct | anomalyclip | **93.7** | **92.5** | – |
| headct | clip | 50.0 | 60.0 | – |
| mvtec-ad | anomalyclip | **91.5** | **96.2** | **91.1** |
| mvtec-ad | clip | 74.1 | 87.6 | 38.4 |
| mean | anomalyclip | **92.6** | **94.3** | – |
| mean | clip | 62.0 | 73.8 | – |
"""

GOLDEN_CSV = """\
dataset,model,image_auroc,image_ap,pixel_auroc
headct,anomalyclip,93.7,92.5,
headct,clip,50.0,60.0,
mvtec-ad,anomalyclip,91.5,96.2,91.1
mvtec-ad,clip,74.1,87.6,38.4
mean,anomalyclip,92.6,94.35,
mean,clip,62.05,73.8,
"""


def test_markdown_golden(results):
    table = leaderboard(results, metrics=["image_auroc", "image_ap", "pixel_auroc"])
    assert render(table, "md") == GOLDEN_MD


def test_csv_golden(results):
    table = leaderboard(results, metrics=["image_auroc", "image_ap", "pixel_auroc"])
    assert render(table, "csv") == GOLDEN_CSV


def test_mean_over_datasets_is_missing_when_a_dataset_lacks_the_metric(results):
    table = leaderboard(results)
    assert table.loc[("mean", "clip"), "pixel_auroc"] != table.loc[("mean", "clip"), "pixel_auroc"]  # NaN


def test_random_weights_are_labelled():
    table = leaderboard([_result("clip", "synthetic", {"image_auroc": 0.5}, random_weights=True)])
    assert "clip (random weights)" in render(table, "md")


def test_duplicate_pair_and_unknown_metric_and_format_are_errors(results):
    with pytest.raises(ZsadError, match="two results"):
        leaderboard([*results, results[0]])
    with pytest.raises(ZsadError, match="unknown metric"):
        leaderboard(results, metrics=["pixel_iou"])
    with pytest.raises(ZsadError, match="unknown format"):
        render(leaderboard(results), "xlsx")


def test_results_round_trip_through_files(tmp_path, results):
    for r in results:
        r.write(tmp_path)
    loaded = read_results(tmp_path)
    assert [(r.model, r.dataset) for r in loaded] == sorted((r.model, r.dataset) for r in results)
    assert (
        loaded[0].mean
        == next(r for r in results if (r.model, r.dataset) == (loaded[0].model, loaded[0].dataset)).mean
    )


def test_reading_bad_folders(tmp_path):
    with pytest.raises(ZsadError, match="does not exist"):
        read_results(tmp_path / "missing")
    with pytest.raises(ZsadError, match="no result files"):
        read_results(tmp_path)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ZsadError, match="not readable JSON"):
        read_results(tmp_path)


def test_write_is_atomic(tmp_path, monkeypatch, results):
    import json

    target = results[0].write(tmp_path)
    before = target.read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(RuntimeError):
        results[0].write(tmp_path)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ------------------------------------------------------------------------------------------ per class


@pytest.fixture
def class_results():
    bottle, cable = {"image_auroc": 0.9, "pixel_auroc": 0.95}, {"image_auroc": 0.8, "pixel_auroc": None}
    return [
        _result("clip", "mvtec-ad", {"image_auroc": 0.85}, per_class={"cable": cable, "bottle": bottle}),
        _result(
            "anomalyclip",
            "mvtec-ad",
            {"image_auroc": 0.9, "pixel_auroc": 0.9},
            per_class={"bottle": {"image_auroc": 0.95, "pixel_auroc": 0.9}, "cable": {"image_auroc": 0.85}},
        ),
        _result("clip", "headct", {"image_auroc": 0.5}, per_class={"headct": {"image_auroc": 0.5}}),
    ]


GOLDEN_PER_CLASS_MD = """\
| dataset | class | model | I-AUROC ↑ | P-AUROC ↑ |
|---|---|---|---:|---:|
| headct | headct | clip | 50.0 | – |
| mvtec-ad | bottle | anomalyclip | **95.0** | 90.0 |
| mvtec-ad | bottle | clip | 90.0 | **95.0** |
| mvtec-ad | cable | anomalyclip | **85.0** | – |
| mvtec-ad | cable | clip | 80.0 | – |
| mvtec-ad | mean | anomalyclip | **90.0** | **90.0** |
| mvtec-ad | mean | clip | 85.0 | – |
"""

GOLDEN_PER_CLASS_CSV = """\
dataset,class,model,image_auroc,pixel_auroc
headct,headct,clip,50.0,
mvtec-ad,bottle,anomalyclip,95.0,90.0
mvtec-ad,bottle,clip,90.0,95.0
mvtec-ad,cable,anomalyclip,85.0,
mvtec-ad,cable,clip,80.0,
mvtec-ad,mean,anomalyclip,90.0,90.0
mvtec-ad,mean,clip,85.0,
"""


def test_per_class_golden(class_results):
    # Rows (dataset, class, model); best per (dataset, class); a "mean" class only for multi-class datasets.
    table = per_class_leaderboard(class_results, metrics=["image_auroc", "pixel_auroc"])
    assert list(table.index.names) == ["dataset", "class", "model"]
    assert render(table, "md") == GOLDEN_PER_CLASS_MD
    assert render(table, "csv") == GOLDEN_PER_CLASS_CSV


# ------------------------------------------------------------------------------------------- latex

GOLDEN_LATEX = r"""\begin{tabular}{llrrr}
\toprule
dataset & model & I-AUROC $\uparrow$ & I-AP $\uparrow$ & P-AUROC $\uparrow$ \\
\midrule
headct & anomalyclip & \textbf{93.7} & \textbf{92.5} & -- \\
headct & clip & 50.0 & 60.0 & -- \\
\midrule
mvtec\_ad & anomalyclip & \textbf{91.5} & \textbf{96.2} & \textbf{91.1} \\
mvtec\_ad & clip & 74.1 & 87.6 & 38.4 \\
\midrule
mean & anomalyclip & \textbf{92.6} & \textbf{94.3} & -- \\
mean & clip & 62.0 & 73.8 & -- \\
\bottomrule
\multicolumn{5}{l}{\footnotesize 100\% of \#rows \& more} \\
\end{tabular}
"""


def test_latex_golden(results):
    # booktabs rules, a rule between datasets, bold best, "--" (an en dash) for missing, escaped text.
    for r in results:
        r.dataset = r.dataset.replace("-", "_")
    table = leaderboard(results, metrics=THREE)
    assert render(table, "latex", notes=["100% of #rows & more"]) == GOLDEN_LATEX


# ------------------------------------------------------------------------------- compare published

FIXTURE_PUBLISHED = """\
source,method,dataset,level,metric,value,note
AnomalyCLIP (ICLR 2024) Table 1,AnomalyCLIP,mvtec-ad,image,image_auroc,91.8,
AnomalyCLIP (ICLR 2024) Table 1,CLIP,mvtec-ad,image,image_auroc,74.0,
CLIP (ICML 2021),CLIP,mvtec-ad,image,image_auroc,70.0,the method's own paper loses to AnomalyCLIP's table
AnomalyCLIP (ICLR 2024) Table 1,CLIP,mvtec-ad,pixel,pixel_auroc,38.4,
AnomalyCLIP (ICLR 2024) Table 2,AnomalyCLIP,headct,image,image_ap,91.6,
Someone Else (2025),CLIP,headct,image,image_auroc,99.0,a third paper loses to the method's own
CLIP (ICML 2021),CLIP,headct,image,image_auroc,49.0,"recalled, unverified"
AnomalyCLIP (ICLR 2024) Table 1,AnomalyCLIP (4-shot),mvtec-ad,image,image_ap,99.9,few-shot only
"""

GOLDEN_COMPARE_MD = """\
| dataset | model | I-AUROC ↑ | I-AP ↑ | P-AUROC ↑ |
|---|---|---:|---:|---:|
| headct | anomalyclip | **93.7** | **92.5** (paper 91.6, +0.9) | – |
| headct | clip | 50.0 (paper 49.0, +1.0) | 60.0 | – |
| mvtec-ad | anomalyclip | **91.5** (paper 91.8, −0.3) | **96.2** | **91.1** |
| mvtec-ad | clip | 74.1 (paper 74.0, +0.1) | 87.6 | 38.4 (paper 38.4, ±0.0) |
| mean | anomalyclip | **92.6** | **94.3** | – |
| mean | clip | 62.0 | 73.8 | – |

Paper numbers: AnomalyCLIP (ICLR 2024) Table 1; AnomalyCLIP (ICLR 2024) Table 2; CLIP (ICML 2021).

Recalled, unverified against the paper: CLIP on headct I-AUROC in CLIP (ICML 2021).
"""

GOLDEN_COMPARE_CSV = """\
dataset,model,image_auroc,image_auroc_published,image_auroc_delta,image_ap,image_ap_published,\
image_ap_delta,pixel_auroc,pixel_auroc_published,pixel_auroc_delta
headct,anomalyclip,93.7,,,92.5,91.6,0.9,,,
headct,clip,50.0,49.0,1.0,60.0,,,,,
mvtec-ad,anomalyclip,91.5,91.8,-0.3,96.2,,,91.1,,
mvtec-ad,clip,74.1,74.0,0.1,87.6,,,38.4,38.4,0.0
mean,anomalyclip,92.6,,,94.35,,,,,
mean,clip,62.05,,,73.8,,,,,
"""


@pytest.fixture
def published_csv(tmp_path):
    path = tmp_path / "published_results.csv"
    path.write_text(FIXTURE_PUBLISHED)
    return path


def test_compare_published_golden(results, published_csv):
    table = compare_published(leaderboard(results, metrics=THREE), read_published(published_csv))
    assert render(table, "md") == GOLDEN_COMPARE_MD
    assert render(table, "csv") == GOLDEN_COMPARE_CSV


def test_compare_in_latex_and_html_cells(results, published_csv):
    table = compare_published(leaderboard(results, metrics=THREE), read_published(published_csv))
    latex = render(table, "latex")
    assert r"\textbf{91.5} (paper 91.8, $-$0.3)" in latex
    assert r"\footnotesize Paper numbers: AnomalyCLIP (ICLR 2024) Table 1;" in latex
    assert '<strong>91.5</strong> <span class="paper">(paper 91.8, −0.3)</span>' in render(table, "html")


def test_signed_delta():
    assert [signed(-0.3), signed(0.25), signed(-0.04), signed(1.0, 2)] == ["−0.3", "+0.2", "±0.0", "+1.00"]


# ---------------------------------------------------------------------------------------------- html


def test_html_is_one_escaped_offline_page(results):
    results[0].model = "<script>alert(1)</script>"
    results[1].random_weights = True
    table = leaderboard(results, metrics=THREE)
    page = render(table, "html", caption="results <a&b>/", notes=["Rows marked '(random weights)' ..."])
    assert page.startswith("<!DOCTYPE html>") and page.count("<table") == 1
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "results &lt;a&amp;b&gt;/" in page
    assert '<span class="note">Rows marked &#x27;(random weights)&#x27; ...</span>' in page
    assert "src=" not in page and "href=" not in page and "@import" not in page  # no external assets
    assert '<th scope="col" tabindex="0" data-type="number" data-first="descending"' in page
    assert '<td class="metric" data-value="">–</td>' in page  # missing: sorts last
    assert "<strong>93.7</strong>" in page


# ------------------------------------------------------------------------------------------------ cli


def _write(results, folder):
    for r in results:
        r.write(folder)
    return str(folder)


def test_cli_formats_per_class_and_compare(tmp_path, results, published_csv):
    folder = _write(results, tmp_path / "results")
    runner = CliRunner()
    md = runner.invoke(
        main, ["leaderboard", folder, "--compare", "published", "--published-csv", published_csv]
    )
    assert md.exit_code == 0, md.output
    assert "| mvtec-ad | anomalyclip | **91.5** (paper 91.8, −0.3) |" in md.stdout
    assert "Paper numbers: AnomalyCLIP (ICLR 2024) Table 1" in md.stdout
    per_class = runner.invoke(main, ["leaderboard", folder, "--per-class", "--format", "csv"])
    assert per_class.exit_code == 0 and per_class.stdout.startswith("dataset,class,model,image_auroc")
    latex = runner.invoke(main, ["leaderboard", folder, "--format", "latex"])
    assert latex.exit_code == 0 and latex.stdout.startswith(r"\begin{tabular}")
    out = tmp_path / "board.html"
    html = runner.invoke(main, ["leaderboard", folder, "--format", "html", "--out", str(out)])
    assert html.exit_code == 0 and f"zsad-bench leaderboard: {folder}" in out.read_text()


def test_cli_random_weights_note_in_every_format_but_csv(tmp_path):
    folder = _write([_result("clip", "synthetic", {"image_auroc": 0.5}, random_weights=True)], tmp_path)
    for fmt, expected in (("md", True), ("latex", True), ("html", True), ("csv", False)):
        text = CliRunner().invoke(main, ["leaderboard", folder, "--format", fmt]).stdout
        assert ("untrained test weights" in text) is expected, fmt


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["leaderboard"], "give a RESULTS_DIR"),
        (["leaderboard", "{folder}", "--per-class", "--compare", "published"], "no per-class numbers"),
        (["leaderboard", "--published", "--format", "csv"], "--published renders"),
        (["leaderboard", "{folder}", "--compare", "published", "--published-csv", "nope.csv"], "not found"),
    ],
)
def test_cli_bad_combinations_are_one_line_errors(tmp_path, results, args, message):
    folder = _write(results, tmp_path / "results")
    result = CliRunner().invoke(main, [a.format(folder=folder) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
