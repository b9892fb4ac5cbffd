"""AdaCLIP's hybrid semantic fusion (HSF, ``adaclip.py`` L242-286): an image feature from its most anomalous
patches.

Per image: a = softmax(mean over layers of the patch logits)[abnormal]; the ``5 k`` patches of highest ``a``
(``torch.topk`` order, descending); their projected tokens of every layer concatenated, ``(5k, layers*D)``,
clustered by k-means into ``k`` groups; each group's centre is the mean of its members' tokens over all
layers; the fused feature is the L2-normalised mean of the ``k`` centres.

K-means seeding (the one trap that makes the official score depend on the dataset order): the official
``KMeans(n_clusters=k, n_init="auto")`` takes no seed, so it draws from NumPy's global state, seeded once by
``setup_seed(111)`` and advanced image by image in evaluation order; a different seed moves a score by up to
~4e-3. ``ClusterLabels`` offers two rules:

- ``per-image`` (default): every image is clustered with a fresh ``RandomState(seed)``; a score depends only
  on its image, whatever the order, batch size or classes around it.
- ``official``: one ``RandomState(seed)`` advanced image by image in the order images are scored (a batch
  in row order), which is the official global state when images come in the official order from a fresh
  model (``reset`` starts the sequence again; the official restarted it with every test process).

``n_init=1`` is what scikit-learn resolves the official ``n_init="auto"`` to with the default k-means++
initialisation (scikit-learn >= 1.2), written out so that it cannot change with the version.

Departure: a cluster left empty (only possible when fewer distinct tokens than clusters are selected) is
skipped in the mean of the centres; the official mean of an empty selection would make the score NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ClusterLabels", "cluster_centre_feature", "hybrid_semantic_fusion", "top_patch_tokens"]

PATCHES_PER_CLUSTER = 5  # official n_aggregate_patch_tokens = k_clusters * 5


class ClusterLabels:
    """k-means cluster labels of one image's selected tokens, seeded by the rule ``order`` (module doc)."""

    def __init__(self, k_clusters: int, seed: int, order: str = "per-image") -> None:
        if order not in ("per-image", "official"):
            raise ValueError(f"unknown k-means order '{order}' (per-image, official)")
        self.k_clusters, self.seed, self.order = k_clusters, seed, order
        self.reset()

    def reset(self) -> None:
        """Start the official-order sequence again, as a new official test process does."""
        self.state = np.random.RandomState(self.seed)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """``(K,)`` labels in ``[0, k_clusters)`` of the ``(K, F)`` float32 rows ``data``."""
        from sklearn.cluster import KMeans

        state = np.random.RandomState(self.seed) if self.order == "per-image" else self.state
        return KMeans(n_clusters=self.k_clusters, n_init=1, random_state=state).fit_predict(data)


def top_patch_tokens(
    patch_features: Sequence[torch.Tensor], logits: Sequence[torch.Tensor], k_clusters: int
) -> torch.Tensor:
    """``(layers, B, K, D)``: each layer's tokens of the ``K = min(N, 5 k)`` most anomalous patches.

    patch_features: per layer ``(B, N, D)`` (projected, normalised); logits: per layer ``(B, N, 2)``.
    """
    probability = torch.stack(list(logits), dim=1).mean(dim=1).softmax(dim=2)[:, :, 1]  # (B, N)
    k = min(probability.shape[1], k_clusters * PATCHES_PER_CLUSTER)
    order = torch.topk(probability, k=k, dim=1).indices  # descending, as the official gather
    return torch.stack(
        [torch.gather(p, 1, order.unsqueeze(-1).expand(-1, -1, p.shape[-1])) for p in patch_features]
    )


def cluster_centre_feature(selected: torch.Tensor, labels: torch.Tensor, k_clusters: int) -> torch.Tensor:
    """``(D,)`` mean of the cluster centres; centre c = mean of cluster c's tokens over every layer.

    selected: ``(layers, K, D)`` of one image; labels: ``(K,)`` cluster of each selected patch. The mean over
    (members x layers) equals the mean over members of the layer-mean token, one matrix product.
    """
    one_hot = F.one_hot(labels.long(), k_clusters).T.to(selected.dtype)  # (k, K)
    counts = one_hot.sum(dim=1)
    filled = counts > 0
    centres = (one_hot[filled] @ selected.mean(dim=0)) / counts[filled].unsqueeze(1)
    return centres.mean(dim=0)


def hybrid_semantic_fusion(
    patch_features: Sequence[torch.Tensor],
    logits: Sequence[torch.Tensor],
    k_clusters: int,
    cluster: Callable[[np.ndarray], np.ndarray],
) -> torch.Tensor:
    """``(B, D)`` L2-normalised fused features; ``cluster`` gives one image's labels (``ClusterLabels``).

    Differentiable in the patch features (the labels are not): training backpropagates through the
    centres, as the official does.
    """
    selected = top_patch_tokens(patch_features, logits, k_clusters)  # (L, B, K, D)
    fused = []
    for b in range(selected.shape[1]):
        tokens = selected[:, b]
        stacked = torch.cat(list(tokens), dim=1)  # (K, L*D), the official clustering input
        labels = cluster(stacked.detach().float().cpu().numpy())
        fused.append(
            cluster_centre_feature(tokens, torch.as_tensor(labels, device=tokens.device), k_clusters)
        )
    return F.normalize(torch.stack(fused), dim=1)
