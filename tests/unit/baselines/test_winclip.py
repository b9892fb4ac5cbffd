"""WinCLIP / WinCLIP+ on the tiny backbone, against hand-worked numbers and slow independent references."""

import pytest
import torch
import torch.nn.functional as F
from zsad_bench.baselines.winclip import (
    ANOMALOUS_STATES,
    NORMAL_STATES,
    TEMPLATES,
    WinCLIP,
    few_shot_scores,
    harmonic_aggregate,
    harmonic_mean,
    window_indices,
    window_membership,
)

from zsad_bench.errors import ZsadError


@pytest.fixture(scope="module")
def winclip():
    """64 px: an 8 x 8 grid, 49 windows of 2 x 2 and 36 of 3 x 3."""
    return WinCLIP(backbone="test-tiny", image_size=64).eval()


@pytest.fixture(scope="module")
def small():
    """48 px (positional embedding resized bicubically): a 6 x 6 grid, for the slow references."""
    return WinCLIP(backbone="test-tiny", image_size=48).eval()


def _images(n, size, seed):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- windows and aggregation -----------------------------------------------------------------------------
@pytest.mark.parametrize(("grid", "k", "count"), [(8, 2, 49), (8, 3, 36), (15, 2, 196), (15, 3, 169)])
def test_window_counts(grid, k, count):
    assert window_indices(grid, k).shape == (count, k * k)
    membership = window_membership(grid, k)
    assert membership.shape == (count, grid * grid)
    assert torch.equal(membership.sum(1), torch.full((count,), float(k * k)))


