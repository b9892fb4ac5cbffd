"""AnomalyCLIP's losses (reference/anomalyclip.md section 4, ``loss.py``): focal and dice on probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dice_loss", "focal_loss", "glocal_loss"]

SMOOTH = 1e-5


def focal_loss(probs: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean over pixels of -(1 - p_t)^gamma log p_t, applied to probabilities (no softmax here).

    probs: ``(B, C, H, W)`` class probabilities; target: ``(B, H, W)`` class index (0/1). As the official
    ``FocalLoss``: alpha = 1 for every class, the one-hot target clamped to [1e-5, 1 - 1e-5], and
    p_t = sum_c(one_hot * p) + 1e-5.
    """
    one_hot = F.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    one_hot = one_hot.clamp(SMOOTH / (probs.shape[1] - 1), 1.0 - SMOOTH)
    pt = (one_hot * probs).sum(dim=1) + SMOOTH
    return (-((1.0 - pt) ** gamma) * pt.log()).mean()


def dice_loss(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean over images of (2 sum(p g) + 1) / (sum p + sum g + 1); probs, target: ``(B, H, W)``."""
    p, g = probs.flatten(1), target.flatten(1).to(probs.dtype)
    return 1.0 - ((2.0 * (p * g).sum(1) + 1.0) / (p.sum(1) + g.sum(1) + 1.0)).mean()


def glocal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    maps: list[torch.Tensor],
    masks: torch.Tensor,
    lam: float = 4.0,
) -> torch.Tensor:
    """CE(image logits, labels) + lam * sum over maps of [focal + dice(abnormal, gt) + dice(normal, 1 - gt)].

    logits: ``(B, 2)`` (already divided by the temperature); maps: ``(B, 2, H, W)`` probabilities each;
    masks: ``(B, H, W)`` in {0, 1}. lam = 4 reproduces the published runs (section 3.5).
    """
    local = sum(
        focal_loss(m, masks) + dice_loss(m[:, 1], masks) + dice_loss(m[:, 0], 1.0 - masks) for m in maps
    )
    return F.cross_entropy(logits, labels.long()) + lam * local
