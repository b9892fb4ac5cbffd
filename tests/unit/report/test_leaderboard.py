import pytest

from zsad_bench.errors import ZsadError
from zsad_bench.report import METRICS, RunResult, leaderboard, read_results, render


def _result(model, dataset, mean, random_weights=False):
    full = {k: mean.get(k) for k in METRICS}
    return RunResult(
        model=model, dataset=dataset, per_class={"c": full}, mean=full, random_weights=random_weights
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
