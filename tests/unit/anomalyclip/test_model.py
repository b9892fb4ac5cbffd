"""AnomalyCLIP on the tiny backbone: inference formulas, training, checkpoints (ours and official)."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

import zsad_bench
from zsad_bench._factory import check_options
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


def _heads_attention(block, z: torch.Tensor, vv: bool) -> torch.Tensor:
    """Per head softmax(q kᵀ / sqrt(d)) v, or softmax(v vᵀ / sqrt(d)) v for V-V, then ``out_proj``, by hand
    from the block's packed projection weights (AnomalyCLIP.py:57-94)."""
    attn = block.attn
    width, heads = z.shape[-1], attn.num_heads
    d = width // heads
    q, k, v = F.linear(z, attn.in_proj_weight, attn.in_proj_bias).split(width, dim=-1)
    outs = []
    for h in range(heads):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
        a, b = (vh, vh) if vv else (qh, kh)
        outs.append(torch.softmax(a @ b.transpose(-1, -2) / math.sqrt(d), dim=-1) @ vh)
    return F.linear(torch.cat(outs, dim=-1), attn.out_proj.weight, attn.out_proj.bias)


def _official_image_features(model: AnomalyCLIP, images: torch.Tensor, layers: list[int]):
    """Global feature and per-layer patch features from open_clip's raw modules, DPAM written out by
    hand: blocks before ``dpam_from`` through open_clip's own block forward, the later ones with both
    attentions; V-V stream without MLP; CLS @ proj without ln_post; patches ln_post then proj."""
    visual = model.backbone.model.visual
    blocks = visual.transformer.resblocks
    x = visual.conv1(images).flatten(2).transpose(1, 2)  # (B, N, W) patch embeddings
    cls = visual.class_embedding.expand(len(images), 1, -1)
    x = visual.ln_pre(torch.cat([cls, x], dim=1) + visual.positional_embedding)
    o = s = x
    patches = {}
    for index, block in enumerate(blocks, start=1):
        if index < model.dpam_from:
            o = block(o) if visual.transformer.batch_first else block(o.transpose(0, 1)).transpose(0, 1)
            s = o
        else:
            z = block.ln_1(o)
            o = o + _heads_attention(block, z, vv=False)
            o = o + block.mlp(block.ln_2(o))
            s = s + _heads_attention(block, z, vv=True)
        if index in layers:
            patches[index] = F.normalize(visual.ln_post(s[:, 1:]) @ visual.proj, dim=-1)
    return F.normalize(o[:, 0] @ visual.proj, dim=-1), patches


def _official_text_features(model: AnomalyCLIP) -> torch.Tensor:
    """[normal, abnormal] text features from open_clip's raw text modules: the learned context at
    positions 1..12, deep tokens overwriting positions 1..4 before blocks 2..9 (fp16-rounded), ln_final,
    the EOS token, the projection."""
    oc, learner = model.backbone.model, model.prompt_learner
    ids = learner.token_ids
    x = oc.token_embedding(ids).float()
    x[:, 1:13] = torch.cat([learner.ctx_pos[0], learner.ctx_neg[0]])
    x = x + oc.positional_embedding
    for index, block in enumerate(oc.transformer.resblocks, start=1):
        if 2 <= index <= 9:
            x[:, 1:5] = learner.compound_prompts_text[index - 2].half().float()
        if oc.transformer.batch_first:
            x = block(x, attn_mask=oc.attn_mask)
        else:
            x = block(x.transpose(0, 1), attn_mask=oc.attn_mask).transpose(0, 1)
    x = oc.ln_final(x)[torch.arange(2), ids.argmax(dim=-1)]
    return F.normalize(x @ oc.text_projection, dim=-1)


