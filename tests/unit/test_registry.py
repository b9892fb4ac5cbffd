import warnings

import pytest

from zsad_bench.errors import ZsadError
from zsad_bench.registry import MODELS, Entry, Registry, canonical_name


def test_builtins_come_from_entry_points_of_this_distribution():
    entry = MODELS.entry("clip-ac")
    assert entry == Entry("clip-ac", "zsad_bench.baselines.clip:CLIPAC", "zsad-bench")
    assert entry.builtin


def test_names_are_case_and_underscore_insensitive():
    assert canonical_name(" CLIP_AC ") == "clip-ac"
    assert "CLIP_AC" in MODELS


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ZsadError, match=r"did you mean 'clip-ac'"):
        MODELS.entry("clip-acc")
    known = "known: adaclip, anomalyclip, april-gan, clip, clip-ac, coop, musc, winclip"
    with pytest.raises(ZsadError, match=known):
        MODELS.entry("zzzzzz")


def test_get_imports_lazily_and_caches():
    registry = Registry("thing", "zsad_bench.no-such-group")
    registry.register("json-dumps", "json:dumps")
    assert "json" in registry.entry("json-dumps").target
    import json

    assert registry.get("json-dumps") is json.dumps
    assert registry.get("json-dumps") is registry.get("JSON_DUMPS")


def test_clash_keeps_builtin_and_warns():
    registry = Registry("model", "zsad_bench.models")
    with pytest.warns(UserWarning, match="keeping zsad-bench"):
        registry.register("clip", "somewhere:Else", source="my-plugin")
    assert registry.entry("clip").target == "zsad_bench.baselines.clip:CLIP"


def test_clash_between_plugins_keeps_the_first():
    registry = Registry("model", "zsad_bench.no-such-group")
    registry.register("x", "a:A", source="first")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.register("x", "b:B", source="second")
    assert registry.entry("x").source == "first" and caught


def test_broken_target_is_a_clear_error():
    registry = Registry("model", "zsad_bench.no-such-group")
    registry.register("broken", "no_such_module_xyz:Thing", source="bad-plugin")
    with pytest.raises(ZsadError, match=r"cannot be imported.*reinstall bad-plugin"):
        registry.get("broken")


def test_runtime_object_registration():
    registry = Registry("protocol", "zsad_bench.no-such-group")
    marker = object()
    registry.register("mine", marker)
    assert registry.get("mine") is marker
