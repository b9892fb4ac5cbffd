"""Detector options as data: conversion of Python values and ``-o`` text, ranges, choices, descriptions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from zsad_bench.errors import ZsadError
from zsad_bench.options import DetectorOptions, OptionInfo, option, settable_by_user


@dataclass(frozen=True)
class Opts(DetectorOptions):
    backbone: str = option("tiny", "backbone")
    size: int = option(64, "input side", min=1)
    sigma: float = option(4.0, "smoothing", min=0)
    temperature: float = option(0.07, "softmax temperature", above=0)
    prob: float = option(0.2, "probability", min=0, max=1)
    layers: tuple[int, ...] = option((6, 12), "layers", min=1)
    mode: str = option("bilinear", "resize mode", choices=("bilinear", "bicubic"))
    flag: bool = option(False, "a switch")
    trained_on: str | None = option(None, "auxiliary dataset")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, Opts()),
        ({"size": "518", "sigma": "0", "temperature": "1e-2"}, Opts(size=518, sigma=0.0, temperature=0.01)),
        ({"size": 96, "sigma": 2, "prob": 1}, Opts(size=96, sigma=2.0, prob=1.0)),  # ints are numbers
        ({"layers": "6,12,18,24"}, Opts(layers=(6, 12, 18, 24))),
        ({"layers": "[24]"}, Opts(layers=(24,))),
        ({"layers": " (3, 4) "}, Opts(layers=(3, 4))),
        ({"layers": 24}, Opts(layers=(24,))),  # a scalar is a list of one
        ({"layers": [1, "2"]}, Opts(layers=(1, 2))),  # a JSON list from a checkpoint's config
        ({"flag": "true"}, Opts(flag=True)),
        ({"flag": "No"}, Opts(flag=False)),
        ({"flag": True}, Opts(flag=True)),
        ({"trained_on": "visa"}, Opts(trained_on="visa")),
        ({"trained_on": "none"}, Opts(trained_on=None)),
        ({"trained_on": None}, Opts()),
        ({"mode": "bicubic"}, Opts(mode="bicubic")),
    ],
)
def test_values_and_text_are_converted(values, expected):
    built = Opts.build(values)
    assert built == expected
    assert all(
        type(getattr(built, f.name)) is type(getattr(expected, f.name)) for f in dataclasses.fields(Opts)
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"size": "abc"}, "option size of model 'x' must be an integer (>= 1), got 'abc'"),
        ({"size": "1.5"}, "option size of model 'x' must be an integer (>= 1), got '1.5'"),
        ({"size": 2.0}, "option size of model 'x' must be an integer (>= 1), got 2.0"),
        ({"size": True}, "option size of model 'x' must be an integer (>= 1), got True"),
        ({"size": "-64"}, "option size of model 'x' must be an integer (>= 1), got '-64'"),
        ({"sigma": "-1"}, "option sigma of model 'x' must be a number (>= 0), got '-1'"),
        ({"sigma": "inf"}, "option sigma of model 'x' must be a number (>= 0), got 'inf'"),
        ({"temperature": "0"}, "option temperature of model 'x' must be a number (> 0), got '0'"),
        ({"prob": 1.5}, "option prob of model 'x' must be a number (>= 0, <= 1), got 1.5"),
        (
            {"layers": "6,0"},
            "option layers of model 'x' must be a comma-separated list of integers (each >= 1)",
        ),
        ({"layers": ""}, "option layers of model 'x' must be a comma-separated list of integers"),
        ({"mode": "foo"}, "option mode of model 'x' must be one of bilinear, bicubic, got 'foo'"),
        ({"flag": "maybe"}, "option flag of model 'x' must be true or false, got 'maybe'"),
        ({"backbone": 3}, "option backbone of model 'x' must be a string, got 3"),
        ({"trained_on": 3}, "option trained_on of model 'x' must be a string or none, got 3"),
        ({"sizes": "1", "zz": "2"}, "model 'x' has no option 'sizes', 'zz'; options: backbone, size, sigma,"),
    ],
)
def test_bad_values_are_one_line_naming_the_option_and_what_is_allowed(values, message):
    with pytest.raises(ZsadError) as caught:
        Opts.build(values, owner="model 'x'")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_build_on_a_base_keeps_its_values_and_options_are_frozen():
    base = Opts.build({"size": 32})
    assert Opts.build({"sigma": "1"}, base=base) == Opts(size=32, sigma=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.size = 3  # type: ignore[misc]


def test_config_is_json_ready_in_declaration_order():
    config = Opts.build({"layers": "1,2"}).to_config()
    assert list(config) == [f.name for f in dataclasses.fields(Opts)]
    assert config["layers"] == [1, 2] and config["trained_on"] is None


def test_describe_gives_the_options_table():
    rows = {row.name: row for row in Opts.describe()}
    assert list(rows) == [f.name for f in dataclasses.fields(Opts)]
    assert rows["size"] == OptionInfo("size", "int", "64", ">= 1", "input side")
    assert rows["temperature"].allowed == "> 0" and rows["prob"].allowed == ">= 0, <= 1"
    assert rows["layers"].type == "int list" and rows["layers"].default == "6,12"
    assert rows["mode"].allowed == "one of bilinear, bicubic"
    assert rows["flag"] == OptionInfo("flag", "bool", "false", "", "a switch")
    assert rows["trained_on"].type == "str | None" and rows["trained_on"].default == "none"
    assert rows["trained_on"].allowed == "set by training" and rows["backbone"].allowed == "set by --backbone"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("backbone", "option 'backbone' cannot be set with -o; use --backbone"),
        ("device", "option 'device' cannot be set with -o; use --device"),
        ("trained_on", "option 'trained_on' cannot be set with -o; training records it"),
    ],
)
def test_reserved_options_are_refused_for_the_command_line(key, message):
    with pytest.raises(ZsadError, match=message):
        settable_by_user(key)
    settable_by_user("image_size")


def test_a_list_default_is_refused():
    with pytest.raises(TypeError, match="tuple default"):
        option([1, 2], "layers")
