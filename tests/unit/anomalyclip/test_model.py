"""AnomalyCLIP on the tiny backbone: inference formulas, training, checkpoints (ours and official)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zsad_bench
from zsad_bench.anomalyclip import AnomalyCLIP
from zsad_bench.api import TrainConfig
from zsad_bench.data import AnomalyDataset, data_root, read_manifest
from zsad_bench.engine.training import fit
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default


@pytest.fixture(scope="module")
def model() -> AnomalyCLIP:
    torch.manual_seed(0)
    return AnomalyCLIP(backbone="test-tiny", image_size=64).eval()


def test_forward_follows_the_official_formulas(model):
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prediction = model(images, ["ignored", "names"])
        text = F.normalize(model.prompt_learner.encode(model.backbone), dim=-1)
        features = model.frozen_features(images)
        score = (features["global"] @ text.T / 0.07).softmax(-1)[:, 1]
        patches = features["patch.24"]  # (B, 64, D), normalised
        probs = (patches @ text.T / 0.07).softmax(-1)[..., 1].reshape(2, 1, 8, 8)
        up = F.interpolate(probs, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    from scipy.ndimage import gaussian_filter

    expected = torch.from_numpy(gaussian_filter(up.numpy(), sigma=(0, 4, 4)))
    assert torch.allclose(prediction.image_scores, score, atol=1e-6)
    assert torch.allclose(prediction.anomaly_maps, expected, atol=1e-5)


def test_global_feature_is_cls_times_proj_without_ln_post(model):
    from zsad_bench.backbones.dual_path import encode_image_dual_path

    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        cls = encode_image_dual_path(model.backbone, images, 6, [24]).cls_tokens
        assert torch.allclose(
            model.frozen_features(images)["global"], F.normalize(cls @ model.backbone.visual.proj), atol=1e-6
        )


def test_multi_layer_maps_are_summed():
    torch.manual_seed(0)
    multi = AnomalyCLIP(backbone="test-tiny", image_size=64, features=[12, 24], sigma=0).eval()
    single = AnomalyCLIP(backbone="test-tiny", image_size=64, features=[24], sigma=0).eval()
    single.prompt_learner.load_state_dict(multi.prompt_learner.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        both, last = multi(images, ["x", "x"]), single(images, ["x", "x"])
    assert both.anomaly_maps.max() > 1.0 or not torch.allclose(both.anomaly_maps, last.anomaly_maps)
    assert torch.allclose(both.image_scores, last.image_scores)


def _subset(model: AnomalyCLIP, defect: str, classes: list[str]) -> AnomalyDataset:
    from zsad_bench.data import ensure_prepared
    from zsad_bench.data.synthetic import SPEC

    folder = ensure_prepared(SPEC, data_root())
    manifest = read_manifest(folder)
    rows = manifest[manifest.defect_type.isin(["good", defect])]
    return AnomalyDataset(folder, rows, transform=model.transform(),
                          mask_size=model.input_size, classes=classes)  # fmt: skip


@pytest.mark.slow
def test_training_lowers_the_loss_and_helps_on_a_held_out_class():
    # Random tiny weights carry little transferable signal; scratches on a held-out texture are a case
    # where they do (a linear probe on these features transfers), so the prompts have something to learn.
    torch.manual_seed(0)
    model = AnomalyCLIP(backbone="test-tiny", image_size=96)
    train_set = _subset(model, "scratch", ["checker", "stripes", "weave"])
    held_out = _subset(model, "scratch", ["dots"])
    protocol = default.with_overrides(eval_size=96)
    before = zsad_bench.evaluate(model, held_out, protocol, progress=False).mean["pixel_auroc"]
    report = fit(model, train_set, TrainConfig(epochs=15, batch_size=8, seed=111))
    after = zsad_bench.evaluate(model, held_out, protocol, progress=False).mean["pixel_auroc"]
    assert report.epoch_losses[-1] < report.epoch_losses[0] - 0.3
    assert after > before + 0.05


def test_feature_cache_trains_exactly_like_recomputing_features():
    runs = []
    for cached in (True, False):
        torch.manual_seed(0)
        model = AnomalyCLIP(backbone="test-tiny", image_size=64)
        data = _subset(model, "hole", ["checker", "dots"])
        report = fit(model, data, TrainConfig(epochs=2, batch_size=4, seed=5, feature_cache=cached))
        runs.append((report.epoch_losses, model.trainable_state_dict()))
    (losses_a, state_a), (losses_b, state_b) = runs
    assert losses_a == pytest.approx(losses_b, rel=1e-5)
    worst = max(float((state_a[k] - state_b[k]).abs().max()) for k in state_a)
    assert worst < 1e-4, worst  # same batches; only float rounding of batched vs per-batch features differs


def test_save_load_is_bit_exact(model, tmp_path):
    with torch.no_grad():
        for p in model.prompt_learner.parameters():
            p.add_(0.01)
    model.save(tmp_path / "ckpt")
    loaded = AnomalyCLIP.load(tmp_path / "ckpt")
    assert loaded.config() == model.config()
    for key, value in model.trainable_state_dict().items():
        assert torch.equal(loaded.trainable_state_dict()[key], value)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(images, ["a", "b"]).anomaly_maps, model(images, ["a", "b"]).anomaly_maps)


def _official_checkpoint(model: AnomalyCLIP, path, width: int = 32, scale: float = 1.0):
    """A file in the official layout (reference/anomalyclip.md section 7), at the tiny backbone's width."""
    g = torch.Generator().manual_seed(7)
    ids = model.prompt_learner.token_ids.to(torch.int32)
    prefix = model.prompt_learner.token_prefix
    suffix = model.prompt_learner.token_suffix
    state = {
        "ctx_pos": torch.randn(1, 1, 12, width, generator=g) * scale,
        "ctx_neg": torch.randn(1, 1, 12, width, generator=g) * scale,
        "token_prefix_pos": prefix[:1, None],
        "token_prefix_neg": prefix[1:, None],
        "token_suffix_pos": suffix[:1, None],
        "token_suffix_neg": suffix[1:, None],
        "tokenized_prompts_pos": ids[:1, None],
        "tokenized_prompts_neg": ids[1:, None],
    }
    for i in range(8):
        state[f"compound_prompts_text.{i}"] = torch.randn(4, width, generator=g) * scale
        state[f"compound_prompt_projections.{i}.weight"] = torch.randn(48, width, generator=g)
        state[f"compound_prompt_projections.{i}.bias"] = torch.randn(48, generator=g)
    torch.save({"prompt_learner": state}, path)
    return state


