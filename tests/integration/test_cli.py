"""The `zsad` commands end to end through click's CliRunner: demo, run, leaderboard, listings, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_demo_writes_results_and_prints_the_leaderboard(runner, tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(main, ["demo", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.glob("*.json"))
    assert files == ["clip-ac__synthetic.json", "clip__synthetic.json"]
    assert "| synthetic | clip (random weights) |" in result.stdout
    assert "random weights" in result.stdout.lower()
    record = json.loads((out / "clip__synthetic.json").read_text())
    assert record["random_weights"] is True
    assert record["detector"]["backbone"] == "test-tiny:random"
    assert set(record["per_class"]) >= {"stripes", "checker"} or len(record["per_class"]) >= 3


def test_run_then_leaderboard_md_and_csv(runner, tmp_path):
    out = tmp_path / "results"
    args = [
        "run",
        "--model",
        "clip",
        "--dataset",
        "synthetic",
        "--backbone",
        "test-tiny",
        "-o",
        "image_size=64",
        "--eval-size",
        "64",
        "--batch-size",
        "5",
        "--out",
        str(out),
        "--quiet",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "clip__synthetic.json").read_text())
    for key in (
        "per_class",
        "mean",
        "counts",
        "protocol",
        "metric_variants",
        "detector",
        "data",
        "environment",
        "timings",
        "seed",
        "created",
    ):
        assert key in record
    assert record["data"]["manifest_sha256"] and record["detector"]["backbone_weights_sha256"]
    assert record["timings"]["batch_size"] == 5

    md = runner.invoke(main, ["leaderboard", str(out)])
    assert md.exit_code == 0 and md.stdout.startswith("| dataset | model |")
    csv = runner.invoke(main, ["leaderboard", str(out), "--format", "csv"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("dataset,model,image_auroc")
    saved = tmp_path / "board.md"
    runner.invoke(main, ["leaderboard", str(out), "--out", str(saved)])
    assert saved.read_text() == md.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--model", "clipp", "--dataset", "synthetic", "--out", "x"], "did you mean 'clip'"),
        (["run", "--model", "clip", "--dataset", "mvtek", "--out", "x"], "unknown dataset 'mvtek'"),
        (
            [
                "run",
                "--model",
                "clip",
                "--dataset",
                "synthetic",
                "--backbone",
                "test-tiny",
                "-o",
                "bogus=1",
                "--out",
                "x",
            ],
            "has no option 'bogus'",
        ),
        (["run", "--model", "clip", "--dataset", "synthetic", "-o", "image_size", "--out", "x"], "KEY=VALUE"),
        *[
            (
                ["run", "--model", "clip,winclip", "--dataset", "synthetic", "-o", option, "--out", "x"],
                message,
            )
            for option, message in [
                ("image_size=abc", "option image_size of model 'clip' must be an integer (>= 1), got 'abc'"),
                ("image_size=-64", "option image_size of model 'clip' must be an integer (>= 1), got '-64'"),
                ("temperature=0", "option temperature of model 'clip' must be a number (> 0), got '0'"),
                (
                    "pos_interpolation=foo",
                    "option pos_interpolation of model 'clip' must be one of bilinear,",
                ),
                ("backbone=ViT-B-16", "option 'backbone' cannot be set with -o; use --backbone"),
                ("device=cpu", "option 'device' cannot be set with -o; use --device"),
                ("trained_on=visa", "option 'trained_on' cannot be set with -o; training records it"),
                # clip has sigma, winclip has not: refused before clip runs
                ("sigma=2", "model 'winclip' has no option 'sigma'"),
            ]
        ],
        (
            ["train", "anomalyclip", "--dataset", "synthetic", "-o", "sigma=-1", "--out", "x"],
            "option sigma of model 'anomalyclip' must be a number (>= 0), got '-1'",
        ),
        (
            [
                "reproduce",
                "anomalyclip-paper",
                "--models",
                "coop",
                "-o",
                "n_ctx=0",
                "--out",
                "x",
                "--dry-run",
            ],
            "option n_ctx of model 'coop' must be an integer (>= 1), got '0'",
        ),
        (
            ["run", "--model", "clip", "--dataset", "synthetic", "--protocol", "nope", "--out", "x"],
            "unknown protocol 'nope'",
        ),
        (["run", "--model", "clip", "--dataset", "synthetic", "--device", "cuda:7", "--out", "x"], "device"),
        (["leaderboard", "does-not-exist"], "does not exist"),
        (["models", "info", "winclipp"], "unknown model"),
        (["datasets", "info", "nope"], "unknown dataset"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # "--out x" lands here: the refused command must not have made it
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_run_batch_size_auto_is_recorded(runner, tmp_path):
    out = tmp_path / "results"
    args = [
        "run",
        "--model",
        "clip",
        "--dataset",
        "synthetic",
        "--backbone",
        "test-tiny",
        "-o",
        "image_size=64",
    ]
    result = runner.invoke(
        main, [*args, "--eval-size", "32", "--batch-size", "auto", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    timings = json.loads((out / "clip__synthetic.json").read_text())["timings"]
    assert timings["batch_size_requested"] == "auto" and timings["batch_size"] == 8  # the CPU's auto
    assert timings["num_workers"] == 0


@pytest.mark.parametrize("value", ["0", "big", "-2"])
def test_bad_batch_size_is_a_usage_error(runner, tmp_path, value):
    out = tmp_path / "x"
    args = ["run", "--model", "clip", "--dataset", "synthetic", "--batch-size", value, "--out", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and f"batch size '{value}' is not 'auto' or an integer >= 1" in result.stderr
    assert not out.exists()


def test_click_usage_errors_exit_2(runner):
    for args, message in [
        (["run"], "Missing option '--model'"),
        (["leaderboard", ".", "--format", "xlsx"], "'xlsx' is not one of"),
        (["nonsense"], "No such command 'nonsense'"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_failed_run_keeps_earlier_results(runner, tmp_path):
    out = tmp_path / "results"
    ok = [
        "run",
        "--model",
        "clip",
        "--dataset",
        "synthetic",
        "--backbone",
        "test-tiny",
        "-o",
        "image_size=64",
        "--eval-size",
        "32",
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(main, ok).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # the same run with a typo in the second model: clip must not run again and rewrite its result
    bad = runner.invoke(main, [*ok[:2], "clip,nope", *ok[3:]])
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'nope'; did you mean"), bad.stderr
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_listings(runner):
    models = runner.invoke(main, ["models", "list"])
    assert models.exit_code == 0 and "clip-ac" in models.stdout and "(built-in)" in models.stdout
    info = runner.invoke(main, ["models", "info", "clip"])
    assert info.exit_code == 0
    rows = {line.split()[0]: line.split() for line in info.stdout.splitlines() if line.startswith("  ")}
    assert rows["name"] == ["name", "type", "default", "allowed", "help"]
    assert rows["image_size"][:4] == ["image_size", "int", "518", ">="]
    assert rows["temperature"][:4] == ["temperature", "float", "0.07", ">"]
    assert rows["pos_interpolation"][:5] == ["pos_interpolation", "str", "bilinear", "one", "of"]
    assert "set by --backbone" in " ".join(rows["backbone"])
    datasets = runner.invoke(main, ["datasets", "list"])
    assert datasets.exit_code == 0 and "synthetic" in datasets.stdout
    assert runner.invoke(main, ["datasets", "info", "synthetic"]).exit_code == 0


def test_listing_models_imports_no_torch():
    code = (
        "import sys; from click.testing import CliRunner; from zsad_bench.cli import main; "
        "r = CliRunner().invoke(main, ['models', 'list']); assert r.exit_code == 0, r.output; "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
