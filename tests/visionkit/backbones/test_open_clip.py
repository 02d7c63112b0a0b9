"""OpenClipBackbone on small open_clip architectures with random weights (nothing downloaded).

open_clip is an optional extra; .ci/run runs this file in an environment that has it (the
``open_clip`` step). torchvision's PyPI wheels are CUDA builds whose C++ operators cannot load
beside a CPU-only torch; ``visionkit._torchvision.prepare_torchvision`` lets them import anyway.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from visionkit._torchvision import prepare_torchvision

prepare_torchvision()
open_clip = pytest.importorskip(
    "open_clip",
    reason="open_clip (optional extra `esmscale[open-clip]`) is not installed; .ci/run's "
    "open_clip step installs it and runs these tests",
)

from visionkit.backbones.open_clip import OpenClipBackbone, read_safetensors  # noqa: E402

SMALL = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16},
    "text_cfg": {"context_length": 32, "width": 32, "heads": 2, "layers": 2},
}


def with_changes(**changes):
    cfg = json.loads(json.dumps(SMALL))
    for key, value in changes.items():
        tower, _, name = key.partition("__")
        if name:
            cfg[tower][name] = value
        else:
            cfg[tower] = value
    return cfg


@pytest.fixture(scope="module")
def small():
    return OpenClipBackbone.from_config(SMALL, seed=0)


@pytest.mark.parametrize("custom_text", [False, True])
def test_matches_open_clip_forward(custom_text):
    cfg = with_changes(custom_text=True) if custom_text else SMALL
    bb = OpenClipBackbone.from_config(cfg, seed=0)
    assert type(bb.model).__name__ == ("CustomTextCLIP" if custom_text else "CLIP")
    assert bb.parameter_count().trainable == 0
    assert (bb.image_size, bb.patch_size, bb.vision_width, bb.text_width) == (32, 8, 32, 32)
    assert (bb.num_vision_layers, bb.num_text_layers, bb.context_length) == (2, 2, 32)
    images = torch.rand(3, 3, 32, 32)
    ids = bb.tokenize(["a photo of a cat", "a dog", "two red birds on a branch"])
    with torch.no_grad():
        normalised = (images - bb.image_mean) / bb.image_std
        ref_image = bb.model.encode_image(normalised)
        ref_text = bb.model.encode_text(ids)
        assert torch.allclose(bb.encode_image(images).embeds, ref_image, atol=1e-5)
        assert torch.allclose(bb.encode_text(ids).embeds, ref_text, atol=1e-5)
    # same seed, same weights
    again = OpenClipBackbone.from_config(cfg, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            bb.model.state_dict().values(), again.model.state_dict().values(), strict=True
        )
    )


def test_prompts_change_outputs_and_only_prompts_get_gradients(small):
    images = torch.rand(2, 3, 32, 32)
    ids = small.tokenize(["a photo of a cat", "a dog"])
    prompts = [torch.nn.Parameter(torch.randn(3, 32) * 0.1) for _ in range(2)]
    context = torch.nn.Parameter(small.token_embedding(ids[0, 1:4]).detach().clone())
    with torch.no_grad():
        plain_image = small.encode_image(images)
        plain_text = small.encode_text(ids)
    prompted = small.encode_image(images, prompts)
    assert prompted.tokens.shape == plain_image.tokens.shape == (2, 17, 32)
    assert not torch.allclose(prompted.embeds, plain_image.embeds)
    with_context = small.encode_text(ids, context=context)
    assert with_context.tokens.shape[1] == plain_text.tokens.shape[1] + 3
    assert not torch.allclose(with_context.embeds, plain_text.embeds)
    (prompted.embeds.square().sum() + with_context.embeds.square().sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prompts)
    assert context.grad is not None
    assert context.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in small.parameters())

    # a prompt function (MoPE's routing hook) sees the tokens without prompts
    seen = []

    def prompt_fn(layer, tokens):
        seen.append((layer, tuple(tokens.shape)))
        return torch.zeros(2, 2, 32)

    out = small.encode_image(images, prompt_fn, prompt_mode="prepend")
    assert seen == [(0, (2, 17, 32)), (1, (2, 17, 32))]
    assert out.tokens.shape == (2, 17, 32)
    with pytest.raises(ValueError, match=r"vision prompts of layer 0 have shape \(3, 16\)"):
        small.encode_image(images, [torch.zeros(3, 16)])
    with pytest.raises(ValueError, match="3 prompt entries given but the vision tower has 2"):
        small.encode_image(images, [None, None, torch.zeros(1, 32)])
    with pytest.raises(ValueError, match="context_length 32"):
        small.encode_text(ids, context=torch.zeros(30, 32))


def test_loads_local_safetensors_and_json_config(tmp_path):
    source = OpenClipBackbone.from_config(SMALL, seed=3)
    weights = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, str(weights))
    config_file = tmp_path / "open_clip_config.json"
    config_file.write_text(json.dumps({"model_cfg": SMALL}))  # open_clip's own layout
    with_pre = tmp_path / "with_preprocess.json"
    pre = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    with_pre.write_text(json.dumps({"model_cfg": SMALL, "preprocess_cfg": pre}))
    assert (
        OpenClipBackbone.from_pretrained(with_pre, weights).image_std.flatten().tolist()
        == [0.25] * 3
    )
    assert OpenClipBackbone.from_config(SMALL).image_std.flatten()[0] == pytest.approx(0.26862954)
    with pytest.raises(ValueError, match="open_clip could not build CLIP from the config"):
        OpenClipBackbone.from_config({**SMALL, "colour": "blue"})
    images = torch.rand(2, 3, 32, 32)
    for config in (SMALL, config_file, str(config_file)):
        loaded = OpenClipBackbone.from_pretrained(config, weights)
        assert loaded.parameter_count().trainable == 0
        with torch.no_grad():
            assert torch.equal(
                loaded.encode_image(images).embeds, source.encode_image(images).embeds
            )
    assert not torch.equal(
        OpenClipBackbone.from_config(SMALL, seed=0).model.visual.proj, source.model.visual.proj
    )
    mean = (0.5, 0.5, 0.5)
    custom = OpenClipBackbone.from_pretrained(SMALL, weights, image_mean=mean, image_std=mean)
    assert custom.image_mean.flatten().tolist() == [0.5, 0.5, 0.5]


def test_built_in_names_resolve_without_download():
    from visionkit.backbones.open_clip import _resolve_config

    cfg = _resolve_config("ViT-B-32")
    assert cfg["embed_dim"] == 512
    assert cfg["vision_cfg"]["patch_size"] == 32
    with pytest.raises(KeyError, match="'ViT-Q-99' is not a built-in open_clip model"):
        _resolve_config("ViT-Q-99")
    with pytest.raises(ValueError, match="would be downloaded"):
        OpenClipBackbone.from_config("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_weights_file_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"not a local weights file .*downloads are disabled"
    ):
        OpenClipBackbone.from_pretrained(SMALL, tmp_path / "missing.safetensors")

    state = OpenClipBackbone.from_config(SMALL).model.state_dict()
    # a pickled checkpoint (torch.save zip archive, and a legacy bare pickle) is refused
    for name, zipped in (("w.bin", True), ("w.pt", False)):
        pickled = tmp_path / name
        torch.save(state, pickled, _use_new_zipfile_serialization=zipped)
        with pytest.raises(ValueError, match="pickled PyTorch checkpoint") as err:
            OpenClipBackbone.from_pretrained(SMALL, pickled)
        assert "never unpickles" in str(err.value)
        assert "save_file(" in str(err.value)
        assert "weights_only=True" in str(err.value)
    # a valid safetensors file whose first byte is 0x80 (like a pickle's) is still read
    header_128 = tmp_path / "first_byte_0x80.safetensors"
    for pad in range(300):
        save_file({"x" * (pad + 1): torch.zeros(1)}, str(header_128))
        if header_128.read_bytes()[:1] == b"\x80":
            break
    assert header_128.read_bytes()[:1] == b"\x80"
    assert list(read_safetensors(header_128)) == ["x" * (pad + 1)]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_safetensors(junk)

    # weights of a 1-layer image tower against a 2-layer config: the missing tensors are named
    one_layer = OpenClipBackbone.from_config(with_changes(vision_cfg__layers=1)).model
    fewer = tmp_path / "fewer.safetensors"
    save_file({k: v.contiguous() for k, v in one_layer.state_dict().items()}, str(fewer))
    with pytest.raises(ValueError, match=r"missing visual\.transformer\.resblocks\.1\."):
        OpenClipBackbone.from_pretrained(SMALL, fewer)
    # an extra tensor, a wrong shape, and a 'module.' prefix
    extra = {k: v.contiguous() for k, v in state.items()}
    extra["visual.extra"] = torch.zeros(1)
    extra["visual.proj"] = torch.zeros(32, 8)
    bad = tmp_path / "bad.safetensors"
    save_file(extra, str(bad))
    with pytest.raises(ValueError, match="does not match the config") as err:
        OpenClipBackbone.from_pretrained(SMALL, bad)
    assert "unexpected visual.extra" in str(err.value)
    assert "visual.proj: file (32, 8) vs config (32, 16)" in str(err.value)
    prefixed = tmp_path / "prefixed.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(prefixed))
    with pytest.raises(ValueError, match=r"start with 'module\.': strip that prefix"):
        OpenClipBackbone.from_pretrained(SMALL, prefixed)
    # CLIP weights (text tower at the top level) against a custom_text config
    plain = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(plain))
    with pytest.raises(ValueError, match="set 'custom_text'"):
        OpenClipBackbone.from_pretrained(with_changes(custom_text=True), plain)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"vision_cfg__timm_model_name": "vit_tiny_patch16_224"}, "timm image towers"),
        ({"vision_cfg__layers": [1, 1, 1, 1]}, "ModifiedResNet"),
        ({"vision_cfg__pool_type": "avg"}, "vision_cfg.pool_type='avg'"),
        ({"text_cfg__pool_type": "last"}, "text_cfg.pool_type='last'"),
        ({"text_cfg__no_causal_mask": True}, "no_causal_mask"),
        ({"init_logit_bias": -10.0}, "SigLIP"),
        ({"text_cfg__hf_model_name": "roberta-base"}, "Hugging Face text towers"),
    ],
)
def test_unsupported_configs_are_named(change, named):
    with pytest.raises(ValueError, match="this config uses") as err:
        OpenClipBackbone.from_config(with_changes(**change))
    assert named in str(err.value)


@pytest.fixture
def folder(tmp_path):
    """A tiny real-layout dataset: two classes of 48x40 PNGs, a captions CSV and masks."""
    rng = np.random.default_rng(0)
    rows = ["image_path,caption,person_id"]
    for label, name in enumerate(("circle", "square")):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "masks" / name).mkdir(parents=True)
        for i in range(3):
            arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "data" / name / f"{i}.png")
            mask = np.zeros((40, 48), np.uint8)
            mask[10:30, 12:36] = 255
            Image.fromarray(mask).save(tmp_path / "masks" / name / f"{i}.png")
            rows.append(f"{name}/{i}.png,a photo of a {name} number {i},person{label * 3 + i}")
    (tmp_path / "data" / "captions.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_every_method_runs_on_open_clip_and_an_image_folder(folder, tmp_path):
    from visionkit.checkpoint import load_method, save_method
    from visionkit.datasets import load_image_folder
    from visionkit.methods import (
        TPT,
        UIT,
        DeepPromptTuning,
        InvariantTTA,
        InvariantTTAConfig,
        LateFusion,
        LateFusionConfig,
        MoPE,
        MoPEConfig,
        PromptTuningConfig,
        TPTConfig,
        UITConfig,
    )
    from visionkit.training import TrainConfig, fit

    bb = OpenClipBackbone.from_config(SMALL, seed=0)
    data = load_image_folder(
        folder / "data", bb.image_size, captions="captions.csv", masks=folder / "masks"
    )
    ids = bb.tokenize(data.captions)
    frozen = {k: v.clone() for k, v in bb.state_dict().items()}
    train = TrainConfig(steps=2, batch_size=4, lr=1e-2, warmup=0)

    # MoPE, deep prompt tuning, late fusion: image-caption classification into the classes
    n_classes = len(data.class_names)
    for model in (
        MoPE(bb, MoPEConfig(num_classes=n_classes, num_experts=2, router_dim=4)),
        DeepPromptTuning(bb, PromptTuningConfig(num_classes=n_classes)),
        LateFusion(bb, LateFusionConfig(num_classes=n_classes, hidden=8)),
    ):
        before = {k: v.clone() for k, v in model.trainable_state_dict().items()}

        def loss(idx, model=model):
            return model.loss(data.images[idx], ids[idx], data.labels[idx])

        model.train()
        history = fit(list(model.parameters()), loss, len(data), train)
        assert len(history) == 2
        assert all(np.isfinite(history))
        after = model.trainable_state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        model.eval()
        with torch.no_grad():
            logits = model.predict(data.images, ids)
            assert logits.shape == (len(data), n_classes)
            # saved without the backbone, reloaded onto it
            reloaded = load_method(save_method(model, tmp_path / model.name), bb)
            reloaded.eval()
            assert torch.allclose(reloaded.predict(data.images, ids), logits)
    assert all(torch.equal(frozen[k], v) for k, v in bb.state_dict().items())

    # test-time adaptation with the class names as prompts (invariant TTA uses the masks)
    tta = InvariantTTA(bb, data.class_names, InvariantTTAConfig(steps=1, num_foreground_views=2))
    assert data.masks is not None
    assert tta.predict(data.images[:2], data.masks[:2]).shape == (2, 2)
    assert TPT(bb, data.class_names, TPTConfig(num_views=4)).predict(data.images[:2]).shape == (
        2,
        2,
    )
    assert all(torch.equal(frozen[k], v) for k, v in bb.state_dict().items())

    # UIT fine-tunes the backbone on caption -> person retrieval
    uit = UIT(bb, UITConfig(num_identities=len(data.person_ids), decoder_width=32), seed=0)
    uit.train()
    losses = uit.losses(
        data.images[:4], bb.tokenize(uit.augment(data.captions[:4])), data.identities[:4]
    )
    assert sorted(losses) == ["id", "restoration", "sdm", "total", "triplet"]
    losses["total"].backward()
    assert bb.model.visual.conv1.weight.grad is not None
    assert uit.decoder.out.weight.grad is not None
