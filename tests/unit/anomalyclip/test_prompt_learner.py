import torch

from zsad_bench.anomalyclip.prompt_learner import PromptLearner


def test_prompts_tokenise_like_the_official_code(tiny_backbone):
    learner = PromptLearner(tiny_backbone)
    ids = learner.token_ids.tolist()
    # reference/anomalyclip.md section 2.1: SOS, X x12, [damaged,] object, ".", EOS, padding 0
    assert ids[0][:16] == [49406, *[343] * 12, 14115, 269, 49407]
    assert ids[1][:17] == [49406, *[343] * 12, 13568, 14115, 269, 49407]
    assert set(ids[0][16:]) == {0}


def test_shapes_and_parameter_count(tiny_backbone):
    learner = PromptLearner(tiny_backbone)
    assert learner.ctx_pos.shape == learner.ctx_neg.shape == (1, 1, 12, 32)
    assert len(learner.compound_prompts_text) == 8
    assert all(p.shape == (4, 32) for p in learner.compound_prompts_text)
    assert sum(p.numel() for p in learner.parameters()) == 2 * 12 * 32 + 8 * 4 * 32
    embeddings = learner.embeddings()
    assert embeddings.shape == (2, 77, 32)
    assert torch.equal(embeddings[0, 1:13], learner.ctx_pos[0, 0]) and torch.equal(
        embeddings[1, 1:13], learner.ctx_neg[0, 0]
    )
    assert learner.encode(tiny_backbone).shape == (2, 32)


def test_deep_tokens_overwrite_positions_1_to_4_in_text_layers_2_to_9(tiny_backbone, monkeypatch):
    learner = PromptLearner(tiny_backbone)
    seen: dict[int, torch.Tensor] = {}
    original = tiny_backbone.run_text_block

    def spy(index, x):
        seen[index] = x.detach().clone()
        return original(index, x)

    monkeypatch.setattr(tiny_backbone, "run_text_block", spy)
    learner.encode(tiny_backbone)
    for layer in range(2, 10):
        deep = learner.compound_prompts_text[layer - 2].detach().half().float()  # fp16-rounded, as official
        assert torch.equal(seen[layer][:, 1:5], deep.expand(2, -1, -1))
    for layer in (1, 10, 11, 12):  # layer 1 and layers 10-12 only propagate
        for deep in learner.compound_prompts_text:
            assert not torch.equal(seen[layer][:, 1:5], deep.detach().half().float().expand(2, -1, -1))
    # the input of text block 1 carries the learned context itself at positions 1..12
    position = tiny_backbone.model.positional_embedding
    context = torch.cat([learner.ctx_pos[0], learner.ctx_neg[0]]).detach()
    assert torch.allclose(seen[1][:, 1:13], context + position[1:13], atol=1e-6)
    # everything but positions 1..4 is kept from the block before: SOS, positions 5..12 (the rest of the
    # learned context) and the words; an overwrite of 5..12 (or of the whole context) fails here
    for layer in range(2, 13):
        with torch.no_grad():
            before = original(layer - 1, seen[layer - 1])
        assert torch.equal(seen[layer][:, 5:], before[:, 5:]), layer
        assert torch.equal(seen[layer][:, :1], before[:, :1]), layer
        if layer > 9:  # past the deep layers positions 1..4 propagate too
            assert torch.equal(seen[layer][:, 1:5], before[:, 1:5]), layer


def test_gradients_reach_every_learned_tensor(tiny_backbone):
    learner = PromptLearner(tiny_backbone)
    learner.encode(tiny_backbone).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.parameters())
