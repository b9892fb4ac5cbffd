"""MuSc on the tiny backbone: registration and ``zsad run``, subsets, the image score, options, guards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import zsad_bench
from zsad_bench._factory import check_options, model_class
from zsad_bench.api import ClassImages, Transductive
from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.musc import MuSc
from zsad_bench.musc.rscin import rscin

SIZE = 64  # test-tiny with 8-pixel patches: an 8 x 8 grid of width-32 tokens
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(10, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def _musc(**options) -> MuSc:
    return MuSc(backbone="test-tiny", image_size=SIZE, **options).eval()


def _score(detector: MuSc, images: torch.Tensor, **meta):
    with torch.no_grad():
        return detector.score_class(ClassImages(images, CPU, 4, **meta), "thing")


def test_registered_as_a_transductive_detector():
    assert "musc" in zsad_bench.list_models()
    assert model_class("musc") is MuSc
    assert MuSc.transductive and issubclass(MuSc, Transductive)
    assert MuSc.map_range == (0.0, 2.0)


def test_zsad_run_scores_synthetic_and_marks_the_result_transductive(tmp_path: Path):
    args = ["run", "--model", "musc", "--dataset", "synthetic", "--backbone", "test-tiny", "-o"]
    args += [f"image_size={SIZE}", "--eval-size", "32", "--device", "cpu", "--num-workers", "0"]
    result = CliRunner().invoke(main, [*args, "--no-cache", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "musc-transductive__synthetic.json").read_text())
    assert record["transductive"] is True
    assert record["detector"]["config"]["subsets"] == "label-free"
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in record["mean"].values()), record["mean"]


def test_maps_are_raw_distances_and_the_image_score_is_the_refined_map_maximum(images):
    detector = _musc(rscin_k="0")  # refinement off: the image score is the max of the upsampled map
    prediction = _score(detector, images)
    maps = prediction.anomaly_maps
    assert maps.shape == (10, SIZE, SIZE) and maps.dtype == torch.float32
    assert maps.min() >= 0 and maps.max() <= 2  # within map_range
    # the float64 maximum of the float64 map, here rounded once to float32
    np.testing.assert_allclose(prediction.image_scores.numpy(), maps.flatten(1).amax(1).numpy(), rtol=1e-7)


def test_upsampling_is_bilinear_with_aligned_corners_in_float64():
    detector = _musc()
    patch = torch.rand(2, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    maps, scores = detector.upsample(patch, batch_size=1)
    # align_corners=True: output pixel x samples the grid at x * (3 - 1) / (SIZE - 1)
    grid = patch.view(2, 3, 3).numpy()
    position = np.arange(SIZE) * 2 / (SIZE - 1)
    low = np.minimum(np.floor(position).astype(int), 1)
    t = position - low
    rows = grid[:, low] * (1 - t)[None, :, None] + grid[:, low + 1] * t[None, :, None]
    expected = rows[:, :, low] * (1 - t) + rows[:, :, low + 1] * t
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(scores.numpy(), expected.reshape(2, -1).max(1), atol=1e-15)
    assert scores.dtype == torch.float64


def test_one_subset_equals_the_explicit_whole_class_path(images):
    detector = _musc()
    prediction = _score(detector, images, dataset="mvtec-ad")
    with torch.no_grad():
        class_images = ClassImages(images, CPU, 3)
        tokens, cls_tokens = detector.features(class_images, list(range(10)))
        maps, scores = detector.upsample(detector.patch_scores(tokens, 3), 3)
        expected = rscin(scores, cls_tokens, (1, 2, 3))
    torch.testing.assert_close(prediction.anomaly_maps, maps, rtol=0, atol=1e-6)
    torch.testing.assert_close(prediction.image_scores, expected, rtol=0, atol=1e-6)
    # the official split with divide_num 1 is the same whole class
    official = _score(_musc(subsets="official"), images, defect_types=["good"] * 10)
    torch.testing.assert_close(official.anomaly_maps, prediction.anomaly_maps, rtol=0, atol=0)


def test_subsets_score_like_separate_classes_then_rscin_over_the_whole_class(images):
    detector = _musc(divide_num=2)
    parts = detector.subsets(ClassImages(images, CPU, 4), "thing")
    assert sorted(i for p in parts for i in p) == list(range(10)) and len(parts) == 2
    whole = _score(detector, images, dataset="visa")
    unrefined = _score(_musc(divide_num=2, rscin_k="0"), images)
    alone = _musc(rscin_k="0")  # one subset at a time, as its own class
    cls_tokens = torch.empty(10, detector.backbone.embed_dim)
    for part in parts:
        rows = torch.tensor(part)
        separate = _score(alone, images[rows])
        torch.testing.assert_close(whole.anomaly_maps[rows], separate.anomaly_maps, rtol=0, atol=1e-6)
        torch.testing.assert_close(unrefined.image_scores[rows], separate.image_scores, rtol=0, atol=1e-6)
        cls_tokens[rows] = detector.features(ClassImages(images, CPU, 4), part)[1]
    expected = rscin(unrefined.image_scores.double(), cls_tokens, (1, 8, 9))  # VisA's k_list
    torch.testing.assert_close(whole.image_scores, expected, rtol=0, atol=1e-6)
    # fewer neighbours change the scores: the subsets are not the whole class
    assert not torch.allclose(whole.anomaly_maps, _score(_musc(), images).anomaly_maps, atol=1e-4)


def test_rows_come_back_in_dataset_order(images):
    order = torch.tensor([3, 1, 4, 0, 9, 2, 6, 5, 8, 7])
    detector = _musc()
    first, shuffled = _score(detector, images), _score(detector, images[order])
    torch.testing.assert_close(shuffled.anomaly_maps, first.anomaly_maps[order], rtol=0, atol=1e-6)
    torch.testing.assert_close(shuffled.image_scores, first.image_scores[order], rtol=0, atol=1e-6)


def test_chunked_class_scores_equal_unchunked(images, monkeypatch):
    from zsad_bench.musc import model

    whole = _score(_musc(), images)
    monkeypatch.setattr(model, "chunk_sizes", lambda n, length, channels, budget: (3, 2))
    chunked = _score(_musc(chunk_mb=1), images)
    torch.testing.assert_close(chunked.anomaly_maps, whole.anomaly_maps, rtol=0, atol=1e-6)


def test_small_classes_are_scored_and_single_image_subsets_refused(images):
    # 3 images: officially int(2 * 0.3) = 0 neighbours and NaN; here the nearest other image
    small = _score(_musc(), images[:3])
    assert torch.isfinite(small.anomaly_maps).all() and torch.isfinite(small.image_scores).all()
    with pytest.raises(ZsadError, match="lower -o divide_num") as exc:
        _score(_musc(divide_num=6), images)
    assert "\n" not in str(exc.value)


def test_the_official_split_needs_the_defect_types(images):
    with pytest.raises(ZsadError, match="subsets=label-free"):
        _score(_musc(divide_num=2, subsets="official"), images)
    types = ["good"] * 6 + ["scratch"] * 4
    prediction = _score(_musc(divide_num=2, subsets="official"), images, defect_types=types)
    assert prediction.image_scores.shape == (10,)


def test_tokens_are_kept_in_the_autocast_dtype(images):
    detector = _musc()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        tokens, cls_tokens = detector.features(ClassImages(images[:2], CPU, 2), [0, 1])
    assert all(t.dtype == torch.bfloat16 and t.shape == (2, 64, 32) for t in tokens)
    assert cls_tokens.dtype == torch.float32
    with torch.no_grad():
        tokens, _ = detector.features(ClassImages(images[:2], CPU, 2), [0, 1])
    assert all(t.dtype == torch.float32 for t in tokens)


def test_rscin_k_auto_is_the_official_per_dataset_choice():
    detector = _musc()
    assert detector.rscin_k("visa") == (1, 8, 9)
    assert detector.rscin_k("mvtec-ad") == detector.rscin_k("btad") == detector.rscin_k("") == (1, 2, 3)
    assert _musc(rscin_k="1,4").rscin_k("visa") == (1, 4)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"rscin_k": "a,b"}, "option rscin_k of model 'musc' must be auto or non-negative integers"),
        ({"rscin_k": "-1"}, "option rscin_k of model 'musc' must be auto or non-negative integers"),
        ({"r_list": "1,2"}, "option r_list of model 'musc' needs odd neighbourhood sides, got 2"),
        ({"layers": "6,30"}, "option layers of model 'musc' names layer 30"),
        ({"subsets": "random"}, "option subsets of model 'musc' must be one of label-free, official"),
        ({"topmin_max": "0"}, "option topmin_max of model 'musc' must be a number"),
    ],
)
def test_bad_options_are_one_line(options, says):
    with pytest.raises(ZsadError) as exc:
        check_options(["musc"], options, backbone="test-tiny")
    assert str(exc.value).startswith(says) and "\n" not in str(exc.value), str(exc.value)


def test_the_memory_model_fits_br35h_on_one_h200():
    from zsad_bench.musc.model import memory_model

    # Br35H: 3,000 images in one class; ViT-L/14 at 518 px: 37 x 37 tokens of width 1024
    parts = memory_model(3000, tokens=1369, channels=1024)
    assert parts["tokens"] == 4 * 3000 * 1369 * 1024 * 2  # bf16 under the harness's CUDA autocast
    assert parts["features"] == 3000 * 1369 * 1024 * 4
    assert parts["distances"] <= 4096 << 20
    assert parts["maps"] == 3000 * 518 * 518 * 4 + 8 * 518 * 518 * 8
    backbone = 1.72e9  # ViT-L-14-336's 428M float32 parameters
    assert 59e9 < sum(parts.values()) + backbone < 61e9  # the docstring's "about 60 GB"
    fp32 = memory_model(3000, tokens=1369, channels=1024, token_bytes=4)
    assert sum(fp32.values()) + backbone < 141e9 * 0.7
