import re
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
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZsadError, match=r"checkpoint folder .*empty lacks config\.json"):
        Toy.load(tmp_path / "empty")
    with pytest.raises(ZsadError, match=r"checkpoint .*nowhere does not exist; pass a folder written by"):
        Toy.load(tmp_path / "nowhere")
    with pytest.raises(ZsadError, match=r"checkpoint .*config\.json is a file; model 'toy' loads a folder"):
        Toy.load(tmp_path / "ckpt" / "config.json")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b"garbage", r"is truncated or not safetensors \(.*header"),
        ("truncate", r"is truncated or not safetensors \(.*incomplete metadata"),
    ],
)
def test_an_empty_or_truncated_weights_file_is_one_line_naming_it(tmp_path, content, says):
    folder = tmp_path / "ckpt"
    Toy(width=4000).save(folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if content == "truncate" else content)
    # refused before any model is built (check_checkpoint reads only the header) and when loading
    for attempt in (Toy.check_checkpoint, Toy.load):
        with pytest.raises(ZsadError) as exc:
            attempt(folder)
        assert re.fullmatch(
            rf"checkpoint {re.escape(str(weights))} {says}.*; re-run 'zsad train'", _one_line(exc)
        )


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("", "is empty"),
        (
            '{"name": "toy", "wid',
            r"is not JSON \(Unterminated string starting at: line 1, column 17; truncated or edited\)",
        ),
        ("{not json", r"is not JSON \(Expecting property name"),
        ("[1, 2]", "holds a JSON list, not a model's options"),
        (b"\xff\xfe\x00binary", "holds binary data, not JSON"),
        ('{"width": 4}', r"was written for no model \(no 'name' key\), not 'toy'"),
        (
            '{"name": "coop", "width": 4}',
            "was written for model 'coop', not 'toy'; pass a checkpoint of 'toy'",
        ),
        ('{"name": "toy", "width": -4}', r"option width of checkpoint .*config\.json must be an integer"),
        ('{"name": "toy", "width": 4, "depth": 2}', r"checkpoint .*config\.json has no option 'depth'"),
    ],
)
def test_a_bad_config_json_is_one_line_naming_the_file_and_what_it_holds(tmp_path, config, says):
    folder = tmp_path / "ckpt"
    Toy(width=4).save(folder)
    config_file = folder / "config.json"
    if isinstance(config, bytes):
        config_file.write_bytes(config)
    else:
        config_file.write_text(config)
    for attempt in (Toy.checkpoint_options, Toy.load):
        with pytest.raises(ZsadError) as exc:
            attempt(folder)
        line = _one_line(exc)
        assert str(config_file) in line and re.search(says, line), line


def test_save_writes_whole_files_and_no_temporaries(tmp_path):
    Toy(width=4).save(tmp_path / "new" / "ckpt")  # the folder is created
    assert sorted(p.name for p in (tmp_path / "new" / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


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


class Picky(Toy):
    """A Toy whose options are also checked together, as detectors check theirs against the backbone."""

    name = "picky"

    @classmethod
    def validate_options(cls, options, owner=""):
        if options.width == 7:
            raise ZsadError(f"option width of {owner or 'model picky'} must not be 7")


def test_validate_options_runs_on_every_construction_path(tmp_path):
    with pytest.raises(ZsadError, match="must not be 7"):
        Picky(width=7)
    Picky(width=4).save(tmp_path / "ckpt")
    with pytest.raises(ZsadError, match="must not be 7"):
        Picky.load(tmp_path / "ckpt", width=7)


def test_check_options_uses_the_backbone_and_each_checkpoint(tmp_path):
    from zsad_bench._factory import check_options
    from zsad_bench.anomalyclip import AnomalyCLIP

    check_options(["clip"], {"image_size": "64"}, backbone="test-tiny")
    with pytest.raises(
        ZsadError, match=r"must be a multiple of the patch size 14 of ViT-L-14-336-quickgelu, e\.g\. 70"
    ):
        check_options(["clip"], {"image_size": "64"})  # the default backbone's patch is 14
    folder = tmp_path / "ckpt"
    AnomalyCLIP(backbone="test-tiny", image_size=64, features=(6, 24)).save(folder)
    check_options(["anomalyclip"], {}, checkpoints={"anomalyclip": folder})  # its stored 64 px, test-tiny
    with pytest.raises(
        ZsadError, match="image_size of model 'anomalyclip' must be a multiple of a test-tiny"
    ):
        check_options(["anomalyclip"], {"image_size": "60"}, checkpoints={"anomalyclip": folder})
    with pytest.raises(ZsadError, match=r"names layer 30, but test-tiny has layers 1\.\.24"):
        check_options(["anomalyclip"], {"dpam_from": "30"}, checkpoints={"anomalyclip": folder})
    with pytest.raises(ZsadError, match=r"config\.json was written for model 'anomalyclip', not 'coop'"):
        check_options(["coop"], {}, checkpoints={"coop": folder})
    with pytest.raises(ZsadError, match="model 'clip' is training-free; it takes no checkpoint"):
        check_options(["clip"], {}, checkpoints={"clip": folder})


def test_checkpoint_map_gives_each_model_its_own(tmp_path):
    from zsad_bench._factory import checkpoint_map

    a, b = tmp_path / "a", tmp_path / "b=c"
    assert checkpoint_map(["coop"], None) == {} == checkpoint_map(["coop"], ())
    assert checkpoint_map(["coop"], (str(a),)) == {"coop": a}  # a bare path with one model
    assert checkpoint_map(["coop"], a) == {"coop": a}
    b.mkdir()
    assert checkpoint_map(["coop"], (str(b),)) == {"coop": b}  # an existing path with '=' stays a path
    pairs = (f"coop={a}", f"anomalyclip={b}")
    assert checkpoint_map(["anomalyclip", "coop"], pairs) == {"coop": a, "anomalyclip": b}
    with pytest.raises(ZsadError, match=r"does not say which model it is for; with several models write "):
        checkpoint_map(["anomalyclip", "coop"], (str(a),))
    with pytest.raises(
        ZsadError, match=r"names model 'april-gan', which is not run \(--model anomalyclip,coop\)"
    ):
        checkpoint_map(["anomalyclip", "coop"], (f"april-gan={a}",))
    with pytest.raises(ZsadError, match="gives model 'coop' two checkpoints"):
        checkpoint_map(["anomalyclip", "coop"], (f"coop={a}", f"coop={b}"))
    with pytest.raises(ZsadError, match="names no path; write --checkpoint coop=PATH"):
        checkpoint_map(["coop"], ("coop=",))
