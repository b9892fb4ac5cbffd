"""AdaCLIP training through the engine, its own checkpoints, and the official ``pretrained_*.pth`` files."""

from __future__ import annotations

import pickle

import pytest
import torch

import zsad_bench
from zsad_bench._factory import check_options
from zsad_bench.adaclip import AdaCLIP
from zsad_bench.adaclip.checkpoint import ALL_DATASETS
from zsad_bench.api import TrainConfig
from zsad_bench.data import AnomalyDataset, data_root, read_manifest
from zsad_bench.engine.training import fit
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default

TINY = {"backbone": "test-tiny", "image_size": 64}


def _synthetic(model: AdaCLIP, per_class: int) -> AnomalyDataset:
    from zsad_bench.data import ensure_prepared
    from zsad_bench.data.synthetic import SPEC

    folder = ensure_prepared(SPEC, data_root())
    manifest = read_manifest(folder)
    test = manifest[(manifest.split == "test") & manifest.class_name.isin(["checker", "dots"])]
    rows = test.groupby(["class_name", "label"]).head(per_class)
    return AnomalyDataset(folder, rows, transform=model.transform(), mask_size=model.input_size,
                          classes=["checker", "dots"])  # fmt: skip


def test_one_epoch_through_the_engine_changes_every_used_tensor():
    torch.manual_seed(0)
    model = AdaCLIP(**TINY)
    data = _synthetic(model, per_class=1)  # 4 images, batches of one: 4 steps
    before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    config = TrainConfig(epochs=1, seed=3, feature_cache=False, **AdaCLIP.train_defaults())
    report = fit(model, data, config)
    assert len(report.epoch_losses) == 1 and torch.isfinite(torch.tensor(report.epoch_losses)).all()
    after = model.trainable_state_dict()
    unchanged = sorted(k for k in before if torch.equal(before[k], after[k]))
    assert unchanged == ["text_prompter.static_prompts.0"]  # never enters the text tower


def test_loss_has_gradients_for_the_prompts_through_both_towers():
    torch.manual_seed(0)
    model = AdaCLIP(**TINY)
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 64, 64)
    masks[1, 20:40, 20:40] = 1
    loss = model.loss(model.frozen_features(images), masks, torch.tensor([0, 1]), ["a", "b"])
    loss.backward()
    assert torch.isfinite(loss)
    assert model.visual_prompter.static_prompts[0].grad.abs().sum() > 0
    assert model.text_prompter.static_prompts[1].grad.abs().sum() > 0
    assert model.dynamic_visual_prompt_generator.head[0].weight.grad.abs().sum() > 0
    assert model.text_prompter.static_prompts[0].grad is None


def test_save_load_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = AdaCLIP(**TINY, kmeans_seed=5).eval()
    with torch.no_grad():
        model.visual_prompter.static_prompts[2].add_(0.3)
    model.save(tmp_path / "ckpt")
    loaded = AdaCLIP.load(tmp_path / "ckpt")
    assert loaded.config() == model.config()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = loaded(images, ["a", "b"]), model(images, ["a", "b"])
    assert torch.equal(a.image_scores, b.image_scores) and torch.equal(a.anomaly_maps, b.anomaly_maps)


def _official_file(path, width: int = 32, generator_seed: int = 7) -> dict[str, torch.Tensor]:
    """The 38 tensors of an official file, in its layout and key names, at the tiny backbone's widths."""
    g = torch.Generator().manual_seed(generator_seed)
    shapes = {}
    for d in range(4):
        shapes[f"text_prompter.static_prompts.{d}"] = (5, width)
        shapes[f"visual_prompter.static_prompts.{d}"] = (5, width)
        shapes[f"patch_token_layer.head.{d}.weight"] = (width, width)
        shapes[f"patch_token_layer.head.{d}.bias"] = (width,)
    shapes["cls_token_layer.head.0.weight"], shapes["cls_token_layer.head.0.bias"] = (width, width), (width,)
    for i in range(5):
        for generator in ("dynamic_visual_prompt_generator", "dynamic_text_prompt_generator"):
            shapes[f"{generator}.head.{i}.weight"], shapes[f"{generator}.head.{i}.bias"] = (
                (width, width),
                (width,),
            )
    state = {f"clip_model.{k}": torch.randn(*s, generator=g) * 0.1 for k, s in shapes.items()}
    torch.save(state, path)
    return state


def test_official_checkpoint_loads_evaluates_and_names_its_training_data(tmp_path):
    path = tmp_path / "pretrained_mvtec_colondb.pth"
    state = _official_file(path)
    assert len(state) == 38
    loaded = zsad_bench.load_model("adaclip", checkpoint=path, **TINY)
    assert loaded.trained_on == "mvtec-ad+cvc-colondb"
    for key, value in state.items():
        assert torch.equal(loaded.trainable_state_dict()[key.removeprefix("clip_model.")], value)
    held_out = _synthetic(loaded, per_class=2)
    result = zsad_bench.evaluate(loaded, held_out, default.with_overrides(eval_size=64), progress=False)
    assert 0.0 <= result.mean["image_auroc"] <= 1.0
    assert AdaCLIP.checkpoint_options(path).trained_on == "mvtec-ad+cvc-colondb"


@pytest.mark.parametrize(
    ("name", "trained_on"),
    [("pretrained_visa_clinicdb.pth", "visa+cvc-clinicdb"), ("pretrained_all.pth", "+".join(ALL_DATASETS))],
)
def test_the_released_names_tell_the_training_data(tmp_path, name, trained_on):
    path = tmp_path / name
    _official_file(path)
    assert AdaCLIP.checkpoint_options(path).trained_on == trained_on
    assert len(trained_on.split("+")) == (14 if "all" in name else 2)


def _one_line(path, says: str) -> None:
    with pytest.raises(ZsadError, match=says) as info:
        check_options(["adaclip"], {}, backbone="test-tiny", checkpoints={"adaclip": path})
    assert "\n" not in str(info.value)


def test_bad_official_files_are_one_line(tmp_path):
    renamed = tmp_path / "adaclip_weights.pth"
    _official_file(renamed)
    _one_line(renamed, "cannot be told from its name; keep the released file name")
    foreign = tmp_path / "pretrained_all.pth"
    torch.save({"prompt_learner": {"ctx_pos": torch.zeros(1)}}, foreign)
    _one_line(foreign, "not a dict of tensors|not an official AdaCLIP checkpoint")
    torch.save({"clip_model.other.weight": torch.zeros(1)}, foreign)
    _one_line(foreign, r"holds clip_model\.other\.weight; it is not an official AdaCLIP checkpoint")
    truncated = tmp_path / "pretrained_visa_clinicdb.pth"
    _official_file(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    _one_line(truncated, "is truncated or not a torch file")
    listed = tmp_path / "pretrained_mvtec_colondb.pth"
    torch.save([torch.zeros(1)], listed)
    _one_line(listed, r"is not a dict of tensors \(it holds list\)")
    marker = tmp_path / "pwned"
    listed.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    _one_line(listed, "refused by the safe loader; nothing in it ran")
    assert not marker.exists()


def test_official_file_of_another_width_does_not_fit(tmp_path):
    path = tmp_path / "pretrained_mvtec_colondb.pth"
    _official_file(path, width=48)
    with pytest.raises(ZsadError, match="does not fit model 'adaclip'") as info:
        zsad_bench.load_model("adaclip", checkpoint=path, **TINY)
    assert "\n" not in str(info.value)


class _Payload:
    """Creates a file when unpickled by a trusting loader."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