def test_official_checkpoint_loads_and_sets_the_learned_prompts(model, tmp_path):
    path = tmp_path / "epoch_15.pth"
    state = _official_checkpoint(model, path)
    loaded = zsad_bench.load_model("anomalyclip", backbone="test-tiny", image_size=64, checkpoint=path)
    assert torch.equal(loaded.prompt_learner.ctx_pos, state["ctx_pos"])
    assert torch.equal(loaded.prompt_learner.compound_prompts_text[7], state["compound_prompts_text.7"])
    # the outputs are those of a model holding exactly these tensors
    reference = AnomalyCLIP(backbone="test-tiny", image_size=64).eval()
    with torch.no_grad():
        reference.prompt_learner.ctx_pos.copy_(state["ctx_pos"])
        reference.prompt_learner.ctx_neg.copy_(state["ctx_neg"])
        for i in range(8):
            reference.prompt_learner.compound_prompts_text[i].copy_(state[f"compound_prompts_text.{i}"])
        images = torch.randn(2, 3, 64, 64)
        got, expected = loaded(images, ["a", "b"]), reference(images, ["a", "b"])
        untrained = AnomalyCLIP(backbone="test-tiny", image_size=64).eval()(images, ["a", "b"])
    assert torch.equal(got.image_scores, expected.image_scores)
    assert not torch.allclose(got.anomaly_maps, untrained.anomaly_maps)


def test_wrong_or_corrupt_checkpoints_are_one_line_errors(model, tmp_path):
    wrong = tmp_path / "vit-l.pth"
    _official_checkpoint(model, wrong, width=768)
    with pytest.raises(ZsadError, match="does not fit model 'anomalyclip'"):
        zsad_bench.load_model("anomalyclip", backbone="test-tiny", image_size=64, checkpoint=wrong)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(ZsadError, match="not a readable AnomalyCLIP checkpoint"):
        zsad_bench.load_model("anomalyclip", backbone="test-tiny", image_size=64, checkpoint=corrupt)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(ZsadError, match="not an AnomalyCLIP checkpoint"):
        zsad_bench.load_model("anomalyclip", backbone="test-tiny", image_size=64, checkpoint=other)
