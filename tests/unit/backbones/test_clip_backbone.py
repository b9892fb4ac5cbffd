import torch
import torch.nn.functional as F

from zsad_bench.backbones import load_backbone


def test_pooled_equals_open_clip_encode_image(tiny_backbone):
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        features = tiny_backbone.encode_image(images, layers=[6, 12, 24])
        reference = tiny_backbone.model.encode_image(images)
    assert torch.allclose(features.pooled, reference, atol=1e-6)
    assert features.tokens.shape == (3, 1 + 8 * 8, 32)
    assert sorted(features.layers) == [6, 12, 24]
    assert torch.equal(features.layers[24], features.tokens)


def test_intermediate_layers_match_open_clip_forward_intermediates(tiny_backbone):
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = tiny_backbone.encode_image(images, layers=[6, 18])
        ref = tiny_backbone.visual.forward_intermediates(images, indices=[5, 17], output_fmt="NLC")
    for mine, theirs in zip([ours.layers[6], ours.layers[18]], ref["image_intermediates"], strict=True):
        assert torch.allclose(mine[:, 1:], theirs, atol=1e-6)


def test_project_is_ln_post_then_proj(tiny_backbone):
    tokens = torch.randn(2, 5, 32)
    expected = F.layer_norm(
        tokens, (32,), tiny_backbone.visual.ln_post.weight, tiny_backbone.visual.ln_post.bias
    )
    assert torch.allclose(tiny_backbone.project(tokens), expected @ tiny_backbone.visual.proj, atol=1e-6)


def test_set_image_size_changes_token_count_and_restarts_from_native():
    backbone = load_backbone("test-tiny")
    native = backbone.visual.positional_embedding.detach().clone()
    backbone.set_image_size(128)
    with torch.no_grad():
        assert backbone.encode_image(torch.randn(1, 3, 128, 128)).tokens.shape[1] == 1 + 16 * 16
    backbone.set_image_size(64)
    assert torch.equal(backbone.visual.positional_embedding, native)


def test_tiny_weights_are_reproducible_and_frozen():
    a, b = load_backbone("test-tiny"), load_backbone("test-tiny")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not any(p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training


def test_encode_text_shape(tiny_backbone):
    assert tiny_backbone.encode_text(["a photo of a normal bottle.", "x"]).shape == (2, 32)
