import time

import pytest
import torch

from visionkit.datasets.shapes import (
    BACKGROUNDS,
    COLOURS,
    ENTAILMENT_LABELS,
    SHAPES,
    home_background,
    make_shape_entailment,
    make_shapes,
)


def test_seeded_and_shaped():
    a, b = make_shapes(20, seed=3), make_shapes(20, seed=3)
    assert torch.equal(a.images, b.images)
    assert a.captions == b.captions
    assert not torch.equal(a.images, make_shapes(20, seed=4).images)
    assert a.images.shape == (20, 3, 32, 32)
    assert a.images.dtype == torch.float32
    assert a.images.min() >= 0.0
    assert a.images.max() <= 1.0
    assert a.masks.shape == (20, 32, 32)
    assert a.masks.dtype == torch.bool
    assert make_shapes(2, image_size=48).images.shape == (2, 3, 48, 48)


def test_shortcut_correlation_and_shifted_split():
    train = make_shapes(2000, correlation=0.9, seed=0)
    home = torch.tensor([home_background(int(s)) for s in train.labels])
    assert (train.backgrounds == home).float().mean().item() == pytest.approx(0.9, abs=0.03)
    test = make_shapes(2000, shifted=True, seed=1)
    home = torch.tensor([home_background(int(s)) for s in test.labels])
    assert (test.backgrounds == home).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert len(torch.unique(test.groups)) == len(SHAPES) * len(BACKGROUNDS)


def test_masks_cover_the_coloured_shape_and_captions_describe_it():
    data = make_shapes(30, seed=2, background_caption_prob=1.0)
    for i in range(len(data)):
        caption = data.captions[i]
        assert SHAPES[data.labels[i]] in caption
        assert COLOURS[data.colours[i]] in caption
        assert caption.endswith(BACKGROUNDS[data.backgrounds[i]])
        assert 30 < int(data.masks[i].sum()) < 32 * 32 * 0.6
    sub = data.subset(torch.tensor([2, 0]))
    assert sub.captions == (data.captions[2], data.captions[0])
    assert len(data.subset(slice(0, 5))) == 5


def test_fast():
    start = time.perf_counter()
    make_shapes(3000, seed=0)
    assert time.perf_counter() - start < 5.0


def test_entailment_labels_are_consistent():
    data = make_shape_entailment(300, seed=0)
    base = make_shapes(300, shifted=True, seed=0)
    for i in range(len(data)):
        colour_ok = COLOURS[base.colours[i]] in data.captions[i].split()
        shape_ok = SHAPES[base.labels[i]] in data.captions[i].split()
        label = ENTAILMENT_LABELS[data.labels[i]]
        assert (colour_ok, shape_ok) == {
            "match": (True, True),
            "wrong colour": (False, True),
            "wrong shape": (True, False),
        }[label]
    counts = torch.bincount(data.labels, minlength=3)
    assert counts.min() > 70


def test_bad_arguments():
    with pytest.raises(ValueError, match="correlation"):
        make_shapes(5, correlation=1.5)
    with pytest.raises(ValueError, match="at least 16"):
        make_shapes(5, image_size=8)
    with pytest.raises(ValueError, match="positive"):
        make_shapes(0)
