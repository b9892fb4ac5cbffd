"""The training loop's choices: the method's own hyper-parameters (``train_defaults``) under what the user
passes, ``cache_features = False`` (no feature cache, ``frozen_features`` every step), and training on
several auxiliary datasets concatenated (``AuxiliaryData``)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from zsad_bench.api import Detector, Trainable, TrainConfig
from zsad_bench.engine import training
from zsad_bench.engine.checkpoint import AuxiliaryData
from zsad_bench.engine.training import fit, train_config_for


class Tiny(Detector, Trainable):
    """One learned scalar ``w``; the loss is ``w * mean(features)``, so Adam's first step moves ``w`` by
    exactly ``lr`` (its first update is ``lr * g / |g|``)."""

    name = "tiny-trainable"
    trainable = True

    def __init__(self) -> None:
        super().__init__()
        self.input_size = 4
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.frozen_calls = 0
        self.seen: list[list[str]] = []

    def frozen_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.frozen_calls += 1
        assert not torch.is_grad_enabled()  # the frozen part runs without gradients, cached or not
        return {"x": images.mean(dim=(1, 2, 3))}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [self.w]

    def loss(self, features: dict[str, Any], masks: Any, labels: Any, class_names: Any) -> torch.Tensor:
        self.seen.append(list(class_names))
        return self.w * (features["x"] + labels.float()).mean()


class TinyWithDefaults(Tiny):
    @classmethod
    def train_defaults(cls) -> dict[str, Any]:
        return {"lr": 0.25, "batch_size": 3}


class TinyUncached(Tiny):
    cache_features: ClassVar[bool] = False


class Items(torch.utils.data.Dataset):
    """``n`` images of one class ``name`` (value ``offset + i``), labels alternating."""

    def __init__(self, n: int, name: str, offset: float = 0.0) -> None:
        self.n, self.name, self.offset = n, name, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "image": torch.full((3, 4, 4), float(self.offset + i)),
            "mask": torch.zeros(4, 4, dtype=torch.bool),
            "label": i % 2,
            "class_name": self.name,
            "prompt_name": self.name.replace("_", " "),
        }

    @property
    def classes(self) -> list[str]:
        return [self.name]


def test_train_config_layers_user_over_method_over_trainconfig():
    assert train_config_for(Tiny) == TrainConfig()
    assert train_config_for(TinyWithDefaults) == TrainConfig(lr=0.25, batch_size=3)
    given = train_config_for(TinyWithDefaults, lr=0.5, batch_size=None, seed=4)  # None: not passed
    assert (given.lr, given.batch_size, given.seed, given.betas) == (0.5, 3, 4, TrainConfig().betas)
    with pytest.raises(TypeError, match="no TrainConfig field lr_max"):
        train_config_for(Tiny, lr_max=1.0)

    class Wrong(Tiny):
        @classmethod
        def train_defaults(cls) -> dict[str, Any]:
            return {"learning_rate": 0.1}

    with pytest.raises(TypeError, match="names no TrainConfig field: learning_rate"):
        train_config_for(Wrong)


def test_fit_without_a_config_trains_with_the_methods_own_defaults():
    model = TinyWithDefaults()
    fit(model, Items(3, "a"), None, device=torch.device("cpu"))  # 1 batch of 3 (not TrainConfig's 8)
    assert len(model.seen) == 15 and all(len(names) == 3 for names in model.seen)  # 15 epochs x 1 step
    first = TinyWithDefaults()
    fit(first, Items(3, "a"), TrainConfig(epochs=1, lr=0.25, batch_size=3), device=torch.device("cpu"))
    assert float(first.w.detach()) == pytest.approx(
        -0.25, abs=1e-6
    )  # Adam's first step is lr, against the gradient


def test_uncached_method_runs_frozen_features_each_step_and_trains_like_the_cache(monkeypatch):
    config = TrainConfig(epochs=3, batch_size=2, seed=5, lr=0.1)
    cached = Tiny()
    report = fit(cached, Items(5, "a"), config, device=torch.device("cpu"))
    assert report.extra["feature_cache"] is True and cached.frozen_calls == 1  # one cache pass (batch 16)

    def no_cache(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a method with cache_features = False never builds the feature cache")

    monkeypatch.setattr(training.FeatureCache, "build", no_cache)
    uncached = TinyUncached()
    again = fit(uncached, Items(5, "a"), config, device=torch.device("cpu"))
    assert again.extra["feature_cache"] is False and "cache_seconds" not in again.extra
    assert uncached.frozen_calls == 3 * 3  # ceil(5 / 2) steps in each of 3 epochs
    assert uncached.seen == cached.seen and again.epoch_losses == pytest.approx(report.epoch_losses)
    assert float(uncached.w.detach()) == pytest.approx(float(cached.w.detach()))


def test_several_datasets_train_as_one_concatenation():
    both = AuxiliaryData(["one", "two"], [Items(3, "metal_nut"), Items(4, "polyp", offset=10)])
    assert len(both) == 7 and both.classes == ["metal_nut", "polyp"] and both.augmented is False
    assert both[2]["class_name"] == "metal_nut" and both[3]["image"][0, 0, 0] == 10  # in the order given
    model = Tiny()
    report = fit(model, both, TrainConfig(epochs=2, batch_size=7, seed=1), device=torch.device("cpu"))
    assert report.classes == ["metal_nut", "polyp"]
    assert [sorted(names) for names in model.seen] == [["metal nut"] * 3 + ["polyp"] * 4] * 2  # prompt names

    class Shifted(Items):
        augmented = True

    wrapped = both.with_parts(lambda i, part: Shifted(part.n, part.name, 100) if i == "two" else part)
    assert wrapped.ids == ("one", "two") and wrapped.augmented is True and wrapped[3]["image"][0, 0, 0] == 100
    assert (
        fit(Tiny(), wrapped, TrainConfig(epochs=1), device=torch.device("cpu")).extra["feature_cache"]
        is False
    )
    with pytest.raises(ValueError, match="2 ids for 1 datasets"):
        AuxiliaryData(["one", "two"], [Items(1, "a")])


def test_adamw_decays_the_weights_apart_from_the_gradient_step():
    # AdamW's step: w <- w * (1 - lr * wd), then w <- w - lr * m_hat / (sqrt(v_hat) + eps); on the first
    # step m_hat / sqrt(v_hat) = sign(g). Start w at 2: the loss w * mean(x + label) has a positive gradient
    # on this data, so w = 2 * (1 - 0.1 * 0.5) - 0.1 = 1.8; Adam with the same weight decay adds wd * w to
    # the gradient instead and still moves by exactly lr on its first step: 1.9.
    for name, expected in (("adamw", 1.8), ("adam", 1.9)):
        model = Tiny()
        with torch.no_grad():
            model.w.fill_(2.0)
        config = TrainConfig(epochs=1, lr=0.1, batch_size=3, optimizer=name, weight_decay=0.5)
        fit(model, Items(3, "a", offset=1.0), config, device=torch.device("cpu"))
        assert float(model.w.detach()) == pytest.approx(expected, abs=1e-6), name


def test_an_unknown_optimizer_is_one_line():
    from zsad_bench.errors import ZsadError

    with pytest.raises(ZsadError, match="unknown optimizer 'sgd'; choose from adam, adamw"):
        fit(Tiny(), Items(3, "a"), TrainConfig(epochs=1, optimizer="sgd"), device=torch.device("cpu"))


def test_adaclip_trains_with_the_official_adamw():
    from zsad_bench.adaclip import AdaCLIP

    config = train_config_for(AdaCLIP)
    assert (config.optimizer, config.weight_decay, config.lr, config.batch_size) == ("adamw", 0.01, 0.01, 1)
    assert config.betas == (0.5, 0.999)
