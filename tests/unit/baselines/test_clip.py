"""CLIP and CLIP-AC on the tiny backbone, checked against a direct computation with open_clip and scipy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from zsad_bench.baselines.clip import CLIP, CLIPAC


@pytest.fixture(scope="module")
def clip():
    return CLIP(backbone="test-tiny", image_size=64).eval()


def test_prompts_are_the_two_single_prompts(clip):
    assert clip.prompts("metal nut") == (
        ["a photo of a normal metal nut."],
        ["a photo of an anomalous metal nut."],
    )


def test_clip_ac_uses_the_80_imagenet_templates():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    normal, anomalous = CLIPAC.prompts(CLIPAC.__new__(CLIPAC), "bottle")
    assert len(normal) == len(anomalous) == len(OPENAI_IMAGENET_TEMPLATES) == 80
    assert normal[0] == "a bad photo of a normal bottle."
    assert anomalous[-1] == OPENAI_IMAGENET_TEMPLATES[-1]("anomalous bottle")


def _reference(model, prompts, images, sigma, size):
    """Independent path: open_clip's own encoders and output_tokens, torch softmax, scipy's Gaussian."""
    oc = model.backbone.model
    tokenizer = model.backbone.tokenizer
    with torch.no_grad():
        protos = []
        for group in prompts:
            emb = F.normalize(oc.encode_text(tokenizer(group)), dim=-1).mean(0)
            protos.append(F.normalize(emb, dim=-1))
        text = torch.stack(protos)
        oc.visual.output_tokens = True
        try:
            pooled, tokens = oc.visual(images)
        finally:
            oc.visual.output_tokens = False
        image = F.normalize(pooled, dim=-1)
        score = (image @ text.T / 0.07).softmax(-1)[:, 1]
        patches = F.normalize(tokens @ oc.visual.proj, dim=-1)
        probs = (patches @ text.T / 0.07).softmax(-1)[..., 1]
        g = int(probs.shape[1] ** 0.5)
        up = F.interpolate(
            probs.reshape(-1, 1, g, g), size=(size, size), mode="bilinear", align_corners=False
        )
    maps = np.stack([gaussian_filter(m, sigma=sigma) for m in up[:, 0].numpy()])
    return score, torch.from_numpy(maps)


@pytest.mark.parametrize("cls", [CLIP, CLIPAC])
def test_prediction_matches_direct_computation(cls):
    model = cls(backbone="test-tiny", image_size=64).eval()
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = model(images, ["carpet", "carpet", "carpet"])
    score, maps = _reference(model, model.prompts("carpet"), images, 4.0, 64)
    assert pred.image_scores.shape == (3,) and pred.anomaly_maps.shape == (3, 64, 64)
    assert pred.image_scores.dtype == torch.float32 and pred.anomaly_maps.dtype == torch.float32
    assert torch.allclose(pred.image_scores, score, atol=1e-5)
    assert torch.allclose(pred.anomaly_maps, maps, atol=1e-5)


def test_mixed_class_batch_uses_each_images_own_prompts(clip):
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mixed = clip(images, ["bottle", "screw"])
        bottle = clip(images[:1], ["bottle"])
        screw = clip(images[1:], ["screw"])
    assert torch.allclose(mixed.image_scores, torch.cat([bottle.image_scores, screw.image_scores]), atol=1e-6)
    assert torch.allclose(mixed.anomaly_maps[1], screw.anomaly_maps[0], atol=1e-6)


def test_text_prototypes_are_cached_per_class(clip):
    clip.text_prototypes(["bottle"])
    cached = clip.prototype_cache["bottle"]
    again = clip.text_prototypes(["bottle", "bottle"])
    assert clip.prototype_cache["bottle"] is cached
    assert again.shape == (2, 2, 32)
    assert torch.allclose(again.norm(dim=-1), torch.ones(2, 2))


def test_config_records_options_and_random_weights(clip):
    assert clip.config() == {
        "name": "clip",
        "backbone": "test-tiny",
        "image_size": 64,
        "sigma": 4.0,
        "temperature": 0.07,
        "pos_interpolation": "bilinear",
    }
    assert clip.uses_random_weights


def test_transform_squashes_to_input_size(clip):
    from PIL import Image

    image = Image.new("RGB", (100, 40), (255, 0, 0))
    assert clip.transform()(image).shape == (3, 64, 64)
