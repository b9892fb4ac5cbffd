"""RsCIN: MuSc's re-scoring with constrained image-level neighbourhoods (Li et al., ICLR 2024, section 3.4).

Official ``models/modules/_RsCIN.py`` (``RsCIN`` and ``MMO``; reference/musc.md "RsCIN"), run once over a
whole class (all subsets):

1. min-max normalise the image scores over the class (float64, then float32);
2. ``W = cls @ cls.T`` of the L2-normalised projected CLS tokens (float32);
3. for each ``k`` of ``k_list``: keep the ``k`` largest entries of each row of ``W`` (the image itself
   included), zero the rest, divide each row by its sum (``P``), ``S_k = P @ s``;
4. the refined score is the mean of the ``S_k`` (float32).

``k_list`` containing 0 switches the refinement off (the official code then returns the raw scores).

Departures (guards, where the official code fails): ``k`` larger than the class is cut to the class
size (the official ``topk(W, n - k)`` raises for ``k > n``); a class whose scores are all equal has
nothing to normalise and gets normalised scores 0 (the official division gives NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["normalise_min_max", "rscin"]


def normalise_min_max(scores: torch.Tensor) -> torch.Tensor:
    """``(s - min) / (max - min)`` in float64; all zeros when the scores are all equal."""
    scores = scores.double()
    low, span = scores.min(), scores.max() - scores.min()
    if span == 0:
        return torch.zeros_like(scores)
    return (scores - low) / span


def rscin(scores: torch.Tensor, cls_tokens: torch.Tensor, k_list: Sequence[int]) -> torch.Tensor:
    """Refined image scores ``(n,)`` float32 from scores ``(n,)`` and unit CLS embeddings ``(n, D)``."""
    if 0 in k_list:
        return scores.float()
    n = scores.shape[0]
    s = normalise_min_max(scores).float()
    with torch.autocast(device_type=cls_tokens.device.type, enabled=False):
        cls = cls_tokens.float()
        w = cls @ cls.T  # (n, n)
        refined = []
        for k in k_list:
            keep = w.topk(min(k, n), dim=1).indices
            mask = torch.zeros_like(w).scatter_(1, keep, 1.0)
            kept = w * mask
            # official: D = diag(1 / row sums), P = D @ W_k (a reciprocal, then a product)
            p = kept * (1.0 / kept.sum(dim=1, keepdim=True))
            refined.append(p @ s.to(p.device).unsqueeze(-1))
        return torch.cat(refined, dim=-1).mean(dim=-1)
