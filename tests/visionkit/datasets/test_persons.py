import time

import pytest
import torch

from visionkit.datasets.persons import identity_attributes, make_persons


def test_seeded_and_shaped():
    a, b = make_persons(4, 3, seed=1), make_persons(4, 3, seed=1)
    assert torch.equal(a.images, b.images)
    assert a.captions == b.captions
    assert a.images.shape == (12, 3, 32, 32)
    assert a.identities.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_images_of_one_identity_differ():
    data = make_persons(2, 4, seed=0)
    assert not torch.equal(data.images[0], data.images[1])


def test_several_captions_per_identity_describe_the_attributes():
    data = make_persons(10, 2, captions_per_identity=3, seed=0)
    for ident, captions in data.identity_captions.items():
        person = identity_attributes(ident)
        assert len(set(captions)) == 3
        for caption in captions:
            words = caption.split()
            assert person.top in words
            assert person.bottom in words
            assert ("he" in words) == (person.gender == "man")
            assert ("hat" in words or "cap" in words) == (person.hat != "none")
    for caption, ident in zip(data.captions, data.identities, strict=True):
        assert caption in data.identity_captions[int(ident)]


def test_offsets_give_disjoint_identities():
    train = make_persons(5, 1, seed=0)
    test = make_persons(5, 1, identity_offset=100, seed=0)
    assert not set(train.identities.tolist()) & set(test.identities.tolist())
    attrs = {identity_attributes(i) for i in range(200)}
    assert len(attrs) == 200
    with pytest.raises(ValueError, match="exceed"):
        make_persons(10, 1, identity_offset=10**6)


def test_fast():
    start = time.perf_counter()
    make_persons(250, 8, seed=0)
    assert time.perf_counter() - start < 5.0
