"""Learned prompt context on the tiny backbone: the block-by-block text tower equals open_clip's
``encode_text`` when the context holds the placeholders' own embeddings."""

from __future__ import annotations

import torch

from zsad_bench.ops.learned_prompts import context_prompts, encode_embedded_prompts, frozen_parts


def test_context_prompts_put_n_placeholders_before_the_words():
    assert context_prompts(3, ["normal bottle.", "damaged object."]) == [
        "X X X normal bottle.",
        "X X X damaged object.",
    ]


def test_frozen_parts_split_around_the_context(tiny_backbone):
    prompts = context_prompts(4, ["object.", "damaged object."])
    token_ids, prefix, suffix = frozen_parts(tiny_backbone, prompts, 4)
    embedded = tiny_backbone.token_embedding(tiny_backbone.tokenize(prompts)).float()
    assert torch.equal(token_ids, tiny_backbone.tokenize(prompts))
    assert torch.equal(prefix, embedded[:, :1]) and torch.equal(suffix, embedded[:, 5:])
    assert not prefix.requires_grad and prefix.dtype == torch.float32


def test_placeholder_context_reproduces_open_clip_encode_text(tiny_backbone):
    prompts = context_prompts(5, ["normal bottle.", "anomalous bottle."])
    token_ids, prefix, suffix = frozen_parts(tiny_backbone, prompts, 5)
    placeholders = tiny_backbone.token_embedding(token_ids[:, 1:6]).float()
    with torch.no_grad():
        got = encode_embedded_prompts(tiny_backbone, torch.cat([prefix, placeholders, suffix], 1), token_ids)
        expected = tiny_backbone.model.encode_text(token_ids)
    assert torch.allclose(got, expected, atol=1e-5)


def test_before_block_sees_every_layer_and_can_rewrite_the_stream(tiny_backbone):
    prompts = context_prompts(2, ["object."])
    token_ids, prefix, suffix = frozen_parts(tiny_backbone, prompts, 2)
    embeddings = torch.cat([prefix, torch.zeros(1, 2, prefix.shape[-1]), suffix], 1)
    layers = []

    def record(layer: int, x: torch.Tensor) -> torch.Tensor:
        layers.append(layer)
        return x

    with torch.no_grad():
        plain = encode_embedded_prompts(tiny_backbone, embeddings, token_ids)
        recorded = encode_embedded_prompts(tiny_backbone, embeddings, token_ids, record)
        zeroed = encode_embedded_prompts(tiny_backbone, embeddings, token_ids, lambda _, x: x * 0)
    assert layers == list(range(1, tiny_backbone.num_text_layers + 1))
    assert torch.equal(plain, recorded) and not torch.allclose(plain, zeroed)
