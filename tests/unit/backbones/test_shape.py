"""Backbone shapes read without weights, the tiny families, and the option checks built on them."""

import pytest
import torch

from zsad_bench.backbones import backbone_shape, fitted_shape, load_backbone
from zsad_bench.backbones.shape import check_layers
from zsad_bench.backbones.spec import TINY_CONFIG, fit_tiny, parse_backbone, tiny_config
from zsad_bench.errors import ZsadError


def test_shapes_of_the_papers_backbones_come_from_open_clip_configs():
    large = backbone_shape("ViT-L-14-336-quickgelu")
    assert (large.patch_size, large.native_size, large.num_layers, large.num_text_layers) == (14, 336, 24, 12)
    plus = backbone_shape("ViT-B-16-plus-240")
    assert (plus.patch_size, plus.native_size, plus.num_layers, plus.context_length) == (16, 240, 12, 77)


@pytest.mark.parametrize(
    ("size", "family", "patch"),
    [
        (64, "test-tiny", 8),
        (240, "test-tiny", 8),
        (518, "test-tiny-14", 14),
        (336, "test-tiny", 8),
        (None, "test-tiny", 8),
    ],
)
def test_test_tiny_takes_the_patch_size_that_divides_the_input(size, family, patch):
    spec = fit_tiny(parse_backbone("test-tiny"), size)
    assert str(spec) == f"{family}:random"
    assert backbone_shape("test-tiny", size).patch_size == patch


def test_the_tiny_families_share_the_layer_counts_and_the_64_px_one_is_unchanged():
    # test-tiny itself must stay what the golden numbers were made with
    assert TINY_CONFIG == {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": 24, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 12},
    }
    for name, patch in (("test-tiny-14", 14), ("test-tiny-16", 16)):
        config = tiny_config(name)
        assert config["vision_cfg"]["patch_size"] == patch and config["vision_cfg"]["image_size"] == 8 * patch
        assert config["vision_cfg"]["layers"] == 24 and config["text_cfg"]["layers"] == 12


def test_load_backbone_picks_the_tiny_family_of_the_image_size():
    backbone = load_backbone("test-tiny", image_size=518)
    assert str(backbone.spec) == "test-tiny-14:random" and backbone.patch_size == 14
    backbone.set_image_size(518)
    with torch.no_grad():
        assert backbone.encode_image(torch.randn(1, 3, 518, 518)).tokens.shape[1] == 1 + 37 * 37
    assert str(load_backbone("test-tiny", image_size=64).spec) == "test-tiny:random"
    assert load_backbone("test-tiny-16").patch_size == 16  # each family can be named too


def test_image_size_off_the_patch_grid_names_the_patch_and_a_valid_size():
    with pytest.raises(ZsadError) as exc:
        fitted_shape("ViT-L-14-336-quickgelu", 500, "model 'clip'")
    assert str(exc.value) == (
        "option image_size of model 'clip' must be a multiple of the patch size 14 of "
        "ViT-L-14-336-quickgelu, e.g. 504; got 500"
    )
    with pytest.raises(ZsadError) as exc:
        fitted_shape("ViT-B-16-plus-240", 7, "model 'winclip'")
    assert str(exc.value).endswith("the patch size 16 of ViT-B-16-plus-240, e.g. 16; got 7")
    with pytest.raises(ZsadError) as exc:
        fitted_shape("test-tiny", 7, "model 'clip'")
    assert str(exc.value) == (
        "option image_size of model 'clip' must be a multiple of a test-tiny patch size (8, 14, 16), "
        "e.g. 64; got 7"
    )


def test_layers_outside_the_tower_or_repeated_are_refused_with_the_range():
    shape = backbone_shape("ViT-B-16-plus-240")
    check_layers(shape, "layers", (3, 12), "model 'x'")
    with pytest.raises(ZsadError) as exc:
        check_layers(shape, "features", (6, 24), "model 'anomalyclip'")
    assert str(exc.value) == (
        "option features of model 'anomalyclip' names layer 24, but ViT-B-16-plus-240 has layers 1..12; "
        "e.g. -o features=6,12"
    )
    with pytest.raises(ZsadError, match="names layer 0"):
        check_layers(shape, "layers", (0,), "model 'x'")
    with pytest.raises(ZsadError, match="lists layer 6 twice; name each layer once"):
        check_layers(shape, "layers", (6, 6), "model 'x'")


def test_unsupported_or_unknown_architectures_and_missing_files_fail_without_loading(tmp_path):
    with pytest.raises(ZsadError, match="unknown backbone architecture 'ViT-Z-99'"):
        backbone_shape("ViT-Z-99:random")
    with pytest.raises(ZsadError, match="'RN50' is not a ViT pooled on its class token"):
        backbone_shape("RN50:random")
    with pytest.raises(ZsadError, match="'coca_ViT-B-32' is not a ViT pooled on its class token"):
        backbone_shape("coca_ViT-B-32:random")
    with pytest.raises(ZsadError, match="does not exist"):
        backbone_shape(f"ViT-B-32:{tmp_path / 'nope.pt'}")
