"""Results record every choice that changes a number: the protocol's precision (the paper's protocol runs
fp32, as the official test.py does), and a partial copy of a dataset carried from dataset.json into the
result and marked in the tables."""

import json

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.engine.config import EvalConfig
from zsad_bench.engine.record import Provenance
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import anomalyclip_paper, default

RUN = ["run", "--model", "clip", "--dataset", "synthetic", "--backbone", "test-tiny", "-o", "image_size=64"]


def test_protocols_carry_their_precision_and_the_flag_overrides_it():
    assert anomalyclip_paper.precision == "fp32" and default.precision == "auto"
    assert EvalConfig(protocol=anomalyclip_paper).precision == "fp32"
    assert EvalConfig(protocol=default).precision == "auto"
    assert EvalConfig(protocol=anomalyclip_paper, precision="bf16").precision == "bf16"
    with pytest.raises(
        ZsadError, match="protocol 'default': precision 'fp16' is not one of auto, bf16, fp32"
    ):
        default.with_overrides(precision="fp16")


def test_bf16_predictions_are_cached_under_their_own_key():
    provenance = Provenance(detector={"config": {"name": "clip"}}, data={"manifest_sha256": "0" * 64})
    assert provenance.cache_key(518, "bf16") != provenance.cache_key(518, "fp32")
    assert provenance.cache_key(518) == provenance.cache_key(518, "fp32")


def test_a_partial_dataset_is_carried_into_the_result_and_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSAD_DATA", str(tmp_path / "data"))
    runner = CliRunner()
    out = tmp_path / "r"
    first = runner.invoke(main, [*RUN, "--eval-size", "32", "--quiet", "--no-cache", "--out", str(out)])
    assert first.exit_code == 0, first.output
    record = json.loads((out / "clip__synthetic.json").read_text())
    assert record["data"]["count_differences"] == []
    assert record["protocol"]["precision"] == "auto" and record["timings"]["precision"] == "fp32"

    info_path = tmp_path / "data" / "synthetic" / "dataset.json"
    info = json.loads(info_path.read_text())
    info["count_differences"] = ["stripes: 3 normal / 2 anomalous, expected 4 / 2"]
    info_path.write_text(json.dumps(info))
    paper = str(tmp_path / "p")
    second = runner.invoke(
        main,
        [
            *RUN,
            "--protocol",
            "anomalyclip-paper",
            "--eval-size",
            "32",
            "--quiet",
            "--no-cache",
            "--out",
            paper,
        ],
    )
    assert second.exit_code == 0, second.output
    record = json.loads((tmp_path / "p" / "clip__synthetic.json").read_text())
    assert record["data"]["count_differences"] == info["count_differences"]
    assert record["protocol"]["precision"] == "fp32" and record["timings"]["precision"] == "fp32"

    table = runner.invoke(main, ["leaderboard", str(tmp_path / "p")])
    assert table.exit_code == 0, table.output
    assert "| synthetic | clip (random weights) (partial data) |" in table.stdout
    assert (
        "clip (random weights) on synthetic: stripes: 3 normal / 2 anomalous, expected 4 / 2." in table.stdout
    )
