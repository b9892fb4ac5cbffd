"""`zsad plot` and zsad_bench.report.figures: figures from a real tiny run of clip and clip-ac on synthetic
data."""

import dataclasses
import logging

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.report.figures import (
    KINDS,
    bars_figure,
    curves_figure,
    heatmap_figure,
    plot_curves,
    plot_qualitative,
    qualitative_figure,
)
from zsad_bench.report.figures.curve_points import class_curves, downsample
from zsad_bench.results.cache import PredictionCache
from zsad_bench.results.schema import read_results

MODELS = ["clip", "clip-ac"]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, session_data_root):
    from zsad_bench.engine import EvalConfig
    from zsad_bench.engine.runner import RunRequest, execute
    from zsad_bench.protocols import default

    out = tmp_path_factory.mktemp("results")
    # Module scope runs before the autouse per-test environment: isolate the data root here too.
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZSAD_DATA", str(session_data_root))
        env.setenv("HF_HUB_OFFLINE", "1")
        # One thread: the tiny model gains nothing from more, and on a busy machine they contend (10x).
        torch.set_num_threads(1)
        try:
            protocol = default.with_overrides(eval_size=32)
            evaluation = EvalConfig(protocol, device="auto", batch_size="auto", num_workers="auto")
            options = {"image_size": 64}
            execute(
                RunRequest(MODELS, ["synthetic"], out, evaluation, "test-tiny", options=options, quiet=True)
            )
        finally:
            torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def plotted(results_dir, tmp_path_factory, session_data_root):
    """`zsad plot DIR --kind all --out OUT`, once (2 rows per grid keep it quick): (click result, OUT)."""
    out = tmp_path_factory.mktemp("plots")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZSAD_DATA", str(session_data_root))
        result = CliRunner().invoke(
            main, ["plot", str(results_dir), "--kind", "all", "--out", str(out), "--samples", "2"]
        )
    return result, out


def _predictions(results_dir, result, class_name):
    return PredictionCache.open(results_dir / result.predictions["folder"]).load(class_name)


# -- files -----------------------------------------------------------------------------------------------
def test_cli_all_writes_png_and_svg_of_every_kind(plotted):
    result, out = plotted
    assert result.exit_code == 0, result.output
    printed = set(result.stdout.split())
    for kind in KINDS:
        pngs = sorted((out / kind).glob("*.png"))
        assert pngs, kind
        for png in pngs:
            svg = png.with_suffix(".svg")
            assert png.stat().st_size > 5_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert svg.stat().st_size > 5_000 and b"<svg" in svg.read_bytes()[:1000]
            assert {str(png), str(svg)} <= printed
    assert {p.name for p in (out / "heatmap").iterdir()} == {"image_auroc.png", "image_auroc.svg"}
    assert (out / "bars" / "synthetic__image_auroc.png").is_file()
    classes = {"checker", "dots", "stripes", "weave"}
    for kind in ("curves", "qualitative"):
        assert {p.stem for p in (out / kind).glob("*.png")} == {f"synthetic__{c}" for c in classes}


