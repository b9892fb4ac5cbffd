"""AdaCLIP against an independent, slow re-computation of the official forward (reference/adaclip.md).

The reference below is written the official way, one image at a time: open_clip's own block ``forward``
(not the harness's SDPA path), prompts inserted with 0-based block indices as ``PromptLayer``, text
sentences encoded per state group, HSF with the official per-cluster loop (members of every layer
concatenated, then averaged), the map through ``F.interpolate`` and scipy's ``gaussian_filter``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from sklearn.cluster import KMeans

from zsad_bench.adaclip import AdaCLIP
from zsad_bench.adaclip.fusion import cluster_centre_feature, hybrid_semantic_fusion
from zsad_bench.adaclip.loss import adaclip_loss

NORMAL = ["{}", "flawless {}", "perfect {}", "unblemished {}", "{} without flaw", "{} without defect",
          "{} without damage"]  # fmt: skip
ABNORMAL = ["damaged {}", "broken {}", "{} with flaw", "{} with defect", "{} with damage"]
TEMPLATES = ["a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.",
             "a cropped photo of the {}."]  # fmt: skip


@pytest.fixture(scope="module")
def model() -> AdaCLIP:
    torch.manual_seed(3)
    model = AdaCLIP(backbone="test-tiny", image_size=64).eval()
    with torch.no_grad():  # learned tensors of a realistic size, so every prompt visibly matters
        for name, p in model.named_parameters():
            if not name.startswith("backbone.") and "static_prompts" in name:
                p.normal_(std=0.5)
    return model


def _block(transformer, block, x, mask=None):
    if transformer.batch_first:
        return block(x, attn_mask=mask)
    return block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)


def _reference(model: AdaCLIP, image: torch.Tensor, word: str, seed: int = 111):
    """(score, map) of one ``(1, 3, S, S)`` image as the official code computes them."""
    o, oc = model.options, model.backbone.model
    visual, L, depth = oc.visual, o.prompt_length, o.prompt_depth
    x = visual.conv1(image).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.view(1, 1, -1), x], dim=1) + visual.positional_embedding
    embedded = visual.ln_pre(x)
    h = embedded
    for block in visual.transformer.resblocks:
        h = _block(visual.transformer, block, h)
    f0 = visual.ln_post(h[:, 0]) @ visual.proj  # the plain pass
    dv = torch.stack([lin(f0) for lin in model.dynamic_visual_prompt_generator.head], dim=1)
    dt = torch.stack([lin(f0) for lin in model.dynamic_text_prompt_generator.head], dim=1)

    x, tokens = embedded, []
    for indx, block in enumerate(visual.transformer.resblocks):
        if indx < depth:
            ctx = (dv + model.visual_prompter.static_prompts[indx]).half().float()
            x = torch.cat([x, ctx], dim=1) if indx == 0 else torch.cat([x[:, : x.shape[1] - L], ctx], dim=1)
        x = _block(visual.transformer, block, x)
        if indx + 1 in o.features:
            tokens.append(x[:, : x.shape[1] - L])
    pooled = visual.ln_post(x[:, 0]) @ visual.proj

    text = []
    for states in (NORMAL, ABNORMAL):
        sentences = [t.format(s.format(word.replace("-", " "))) for s in states for t in TEMPLATES]
        ids = model.backbone.tokenizer(sentences)
        y = oc.token_embedding(ids) + oc.positional_embedding
        for indx, block in enumerate(oc.transformer.resblocks):
            if 0 < indx < depth:
                y = y.clone()
                y[:, 1 : 1 + L] = (dt + model.text_prompter.static_prompts[indx]).half().float()
            y = _block(oc.transformer, block, y, oc.attn_mask)
        y = oc.ln_final(y)[torch.arange(len(ids)), ids.argmax(dim=-1)] @ oc.text_projection
        y = y / y.norm(dim=-1, keepdim=True)
        mean = y.mean(dim=0)
        text.append(mean / mean.norm())
    T = torch.stack(text, dim=1)  # (D, 2)

    patches = []
    for head, t in zip(model.patch_token_layer.head, tokens, strict=True):
        p = head(t[0, 1:])
        patches.append(p / p.norm(dim=-1, keepdim=True))
    c = model.cls_token_layer.head[0](pooled[0])
    c = c / c.norm()
    logits = [100.0 * p @ T for p in patches]  # (N, 2)

    a = torch.softmax(torch.stack(logits).mean(dim=0), dim=1)[:, 1]
    top = torch.topk(a, k=min(len(a), 5 * o.k_clusters)).indices
    selected = [p[top] for p in patches]
    labels = KMeans(n_clusters=o.k_clusters, n_init=1, random_state=np.random.RandomState(seed)).fit_predict(
        torch.cat(selected, dim=1).detach().numpy()
    )
    centres = [torch.cat([s[labels == k] for s in selected]).mean(dim=0) for k in range(o.k_clusters)]
    fused = torch.stack(centres).mean(dim=0)
    fused = fused / fused.norm()
    f = 0.2 * fused + 0.8 * c
    f = f / f.norm()
    score = torch.softmax(100.0 * f @ T, dim=0)[1]

    grid = int(len(a) ** 0.5)
    up = [
        F.interpolate(lg.T.reshape(1, 2, grid, grid), size=o.image_size, mode="bilinear", align_corners=True)
        for lg in logits
    ]
    prob = torch.softmax(torch.stack(up).mean(dim=0), dim=1)[0]
    amap = ((prob[1] + 1 - prob[0]) / 2).detach().numpy()
    return float(score), gaussian_filter(amap, sigma=4)


def test_forward_matches_the_official_computation(model):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    names = ["metal nut", "pipe-fryum"]
    with torch.no_grad():
        ours = model(images, names)
        for b, word in enumerate(["metal_nut", "pipe fryum"]):
            score, amap = _reference(model, images[b : b + 1], word)
            assert abs(float(ours.image_scores[b]) - score) < 2e-6  # half_prompts=False moves it 6e-6
            assert np.abs(ours.anomaly_maps[b].numpy() - amap).max() < 1e-5  # and this 5e-5


def test_hsf_matches_the_official_loop_with_injected_labels():
    torch.manual_seed(1)
    k, n, d = 4, 30, 6
    patches = [F.normalize(torch.randn(2, n, d), dim=-1) for _ in range(3)]
    logits = [torch.randn(2, n, 2) * 5 for _ in range(3)]
    rng = np.random.default_rng(0)
    drawn = [rng.integers(0, k, size=5 * k) for _ in range(2)]
    calls = iter(drawn)
    fused = hybrid_semantic_fusion(patches, logits, k, lambda data: next(calls))
    for b in range(2):
        a = torch.softmax(sum(lg[b] for lg in logits) / 3, dim=1)[:, 1]
        order = sorted(range(n), key=lambda i: -float(a[i]))[: 5 * k]
        selected = [p[b, order] for p in patches]
        centres = []
        for cluster in range(k):
            members = [row for s in selected for j, row in enumerate(s) if drawn[b][j] == cluster]
            centres.append(torch.stack(members).mean(dim=0))
        expected = F.normalize(torch.stack(centres).mean(dim=0), dim=0)
        assert torch.allclose(fused[b], expected, atol=1e-6)


def test_an_empty_cluster_is_left_out_of_the_mean():
    selected = torch.arange(12.0).reshape(2, 3, 2)
    feature = cluster_centre_feature(selected, torch.tensor([0, 0, 2]), 3)
    layer_mean = selected.mean(dim=0)
    assert torch.allclose(feature, (layer_mean[:2].mean(dim=0) + layer_mean[2]) / 2)


def _dice_by_hand(p: torch.Tensor, g: torch.Tensor) -> float:
    return 1.0 - float((2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1))


def test_loss_is_the_official_sum_with_row_dice_for_a_batch_of_one():
    torch.manual_seed(2)
    image = torch.softmax(torch.randn(1, 2), dim=1)
    layer = torch.softmax(torch.randn(1, 2, 4, 5), dim=1)
    mask = (torch.rand(1, 4, 5) > 0.6).float()
    label = torch.tensor([1])

    def focal(p, t):  # -(1 - pt)^2 log pt, pt = p[t] with the 1e-5 label smoothing, mean
        one_hot = torch.full_like(p, 1e-5)
        one_hot[t] = 1 - 1e-5
        pt = (one_hot * p).sum() + 1e-5
        return float(-((1 - pt) ** 2) * pt.log())

    pixels = [(layer[0, :, i, j], int(mask[0, i, j])) for i in range(4) for j in range(5)]
    expected = focal(image[0], 1) + np.mean([focal(p, t) for p, t in pixels])
    rows = [
        _dice_by_hand(layer[0, 1, i], mask[0, i]) + _dice_by_hand(layer[0, 0, i], 1 - mask[0, i])
        for i in range(4)
    ]
    assert float(adaclip_loss(image, label, [layer], mask)) == pytest.approx(
        expected + np.mean(rows), rel=1e-5
    )
    whole = _dice_by_hand(layer[0, 1], mask[0]) + _dice_by_hand(layer[0, 0], 1 - mask[0])
    per_image = adaclip_loss(image, label, [layer], mask, dice_rows=False)
    assert float(per_image) == pytest.approx(expected + whole, rel=1e-5)
