import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from zsad_bench.ops.maps import gaussian_blur, gaussian_kernel1d, patch_probabilities, upsample


@pytest.mark.parametrize("shape", [(2, 37, 37), (1, 64, 64), (3, 8, 12), (1, 5, 40), (1, 1, 3)])
@pytest.mark.parametrize("sigma", [1.0, 4.0])
def test_gaussian_blur_equals_scipy_reflect_truncate4(shape, sigma):
    # Shapes smaller than the kernel radius (16 px at sigma 4) exercise scipy's periodic reflection.
    maps = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    reference = np.stack(
        [gaussian_filter(m, sigma=sigma, mode="reflect", truncate=4.0) for m in maps.numpy()]
    )
    out = gaussian_blur(maps, sigma)
    assert out.dtype == torch.float32 and out.shape == maps.shape
    np.testing.assert_allclose(out.numpy(), reference, atol=1e-6)


def test_gaussian_blur_outlier_at_border_matches_scipy():
    maps = torch.zeros(1, 40, 40)
    maps[0, 0, 0] = 50.0
    reference = gaussian_filter(maps[0].numpy(), sigma=4)
    np.testing.assert_allclose(gaussian_blur(maps, 4)[0].numpy(), reference, atol=1e-5)


def test_kernel_radius_and_sum():
    kernel = gaussian_kernel1d(4.0)
    assert kernel.numel() == 33  # radius int(4 * 4 + 0.5) = 16
    assert torch.isclose(kernel.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_sigma_zero_is_identity():
    maps = torch.rand(2, 9, 9)
    assert gaussian_blur(maps, 0) is maps


def test_upsample_bilinear_half_pixel_centres():
    maps = torch.tensor([[[0.0, 1.0]]]).expand(1, 2, 2).contiguous()
    out = upsample(maps, 4)
    assert out.shape == (1, 4, 4)
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_patch_probabilities_softmax_of_cosine_over_temperature():
    g = torch.Generator().manual_seed(1)
    patches, text = torch.randn(2, 9, 5, generator=g), torch.randn(2, 2, 5, generator=g)
    probs = patch_probabilities(patches, text, temperature=0.07)
    assert probs.shape == (2, 2, 3, 3)
    b, n = 1, 7  # patch 7 of image 1 sits at row 2, column 1
    cos = torch.nn.functional.cosine_similarity(patches[b, n][None], text[b], dim=-1)
    expected = (cos / 0.07).softmax(-1)
    assert torch.allclose(probs[b, :, 2, 1], expected, atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(2, 3, 3))
