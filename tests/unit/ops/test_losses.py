"""The focal, dice and glocal losses (AnomalyCLIP, APRIL-GAN, CoOp) against hand-worked tiny cases."""

import math

import pytest
import torch

from zsad_bench.ops.losses import dice_loss, focal_loss, glocal_loss


def test_focal_loss_hand_computed():
    # two pixels: p(abnormal) = 0.8 on an anomalous pixel, 0.3 on a normal one
    probs = torch.tensor([[[[0.2, 0.7]], [[0.8, 0.3]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    lo, hi = 1e-5, 1 - 1e-5  # clamped one-hot
    pt1 = lo * 0.2 + hi * 0.8 + 1e-5
    pt2 = hi * 0.7 + lo * 0.3 + 1e-5
    expected = (-((1 - pt1) ** 2) * math.log(pt1) - ((1 - pt2) ** 2) * math.log(pt2)) / 2
    assert focal_loss(probs, target).item() == pytest.approx(expected, rel=1e-6)


def test_dice_loss_hand_computed():
    p = torch.tensor([[[0.5, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    g = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    first = (2 * 1.5 + 1) / (1.5 + 2 + 1)  # 4 / 4.5
    second = (0 + 1) / (0 + 0 + 1)  # empty prediction of an empty mask: 1
    assert dice_loss(p, g).item() == pytest.approx(1 - (first + second) / 2)


def test_glocal_loss_is_ce_plus_lambda_times_local():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, generator=g)
    labels = torch.tensor([0, 1, 1])
    maps = [torch.rand(3, 2, 4, 4, generator=g).softmax(1) for _ in range(2)]
    masks = (torch.rand(3, 4, 4, generator=g) > 0.7).float()
    local = sum(
        focal_loss(m, masks) + dice_loss(m[:, 1], masks) + dice_loss(m[:, 0], 1 - masks) for m in maps
    )
    expected = torch.nn.functional.cross_entropy(logits, labels) + 4 * local
    assert glocal_loss(logits, labels, maps, masks, lam=4.0).item() == pytest.approx(
        expected.item(), rel=1e-6
    )


def test_focal_loss_without_focusing_is_the_smoothed_cross_entropy():
    probs = torch.tensor([[[[0.9]], [[0.1]]], [[[0.4]], [[0.6]]]])  # (2, 2, 1, 1)
    target = torch.tensor([[[0]], [[1]]])
    lo, hi = 1e-5, 1 - 1e-5
    pts = [hi * 0.9 + lo * 0.1 + 1e-5, lo * 0.4 + hi * 0.6 + 1e-5]
    expected = -(math.log(pts[0]) + math.log(pts[1])) / 2
    assert focal_loss(probs, target, gamma=0.0).item() == pytest.approx(expected, rel=1e-6)


def test_glocal_loss_on_one_image_of_one_pixel_by_hand():
    logits = torch.tensor([[0.0, 0.0]])  # CE = log 2 whatever the label
    labels = torch.tensor([1])
    probs = torch.tensor([[[[0.25]], [[0.75]]]])  # (1, 2, 1, 1): p(normal) 0.25, p(anomalous) 0.75
    masks = torch.tensor([[[1.0]]])
    pt = 1e-5 * 0.25 + (1 - 1e-5) * 0.75 + 1e-5
    focal = -((1 - pt) ** 2) * math.log(pt)
    dice_anomalous = 1 - (2 * 0.75 + 1) / (0.75 + 1 + 1)
    dice_normal = 1 - (0 + 1) / (0.25 + 0 + 1)
    expected = math.log(2) + 4 * (focal + dice_anomalous + dice_normal)
    assert glocal_loss(logits, labels, [probs], masks).item() == pytest.approx(expected, rel=1e-6)
