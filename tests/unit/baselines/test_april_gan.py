"""APRIL-GAN on the tiny backbone: formulas against direct torch computations, training, checkpoints,
few-shot memory and the mosaic augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from zsad_bench.baselines.april_gan import AprilGAN

import zsad_bench
from baselines import april_gan
from zsad_bench.api import TrainConfig
from zsad_bench.data import AnomalyDataset, data_root, ensure_prepared, read_manifest
from zsad_bench.engine.training import fit
from zsad_bench.errors import ZsadError
from zsad_bench.ops.augment import MosaicDataset
from zsad_bench.protocols import default

ALL_TEMPLATES = april_gan.TEMPLATES


@pytest.fixture(scope="module", autouse=True)
def _two_templates():
    # Encoding 420 prompts per class dominates the runtime on a CPU; the ensemble formula does not depend
    # on the list lengths, and the full lists are checked as strings below.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(april_gan, "TEMPLATES", ALL_TEMPLATES[:2])
        yield


@pytest.fixture(scope="module")
def model(_two_templates) -> AprilGAN:
    torch.manual_seed(0)
    return AprilGAN(backbone="test-tiny", image_size=64).eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


# -- prompts ----------------------------------------------------------------------------------------
def test_prompt_ensemble_is_7_and_5_states_in_35_templates(model, monkeypatch):
    monkeypatch.setattr(april_gan, "TEMPLATES", ALL_TEMPLATES)
    normal, anomalous = model.prompts("metal nut")
    assert (len(normal), len(anomalous)) == (245, 175)
    assert len(set(normal)) == 245 and len(set(anomalous)) == 175
    # the official code filled in raw folder names; state-major order as its loop
    assert normal[0] == "a bad photo of a metal_nut."
    assert normal[35] == "a bad photo of a flawless metal_nut."
    assert anomalous[-1] == "this is one metal_nut with damage in the scene."
    monkeypatch.setattr(model, "folder_names", False)
    assert model.prompts("metal nut")[1][1] == "a low resolution photo of the damaged metal nut."


def test_text_prototype_is_the_normalised_mean_of_normalised_prompt_embeddings(model):
    oc, tokenizer = model.backbone.model, model.backbone.tokenizer
    with torch.no_grad():
        expected = torch.stack(
            [F.normalize(F.normalize(oc.encode_text(tokenizer(group)), dim=-1).mean(0), dim=-1)
             for group in model.prompts("pipe fryum")]
        )  # fmt: skip
    got = model.text_prototypes(["pipe fryum", "pipe fryum"])
    assert got.shape == (2, 2, 32)
    assert torch.allclose(got[0], expected, atol=1e-6) and torch.equal(got[0], got[1])


# -- inference --------------------------------------------------------------------------------------
def _residual_streams(model: AprilGAN, images: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Independent path: open_clip's own encode_image, blocks' outputs caught with forward hooks."""
    oc = model.backbone.model
    caught: dict[int, torch.Tensor] = {}
    hooks = [
        oc.visual.transformer.resblocks[layer - 1].register_forward_hook(
            lambda _m, _i, out, layer=layer: caught.__setitem__(layer, out)
        )
        for layer in model.layers
    ]
    try:
        with torch.no_grad():
            pooled = oc.encode_image(images)
    finally:
        for hook in hooks:
            hook.remove()
    return pooled, caught


def _zero_shot_reference(model: AprilGAN, images: torch.Tensor, text: torch.Tensor, heads=None):
    """Scores and maps computed directly; ``heads``: [(weight, bias)] per layer (default: the model's)."""
    heads = heads or [(h.weight, h.bias) for h in model.heads]
    pooled, streams = _residual_streams(model, images)
    score = (100 * F.normalize(pooled, dim=-1) @ text.T).softmax(-1)[:, 1]
    total = torch.zeros(len(images), 64, 64)
    for layer, (weight, bias) in zip(model.layers, heads, strict=True):
        x = F.normalize(F.linear(streams[layer][:, 1:], weight, bias), dim=-1)
        logits = (100 * x @ text.T).permute(0, 2, 1).reshape(len(images), 2, 8, 8)
        up = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=True)
        total += up.softmax(dim=1)[:, 1]
    return score, total, streams


