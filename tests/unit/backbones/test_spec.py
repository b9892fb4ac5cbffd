import pytest

from zsad_bench.backbones import parse_backbone
from zsad_bench.errors import ZsadError


def test_default_tags_are_the_papers_weights():
    assert str(parse_backbone("ViT-L-14-336-quickgelu")) == "ViT-L-14-336-quickgelu:openai"
    assert str(parse_backbone("ViT-B-16-plus-240")) == "ViT-B-16-plus-240:laion400m_e31"


def test_explicit_tag_file_and_random():
    assert parse_backbone("ViT-L-14-336:openai").pretrained == "openai"
    assert parse_backbone("ViT-L-14:/weights/a:b.pt").pretrained == "/weights/a:b.pt"
    assert parse_backbone("ViT-B-32:random").random_weights


def test_tiny_is_always_random():
    spec = parse_backbone("test-tiny")
    assert spec.random_weights and str(spec) == "test-tiny:random"
    with pytest.raises(ZsadError, match="random weights"):
        parse_backbone("test-tiny:openai")


def test_unknown_architecture_without_tag_asks_for_weights():
    with pytest.raises(ZsadError, match="needs its weights named"):
        parse_backbone("ViT-H-14")
