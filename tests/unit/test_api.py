import json
from dataclasses import dataclass

import pytest
import torch

import zsad_bench
from zsad_bench.api import Detector, Prediction, Trainable
from zsad_bench.engine.training import fit
from zsad_bench.errors import ZsadError
from zsad_bench.options import DetectorOptions, option


def test_prediction_checks_shapes():
    Prediction(torch.zeros(2), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        Prediction(torch.zeros(2, 1), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        Prediction(torch.zeros(2), torch.zeros(3, 4, 4))


@dataclass(frozen=True)
class ToyOptions(DetectorOptions):
    backbone: str = option("none", "no backbone")
    width: int = option(3, "length of the trainable vector", min=1)


class Toy(Detector):
    """A detector with one trainable tensor, to exercise save/load."""

    name = "toy"
    Options = ToyOptions
    options: ToyOptions

    def __init__(self, options: ToyOptions | None = None, **overrides) -> None:
        super().__init__(options, **overrides)
        self.input_size = 8
        self.weight = torch.nn.Parameter(torch.randn(self.options.width))


def test_options_are_validated_and_recorded():
    toy = Toy(width="4")  # text, as -o gives it, is converted
    assert toy.options == ToyOptions(width=4) and toy.config() == {
        "name": "toy",
        "backbone": "none",
        "width": 4,
    }
    assert Toy(ToyOptions(width=5), backbone="b").config()["width"] == 5
    with pytest.raises(ZsadError, match=r"option width of model 'toy' must be an integer \(>= 1\), got 0"):
        Toy(width=0)
    with pytest.raises(ZsadError, match="model 'toy' has no option 'depth'; options: backbone, width"):
        Toy(depth=2)
    with pytest.raises(TypeError, match="takes ToyOptions"):
        Toy(DetectorOptions())


def test_save_load_is_bit_exact(tmp_path):
    toy = Toy(width=4)
    toy.save(tmp_path / "ckpt")
    loaded = Toy.load(tmp_path / "ckpt")
    assert torch.equal(loaded.weight, toy.weight)
    assert loaded.config() == toy.config() == {"name": "toy", "backbone": "none", "width": 4}


def test_load_wrong_shape_or_missing_files_is_one_line(tmp_path):
    Toy(width=4).save(tmp_path / "ckpt")
    with pytest.raises(ZsadError, match=r"does not fit model 'toy'.*wrong shape: weight"):
        Toy.load(tmp_path / "ckpt", width=5)
    with pytest.raises(ZsadError, match=r"lacks config\.json"):
        Toy.load(tmp_path / "empty")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ZsadError, match="corrupt"):
        Toy.load(tmp_path / "ckpt")


def test_load_validates_the_stored_options(tmp_path):
    folder = tmp_path / "ckpt"
    Toy(width=4).save(folder)
    config = folder / "config.json"
    config.write_text(json.dumps({"name": "toy", "backbone": "none", "width": -4}))
    with pytest.raises(ZsadError, match=r"option width of checkpoint .*config\.json must be an integer"):
        Toy.load(folder)
    config.write_text(json.dumps({"name": "toy", "width": 4, "depth": 2}))
    with pytest.raises(ZsadError, match=r"checkpoint .*config\.json has no option 'depth'"):
        Toy.load(folder)
    config.write_text(json.dumps({"name": "coop", "width": 4}))
    with pytest.raises(ZsadError, match="holds model 'coop', not 'toy'"):
        Toy.load(folder)
    config.write_text("{not json")
    with pytest.raises(ZsadError, match="is not JSON"):
        Toy.load(folder)


def test_training_free_detectors_refuse_fit():
    with pytest.raises(ZsadError, match="training-free"):
        fit(Toy(), None, zsad_bench.TrainConfig())


def test_a_trainable_detector_must_implement_the_hooks():
    with pytest.raises(TypeError, match=r"subclass zsad_bench\.api\.Trainable and implement loss"):

        class Half(Detector, Trainable):
            name = "half"
            trainable = True

            def frozen_features(self, images):
                return {}

            def trainable_parameters(self):
                return []

    with pytest.raises(TypeError, match=r"subclass zsad_bench\.api\.Trainable"):

        class Untyped(Detector):  # the hooks, but without Trainable's defaults (epochs_for, training_data)
            name = "untyped"
            trainable = True

            def frozen_features(self, images):
                return {}

            def trainable_parameters(self):
                return []

            def loss(self, features, masks, labels, class_names):
                return torch.zeros(())

    class Whole(Detector, Trainable):
        name = "whole"
        trainable = True

        def frozen_features(self, images):
            return {}

        def trainable_parameters(self):
            return []

        def loss(self, features, masks, labels, class_names):
            return torch.zeros(())

    assert isinstance(Whole(), Trainable) and Whole.epochs_for("visa") == 15
    assert not isinstance(Toy(), Trainable)


def test_load_model_builds_a_registered_detector_on_the_device():
    model = zsad_bench.load_model("clip", backbone="test-tiny", image_size=64, device="cpu")
    assert model.name == "clip" and not model.training and model.input_size == 64
    with pytest.raises(ZsadError, match="has no option 'sigmaa'"):
        zsad_bench.load_model("clip", backbone="test-tiny", sigmaa=3)
    with pytest.raises(ZsadError, match=r"option sigma of model 'clip' must be a number \(>= 0\), got '-1'"):
        zsad_bench.load_model("clip", backbone="test-tiny", sigma="-1")


def test_public_listing():
    assert {"clip", "clip-ac"} <= set(zsad_bench.list_models())
    assert "synthetic" in zsad_bench.list_datasets()
    assert "default" in zsad_bench.list_protocols()
