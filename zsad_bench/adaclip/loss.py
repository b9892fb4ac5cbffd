"""AdaCLIP's training loss (``trainer.py`` ``train_one_batch`` L105-141, ``loss.py``).

loss = focal(image probabilities, label) + sum over layers of [focal(p_l, gt) + dice(p_l[abnormal], gt)
+ dice(p_l[normal], 1 - gt)], every term weight 1. ``p_l`` is layer l's softmax of its logits upsampled
(bilinear, align_corners=True) to the input size; the image probabilities are softmax(100 f . T).

Official quirk kept (``dice_rows``): the trainer squeezes the ``(B, 1, H, W)`` masks, so with its batch of one
image (the only one it accepts) the masks are ``(H, W)`` and ``BinaryDiceLoss`` takes their H rows as its
samples: the dice is the mean over rows of the per-row dice. For larger batches it is per image, there as
here. ``dice_rows=False`` uses the per-image dice for every batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zsad_bench.ops.losses import dice_loss, focal_loss

__all__ = ["adaclip_loss", "official_dice"]


def official_dice(probs: torch.Tensor, target: torch.Tensor, rows: bool = True) -> torch.Tensor:
    """``BinaryDiceLoss`` as the official trainer feeds it: ``(B, H, W)`` probabilities and targets, per row
    when ``rows`` and B == 1, else per image."""
    if rows and probs.shape[0] == 1:
        return dice_loss(probs[0], target[0])
    return dice_loss(probs, target)


def adaclip_loss(
    image_probs: torch.Tensor,
    labels: torch.Tensor,
    layer_probs: Sequence[torch.Tensor],
    masks: torch.Tensor,
    dice_rows: bool = True,
) -> torch.Tensor:
    """Scalar loss: image_probs ``(B, 2)``, labels ``(B,)``, layer_probs per layer ``(B, 2, H, W)``, masks
    ``(B, H, W)`` in {0, 1}."""
    b = image_probs.shape[0]
    loss = focal_loss(image_probs.reshape(b, 2, 1, 1), labels.reshape(b, 1, 1))
    for p in layer_probs:
        loss = loss + focal_loss(p, masks)
        loss = (
            loss + official_dice(p[:, 1], masks, dice_rows) + official_dice(p[:, 0], 1.0 - masks, dice_rows)
        )
    return loss
