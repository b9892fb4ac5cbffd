"""`zsad run --ci` and `zsad score`: re-scoring from the prediction cache without the model."""

import json

from click.testing import CliRunner

from zsad_bench.cli import main

RUN = [
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
    "--quiet",
]


def test_run_with_ci_then_score_with_another_variant(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    assert (
        runner.invoke(main, [*RUN, "--ci", "0.9", "--ci-replicates", "200", "--out", str(out)]).exit_code == 0
    )
    stored = json.loads((out / "clip__synthetic.json").read_text())
    assert stored["confidence_intervals"]["level"] == 0.9
    low, high = stored["confidence_intervals"]["mean"]["image_auroc"]
    assert low <= stored["mean"]["image_auroc"] <= high
    assert (out / stored["predictions"]["folder"] / "index.json").is_file()

    rescored_dir = tmp_path / "rescored"
    result = runner.invoke(main, ["score", str(out), "--out", str(rescored_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    same = json.loads((rescored_dir / "clip__synthetic.json").read_text())
    assert same["per_class"] == stored["per_class"]  # score reproduces the stored metrics

    result = runner.invoke(
        main, ["score", str(out), "--aupro-variant", "anomalyclip-200", "--ci", "0.95", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    replaced = json.loads((out / "clip__synthetic.json").read_text())
    assert replaced["metric_variants"]["aupro"] == "anomalyclip-200"
    assert replaced["confidence_intervals"]["level"] == 0.95
    assert replaced["rescored"]["from"] == stored["created"]


def test_score_refuses_what_needs_a_rerun(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    runner.invoke(main, [*RUN, "--out", str(out)])
    before = (out / "clip__synthetic.json").read_bytes()
    result = runner.invoke(main, ["score", str(out), "--eval-size", "64"])
    assert result.exit_code == 2 and "needs a new 'zsad run'" in result.stderr
    assert (out / "clip__synthetic.json").read_bytes() == before

    no_cache = tmp_path / "n"
    runner.invoke(main, [*RUN, "--no-cache", "--out", str(no_cache)])
    result = runner.invoke(main, ["score", str(no_cache)])
    assert result.exit_code == 2 and "--no-cache" in result.stderr


def test_rerun_resumes_from_the_cache(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    runner.invoke(main, [*RUN, "--out", str(out)])
    first = json.loads((out / "clip__synthetic.json").read_text())
    second = runner.invoke(main, [*RUN[:-1], "--out", str(out)])
    assert second.exit_code == 0
    assert "resuming: 4 of 4 classes are cached" in second.stderr
    record = json.loads((out / "clip__synthetic.json").read_text())
    # nothing ran again: the result keeps the timings its first run measured, and says it was replayed
    assert record["timings"] == {**first["timings"], "replayed": True}
    assert record["per_class"] == first["per_class"]


def _two_results(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(main, [*RUN[:2], "clip,clip-ac", *RUN[3:], "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.json"))
    assert [p.name for p in files] == ["clip-ac__synthetic.json", "clip__synthetic.json"]
    return out, files


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_score_is_all_or_nothing_when_a_later_cache_lacks_a_class(tmp_path):
    out, _ = _two_results(tmp_path)
    # results are re-scored in (model, dataset) order: clip-ac, then clip; break the second one's cache
    second = json.loads((out / "clip__synthetic.json").read_text())
    class_files = sorted((out / second["predictions"]["folder"]).glob("*.safetensors"))
    class_files[-1].unlink()
    before = _snapshot(out)
    result = CliRunner().invoke(main, ["score", str(out), "--aupro-variant", "anomalyclip-200"])
    assert result.exit_code == 2
    assert "clip__synthetic.json: the prediction cache" in result.stderr and "lacks class" in result.stderr
    assert "re-run 'zsad run'" in result.stderr and "Traceback" not in result.output
    assert _snapshot(out) == before  # clip-ac's result, checked first, is not rewritten either


def test_score_is_all_or_nothing_when_a_later_class_file_is_corrupt(tmp_path):
    out, _ = _two_results(tmp_path)
    second = json.loads((out / "clip__synthetic.json").read_text())
    class_file = sorted((out / second["predictions"]["folder"]).glob("*.safetensors"))[0]
    class_file.write_bytes(class_file.read_bytes()[:100])
    before = _snapshot(out)
    result = CliRunner().invoke(main, ["score", str(out), "--aupro-variant", "anomalyclip-200"])
    assert result.exit_code == 2, result.output
    assert _snapshot(out) == before
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