def test_quiet_prints_nothing_and_file_names_are_made_safe(results_dir, tmp_path):
    (run,) = [r for r in read_results(results_dir) if r.model == "clip"]
    odd = dataclasses.replace(run, dataset="my data:v1")
    odd.write(tmp_path / "results")
    result = CliRunner().invoke(
        main,
        [
            "plot",
            str(tmp_path / "results"),
            "--kind",
            "bars",
            "--out",
            str(tmp_path / "o"),
            "--format",
            "png",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert [p.name for p in (tmp_path / "o" / "bars").iterdir()] == ["my_data_v1__image_auroc.png"]


# -- heatmap and bars ------------------------------------------------------------------------------------
def test_heatmap_labels_title_mean_column_and_missing_cells(results_dir):
    runs = read_results(results_dir)
    # a second dataset on which clip-ac lacks the metric: its cell and its mean over datasets are blank
    other = [
        dataclasses.replace(
            r, dataset="other", mean={**r.mean, "pixel_aupro": None if r.model == "clip-ac" else 0.5}
        )
        for r in runs
    ]
    fig = heatmap_figure(runs + other, "pixel_aupro")
    (ax,) = [a for a in fig.axes if a.get_title()]
    assert ax.get_title() == "Pixel AUPRO (%) — mean over classes"
    assert ax.get_xlabel() == "dataset" and ax.get_ylabel() == "method"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["other", "synthetic", "mean"]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert [r.split(" ")[0] for r in rows] == MODELS
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("–") == 2  # clip-ac on "other" and its mean
    assert "50.0" in texts and f"{100 * runs[0].mean['pixel_aupro']:.1f}" in texts


def test_heatmap_and_bars_reject_bad_metrics(results_dir):
    runs = read_results(results_dir)
    with pytest.raises(ZsadError, match="unknown metric 'auroc'"):
        heatmap_figure(runs, "auroc")
    empty = [dataclasses.replace(r, mean={**r.mean, "image_ap": None}) for r in runs]
    with pytest.raises(ZsadError, match="no result defines image_ap"):
        heatmap_figure(empty, "image_ap")


def test_bars_have_classes_on_x_and_one_hue_per_model(results_dir):
    fig = bars_figure(read_results(results_dir), "pixel_auroc")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["checker", "dots", "stripes", "weave", "mean"]
    assert [t.get_text().split(" ")[0] for t in ax.get_legend().get_texts()] == MODELS
    assert "Pixel AUROC" in ax.get_title() and "synthetic" in ax.get_title()
    assert len(ax.patches) >= 2 * 5  # one bar per (class, model)


# -- curves ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("class_name", ["checker", "weave"])
def test_curves_reproduce_the_stored_metrics(results_dir, class_name):
    for run in read_results(results_dir):
        p = _predictions(results_dir, run, class_name)
        curves = class_curves(p.maps, p.masks, p.scores, p.labels, fpr_limit=0.3)
        stored = run.per_class[class_name]
        assert np.trapezoid(curves.roc[1], curves.roc[0]) == pytest.approx(stored["pixel_auroc"], abs=1e-6)
        assert curves.auroc == pytest.approx(stored["pixel_auroc"], abs=1e-12)
        recall, precision = curves.pr  # steps-pre: each precision holds over the recall step before it
        assert np.sum(np.diff(recall) * precision[1:]) == pytest.approx(stored["pixel_ap"], abs=1e-9)
        x, pro = curves.pro
        assert x[0] == 0 and x[-1] == pytest.approx(0.3) and np.all(np.diff(x) >= 0)
        assert np.trapezoid(pro, x) / 0.3 == pytest.approx(stored["pixel_aupro"], abs=1e-6)


def test_image_level_curves_without_masks(results_dir):
    run = read_results(results_dir)[0]
    p = _predictions(results_dir, run, "dots")
    curves = class_curves(p.maps, None, p.scores, p.labels)
    assert curves.level == "image" and curves.pro is None
    assert np.trapezoid(curves.roc[1], curves.roc[0]) == pytest.approx(run.per_class["dots"]["image_auroc"])


def test_curves_figure_panels_legends_and_downsampling(results_dir):
    curves = {}
    for run in read_results(results_dir):
        p = _predictions(results_dir, run, "weave")
        curves[run.model] = class_curves(p.maps, p.masks, p.scores, p.labels)
    fig = curves_figure(curves, "synthetic / weave", max_points=50)
    axes = {ax.get_label(): ax for ax in fig.axes}
    assert axes["pro"].get_xlim() == (0, 0.3)
    for name, key in (("roc", "AUROC"), ("pr", "AP"), ("pro", "AUPRO")):
        legend = [t.get_text() for t in axes[name].get_legend().get_texts()]
        assert sum(key in t for t in legend) == len(MODELS), legend
        model_lines = [line for line in axes[name].get_lines() if key in line.get_label()]
        assert all(len(line.get_xdata()) <= 50 for line in model_lines)
    assert all(max(line.get_xdata()) <= 0.3 + 1e-12 for line in axes["pro"].get_lines())
    assert f"AUROC {100 * curves['clip'].auroc:.1f}" in axes["roc"].get_legend().get_texts()[1].get_text()


def test_downsample_keeps_both_ends_and_at_most_max_points():
    x = np.concatenate(([0.0], np.sort(np.random.default_rng(0).random(10_000)), [1.0]))
    y = np.sqrt(x)
    dx, dy = downsample(x, y, 2000)
    assert len(dx) <= 2000 and (dx[0], dx[-1]) == (0.0, 1.0)
    assert np.all(np.diff(dx) >= 0) and np.isin(dx, x).all()
    assert np.trapezoid(dy, dx) == pytest.approx(2 / 3, abs=1e-3)
    short = (x[:10], y[:10])
    assert all(
        a is b for a, b in zip(downsample(*short), short, strict=True)
    )  # short curves stay as they are


def test_results_without_a_cache_are_skipped_with_a_warning(results_dir, tmp_path, caplog):
    runs = [dataclasses.replace(r, predictions={}) for r in read_results(results_dir)]
    with caplog.at_level(logging.WARNING, logger="zsad_bench.report.figures"), pytest.raises(ZsadError):
        plot_curves(runs, tmp_path, formats=["png"])
    assert sum("no prediction cache" in m for m in caplog.messages) == len(MODELS)
    assert not any(tmp_path.iterdir())


# -- qualitative -----------------------------------------------------------------------------------------
def test_qualitative_grid_has_samples_rows_of_image_truth_and_one_overlay_per_model(results_dir):
    runs = read_results(results_dir)
    fig = qualitative_figure(runs, "dots", results_dir=results_dir)  # default: 4 samples
    image_axes = [ax for ax in fig.axes if ax.images]
    cols = 2 + len(MODELS)
    assert len(image_axes) == 4 * cols
    titles = [ax.get_title() for ax in image_axes[:cols]]
    assert titles[:2] == ["image", "ground truth"] and [t.split(" ")[0] for t in titles[2:]] == MODELS
    overlay = image_axes[2].images
    assert len(overlay) == 2 and overlay[1].get_cmap().name == "jet" and overlay[1].get_alpha() == 0.5
    assert overlay[0].get_array().shape == (32, 32, 3)  # the image at the evaluation size
    assert overlay[1].get_array().min() >= 0 and overlay[1].get_array().max() <= 1
    assert "normalised per model over the class" in fig._suptitle.get_text()

    # rows: the anomalous images with the best mean score rank over the models, ground truth beside them
    preds = [_predictions(results_dir, r, "dots") for r in runs]
    ids = preds[0].sample_ids
    assert all(p.sample_ids == ids for p in preds)
    ranks = np.mean([np.argsort(np.argsort(p.scores.numpy())) for p in preds], axis=0)
    anomalous = np.flatnonzero(preds[0].labels.numpy() == 1)
    expected = sorted(anomalous, key=lambda k: (-ranks[k], ids[k]))[:4]
    assert [ax.get_ylabel() for ax in image_axes[::cols]] == [f"{ids[k]}\nanomalous" for k in expected]
    truth = image_axes[1].images[0].get_array()
    assert np.array_equal(np.asarray(truth, dtype=bool), preds[0].masks[expected[0]].numpy())


def test_qualitative_skips_a_dataset_not_prepared_locally(results_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ZSAD_DATA", str(tmp_path / "empty"))
    runs = [
        dataclasses.replace(r, data={**r.data, "folder": str(tmp_path / "gone")})
        for r in read_results(results_dir)
    ]
    with caplog.at_level(logging.WARNING, logger="zsad_bench.report.figures"), pytest.raises(ZsadError):
        plot_qualitative(runs, tmp_path / "o", results_dir=results_dir)
    assert any("not prepared locally" in m for m in caplog.messages)


# -- CLI errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "auroc"], "error: unknown metric 'auroc'"),
        (["--format", "gif"], "error: unknown image format(s) gif"),
    ],
)
def test_cli_bad_options_fail_in_one_line(results_dir, tmp_path, args, message):
    result = CliRunner().invoke(
        main, ["plot", str(results_dir), "--kind", "heatmap", "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_cli_empty_results_folder_fails_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no result files") and result.stderr.count("\n") == 1


def test_cli_kind_with_nothing_to_draw_fails_and_warns(results_dir, tmp_path):
    folder = tmp_path / "results"
    for run in read_results(results_dir):
        dataclasses.replace(run, predictions={}).write(folder)
    result = CliRunner().invoke(main, ["plot", str(folder), "--kind", "curves", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert sum(line.startswith("warning: curves: ") for line in lines) == len(MODELS)
    assert lines[-1].startswith("error: nothing to plot")


def test_python_callers_get_paths_and_metric_all_gives_one_heatmap_per_defined_metric(
    results_dir, tmp_path, caplog
):
    from zsad_bench.report.figures import plot

    kept = ("image_auroc", "pixel_aupro")
    runs = [
        dataclasses.replace(r, mean={m: v if m in kept else None for m, v in r.mean.items()})
        for r in read_results(results_dir)
    ]
    with caplog.at_level(logging.WARNING, logger="zsad_bench.report.figures"):
        written = plot(runs, "heatmap", tmp_path, metric="all", formats=["png"])
    assert written == [tmp_path / "heatmap" / f"{m}.png" for m in kept]
    assert all(p.is_file() for p in written)
    assert len(caplog.messages) == len(runs[0].mean) - len(kept)  # one "skipped" line per undefined metric
