"""Prompt ensembles on open_clip's zero-shot classifier builder: hand-worked vectors, the tiny backbone's
own text tower, the per-class cache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zsad_bench.ops.prompts import PrototypeCache, ensemble_prototypes, fill_prompts, per_image


def _fake_tower(monkeypatch, backbone, rows: torch.Tensor) -> list[int]:
    """Replace open_clip's text tower by one that returns the next rows of ``rows``; returns batch sizes."""
    sizes: list[int] = []

    def encode_text(token_ids: torch.Tensor) -> torch.Tensor:
        start = sum(sizes)
        sizes.append(len(token_ids))
        return rows[start : start + len(token_ids)]

    monkeypatch.setattr(backbone.model, "encode_text", encode_text)
    return sizes


def test_prototype_by_hand(monkeypatch, tiny_backbone):
    # group 0: (3, 4) and (1, 0) -> unit (0.6, 0.8) and (1, 0) -> mean (0.8, 0.4) -> (2, 1) / sqrt 5;
    # group 1: (0, 2) alone -> (0, 1)
    sizes = _fake_tower(monkeypatch, tiny_backbone, torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]))
    got = ensemble_prototypes(tiny_backbone, [["a", "b"], ["c"]])
    expected = torch.tensor([[2 / math.sqrt(5), 1 / math.sqrt(5)], [0.0, 1.0]])
    assert torch.allclose(got, expected, atol=1e-7) and got.dtype == torch.float32
    assert sizes == [2, 1]  # one forward per group length


def test_raw_average_skips_the_per_prompt_normalisation(monkeypatch, tiny_backbone):
    # the mean of (3, 4) and (1, 0) is (2, 2) -> (1, 1) / sqrt 2 (WinCLIP's anomalib convention)
    _fake_tower(monkeypatch, tiny_backbone, torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
    got = ensemble_prototypes(tiny_backbone, [["a", "b"]], normalize_prompts=False)
    assert torch.allclose(got, torch.full((1, 2), 2**-0.5), atol=1e-7)


def test_groups_of_one_length_share_one_forward_in_the_given_order(monkeypatch, tiny_backbone):
    rows = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    sizes = _fake_tower(monkeypatch, tiny_backbone, rows)
    got = ensemble_prototypes(tiny_backbone, [["a", "b"], ["c", "d", "e"], ["f", "g"]])
    assert sizes == [4, 3]  # groups 0 and 2 (2 prompts each) together, then group 1
    unit = F.normalize(rows, dim=-1)
    expected = [unit[0:2], unit[4:7], unit[2:4]]  # rows 0-3 were groups 0 and 2, rows 4-6 group 1
    assert torch.allclose(got, torch.stack([F.normalize(e.mean(0), dim=-1) for e in expected]), atol=1e-6)


def test_matches_open_clip_text_tower_of_the_tiny_backbone(tiny_backbone):
    oc, tokenizer = tiny_backbone.model, tiny_backbone.tokenizer
    groups = [["a photo of a bottle.", "a bottle.", "a bad photo of a bottle."], ["a broken bottle."]]
    with torch.no_grad():
        expected = torch.stack(
            [F.normalize(F.normalize(oc.encode_text(tokenizer(g)), dim=-1).mean(0), dim=-1) for g in groups]
        )
    got = ensemble_prototypes(tiny_backbone, groups)
    assert got.shape == (2, 32)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.norm(dim=-1), torch.ones(2), atol=1e-6)


def test_float32_under_autocast(tiny_backbone):
    groups = [["a photo of a bottle."], ["a photo of a broken bottle."]]
    plain = ensemble_prototypes(tiny_backbone, groups)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under = ensemble_prototypes(tiny_backbone, groups)
    assert under.dtype == torch.float32 and torch.equal(under, plain)


def test_an_empty_group_is_an_error(tiny_backbone):
    with pytest.raises(ValueError, match="at least one prompt"):
        ensemble_prototypes(tiny_backbone, [["a"], []])


def test_fill_prompts_is_state_major_with_string_and_callable_templates():
    states = ("{}", "damaged {}")
    templates = ("a photo of a {}.", lambda s: f"this is the {s}.")
    assert fill_prompts(states, templates, "metal nut") == [
        "a photo of a metal nut.",
        "this is the metal nut.",
        "a photo of a damaged metal nut.",
        "this is the damaged metal nut.",
    ]


def test_per_image_computes_each_name_once_and_keeps_the_image_order():
    seen = []

    def prototypes(names: list[str]) -> torch.Tensor:
        seen.append(names)
        return torch.tensor([[float(len(n))] for n in names])

    got = per_image(["bb", "a", "bb", "ccc"], prototypes)
    assert seen == [["bb", "a", "ccc"]]
    assert got.tolist() == [[2.0], [1.0], [2.0], [3.0]]


def test_prototype_cache_builds_once_per_class_name_and_keeps_cpu_copies():
    built = []

    def build(name: str) -> torch.Tensor:
        built.append(name)
        return torch.full((2, 3), float(len(name)))

    cache = PrototypeCache()
    first = cache.lookup(["ab", "c", "ab"], build, torch.device("cpu"))
    assert first.shape == (3, 2, 3) and first[:, 0, 0].tolist() == [2.0, 1.0, 2.0]
    kept = cache["ab"]
    second = cache.lookup(["c", "ab", "def"], build, torch.device("cpu"))
    assert built == ["ab", "c", "def"] and cache["ab"] is kept and len(cache) == 3
    assert second[:, 0, 0].tolist() == [1.0, 2.0, 3.0] and kept.device.type == "cpu"
    cache.clear()
    assert "ab" not in cache and len(cache) == 0
