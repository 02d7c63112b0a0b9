import pytest
import torch

from visionkit.methods.context import ContextClassifier


def test_context_starts_as_prompt_embeddings(backbone):
    clf = ContextClassifier(backbone, ["circle", "square"], init_context="a photo of a")
    ids = backbone.tokenizer.word_ids("a photo of a")
    expected = backbone.token_embedding(torch.tensor(ids))
    assert torch.equal(clf.context.detach(), expected)
    clf.context.data.add_(1.0)
    clf.reset()
    assert torch.equal(clf.context.detach(), expected)


def test_untouched_context_equals_plain_zero_shot_prompts(backbone):
    clf = ContextClassifier(backbone, ["circle", "square"])
    ids = backbone.tokenize(["a photo of a circle", "a photo of a square"])
    with torch.no_grad():
        plain = torch.nn.functional.normalize(backbone.encode_text(ids).embeds, dim=-1)
        assert torch.allclose(clf.class_embeddings(), plain, atol=1e-5)


def test_needs_two_classes(backbone):
    with pytest.raises(ValueError, match="at least two"):
        ContextClassifier(backbone, ["circle"])