def test_forward_follows_the_official_formulas(model):
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prediction = model(images, ["ignored", "names"])
        text = _official_text_features(model)
        global_feature, patches = _official_image_features(model, images, [24])
        score = (global_feature @ text.T / 0.07).softmax(-1)[:, 1]
        probs = (patches[24] @ text.T / 0.07).softmax(-1).permute(0, 2, 1).reshape(2, 2, 8, 8)
        up = F.interpolate(probs, size=(64, 64), mode="bilinear", align_corners=False)[:, 1]
    from scipy.ndimage import gaussian_filter

    expected = torch.from_numpy(gaussian_filter(up.numpy(), sigma=(0, 4, 4)))
    assert torch.allclose(prediction.image_scores, score, atol=1e-5)
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
    layers = [12, 24]
    multi = AnomalyCLIP(backbone="test-tiny", image_size=64, features=layers, sigma=0).eval()
    singles = [AnomalyCLIP(backbone="test-tiny", image_size=64, features=[k], sigma=0).eval() for k in layers]
    for single in singles:
        single.prompt_learner.load_state_dict(multi.prompt_learner.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        both = multi(images, ["x", "x"])
        each = [single(images, ["x", "x"]) for single in singles]
    maps = torch.stack([p.anomaly_maps for p in each])
    # the sum of the single-layer maps: neither their mean nor their maximum
    assert torch.allclose(both.anomaly_maps, maps.sum(0), atol=1e-6)
    assert not torch.allclose(both.anomaly_maps, maps.mean(0), atol=1e-3)
    assert not torch.allclose(both.anomaly_maps, maps.amax(0), atol=1e-3)
    assert torch.allclose(both.image_scores, each[1].image_scores)  # the image score reads no layer map


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
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(ZsadError, match=r"has no 'prompt_learner' state \(it holds keys state_dict\)"):
        zsad_bench.load_model("anomalyclip", backbone="test-tiny", image_size=64, checkpoint=other)


class _Payload:
    """Creates a file when unpickled by a trusting loader."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _write_bad_official(kind: str, path, marker, model) -> None:
    import pickle

    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        _official_checkpoint(model, path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "text":
        path.write_text("epoch 15\n")
    elif kind == "random bytes":
        path.write_bytes(b"\x80\x04 not a checkpoint")
    elif kind == "pickled code":
        path.write_bytes(pickle.dumps({"prompt_learner": _Payload(marker)}, protocol=2))


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("empty", "is empty"),
        ("truncated", "is truncated or not a torch file"),
        ("text", "is truncated or not a torch file"),
        ("random bytes", r"is not a checkpoint of tensors \(refused by the safe loader; nothing in it ran\)"),
        ("pickled code", r"is not a checkpoint of tensors \(refused by the safe loader; nothing in it ran\)"),
    ],
)
def test_an_unreadable_official_file_is_one_line_and_runs_nothing(model, tmp_path, kind, says):
    path, marker = tmp_path / "epoch_15.pth", tmp_path / "pwned"
    _write_bad_official(kind, path, marker, model)
    with pytest.raises(ZsadError) as exc:  # refused while checking the options, before any model is built
        check_options(["anomalyclip"], {}, backbone="test-tiny", checkpoints={"anomalyclip": path})
    line = str(exc.value)
    assert "\n" not in line and re.fullmatch(
        rf"checkpoint {re.escape(str(path))} {says}; pass an official AnomalyCLIP epoch_N\.pth or a folder "
        r"written by 'zsad train'",
        line,
    ), line
    assert not marker.exists()


def test_another_models_checkpoint_folder_names_the_model_it_was_written_for(tmp_path):
    from zsad_bench.baselines.coop import CoOp

    folder = tmp_path / "coop-ckpt"
    CoOp(backbone="test-tiny", image_size=64).save(folder)
    with pytest.raises(ZsadError) as exc:
        zsad_bench.load_model("anomalyclip", checkpoint=folder)
    assert str(exc.value) == (
        f"checkpoint {folder / 'config.json'} was written for model 'coop', not 'anomalyclip'; pass a "
        f"checkpoint of 'anomalyclip' or run the model it was written for"
    )
