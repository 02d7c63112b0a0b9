"""open_clip is an optional extra: these tests run only where it is installed."""

import pytest
import torch

open_clip = pytest.importorskip(
    "open_clip",
    reason="open_clip (optional extra `visionkit[open_clip]`) is not installed; it needs a "
    "torchvision that imports beside this torch",
)


def test_open_clip_backbone_prompts_and_context():
    from visionkit.backbones.open_clip import OpenClipBackbone

    bb = OpenClipBackbone.from_config("ViT-B-32")
    assert bb.parameter_count().trainable == 0
    images = torch.rand(1, 3, bb.image_size, bb.image_size)
    with torch.no_grad():
        plain = bb.encode_image(images).embeds
        ref = bb.model.encode_image(images)
        assert torch.allclose(plain, ref, atol=1e-4)
        prompted = bb.encode_image(images, [torch.zeros(2, bb.vision_width)])
        assert not torch.allclose(prompted.embeds, plain)
        ids = bb.tokenize(["a photo of a cat"])
        assert torch.allclose(bb.encode_text(ids).embeds, bb.model.encode_text(ids), atol=1e-4)
        ctx = bb.encode_text(ids, context=torch.zeros(3, bb.text_width))
        assert ctx.embeds.shape == (1, bb.embed_dim)