def test_forward_follows_the_official_formulas(model):
    images = _images(3)
    with torch.no_grad():
        prediction = model(images, ["bottle"] * 3)
        text = model.text_prototypes(["bottle"])[0]
        score, maps, _ = _zero_shot_reference(model, images, text)
    assert prediction.image_scores.shape == (3,) and prediction.anomaly_maps.shape == (3, 64, 64)
    assert torch.allclose(prediction.image_scores, score, atol=1e-5)
    assert torch.allclose(prediction.anomaly_maps, maps, atol=1e-4)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 4.0
    assert float(maps.max()) > 1.0  # a sum over the 4 layers, not a mean
    assert AprilGAN.map_range == (0.0, 4.0)


def test_each_image_is_scored_against_its_own_class(model):
    images = _images(2, seed=1)
    with torch.no_grad():
        mixed = model(images, ["bottle", "cable"])
        first, second = model(images[:1], ["bottle"]), model(images[1:], ["cable"])
    assert torch.allclose(mixed.anomaly_maps, torch.cat([first.anomaly_maps, second.anomaly_maps]), atol=1e-5)


# -- training ---------------------------------------------------------------------------------------
def test_loss_is_focal_plus_dice_per_layer_with_each_images_prompts(model):
    images = _images(2, seed=2)
    masks = torch.zeros(2, 64, 64)
    masks[0, 10:30, 20:40] = 1.0
    features = model.frozen_features(images)
    assert [features[f"tokens.{layer}"].shape for layer in model.layers] == [(2, 64, 32)] * 4
    loss = model.loss(features, masks, torch.tensor([1, 0]), ["dots", "checker"])
    text = model.text_prototypes(["dots", "checker"])
    expected = 0.0
    for i, layer in enumerate(model.layers):
        x = F.normalize(model.heads[i](features[f"tokens.{layer}"]), dim=-1)
        logits = (100 * x @ text.transpose(1, 2)).permute(0, 2, 1).reshape(2, 2, 8, 8)
        p = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=True).softmax(dim=1)
        # the official FocalLoss: one-hot clamped to [1e-5, 1 - 1e-5], p_t = sum(one_hot * p) + 1e-5
        one_hot = torch.stack([1 - masks, masks], dim=1).clamp(1e-5, 1 - 1e-5)
        pt = (one_hot * p).sum(dim=1) + 1e-5
        focal = (-((1 - pt) ** 2) * pt.log()).mean()
        inter = (p[:, 1] * masks).flatten(1).sum(1)
        dice = 1 - ((2 * inter + 1) / (p[:, 1].flatten(1).sum(1) + masks.flatten(1).sum(1) + 1)).mean()
        expected = expected + focal + dice
    assert torch.allclose(loss, expected, atol=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.trainable_parameters())
    model.zero_grad(set_to_none=True)


def _subset(model: AprilGAN, defects: list[str], classes: list[str]) -> AnomalyDataset:
    from zsad_bench.data.synthetic import SPEC

    folder = ensure_prepared(SPEC, data_root())
    manifest = read_manifest(folder)
    rows = manifest[manifest.defect_type.isin(["good", *defects])]
    return AnomalyDataset(folder, rows, transform=model.transform(),
                          mask_size=model.input_size, classes=classes)  # fmt: skip


def test_feature_cache_trains_exactly_like_recomputing_features():
    runs = []
    for cached in (True, False):
        torch.manual_seed(0)
        model = AprilGAN(backbone="test-tiny", image_size=64)
        data = _subset(model, ["hole"], ["checker", "dots"])  # batches mix the two classes
        report = fit(model, data, TrainConfig(epochs=2, batch_size=4, seed=5, feature_cache=cached))
        assert report.extra["feature_cache"] is cached
        runs.append((report.epoch_losses, model.trainable_state_dict()))
    (losses_a, state_a), (losses_b, state_b) = runs
    assert losses_a == pytest.approx(losses_b, rel=1e-5)
    assert sorted(state_a) == [f"heads.{i}.{p}" for i in range(4) for p in ("bias", "weight")]
    worst = max(float((state_a[k] - state_b[k]).abs().max()) for k in state_a)
    assert worst < 1e-4, worst


