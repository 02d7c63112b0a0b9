import json

import pytest
import torch

from visionkit.checkpoint import load_method, read_method_config, save_method
from visionkit.methods import UIT, LateFusion, LateFusionConfig, MoPE, MoPEConfig, UITConfig


def test_mope_round_trip(backbone, tmp_path):
    model = MoPE(backbone, MoPEConfig(num_classes=3, prompt_layers=(0, 1)), seed=3).eval()
    save_method(model, tmp_path)
    loaded = load_method(tmp_path, backbone)
    assert isinstance(loaded, MoPE)
    assert loaded.config == model.config
    images, ids = torch.rand(2, 3, 32, 32), backbone.tokenize(["a", "a red circle"])
    with torch.no_grad():
        assert torch.equal(model(images, ids).logits, loaded(images, ids).logits)
    saved = json.loads((tmp_path / "method.json").read_text())
    assert saved["method"] == "mope"


def test_checkpoint_not_matching_config(backbone, tmp_path):
    save_method(LateFusion(backbone, LateFusionConfig(num_classes=3)), tmp_path)
    meta = json.loads((tmp_path / "method.json").read_text())
    meta["config"]["num_classes"] = 5
    (tmp_path / "method.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"head.weight: checkpoint \(3, 64\) vs model \(5, 64\)"):
        load_method(tmp_path, backbone)
    meta["config"]["colour"] = 1
    (tmp_path / "method.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown keys"):
        read_method_config(tmp_path)
    meta["method"] = "vpt"
    (tmp_path / "method.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown method 'vpt'"):
        read_method_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="save_method"):
        read_method_config(tmp_path / "nowhere")


def test_uit_saves_the_fine_tuned_backbone(backbone, tmp_path):
    config = UITConfig(num_identities=2, decoder_width=16, decoder_heads=2)
    model = UIT(backbone, config)
    with torch.no_grad():
        backbone.model.logit_scale.add_(1.0)
    save_method(model, tmp_path)
    from tests.visionkit.conftest import TINY
    from visionkit.backbones import ClipBackbone

    fresh = ClipBackbone.from_config(TINY, seed=0)
    load_method(tmp_path, fresh)
    assert torch.equal(fresh.model.logit_scale, backbone.model.logit_scale)
