"""Sharded evaluation: ranks' blocks, and two (and three) gloo processes under torchrun giving the metrics
and the prediction cache of one process, bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zsad_bench.engine.distributed import Ranks, current, launched
from zsad_bench.results.cache import PredictionCache

WORKER = Path(__file__).with_name("_dist_worker.py")
SETTINGS = ("exact", "histogram", "small")


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_blocks_partition_every_class_in_order(world):
    for n in range(13):
        blocks = [list(Ranks(r, world).block(n)) for r in range(world)]
        assert [i for b in blocks for i in b] == list(range(n))  # contiguous, in rank order
        assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert [Ranks(0, world).owner(p) for p in range(7)] == [p % world for p in range(7)]


def test_a_single_process_is_not_sharded(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert current() == Ranks(0, 1) and not current().sharded and current().main
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()


def _torchrun(nproc: int, out: Path, data_root: Path) -> None:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSAD_DATA": str(data_root), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    done = subprocess.run(
        [*command, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, session_data_root):
    from zsad_bench import load_dataset

    # built here once, so the ranks only read it
    load_dataset("synthetic", transform=lambda image: image, mask_size=32, root=session_data_root)
    root = tmp_path_factory.mktemp("dist")
    for nproc in (1, 2, 3):
        _torchrun(nproc, root / f"world{nproc}", session_data_root)
    return root


def _read(folder: Path, setting: str, rank: int) -> dict:
    return json.loads((folder / f"{setting}.rank{rank}.json").read_text())


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("world", [2, 3])
def test_sharded_metrics_equal_one_process(runs, setting, world):
    single = _read(runs / "world1", setting, 0)
    assert single["ranks"] == 1
    if setting == "small":  # its first class has 2 images, fewer than 3 ranks: rank 0 has none of them
        assert min(c["normal"] + c["anomalous"] for c in single["counts"].values()) == 2
    for rank in range(world):  # every rank ends with the whole result
        sharded = _read(runs / f"world{world}", setting, rank)
        assert sharded["ranks"] == world and sharded["images"] == single["images"]
        if setting == "histogram":  # float64 bin sums merged in another order: equal to rounding
            for name, values in single["per_class"].items():
                for key, value in values.items():
                    assert sharded["per_class"][name][key] == pytest.approx(value, abs=1e-12, nan_ok=True)
        else:
            assert sharded["per_class"] == single["per_class"]
            assert sharded["mean"] == single["mean"]
        assert sharded["counts"] == single["counts"]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_a_sharded_run_resumes_from_the_cache(runs, world):
    first = _read(runs / f"world{world}", "exact", 0)
    classes = sorted(first["per_class"])
    assert first["from_cache"] == []
    for rank in range(world):
        resumed = _read(runs / f"world{world}", "resumed", rank)
        assert resumed["per_class"] == first["per_class"]
        assert sorted(resumed["from_cache"]) == sorted(set(classes) - {resumed["missing"]})


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_prediction_cache_equals_one_process(runs, world):
    for setting in ("exact", "small"):
        one = PredictionCache.open(runs / "world1" / f"cache-{setting}")
        many = PredictionCache.open(runs / f"world{world}" / f"cache-{setting}")
        assert many.classes() == one.classes()
        for name in one.classes():
            a, b = one.load(name), many.load(name)
            assert a.sample_ids == b.sample_ids
            assert torch.equal(a.maps, b.maps) and torch.equal(a.scores, b.scores)
            assert torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)
