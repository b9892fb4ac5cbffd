"""Both attention paths of the image tower run through fused SDPA and equal open_clip's own blocks."""

from collections import Counter

import pytest
import torch
from open_clip.transformer import ResidualAttentionBlock
from torch.profiler import ProfilerActivity, profile

from zsad_bench.backbones.attention import plain_block, run_plain_block, self_attention
from zsad_bench.backbones.dual_path import encode_image_dual_path


def _ops(fn) -> Counter:
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return Counter(event.name for event in prof.events())


@pytest.mark.parametrize("ls_init_value", [None, 0.3])
@pytest.mark.parametrize("grad", [False, True])
def test_run_plain_block_equals_the_block(ls_init_value, grad):
    torch.manual_seed(0)
    block = ResidualAttentionBlock(48, 6, ls_init_value=ls_init_value, batch_first=True).eval()
    x = torch.randn(3, 17, 48)
    with torch.set_grad_enabled(grad):
        assert plain_block(block)
        torch.testing.assert_close(run_plain_block(block, x), block(x), rtol=1e-5, atol=1e-5)
        reference = block.attn(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(self_attention(block.attn, x), reference, rtol=1e-5, atol=1e-5)


def test_blocks_it_does_not_know_run_their_own_forward(tiny_backbone):
    class Unusual(torch.nn.Module):
        def __init__(self, block):
            super().__init__()
            self.ln_1, self.ln_2, self.mlp, self.attn = block.ln_1, block.ln_2, block.mlp, block.attn
            self.ls_1, self.ls_2, self.ln_attn = block.ls_1, block.ls_2, torch.nn.Identity()

    assert not plain_block(Unusual(tiny_backbone.blocks()[0]))
    assert not plain_block(torch.nn.Linear(2, 2))


def test_the_image_tower_uses_fused_attention_and_no_score_matrices(tiny_backbone):
    images = torch.rand(2, 3, 64, 64)
    n = tiny_backbone.num_layers
    plain = _ops(lambda: tiny_backbone.encode_image(images))
    assert plain["aten::scaled_dot_product_attention"] == n
    assert plain["aten::_native_multi_head_attention"] == 0 and plain["aten::bmm"] == 0
    dual = _ops(lambda: encode_image_dual_path(tiny_backbone, images, n - 3, (n,)))
    assert dual["aten::scaled_dot_product_attention"] == n + 4  # V-V attention in the last 4 blocks
    assert dual["aten::_native_multi_head_attention"] == 0 and dual["aten::bmm"] == 0


def test_text_blocks_with_the_causal_mask_equal_open_clip(tiny_backbone):
    torch.manual_seed(0)
    mask = tiny_backbone.model.attn_mask
    x = torch.randn(2, mask.shape[0], tiny_backbone.model.token_embedding.embedding_dim)
    for index, block in enumerate(tiny_backbone.model.transformer.resblocks, start=1):
        expected = block(x, attn_mask=mask)
        torch.testing.assert_close(tiny_backbone.run_text_block(index, x), expected, rtol=1e-5, atol=1e-5)
    ops = _ops(lambda: tiny_backbone.run_text_block(1, x))
    assert ops["aten::scaled_dot_product_attention"] == 1 and ops["aten::_native_multi_head_attention"] == 0
