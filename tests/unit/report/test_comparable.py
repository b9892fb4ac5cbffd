"""Tables compare like with like: shared datasets for means, recorded choices refused or footnoted,
partial datasets marked, and the papers' numbers only beside rows computed as the papers did."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.report import RunResult, leaderboard, render
from zsad_bench.report.published import compare_published, read_published
from zsad_bench.report.tables import per_class_leaderboard
from zsad_bench.results.schema import CHOICE_DEFAULTS

PAPER = {"aupro": "anomalyclip-200", "fpr_limit": 0.3, "eval_size": 518, "pixel_mode": "exact"}


def _result(model, dataset, aupro=0.5, auroc=0.7, variants=None, precision=None, differences=None, **kw):
    values = {k: None for k in METRIC_KEYS} | {"image_auroc": auroc, "pixel_aupro": aupro}
    return RunResult(
        model=model,
        dataset=dataset,
        per_class={"c": dict(values)},
        mean=dict(values),
        metric_variants=dict(variants or {}),
        timings={"precision": precision} if precision else {},
        data={"count_differences": differences} if differences else {},
        **kw,
    )


def test_means_are_over_the_datasets_every_model_has():
    results = [
        _result("clip", "mvtec-ad", auroc=0.9),
        _result("clip", "visa", auroc=0.8),
        _result("clip", "headct", auroc=0.1),  # clip-ac never ran here: not in any mean
        _result("clip-ac", "mvtec-ad", auroc=0.6),
        _result("clip-ac", "visa", auroc=0.7),
    ]
    table = leaderboard(results, ["image_auroc"])
    assert table.loc[("mean", "clip"), "image_auroc"] == pytest.approx(85.0)  # not (90 + 80 + 10) / 3
    assert table.loc[("mean", "clip-ac"), "image_auroc"] == pytest.approx(65.0)
    assert table.attrs["notes"] == [
        "Means are over the datasets every model has (mvtec-ad, visa); left out: headct (clip only)."
    ]
    assert "left out: headct (clip only)" in render(table, "md")


def test_means_are_left_empty_when_fewer_than_two_datasets_are_shared():
    # today's bug: clip over two datasets bolded against clip-ac over one
    results = [
        _result("clip", "mvtec-ad", auroc=0.9),
        _result("clip", "visa", auroc=0.8),
        _result("clip-ac", "mvtec-ad", auroc=0.6),
    ]
    table = leaderboard(results, ["image_auroc"])
    assert table.loc["mean", "image_auroc"].isna().all()
    text = render(table, "md")
    assert "| mean | clip | – |" in text and "| mean | clip-ac | – |" in text
    assert "Means left empty: the models share fewer than two datasets (mvtec-ad)" in text


def test_rows_with_different_aupro_variants_are_refused_pointing_at_zsad_score():
    results = [
        _result("clip", "mvtec-ad"),
        _result("clip-ac", "mvtec-ad", variants={"aupro": "anomalyclip-200"}),
    ]
    with pytest.raises(ZsadError) as caught:
        leaderboard(results)
    message = str(caught.value)
    assert message == (
        "results differ in the AUPRO variant (mvtec: clip on mvtec-ad; anomalyclip-200: clip-ac on "
        "mvtec-ad); re-score them under one with 'zsad score RESULTS_DIR --aupro-variant mvtec'"
    )
    with pytest.raises(ZsadError, match="AUPRO FPR limit"):
        leaderboard([_result("clip", "visa"), _result("clip-ac", "visa", variants={"fpr_limit": 0.05})])
    # a table without AUPRO ranks nothing the variant changes
    assert leaderboard(results, ["image_auroc"]).attrs["notes"] == []


def test_shown_differences_are_footnoted_with_their_rows():
    results = [
        _result("clip", "mvtec-ad", precision="bf16"),
        _result(
            "clip-ac",
            "mvtec-ad",
            variants={"eval_size": 256, "pixel_mode": "histogram", "histogram_bins": 64},
        ),
    ]
    notes = leaderboard(results).attrs["notes"]
    assert notes == [
        "Rows differ in evaluation size, compare them with care: 518 px: clip on mvtec-ad; 256 px: "
        "clip-ac on mvtec-ad.",
        "Rows differ in pixel metrics, compare them with care: exact: clip on mvtec-ad; histogram, 64 bins: "
        "clip-ac on mvtec-ad.",
        "Rows differ in precision, compare them with care: bf16: clip on mvtec-ad; fp32: clip-ac on "
        "mvtec-ad.",
    ]
    # an image-only table does not mention pixel choices; precision changes every metric
    assert leaderboard(results, ["image_auroc"]).attrs["notes"] == [notes[2]]


def test_old_result_files_read_as_the_defaults_they_were_made_with(tmp_path):
    raw = _result("clip", "visa").to_dict()
    for key in ("metric_variants", "transductive", "data"):
        raw.pop(key)
    (tmp_path / "clip__visa.json").write_text(json.dumps(raw))
    assert RunResult.read(tmp_path / "clip__visa.json").choices() == CHOICE_DEFAULTS
    raw["metric_variants"] = {"fpr_limit": "0.3"}
    (tmp_path / "clip__visa.json").write_text(json.dumps(raw))
    with pytest.raises(ZsadError, match=r"clip__visa.json: field 'metric_variants.fpr_limit' is \"0.3\""):
        RunResult.read(tmp_path / "clip__visa.json")


def test_transductive_rows_are_labelled_and_filed_apart():
    result = _result("musc", "visa", transductive=True)
    assert result.label == "musc (transductive)" and result.filename == "musc-transductive__visa.json"
    assert result.choices()["transductive"] is True


def test_partial_datasets_mark_their_rows_and_means():
    differences = ["bottle: 20 normal / 60 anomalous, expected 20 / 63", "total: ..."]
    results = [
        _result("clip", "mvtec-ad", differences=differences),
        _result("clip", "visa"),
        _result("clip-ac", "mvtec-ad"),
        _result("clip-ac", "visa"),
    ]
    table = leaderboard(results, ["image_auroc"])
    text = render(table, "md")
    assert "| mvtec-ad | clip (partial data) |" in text and "| mean | clip (partial data) |" in text
    assert "| mvtec-ad | clip-ac |" in text and "| visa | clip |" in text
    assert (
        "Rows marked (partial data) ran on a copy of the dataset whose test counts differ from the paper's "
        "(see 'zsad datasets verify'): clip on mvtec-ad: bottle: 20 normal / 60 anomalous, expected 20 / 63 "
        "(and 1 more)." in text
    )
    per_class = render(per_class_leaderboard(results, ["image_auroc"]), "md")
    assert "| mvtec-ad | c | clip (partial data) |" in per_class


@pytest.fixture(scope="module")
def published():
    return read_published()


def test_compare_published_never_sets_an_mvtec_aupro_beside_the_papers(published):
    mvtec = leaderboard([_result("clip", "mvtec-ad"), _result("clip", "visa")])
    table = compare_published(mvtec, published)
    assert pd.isna(table.loc[("mvtec-ad", "clip"), "pixel_aupro_published"])
    assert table.loc[("mvtec-ad", "clip"), "image_auroc_published"] == 74.1  # the image level is comparable
    notes = render(table, "md")
    assert (
        "Paper numbers left out where our row was computed differently from the paper: P-AUPRO of clip on "
        "mvtec-ad (mvtec, paper anomalyclip-200: zsad score RESULTS_DIR --aupro-variant anomalyclip-200 "
        "--out NEW_DIR)" in notes
    )
    assert "paper 11.3" not in notes

    paper_like = leaderboard(
        [_result("clip", "mvtec-ad", variants=PAPER), _result("clip", "visa", variants=PAPER)]
    )
    table = compare_published(paper_like, published)
    assert table.loc[("mvtec-ad", "clip"), "pixel_aupro_published"] == 11.3
    assert table.loc[("mvtec-ad", "clip"), "pixel_aupro_delta"] == pytest.approx(50.0 - 11.3)


def test_compare_published_withholds_pixel_numbers_of_another_evaluation_size(published):
    size = {**PAPER, "eval_size": 256}
    table = compare_published(leaderboard([_result("clip", "mvtec-ad", variants=size)]), published)
    row = table.loc[("mvtec-ad", "clip")]
    assert pd.isna(row["pixel_aupro_published"]) and pd.isna(row["pixel_auroc_published"])
    assert row["image_auroc_published"] == 74.1
    assert "a new zsad run --eval-size 518" in " ".join(table.attrs["notes"])


def test_compare_published_footnotes_bf16_rows(published):
    table = compare_published(
        leaderboard([_result("clip", "mvtec-ad", variants=PAPER, precision="bf16")]), published
    )
    assert table.attrs["notes"][-1] == (
        "Compared although not run in the papers' fp32 (scores move by about 3e-3): clip on mvtec-ad (bf16)."
    )


def test_cli_leaderboard_refuses_mixed_aupro_in_one_line(tmp_path):
    _result("clip", "mvtec-ad").write(tmp_path)
    _result("clip-ac", "mvtec-ad", variants={"aupro": "anomalyclip-200"}).write(tmp_path)
    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: results differ in the AUPRO variant")
    assert len(result.stderr.strip().splitlines()) == 1 and "zsad score RESULTS_DIR" in result.stderr
