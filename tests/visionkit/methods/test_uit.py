import pytest
import torch

from visionkit.methods.uit import (
    UIT,
    RestorationDecoder,
    UITConfig,
    identity_loss,
    masked_patch_loss,
    patchify,
    random_patch_mask,
    sdm_loss,
    triplet_loss,
    unpatchify,
)


def unit(*rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_triplet_uses_hardest_different_identity_negative():
    # cosine similarities image i . text j (unit vectors in 2-D)
    image = unit([1.0, 0.0], [0.0, 1.0], [1.0, 1.0])
    text = unit([1.0, 0.0], [0.6, 0.8], [0.8, 0.6])
    ids = torch.tensor([0, 1, 0])  # images 0 and 2 are the same person
    sim = image @ text.T
    margin = 0.05
    # i2t: anchor 0 -> negatives {1}; anchor 1 -> {0, 2}; anchor 2 -> {1}
    i2t = [
        max(0.0, margin - sim[0, 0] + sim[0, 1]),
        max(0.0, margin - sim[1, 1] + max(sim[1, 0], sim[1, 2])),
        max(0.0, margin - sim[2, 2] + sim[2, 1]),
    ]
    t2i = [
        max(0.0, margin - sim[0, 0] + sim[1, 0]),
        max(0.0, margin - sim[1, 1] + max(sim[0, 1], sim[2, 1])),
        max(0.0, margin - sim[2, 2] + sim[1, 2]),
    ]
    expected = sum(float(v) for v in i2t) / 3 + sum(float(v) for v in t2i) / 3
    assert triplet_loss(image, text, ids, margin).item() == pytest.approx(expected, abs=1e-6)


def test_triplet_margin_and_single_identity():
    e = torch.eye(3)
    assert triplet_loss(e, e, torch.tensor([0, 1, 2]), margin=0.05).item() == 0.0
    assert triplet_loss(e, e, torch.tensor([0, 1, 2]), margin=1.5).item() == pytest.approx(1.0)
    assert triplet_loss(e, e, torch.tensor([4, 4, 4])).item() == 0.0


def test_sdm_matches_hand_computation():
    image = unit([1.0, 0.0], [0.0, 1.0])
    text = unit([1.0, 0.0], [1.0, 1.0])
    ids = torch.tensor([0, 1])
    tau = 0.5
    sim = image @ text.T / tau
    expected = 0.0
    for logits in (sim, sim.T):
        p = logits.softmax(dim=1)
        q = torch.eye(2)
        expected += float((p * (p.log() - (q + 1e-8).log())).sum(dim=1).mean())
    assert sdm_loss(image, text, ids, tau).item() == pytest.approx(expected, rel=1e-5)
    # one identity: the target is uniform, so equal similarities give zero loss
    equal_text = unit([1.0, 1.0], [1.0, 1.0])
    assert sdm_loss(image, equal_text, torch.tensor([7, 7])).item() == pytest.approx(0.0, abs=1e-5)


def test_identity_loss_uses_both_modalities():
    clf = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        clf.weight.copy_(torch.eye(2) * 20)
    ids = torch.tensor([0, 1])
    good = identity_loss(clf, torch.eye(2), torch.eye(2), ids)
    bad_text = identity_loss(clf, torch.eye(2), torch.eye(2).flip(0), ids)
    assert good.item() < 1e-6 < bad_text.item()


def test_patches_round_trip_and_mask_ratio():
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(unpatchify(patchify(x, 8), 8), x)
    mask = random_patch_mask(5, 16, 0.7, torch.Generator().manual_seed(0))
    assert mask.sum(dim=1).tolist() == [11] * 5


def test_restoration_loss_counts_masked_patches_only():
    target = torch.rand(2, 4, 6)
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    pred = target.clone().requires_grad_(True)
    moved = pred.detach().clone()
    moved[~mask] += 10.0  # errors on visible patches do not count
    assert masked_patch_loss(moved, target, mask).item() == 0.0
    noisy = pred + 1.0
    masked_patch_loss(noisy, target, mask).backward()
    assert pred.grad is not None
    assert torch.all(pred.grad[~mask] == 0)
    assert torch.all(pred.grad[mask] != 0)


def test_restoration_feeds_grey_masked_images_and_text(backbone):
    model = UIT(backbone, UITConfig(num_identities=2, decoder_width=16, decoder_heads=2))
    seen = {}
    original = backbone.encode_image

    def spy(pixel_values, *args, **kwargs):
        seen["x"] = pixel_values
        return original(pixel_values, *args, **kwargs)

    backbone.encode_image = spy  # type: ignore[method-assign]
    images = torch.rand(2, 3, 32, 32)
    text = backbone.encode_text(backbone.tokenize(["a red hat", "a man"]))
    mask = random_patch_mask(2, 16, 0.7)
    loss = model.restoration_loss(images, text.tokens, None, mask)
    x = seen["x"]
    assert torch.equal(x[:, 0], x[:, 1])  # grey
    patches = patchify(x, 8)
    assert torch.all(patches[mask] == 0)  # masked patches blanked
    assert torch.all(patches[~mask] > 0)
    assert loss.item() > 0
    # the decoder cross-attends to the text: other text, other prediction
    dec = model.decoder
    assert isinstance(dec, RestorationDecoder)
    tokens = torch.rand(2, 16, backbone.vision_width)
    a = dec(tokens, text.tokens)
    b = dec(tokens, torch.rand_like(text.tokens))
    assert not torch.allclose(a, b)


def test_loss_switches_and_fine_tuning(backbone):
    images = torch.rand(4, 3, 32, 32)
    ids = backbone.tokenize(["a red hat", "a man", "a red hat", "a woman"])
    identities = torch.tensor([0, 1, 0, 2])
    model = UIT(backbone, UITConfig(num_identities=3, decoder_width=16, decoder_heads=2))
    losses = model.losses(images, ids, identities)
    assert set(losses) == {"sdm", "id", "triplet", "restoration", "total"}
    assert backbone.parameter_count().frozen == 0  # UIT fine-tunes CLIP
    off = UITConfig(num_identities=3, sdm=False, id_loss=False, triplet=False, restoration=False)
    baseline = UIT(backbone, off).losses(images, ids, identities)
    assert set(baseline) == {"contrastive", "total"}
    with pytest.raises(ValueError, match="one caption and identity per image"):
        model.losses(images, ids[:3], identities)


def test_caption_augmentation_keeps_content_words(backbone):
    model = UIT(backbone, UITConfig(num_identities=2, augment_prob=1.0))
    assert model.augment(["a man wearing a red shirt ."]) == ["man red shirt"]
    off = UIT(backbone, UITConfig(num_identities=2, text_augmentation=False))
    assert off.augment(["a man wearing a red shirt ."]) == ["a man wearing a red shirt ."]
