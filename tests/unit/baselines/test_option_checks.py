"""Every detector's options, checked before any work: one line naming the option and what is allowed.

The checks that depend on the backbone (the image size against its patch size, layer indices against its
depth) run from the backbone's configuration, without weights, so they hold for the default backbones
offline too.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench._factory import check_options, list_models, model_class
from zsad_bench.cli import main
from zsad_bench.errors import ZsadError

BUILT_IN = ["anomalyclip", "april-gan", "clip", "clip-ac", "coop", "winclip"]


def _field_names(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(model_class(name).Options)}


def _layer_like(name: str) -> list[str]:
    """The options that name 1-based blocks of the image tower."""
    hints = typing.get_type_hints(model_class(name).Options)
    return [k for k in ("features", "layers", "dpam_from") if k in hints]


def _refused(name: str, options: dict[str, str], backbone: str | None = "test-tiny") -> str:
    with pytest.raises(ZsadError) as exc:
        check_options([name], options, backbone=backbone)
    line = str(exc.value)
    assert "\n" not in line and len(line) < 300, line
    return line


def test_every_built_in_detector_is_covered():
    assert set(BUILT_IN) <= set(list_models())


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("value", ["abc", "7", "-64", "0", "7.5"])
def test_a_bad_image_size_is_one_line(name, value):
    line = _refused(name, {"image_size": value})
    assert line.startswith(f"option image_size of model '{name}' must be ")
    if value == "7":  # the backbone-dependent case: the patch sizes and a valid value
        assert "a multiple of a test-tiny patch size (8, 14, 16), e.g. 64; got 7" in line
    else:
        assert line.endswith(f"got '{value}'")


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_image_size_must_fit_the_default_backbones_patch(name):
    default = model_class(name).Options()
    patch = 16 if name == "winclip" else 14
    line = _refused(name, {"image_size": str(default.image_size + 2)}, backbone=None)
    assert f"must be a multiple of the patch size {patch} of " in line
    assert line.endswith(f"; got {default.image_size + 2}")


@pytest.mark.parametrize("name", BUILT_IN)
def test_bad_numbers_and_choices_are_one_line(name):
    fields = _field_names(name)
    cases = {
        "temperature": ("0", "must be a number (> 0)"),
        "sigma": ("-1", "must be a number (>= 0)"),
        "pos_interpolation": ("foo", "must be one of bilinear, bicubic, nearest, area"),
        "logit_scale": ("0", "must be a number (> 0)"),
        "n_ctx": ("0", "must be an integer (>= 1)"),
    }
    tried = 0
    for key, (value, says) in cases.items():
        if key in fields:
            assert _refused(name, {key: value}) == f"option {key} of model '{name}' {says}, got '{value}'"
            tried += 1
    assert tried >= 1


@pytest.mark.parametrize("name", [n for n in BUILT_IN if _layer_like(n)])
def test_every_layer_option_outside_the_tower_names_the_range(name):
    for key in _layer_like(name):
        value = "6,99" if key != "dpam_from" else "99"
        line = _refused(name, {key: value})
        assert line.startswith(
            f"option {key} of model '{name}' names layer 99, but test-tiny-14 has layers 1..24"
        )
        others = {"image_size": "240"} | ({"features": "12"} if key == "dpam_from" else {})
        line = _refused(name, {key: value, **others}, backbone="ViT-B-16-plus-240")  # a 12-block tower
        assert "names layer 99, but ViT-B-16-plus-240 has layers 1..12" in line


def test_layer_options_follow_the_backbone_depth():
    line = _refused("anomalyclip", {"image_size": "240"}, backbone="ViT-B-16-plus-240")  # features 24 of 12
    assert line == (
        "option features of model 'anomalyclip' names layer 24, but ViT-B-16-plus-240 has layers 1..12; "
        "e.g. -o features=12"
    )
    line = _refused("april-gan", {"image_size": "240"}, backbone="ViT-B-16-plus-240")
    assert line.startswith("option layers of model 'april-gan' names layer 18,24, but ViT-B-16-plus-240")


def test_the_cross_option_checks_of_each_detector():
    assert _refused("anomalyclip", {"depth": "13"}) == (
        "option depth of model 'anomalyclip' must be at most 12 (the text layers of test-tiny-14), got 13"
    )
    assert _refused("anomalyclip", {"t_n_ctx": "13"}) == (
        "option t_n_ctx of model 'anomalyclip' must be at most n_ctx (12), got 13"
    )
    assert "at most 72, got 73" in _refused("anomalyclip", {"n_ctx": "73"})
    check_options(["anomalyclip"], {"n_ctx": "72"}, backbone="test-tiny")  # the longest prompt that fits
    assert "at most 72, got 80" in _refused("coop", {"n_ctx": "80"})
    assert _refused("winclip", {"scales": "2,31"}) == (
        "option scales of model 'winclip' must be window sizes in 1..30 patches (the grid at image_size "
        "240), got 2,31"
    )
    assert "needs pos_interpolation bilinear or bicubic" in _refused(
        "april-gan", {"pos_interpolation": "nearest"}
    )


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_detector_refuses_bad_options_in_python_too(name):
    # the same check runs when a detector is built directly, before its backbone is loaded
    with pytest.raises(ZsadError, match=f"option image_size of model '{name}' must be a multiple"):
        model_class(name)(backbone="test-tiny", image_size=7)


# -- the command line ---------------------------------------------------------------------------------
def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    return result.exit_code, lines[0]


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("image_size=abc", "option image_size of model 'anomalyclip' must be an integer (>= 1), got 'abc'"),
        ("image_size=-64", "option image_size of model 'anomalyclip' must be an integer (>= 1), got '-64'"),
        ("image_size=7", "option image_size of model 'anomalyclip' must be a multiple of a test-tiny patch"),
        ("temperature=0", "option temperature of model 'anomalyclip' must be a number (> 0), got '0'"),
        ("sigma=-1", "option sigma of model 'anomalyclip' must be a number (>= 0), got '-1'"),
        ("pos_interpolation=foo", "option pos_interpolation of model 'anomalyclip' must be one of bilinear"),
        ("features=[6,99]", "option features of model 'anomalyclip' names layer 99, but test-tiny-14 has "),
        ("backbone=", "option 'backbone' cannot be set with -o; use --backbone"),
        ("device=cpu", "option 'device' cannot be set with -o; use --device"),
        ("trained_on=visa", "option 'trained_on' cannot be set with -o; training records it"),
    ],
)
def test_zsad_run_refuses_each_bad_option_before_any_work(tmp_path: Path, option, says):
    out = tmp_path / "out"
    code, line = _cli(
        ["run", "--model", "anomalyclip", "--dataset", "synthetic", "--backbone", "test-tiny",
         "-o", option, "--out", str(out), "-q"]
    )  # fmt: skip
    assert code == 2 and line.startswith(f"error: {says}"), line
    assert not out.exists()


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("key", ["backbone", "device", "trained_on"])
def test_reserved_options_are_refused_for_every_detector_and_command(tmp_path: Path, name, key):
    commands = [["run", "--model", name, "--dataset", "synthetic"]]
    if model_class(name).trainable:
        commands += [["train", name, "--dataset", "synthetic"]]
    commands += [["reproduce", "anomalyclip-paper", "--models", name]]
    for command in commands:
        out = tmp_path / "out"
        code, line = _cli([*command, "--backbone", "test-tiny", "-o", f"{key}=x", "--out", str(out)])
        assert code == 2 and line.startswith(f"error: option '{key}' cannot be set with -o"), line
        assert not out.exists()


def test_train_and_reproduce_check_options_with_the_backbone(tmp_path: Path):
    out = tmp_path / "out"
    base = ["--backbone", "test-tiny", "-o", "image_size=7", "--out", str(out)]
    for command in (
        ["train", "coop", "--dataset", "synthetic"],
        ["reproduce", "default", "--models", "coop"],
    ):
        code, line = _cli([*command, *base])
        assert code == 2 and "image_size of model 'coop' must be a multiple of a test-tiny patch" in line
        assert not out.exists()
