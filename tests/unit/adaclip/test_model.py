"""AdaCLIP on the tiny backbone: registration, options, shapes, prompt positions, k-means seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zsad_bench
from zsad_bench._factory import check_options
from zsad_bench.adaclip import AdaCLIP, AdaCLIPOptions
from zsad_bench.adaclip.fusion import ClusterLabels
from zsad_bench.api import Trainable
from zsad_bench.errors import ZsadError


@pytest.fixture(scope="module")
def model() -> AdaCLIP:
    torch.manual_seed(0)
    return AdaCLIP(backbone="test-tiny", image_size=64).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_registered_with_the_official_defaults():
    model = zsad_bench.load_model("adaclip", backbone="test-tiny")
    assert isinstance(model, AdaCLIP) and isinstance(model, Trainable)
    o = model.options
    assert (o.image_size, o.features, o.prompt_depth, o.prompt_length) == (518, (6, 12, 18, 24), 4, 5)
    assert (o.prompt_type, o.prompt_branch, o.use_hsf, o.k_clusters, o.fusion_weight) == (
        "SD",
        "VL",
        True,
        20,
        0.2,
    )
    assert AdaCLIPOptions().backbone == "ViT-L-14-336:openai"  # GELU quirk, as APRIL-GAN's default
    assert AdaCLIP.cache_features is False
    assert AdaCLIP.train_defaults() == {
        "lr": 0.01,
        "batch_size": 1,
        "betas": (0.5, 0.999),
        "optimizer": "adamw",  # trainer.py: torch.optim.AdamW, default weight decay
        "weight_decay": 0.01,
    }
    assert AdaCLIP.epochs_for("mvtec-ad+cvc-colondb") == 5
    # the 38 official tensors
    assert len(model.trainable_state_dict()) == 38
    assert len(list(model.trainable_parameters())) == 38


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"features": (6, 25)}, "option features"),
        ({"prompt_depth": 13}, "option prompt_depth"),
        ({"prompt_length": 76}, "option prompt_length"),
        ({"image_size": 32, "k_clusters": 20}, "option k_clusters"),
        ({"image_size": 65}, "option image_size"),
        ({"prompt_type": "X"}, "option prompt_type"),
    ],
)
def test_bad_options_are_one_line(overrides, says):
    with pytest.raises(ZsadError, match=says) as info:
        check_options(["adaclip"], overrides, backbone="test-tiny")
    assert "\n" not in str(info.value)


def test_forward_shapes_and_ranges(model, images):
    with torch.no_grad():
        out = model(images, ["metal nut", "bottle", "metal nut"])
    assert out.image_scores.shape == (3,) and out.anomaly_maps.shape == (3, 64, 64)
    assert out.image_scores.dtype == torch.float32 and out.anomaly_maps.dtype == torch.float32
    assert ((out.image_scores > 0) & (out.image_scores < 1)).all()
    assert out.anomaly_maps.min() >= 0 and out.anomaly_maps.max() <= 1


def test_scores_do_not_depend_on_batch_or_order(model, images):
    with torch.no_grad():
        together = model(images, ["a", "b", "c"])
        reversed_ = model(images.flip(0), ["c", "b", "a"])
        alone = [model(images[i : i + 1], [n]) for i, n in enumerate("abc")]
    assert torch.allclose(together.image_scores, reversed_.image_scores.flip(0), atol=1e-6)
    for i, one in enumerate(alone):
        assert torch.allclose(together.image_scores[i], one.image_scores[0], atol=1e-6)
        assert torch.allclose(together.anomaly_maps[i], one.anomaly_maps[0], atol=1e-6)


def test_per_image_kmeans_is_seeded_and_the_official_order_advances_one_generator():
    data = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    per_image = ClusterLabels(20, seed=111)
    first, again = per_image(data), per_image(data)
    assert (first == again).all()
    official = ClusterLabels(20, seed=111, order="official")
    calls = [official(data) for _ in range(3)]
    assert (calls[0] == first).all()  # the first image sees RandomState(111), as after setup_seed(111)
    reference = np.random.RandomState(111)  # one generator advanced call after call
    from sklearn.cluster import KMeans

    for labels in calls:
        assert (labels == KMeans(n_clusters=20, n_init=1, random_state=reference).fit_predict(data)).all()
    assert any((c != calls[0]).any() for c in calls[1:])
    official.reset()
    assert (official(data) == first).all()


def test_kmeans_seed_changes_the_score(images):
    torch.manual_seed(0)
    model = AdaCLIP(backbone="test-tiny", image_size=64).eval()
    with torch.no_grad():
        a = model(images[:1], ["a"]).image_scores
        model.cluster.seed = 7
        b = model(images[:1], ["a"]).image_scores
    assert not torch.equal(a, b)


def _stream_hooks(blocks, store):
    handles = []
    for index, block in enumerate(blocks, start=1):
        handles.append(
            block.ln_1.register_forward_pre_hook(lambda m, args, i=index: store.setdefault(i, args[0]))
        )
    return handles


def test_prompts_enter_the_blocks_where_the_official_puts_them(model, images):
    o, oc = model.options, model.backbone.model
    visual_in, text_in = {}, {}
    handles = _stream_hooks(oc.visual.transformer.resblocks, visual_in)
    handles += _stream_hooks(oc.transformer.resblocks, text_in)
    try:
        with torch.no_grad():
            features = model.frozen_features(images[:1])
            visual_in.clear(), text_in.clear()  # keep the prompted pass only
            model.similarities(images[:1], features["pooled"], ["metal nut"])
            pooled = features["pooled"]
            dv = model.dynamic_visual_prompt_generator.stacked(pooled)[0]
            dt = model.dynamic_text_prompt_generator.stacked(pooled)[0]
    finally:
        for handle in handles:
            handle.remove()
    n = 1 + (64 // 8) ** 2
    L = o.prompt_length
    assert visual_in[1].shape[1] == n + L  # appended after CLS + patches before block 1
    for index in range(1, o.prompt_depth + 1):
        expected = (dv + model.visual_prompter.static_prompts[index - 1]).half().float()
        assert torch.equal(visual_in[index][0, -L:], expected), index
    assert not torch.allclose(visual_in[o.prompt_depth + 1][0, -L:], visual_in[o.prompt_depth][0, -L:])
    assert visual_in[24].shape[1] == n + L  # the prompt tokens ride along to the last block
    for index in range(2, o.prompt_depth + 1):  # text: blocks 2..depth, positions 1..L, every sentence
        expected = (dt + model.text_prompter.static_prompts[index - 1]).half().float()
        assert torch.equal(text_in[index][:, 1 : 1 + L], expected.expand(48, -1, -1)), index
    plain = (
        oc.token_embedding(model.backbone.tokenize(["a bad photo of a metal_nut."]))[0]
        + oc.positional_embedding
    )
    assert torch.allclose(text_in[1][0], plain)  # block 1 takes no text prompt


def test_text_static_prompt_zero_is_never_used(images):
    torch.manual_seed(0)
    model = AdaCLIP(backbone="test-tiny", image_size=64).eval()
    with torch.no_grad():
        before = model(images[:1], ["a"])
        model.text_prompter.static_prompts[0].add_(5.0)
        after = model(images[:1], ["a"])
        model.text_prompter.static_prompts[1].add_(5.0)
        moved = model(images[:1], ["a"])
    assert torch.equal(before.image_scores, after.image_scores)
    assert not torch.equal(before.image_scores, moved.image_scores)


def test_prompt_words_follow_the_official_text():
    model = AdaCLIP.__new__(AdaCLIP)
    model.options = AdaCLIPOptions()
    model.dataset_id = ""  # no dataset begun: the class name decides
    assert model.prompt_word("metal nut") == "metal_nut"
    assert model.prompt_word("pipe-fryum") == "pipe fryum"  # only '-' -> ' ' (encode_text)
    model.options = AdaCLIPOptions(folder_names=False)
    assert model.prompt_word("metal nut") == "metal nut"
    model.options = AdaCLIPOptions(prompt_class="brain_mri")
    assert model.prompt_word("brain") == "brain_mri"


@pytest.mark.parametrize(("prompt_type", "branch", "keys"), [("S", "V", 14), ("D", "L", 30), ("SD", "L", 34)])
def test_other_prompt_settings_build_and_run(images, prompt_type, branch, keys):
    torch.manual_seed(0)
    model = AdaCLIP(backbone="test-tiny", image_size=64, prompt_type=prompt_type, prompt_branch=branch).eval()
    assert len(model.trainable_state_dict()) == keys
    with torch.no_grad():
        out = model(images[:2], ["a", "b"])
    assert torch.isfinite(out.image_scores).all() and torch.isfinite(out.anomaly_maps).all()


def test_outputs_stay_float32_under_autocast(model, images):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images[:1], ["a"])
    assert out.image_scores.dtype == torch.float32 and out.anomaly_maps.dtype == torch.float32
