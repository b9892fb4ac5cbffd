"""The V-V attention path against a hand-written reference on a two-layer toy ViT."""

import math

import torch
from open_clip.model import CLIP

from zsad_bench.backbones import BackboneSpec, ClipBackbone
from zsad_bench.backbones.dual_path import encode_image_dual_path

TOY = {
    "embed_dim": 8,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 16, "layers": 2, "width": 16, "head_width": 8, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}


def _toy() -> ClipBackbone:
    import open_clip

    torch.manual_seed(3)
    return ClipBackbone(CLIP(**TOY), BackboneSpec("toy", "random"), open_clip.get_tokenizer("ViT-B-32"))


def _attention(block, z, vv: bool):
    """softmax(q kᵀ / sqrt(d)) v per head (or v vᵀ for the V-V path), then out_proj, written out by hand."""
    width = z.shape[-1]
    heads = block.attn.num_heads
    d = width // heads
    qkv = z @ block.attn.in_proj_weight.T + block.attn.in_proj_bias
    q, k, v = qkv[..., :width], qkv[..., width : 2 * width], qkv[..., 2 * width :]
    outs = []
    for h in range(heads):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
        a, b = (vh, vh) if vv else (qh, kh)
        weights = torch.softmax(a @ b.transpose(-1, -2) / math.sqrt(d), dim=-1)
        outs.append(weights @ vh)
    out = torch.cat(outs, dim=-1)
    return out @ block.attn.out_proj.weight.T + block.attn.out_proj.bias


def test_v_v_path_matches_hand_written_reference():
    backbone = _toy()
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = encode_image_dual_path(backbone, images, dual_from=1, layers=[1, 2])
        x = backbone.embed(images)
        o, s = x, x
        expected = {}
        for index, block in enumerate(backbone.blocks(), start=1):
            z = block.ln_1(o)  # both paths read the original path's normalised state
            original, vv = _attention(block, z, vv=False), _attention(block, z, vv=True)
            o = o + original
            o = o + block.mlp(block.ln_2(o))
            s = s + vv  # no MLP on the V-V path
            expected[index] = s
    for layer in (1, 2):
        assert torch.allclose(got.vv_tokens[layer], expected[layer], atol=1e-5)
    assert torch.allclose(got.cls_tokens, o[:, 0], atol=1e-5)


def test_original_path_is_standard_clip_and_plain_stream_before_dual_from():
    backbone = _toy()
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = encode_image_dual_path(backbone, images, dual_from=2, layers=[1, 2])
        plain = backbone.encode_image(images, layers=[1])
    assert torch.allclose(got.vv_tokens[1], plain.layers[1], atol=1e-6)  # block 1 is plain
    assert torch.allclose(backbone.project(got.cls_tokens), plain.pooled, atol=1e-5)
    assert not torch.allclose(got.vv_tokens[2], plain.tokens, atol=1e-3)