@pytest.mark.slow
def test_training_lowers_the_loss_and_helps_on_a_held_out_class():
    # Random tiny weights carry little transferable signal; holes on a held-out texture are a case where
    # they do (scratches, which work for AnomalyCLIP's prompts, do not move these heads past chance).
    torch.manual_seed(0)
    model = AprilGAN(backbone="test-tiny", image_size=64)
    train_set = _subset(model, ["hole"], ["checker", "stripes", "weave"])
    held_out = _subset(model, ["hole"], ["dots"])
    protocol = default.with_overrides(eval_size=64)
    before = zsad_bench.evaluate(model, held_out, protocol, progress=False).mean["pixel_auroc"]
    report = fit(model, train_set, TrainConfig(epochs=30, batch_size=8, seed=111))
    after = zsad_bench.evaluate(model, held_out, protocol, progress=False).mean["pixel_auroc"]
    assert report.epoch_losses[-1] < report.epoch_losses[0] - 2.0
    assert after > 0.7 and after > before + 0.3, (before, after)


def test_epochs_follow_train_sh():
    assert (AprilGAN.epochs_for("mvtec-ad"), AprilGAN.epochs_for("visa"), AprilGAN.epochs_for("x")) == (
        3,
        15,
        15,
    )


# -- checkpoints ------------------------------------------------------------------------------------
def test_save_load_is_bit_exact(model, tmp_path):
    model.save(tmp_path / "ckpt")
    loaded = AprilGAN.load(tmp_path / "ckpt")
    assert loaded.config() == model.config() and loaded.config()["layers"] == [6, 12, 18, 24]
    for key, value in model.trainable_state_dict().items():
        assert torch.equal(loaded.trainable_state_dict()[key], value)
    images = _images(2)
    with torch.no_grad():
        got, expected = loaded(images, ["a", "b"]), model(images, ["a", "b"])
    assert torch.equal(got.anomaly_maps, expected.anomaly_maps)
    assert torch.equal(got.image_scores, expected.image_scores)


def _official_checkpoint(path, width: int = 32, dim: int = 32, n: int = 4) -> dict[str, torch.Tensor]:
    """A file in the official layout (reference/baselines.md section 3.7), at the tiny backbone's sizes."""
    g = torch.Generator().manual_seed(7)
    state = {}
    for i in range(n):
        state[f"fc.{i}.weight"] = torch.randn(dim, width, generator=g) * 0.2
        state[f"fc.{i}.bias"] = torch.randn(dim, generator=g) * 0.2
    torch.save({"trainable_linearlayer": state}, path)
    return state


def test_official_checkpoint_loads_and_sets_the_heads(model, tmp_path):
    path = tmp_path / "mvtec_pretrained.pth"
    state = _official_checkpoint(path)
    loaded = zsad_bench.load_model("april-gan", backbone="test-tiny", image_size=64, checkpoint=path)
    assert torch.equal(loaded.heads[3].weight, state["fc.3.weight"])
    images = _images(2)
    heads = [(state[f"fc.{i}.weight"], state[f"fc.{i}.bias"]) for i in range(4)]
    with torch.no_grad():
        got, other = loaded(images, ["a", "a"]), model(images, ["a", "a"])
        _, maps, _ = _zero_shot_reference(loaded, images, loaded.text_prototypes(["a"])[0], heads)
    assert torch.allclose(got.anomaly_maps, maps, atol=1e-4)
    assert torch.equal(got.image_scores, other.image_scores)  # frozen CLIP's, whatever the heads
    assert not torch.allclose(got.anomaly_maps, other.anomaly_maps)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the corrupt file
