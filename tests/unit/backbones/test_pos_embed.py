import torch
import torch.nn.functional as F

from zsad_bench.backbones import resize_pos_embed


def test_class_row_kept_and_grid_interpolated_bilinear():
    pos = torch.randn(1 + 4 * 4, 6)
    out = resize_pos_embed(pos, 6, mode="bilinear")
    assert out.shape == (1 + 36, 6)
    assert torch.equal(out[0], pos[0])
    grid = pos[1:].reshape(1, 4, 4, 6).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(6, 6), mode="bilinear", align_corners=False)
    assert torch.allclose(out[1:], ref.permute(0, 2, 3, 1).reshape(36, 6))


def test_modes_differ_and_antialias_is_honoured():
    pos = torch.randn(1 + 24 * 24, 8)
    bilinear = resize_pos_embed(pos, 37, mode="bilinear")
    bicubic = resize_pos_embed(pos, 37, mode="bicubic", antialias=True)
    assert not torch.allclose(bilinear, bicubic)
    assert torch.equal(resize_pos_embed(pos, 24), pos)


def test_flattening_is_row_major():
    # Patch (row r, col c) of the grid sits at row 1 + r * g + c, as in the ViT's conv1 flattening.
    g = 3
    pos = torch.zeros(1 + g * g, 1)
    pos[1:, 0] = torch.arange(g * g, dtype=torch.float32)
    out = resize_pos_embed(pos, 6, mode="nearest")
    assert out[1 + 0 * 6 + 5, 0] == 2  # top-right stays top-right
    assert out[1 + 5 * 6 + 0, 0] == 6  # bottom-left stays bottom-left