def test_window_indices_on_a_3x3_grid():
    assert window_indices(3, 2).tolist() == [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    with pytest.raises(ValueError, match="window size 4"):
        window_indices(3, 4)


def test_harmonic_aggregation_by_hand():
    # 3 x 3 grid, 2 x 2 windows with scores 1/5, 2/5, 1/2, 4/5, so 1/s = 5, 2.5, 2, 1.25
    scores = torch.tensor([[0.2, 0.4, 0.5, 0.8]])
    expected = [
        0.2,  # patch (0,0): window 0 only
        2 / (5 + 2.5),  # (0,1): windows 0, 1
        0.4,
        2 / (5 + 2),  # (1,0): windows 0, 2
        4 / (5 + 2.5 + 2 + 1.25),  # centre: all four
        2 / (2.5 + 1.25),
        0.5,
        2 / (2 + 1.25),
        0.8,
    ]
    got = harmonic_aggregate(scores, window_membership(3, 2))
    assert torch.allclose(got, torch.tensor([expected]), atol=1e-7)
    # a zero score forces every patch it covers to 0 (1/0 = inf), the others are unaffected
    zeroed = harmonic_aggregate(torch.tensor([[0.0, 0.4, 0.5, 0.8]]), window_membership(3, 2))
    assert zeroed[0, [0, 1, 3, 4]].tolist() == [0.0] * 4 and zeroed[0, 8] == pytest.approx(0.8)


def test_harmonic_mean_and_few_shot_scores():
    values = torch.tensor([[0.5, 0.2], [0.25, 0.0]])
    assert torch.allclose(harmonic_mean(values, dim=0), torch.tensor([2 / (2 + 4), 0.0]))
    memory = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    queries = torch.tensor([[[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]])
    # a = 1/2 min(1 - cos): identical direction 0, 45 degrees (1 - 1/sqrt 2)/2, opposite to one entry 1/2
    expected = torch.tensor([[0.0, (1 - 2**-0.5) / 2, 0.5]])
    assert torch.allclose(few_shot_scores(queries, memory), expected, atol=1e-7)


# -- prompts and text ------------------------------------------------------------------------------------
def test_prompt_counts_keep_the_duplicated_template(winclip):
    normal, anomalous = winclip.prompts("metal nut")
    assert (len(NORMAL_STATES), len(ANOMALOUS_STATES), len(TEMPLATES)) == (7, 4, 21)
    assert len(normal) == 147 and len(anomalous) == 84
    assert normal[0] == "a cropped photo of the metal nut."
    assert anomalous[-1] == "a photo of a metal nut with damage for anomaly detection."
    assert normal.count("a jpeg corrupted photo of the flawless metal nut.") == 2


@pytest.mark.parametrize("average", ["raw", "normalized"])
def test_text_prototypes_follow_the_averaging_choice(winclip, monkeypatch, average):
    seen = []
    fake = torch.randn(147 + 84, 32, generator=torch.Generator().manual_seed(0))
    fake = fake * torch.linspace(0.5, 3.0, 147 + 84)[:, None]  # unequal norms: the two averages differ
    tokenizer = winclip.backbone.tokenizer

    def encode_text(token_ids):  # open_clip's text tower, faked: the next rows of ``fake``
        start = sum(len(s) for s in seen)
        seen.append(token_ids.tolist())
        return fake[start : start + len(token_ids)]

    monkeypatch.setattr(winclip.backbone.model, "encode_text", encode_text)
    monkeypatch.setattr(winclip, "text_average", average)
    winclip.prototype_cache.clear()
    expected = []
    for group in (fake[:147], fake[147:]):
        group = F.normalize(group, dim=-1) if average == "normalized" else group
        expected.append(F.normalize(group.mean(0), dim=-1))
    try:
        got = winclip.text_prototypes(["vial", "vial"])
        normal, anomalous = winclip.prompts("vial")
        # one forward per state group (147 and 84 prompts), in the order of the prompts
        assert seen == [tokenizer(normal).tolist(), tokenizer(anomalous).tolist()]
        assert got.shape == (2, 2, 32)
        assert torch.allclose(got[1], torch.stack(expected), atol=1e-6)
        other = F.normalize(fake[:147], dim=-1) if average == "raw" else fake[:147]
        assert not torch.allclose(got[0, 0], F.normalize(other.mean(0), dim=-1), atol=1e-3)
        cached = winclip.prototype_cache["vial"]
        winclip.text_prototypes(["vial"])
        assert winclip.prototype_cache["vial"] is cached and len(seen) == 2  # encoded once per class name
    finally:
        winclip.prototype_cache.clear()  # the module-scoped fixture must not keep the fake prototypes


def test_text_is_encoded_by_the_clip_text_tower(winclip):
    oc, tokenizer = winclip.backbone.model, winclip.backbone.tokenizer
    with torch.no_grad():
        expected = [
            F.normalize(oc.encode_text(tokenizer(g)).mean(0), dim=-1) for g in winclip.prompts("bottle")
        ]
    assert torch.allclose(winclip.text_prototypes(["bottle"])[0], torch.stack(expected), atol=1e-5)


# -- window embeddings -----------------------------------------------------------------------------------
def _window_by_hand(model, image, row, col, k):
    """CLS + the window's patch tokens (original positions), every block one by one, ln_post, proj."""
    backbone = model.backbone
    assert backbone.visual.transformer.batch_first  # open_clip 3.x: blocks take (N, L, D)
    grid = backbone.grid_size
    x = backbone.embed(image[None])
    keep = [0] + [1 + (row + i) * grid + col + j for i in range(k) for j in range(k)]
    seq = x[:, keep]
    for block in backbone.blocks():
        seq = block(seq)
    return backbone.visual.ln_post(seq[0, 0]) @ backbone.visual.proj


def test_window_embedding_is_a_forward_pass_over_its_tokens_only(winclip):
    images = _images(3, 64, 0)
    with torch.no_grad():
        batched = winclip.encode(images)
        single = winclip.encode(images[1:2])
        for k, scale_index, row, col in [(2, 0, 0, 0), (2, 0, 3, 5), (3, 1, 5, 2)]:
            window = row * (8 - k + 1) + col
            expected = _window_by_hand(winclip, images[1], row, col, k)
            # the same embedding alone and in a batch of 3 images: windows never attend to each other
            assert torch.allclose(single.windows[scale_index][0, window], expected, atol=1e-5)
            assert torch.allclose(batched.windows[scale_index][1, window], expected, atol=1e-5)
    assert batched.windows[0].shape == (3, 49, 32) and batched.windows[1].shape == (3, 36, 32)


def test_image_and_patch_features_match_open_clip(winclip):
    images = _images(2, 64, 1)
    visual = winclip.backbone.visual
    with torch.no_grad():
        features = winclip.encode(images)
        visual.output_tokens = True
        try:
            pooled, tokens = visual(images)  # tokens: after ln_post, before proj
        finally:
            visual.output_tokens = False
    assert torch.allclose(features.image, pooled, atol=1e-5)
    assert features.patches.shape == (2, 64, 32)
    assert torch.allclose(features.patches, tokens, atol=1e-5)


# -- zero-shot prediction ----------------------------------------------------------------------------------
def _zero_shot_by_hand(model, features, text, b):
    """Scores and the (G, G) zero-shot map of image b, with Python loops over patches and windows."""
    grid = model.grid

    def prob(v):
        logits = F.normalize(v, dim=-1) @ text.T / 0.07
        return logits.softmax(-1)[..., 1]

    s_img = float(prob(features.image[b]))
    out = torch.zeros(grid, grid)
    for r in range(grid):
        for c in range(grid):
            inverse = [1 / s_img]
            for k, windows in zip(model.scales, features.windows, strict=True):
                n = grid - k + 1
                covering = [
                    float(prob(windows[b, i * n + j]))
                    for i in range(n)
                    for j in range(n)
                    if i <= r < i + k and j <= c < j + k
                ]
                inverse.append(sum(1 / s for s in covering) / len(covering))
            out[r, c] = len(inverse) / sum(inverse)
    return s_img, out


def test_zero_shot_prediction_matches_the_formula(small):
    images = _images(2, 48, 2)
    with torch.no_grad():
        pred = small(images, ["bottle", "bottle"])
        features = small.encode(images)
    text = small.text_prototypes(["bottle"])[0]
    assert pred.image_scores.shape == (2,) and pred.anomaly_maps.shape == (2, 48, 48)
    assert pred.image_scores.dtype == torch.float32 and pred.anomaly_maps.dtype == torch.float32
    assert ((pred.image_scores > 0) & (pred.image_scores < 1)).all()
    assert ((pred.anomaly_maps >= 0) & (pred.anomaly_maps <= 1)).all()
    for b in range(2):
        s_img, patch_map = _zero_shot_by_hand(small, features, text, b)
        up = F.interpolate(patch_map[None, None], size=(48, 48), mode="bilinear", align_corners=False)
        assert pred.image_scores[b].item() == pytest.approx(s_img, abs=1e-6)
        assert torch.allclose(pred.anomaly_maps[b], up[0, 0], atol=1e-6)


def test_mixed_class_batch_uses_each_images_own_prompts(winclip):
    images = _images(2, 64, 3)
    with torch.no_grad():
        mixed = winclip(images, ["bottle", "screw"])
        screw = winclip(images[1:], ["screw"])
    assert torch.allclose(mixed.image_scores[1], screw.image_scores[0], atol=1e-6)
    assert torch.allclose(mixed.anomaly_maps[1], screw.anomaly_maps[0], atol=1e-6)


# -- few-shot (WinCLIP+) -----------------------------------------------------------------------------------
def test_remember_builds_the_three_memories_and_forget_clears_them(winclip):
    winclip.forget()
    with torch.no_grad():
        winclip.remember("bottle", _images(2, 64, 4))
    memory = winclip.memory("bottle")
    assert memory.windows[0].shape == (2 * 49, 32) and memory.windows[1].shape == (2 * 36, 32)
    assert memory.patches.shape == (2 * 64, 32)
    assert torch.allclose(memory.patches.norm(dim=-1), torch.ones(128), atol=1e-5)
    winclip.forget()
    assert winclip.memory("bottle") is None


def test_a_reference_image_scores_zero_against_its_own_memory(winclip):
    references = _images(2, 64, 5)
    winclip.forget()
    with torch.no_grad():
        zero_shot = winclip(references, ["bottle", "bottle"])
        winclip.remember("bottle", references)
        few_shot = winclip(references, ["bottle", "bottle"])
    winclip.forget()
    # F = 0 for an image in memory, so the map and the score are half the zero-shot ones
    assert torch.allclose(few_shot.image_scores, zero_shot.image_scores / 2, atol=1e-5)
    assert torch.allclose(few_shot.anomaly_maps, zero_shot.anomaly_maps / 2, atol=1e-5)


def _few_shot_by_hand(model, query, references, b):
    """WinCLIP+ map F (G, G) of query image b, with loops and unnormalised features."""
    grid = model.grid

    def score(q, bank):
        return 0.5 * (1 - F.cosine_similarity(q[None], bank, dim=1)).min().item()

    patch = torch.tensor(
        [score(query.patches[b, p], references.patches.flatten(0, 1)) for p in range(grid**2)]
    )
    maps = [patch.reshape(grid, grid)]
    for k, windows, bank in zip(model.scales, query.windows, references.windows, strict=True):
        n = grid - k + 1
        s = [score(windows[b, w], bank.flatten(0, 1)) for w in range(n * n)]
        m = torch.zeros(grid, grid)
        for r in range(grid):
            for c in range(grid):
                covering = [
                    s[i * n + j] for i in range(n) for j in range(n) if i <= r < i + k and j <= c < j + k
                ]
                m[r, c] = len(covering) / sum(1 / v for v in covering)
        maps.append(m)
    return torch.stack(maps).mean(0)


def test_few_shot_prediction_matches_the_formula(small):
    references, queries = _images(2, 48, 6), _images(2, 48, 7)
    small.forget()
    with torch.no_grad():
        zero_shot = small(queries, ["bottle", "bottle"])
        small.remember("bottle", references)
        pred = small(queries, ["bottle", "bottle"])
        query_features, reference_features = small.encode(queries), small.encode(references)
    small.forget()
    for b in range(2):
        few = _few_shot_by_hand(small, query_features, reference_features, b)
        assert few.min() > 0
        expected_score = (zero_shot.image_scores[b] + few.max()) / 2
        assert pred.image_scores[b].item() == pytest.approx(expected_score.item(), abs=1e-5)
        up = F.interpolate(few[None, None], size=(48, 48), mode="bilinear", align_corners=False)[0, 0]
        assert torch.allclose(pred.anomaly_maps[b], (zero_shot.anomaly_maps[b] + up) / 2, atol=1e-5)


def test_few_shot_errors(winclip):
    winclip.forget()
    with pytest.raises(ZsadError, match=r"must be \(K, 3, 64, 64\)"):
        winclip.remember("bottle", _images(1, 48, 8))
    with torch.no_grad():
        winclip.remember("bottle", _images(1, 64, 8))
        with pytest.raises(ZsadError, match="no reference images for class 'screw'"):
            winclip(_images(2, 64, 9), ["bottle", "screw"])
    winclip.forget()


# -- options -----------------------------------------------------------------------------------------------
def test_config_records_options_and_random_weights(winclip):
    assert winclip.config() == {
        "name": "winclip",
        "backbone": "test-tiny",
        "image_size": 64,
        "scales": [2, 3],
        "temperature": 0.07,
        "prompts": "anomalib",
        "text_average": "raw",
        "pos_interpolation": "bicubic",
    }
    assert winclip.uses_random_weights and winclip.few_shot and not winclip.trainable


def test_bad_options_are_explained():
    scales = r"scales of model 'winclip' must be window sizes in 1\.\.8 .*got 2,9"
    with pytest.raises(ZsadError, match=scales):
        WinCLIP(backbone="test-tiny", image_size=64, scales=(2, 9))
    prompts = "option prompts of model 'winclip' must be one of anomalib, got 'vand'"
    with pytest.raises(ZsadError, match=prompts):
        WinCLIP(backbone="test-tiny", prompts="vand")
    with pytest.raises(ZsadError, match=r"text_average .* must be one of raw, normalized"):
        WinCLIP(backbone="test-tiny", text_average="median")
    with pytest.raises(ZsadError, match=r"temperature .* must be a number \(> 0\), got 0"):
        WinCLIP(backbone="test-tiny", temperature=0)


def test_transform_squashes_to_input_size(small):
    from PIL import Image

    assert small.transform()(Image.new("RGB", (100, 40))).shape == (3, 48, 48)
    assert small.grid == 6 and small.backbone.visual.positional_embedding.shape == (37, 32)