def test_wrong_or_corrupt_checkpoints_are_one_line_errors(tmp_path):
    kwargs = {"backbone": "test-tiny", "image_size": 64}
    wrong = tmp_path / "vit-l.pth"
    _official_checkpoint(wrong, width=1024, dim=768)
    with pytest.raises(ZsadError, match=r"does not fit model 'april-gan' .*wrong shape: heads\.0\.bias"):
        AprilGAN.load(wrong, **kwargs)
    three = tmp_path / "three.pth"
    _official_checkpoint(three, n=3)
    with pytest.raises(ZsadError, match=r"missing: heads\.3\.bias"):
        AprilGAN.load(three, **kwargs)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(ZsadError, match=r"corrupt\.pth is not a checkpoint of tensors \(refused by the safe"):
        AprilGAN.load(corrupt, **kwargs)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for attempt in (AprilGAN.load, AprilGAN.check_checkpoint):  # check_checkpoint: before any model
        with pytest.raises(ZsadError, match=r"empty\.pth is empty; pass an official APRIL-GAN epoch_N\.pth"):
            attempt(empty, **kwargs) if attempt is AprilGAN.load else attempt(empty)
    other = tmp_path / "other.pth"
    torch.save({"prompt_learner": {"ctx_pos": torch.zeros(1)}}, other)
    with pytest.raises(
        ZsadError, match=r"has no 'trainable_linearlayer' state \(it holds keys prompt_learner\)"
    ):
        AprilGAN.load(other, **kwargs)


# -- few-shot ---------------------------------------------------------------------------------------
def test_few_shot_adds_the_distance_to_the_nearest_reference_token(model):
    references, queries = _images(2, seed=3), _images(2, seed=4)
    with torch.no_grad():
        zero_shot = model(queries, ["bottle", "bottle"]).anomaly_maps
        model.remember("bottle", references)
        assert [m.shape for m in model.memory("bottle")] == [(2 * 64, 32)] * 4
        few_shot = model(queries, ["bottle", "bottle"]).anomaly_maps
        same = model(references[1:], ["bottle"]).anomaly_maps
        model.forget()
        same_zero_shot = model(references[1:], ["bottle"]).anomaly_maps
        assert torch.equal(model(queries, ["bottle", "bottle"]).anomaly_maps, zero_shot)
    _, streams_q = _residual_streams(model, queries)
    _, streams_r = _residual_streams(model, references)
    expected = torch.zeros(2, 64, 64)
    for layer in model.layers:
        memory = streams_r[layer][:, 1:].reshape(-1, 32)
        for b in range(2):
            cos = F.cosine_similarity(streams_q[layer][b, 1:, None], memory[None], dim=-1)  # (64, 128)
            distance = (1 - cos).min(dim=1).values.reshape(1, 1, 8, 8)
            expected[b] += F.interpolate(distance, size=(64, 64), mode="bilinear", align_corners=True)[0, 0]
    assert torch.allclose(few_shot - zero_shot, expected, atol=1e-4)
    assert float(expected.min()) > 0.0
    assert torch.allclose(same, same_zero_shot, atol=1e-4)  # a reference itself is at distance 0


def test_few_shot_needs_references_of_every_scored_class(model):
    with torch.no_grad():
        model.remember("bottle", _images(1))
        try:
            with pytest.raises(ZsadError, match="no few-shot references for class cable"):
                model(_images(2), ["bottle", "cable"])
        finally:
            model.forget()


# -- mosaic augmentation (the augmentation itself: tests/unit/ops/test_augment.py) ---------------------
def test_mosaic_only_for_mvtec_and_never_feature_cached(model, monkeypatch):
    data = _subset(model, ["hole"], ["dots", "weave"])
    config = TrainConfig(epochs=1, batch_size=8, seed=1)
    assert model.training_data(data, config) is data
    torch.manual_seed(0)
    mvtec = AprilGAN(backbone="test-tiny", image_size=64, trained_on="mvtec-ad", mosaic_prob=0.5)
    assert isinstance(mvtec.training_data(data, config), MosaicDataset)
    report = fit(mvtec, data, config)
    assert report.extra["feature_cache"] is False and np.isfinite(report.epoch_losses[0])
    monkeypatch.setattr(mvtec, "mosaic_prob", 0.0)
    assert mvtec.training_data(data, config) is data
