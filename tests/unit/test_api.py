import pytest
import torch

import zsad_bench
from zsad_bench.api import Detector, Prediction
from zsad_bench.errors import ZsadError


def test_prediction_checks_shapes():
    Prediction(torch.zeros(2), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        Prediction(torch.zeros(2, 1), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        Prediction(torch.zeros(2), torch.zeros(3, 4, 4))


class Toy(Detector):
    """A detector with one trainable tensor, to exercise save/load."""

    name = "toy"
    trainable = True

    def __init__(self, backbone: str = "none", width: int = 3) -> None:
        super().__init__()
        self._options = {"backbone": backbone, "width": width}
        self.input_size = 8
        self.weight = torch.nn.Parameter(torch.randn(width))


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


def test_training_free_detectors_refuse_fit():
    with pytest.raises(ZsadError, match="training-free"):
        Detector().fit(None, zsad_bench.TrainConfig())


def test_load_model_builds_a_registered_detector_on_the_device():
    model = zsad_bench.load_model("clip", backbone="test-tiny", image_size=64, device="cpu")
    assert model.name == "clip" and not model.training and model.input_size == 64
    with pytest.raises(ZsadError, match="has no option 'sigmaa'"):
        zsad_bench.load_model("clip", backbone="test-tiny", sigmaa=3)


def test_public_listing():
    assert {"clip", "clip-ac"} <= set(zsad_bench.list_models())
    assert "synthetic" in zsad_bench.list_datasets()
    assert "default" in zsad_bench.list_protocols()
