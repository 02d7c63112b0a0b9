"""Synthetic "persons" for text-to-person retrieval.

An identity is a fixed combination of attributes (gender, hair colour, top colour, bottom colour
and type, hat, bag). Each image of an identity varies pose (arms, legs), position, mirror,
lighting and background; each identity has several captions written from templates and synonyms.
Identities are drawn from one fixed shuffled list of attribute combinations, so the training and
test identities (``identity_offset``) never overlap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from visionkit.datasets._draw import col, disc, grid, paint, rect

TOP_COLOURS: tuple[str, ...] = (
    "red",
    "blue",
    "green",
    "yellow",
    "black",
    "white",
    "purple",
    "orange",
)
BOTTOM_COLOURS: tuple[str, ...] = ("black", "blue", "gray", "brown", "white", "green")
HAIR_COLOURS: tuple[str, ...] = ("black", "brown", "blond")
HATS: tuple[str, ...] = ("none", "red", "black", "white")
BAGS: tuple[str, ...] = ("none", "backpack", "handbag")
BOTTOM_TYPES: tuple[str, ...] = ("trousers", "shorts")
GENDERS: tuple[str, ...] = ("man", "woman")

_RGB = {
    "red": (0.85, 0.1, 0.1),
    "blue": (0.15, 0.25, 0.85),
    "green": (0.1, 0.6, 0.2),
    "yellow": (0.95, 0.85, 0.1),
    "black": (0.06, 0.06, 0.06),
    "white": (0.95, 0.95, 0.95),
    "purple": (0.5, 0.15, 0.65),
    "orange": (1.0, 0.5, 0.05),
    "gray": (0.5, 0.5, 0.5),
    "brown": (0.45, 0.28, 0.1),
    "blond": (0.9, 0.8, 0.45),
}
_SKIN = np.array([0.9, 0.72, 0.58], dtype=np.float32)
_TOP_WORDS = ("shirt", "top", "sweater", "jacket")
_TROUSER_WORDS = ("trousers", "pants", "jeans")
_SUBJECTS = {"man": ("a man", "the man", "a guy"), "woman": ("a woman", "the woman", "a lady")}
_PRONOUNS = {"man": "he", "woman": "she"}
_WEAR = ("wearing", "who wears", "dressed in", "in")
#: Words the captions can contain (used to build the default tokenizer vocabulary).
WORDS: tuple[str, ...] = tuple(
    sorted(
        {
            *TOP_COLOURS,
            *BOTTOM_COLOURS,
            *HAIR_COLOURS,
            *_TOP_WORDS,
            *_TROUSER_WORDS,
            "shorts",
            "man",
            "woman",
            "guy",
            "lady",
            "the",
            "a",
            "he",
            "she",
            "his",
            "her",
            "wearing",
            "who",
            "wears",
            "dressed",
            "in",
            "and",
            "has",
            "long",
            "short",
            "hair",
            "hat",
            "cap",
            "is",
            "carrying",
            "backpack",
            "handbag",
            "bag",
            "with",
            "person",
            ".",
            ",",
        }
    )
)


@dataclass(frozen=True)
class Identity:
    """Attributes of one synthetic person."""

    gender: str
    hair: str
    top: str
    bottom: str
    bottom_type: str
    hat: str
    bag: str


def _all_identities() -> list[Identity]:
    combos = itertools.product(
        GENDERS, HAIR_COLOURS, TOP_COLOURS, BOTTOM_COLOURS, BOTTOM_TYPES, HATS, BAGS
    )
    people = [Identity(*c) for c in combos]
    order = np.random.default_rng(20240307).permutation(len(people))
    return [people[i] for i in order]


_IDENTITIES = _all_identities()


@dataclass(frozen=True)
class PersonsData:
    """A generated set of person images with identities and captions.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` float32 in ``[0, 1]``.
    identities : torch.Tensor
        ``(N,)`` int64 identity index (global: equal indices mean the same person).
    captions : tuple of str
        One caption per image, drawn from its identity's captions.
    identity_captions : dict
        Identity index -> all of its captions.
    """

    images: torch.Tensor
    identities: torch.Tensor
    captions: tuple[str, ...]
    identity_captions: dict[int, tuple[str, ...]]

    def __len__(self) -> int:
        return int(self.identities.shape[0])


def identity_attributes(index: int) -> Identity:
    """Attributes of global identity ``index``.

    Examples
    --------
    >>> identity_attributes(0).gender in GENDERS
    True
    """
    if not 0 <= index < len(_IDENTITIES):
        raise IndexError(f"identity index {index} is outside [0, {len(_IDENTITIES)})")
    return _IDENTITIES[index]


def describe(person: Identity, rng: np.random.Generator) -> str:
    """Write one caption for ``person`` with randomly chosen template and synonyms."""
    subject = _SUBJECTS[person.gender][rng.integers(3)]
    pron = _PRONOUNS[person.gender]
    top = _TOP_WORDS[rng.integers(len(_TOP_WORDS))]
    bottom = (
        _TROUSER_WORDS[rng.integers(len(_TROUSER_WORDS))]
        if person.bottom_type == "trousers"
        else "shorts"
    )
    length = "long" if person.gender == "woman" else "short"
    first = (
        f"{subject} {_WEAR[rng.integers(len(_WEAR))]} a {person.top} {top} "
        f"and {person.bottom} {bottom}"
    )
    extras = [f"{pron} has {length} {person.hair} hair"]
    if person.hat != "none":
        extras.append(f"{pron} wears a {person.hat} {('hat', 'cap')[rng.integers(2)]}")
    if person.bag != "none":
        extras.append(f"{pron} is carrying a {person.bag}")
    order = rng.permutation(len(extras))
    parts = [first] + [extras[i] for i in order]
    if rng.random() < 0.5:
        return " . ".join(parts) + " ."
    return " , ".join(parts) + " ."


def _render(people: list[Identity], size: int, rng: np.random.Generator) -> np.ndarray:
    n = len(people)
    s = size / 32.0
    yy, xx = grid(size, size)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    bg = rng.uniform(0.25, 0.75, (n, 3)).astype(np.float32)
    images[:] = bg[:, :, None, None]
    images += 0.04 * rng.normal(size=images.shape).astype(np.float32)
    cx = size / 2 + rng.uniform(-3, 3, n) * s
    top = rng.uniform(-1, 1.5, n) * s
    arms = rng.integers(0, 3, n)
    legs = rng.integers(0, 2, n)

    def rgb(name: str) -> np.ndarray:
        return np.asarray(_RGB[name], dtype=np.float32)

    def colours(attr: str) -> np.ndarray:
        return np.stack([rgb(getattr(p, attr)) for p in people])

    skin = np.broadcast_to(_SKIN, (n, 3)) * rng.uniform(0.8, 1.1, (n, 1)).astype(np.float32)
    woman = np.array([p.gender == "woman" for p in people])
    # hair behind the head (long for women)
    hair_long = rect(yy, xx, top + 3 * s, top + 13 * s, cx - 4 * s, cx + 4 * s) & woman.reshape(
        -1, 1, 1
    )
    hair_short = rect(yy, xx, top + 1.5 * s, top + 5 * s, cx - 3.5 * s, cx + 3.5 * s)
    paint(images, hair_long | hair_short, colours("hair"))
    head = disc(yy, xx, top + 6 * s, cx, np.full(n, 3.0 * s))
    face = head & ~(hair_short & (yy < col(top + 4 * s)))
    paint(images, face, skin)
    # legs
    apart = (legs == 1).reshape(-1, 1, 1)
    lx0 = np.where(apart, col(cx - 6 * s), col(cx - 4 * s))
    lx1 = np.where(apart, col(cx - 1.5 * s), col(cx - 0.5 * s))
    rx0 = np.where(apart, col(cx + 1.5 * s), col(cx + 0.5 * s))
    rx1 = np.where(apart, col(cx + 6 * s), col(cx + 4 * s))
    y_hip, y_feet = col(top + 20 * s), col(top + 29 * s)
    in_y = (yy >= y_hip) & (yy < y_feet)
    legs_mask = in_y & (((xx >= lx0) & (xx < lx1)) | ((xx >= rx0) & (xx < rx1)))
    paint(images, legs_mask, skin)
    shorts = np.array([p.bottom_type == "shorts" for p in people]).reshape(-1, 1, 1)
    cloth = legs_mask & ((yy < col(top + 24 * s)) | ~shorts)
    paint(images, cloth, colours("bottom"))
    feet = ((yy >= y_feet) & (yy < y_feet + 2 * s)) & (
        ((xx >= lx0) & (xx < lx1)) | ((xx >= rx0) & (xx < rx1))
    )
    paint(images, feet, np.full((n, 3), 0.1, dtype=np.float32))
    # torso and arms (sleeves in the top colour, hands in skin)
    torso = rect(yy, xx, top + 9.5 * s, top + 20 * s, cx - 4 * s, cx + 4 * s)
    left_down = rect(yy, xx, top + 10 * s, top + 19 * s, cx - 6 * s, cx - 4 * s)
    right_down = rect(yy, xx, top + 10 * s, top + 19 * s, cx + 4 * s, cx + 6 * s)
    left_out = rect(yy, xx, top + 10 * s, top + 12 * s, cx - 10 * s, cx - 4 * s)
    right_out = rect(yy, xx, top + 10 * s, top + 12 * s, cx + 4 * s, cx + 10 * s)
    right_up = rect(yy, xx, top + 2 * s, top + 12 * s, cx + 4 * s, cx + 6 * s)
    a = arms.reshape(-1, 1, 1)
    arm_mask = np.select(
        [a == 0, a == 1, a == 2],
        [left_down | right_down, left_out | right_out, left_down | right_up],
    )
    paint(images, torso | arm_mask, colours("top"))
    # bags
    bag = np.array([BAGS.index(p.bag) for p in people]).reshape(-1, 1, 1)
    backpack = rect(yy, xx, top + 10 * s, top + 18 * s, cx - 7 * s, cx - 4 * s) & (bag == 1)
    handbag = rect(yy, xx, top + 17 * s, top + 21 * s, cx + 6 * s, cx + 9.5 * s) & (bag == 2)
    paint(images, backpack | handbag, np.broadcast_to(rgb("brown"), (n, 3)))
    # hats
    has_hat = np.array([p.hat != "none" for p in people]).reshape(-1, 1, 1)
    hat = rect(yy, xx, top + 0.5 * s, top + 4 * s, cx - 4.5 * s, cx + 4.5 * s) & has_hat
    hat_rgb = np.stack([rgb(p.hat) if p.hat != "none" else rgb("black") for p in people])
    paint(images, hat, hat_rgb)
    images *= rng.uniform(0.85, 1.15, (n, 1, 1, 1)).astype(np.float32)
    flip = rng.random(n) < 0.5
    images[flip] = images[flip][..., ::-1]
    return np.clip(images, 0.0, 1.0)


def make_persons(
    num_identities: int,
    images_per_identity: int = 4,
    *,
    captions_per_identity: int = 3,
    identity_offset: int = 0,
    image_size: int = 32,
    seed: int = 0,
) -> PersonsData:
    """Generate images and captions of synthetic persons.

    Parameters
    ----------
    num_identities : int
        Number of distinct persons.
    images_per_identity : int
        Images rendered per person (different pose, position, light, background).
    captions_per_identity : int
        Distinct captions written per person; each image gets one of them.
    identity_offset : int
        First global identity index; use disjoint ranges for train and test splits.
    image_size : int
        Height and width in pixels (at least 16).
    seed : int
        Seed for rendering and captions.

    Returns
    -------
    PersonsData

    Examples
    --------
    >>> data = make_persons(3, 2, seed=0)
    >>> tuple(data.images.shape), data.identities.tolist()
    ((6, 3, 32, 32), [0, 0, 1, 1, 2, 2])
    """
    if num_identities < 1 or images_per_identity < 1 or captions_per_identity < 1:
        raise ValueError(
            "make_persons: num_identities, images_per_identity and captions_per_identity must be "
            f"positive, got {num_identities}, {images_per_identity}, {captions_per_identity}"
        )
    if identity_offset < 0 or identity_offset + num_identities > len(_IDENTITIES):
        raise ValueError(
            f"make_persons: identities [{identity_offset}, {identity_offset + num_identities}) "
            f"exceed the {len(_IDENTITIES)} attribute combinations available"
        )
    if image_size < 16:
        raise ValueError(f"make_persons: image_size must be at least 16 pixels, got {image_size}")
    rng = np.random.default_rng(seed)
    ids = np.repeat(
        np.arange(identity_offset, identity_offset + num_identities), images_per_identity
    )
    people = [_IDENTITIES[i] for i in ids]
    images = _render(people, image_size, rng)
    identity_captions: dict[int, tuple[str, ...]] = {}
    for i in range(identity_offset, identity_offset + num_identities):
        caption_rng = np.random.default_rng([seed, i])
        texts: list[str] = []
        for _ in range(20 * captions_per_identity):
            text = describe(_IDENTITIES[i], caption_rng)
            if text not in texts:
                texts.append(text)
            if len(texts) == captions_per_identity:
                break
        identity_captions[i] = tuple(texts)
    pick = rng.integers(0, 1 << 30, ids.shape[0])
    captions = tuple(
        identity_captions[int(i)][int(k) % len(identity_captions[int(i)])]
        for i, k in zip(ids, pick, strict=True)
    )
    return PersonsData(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        identities=torch.from_numpy(ids.astype(np.int64)),
        captions=captions,
        identity_captions=identity_captions,
    )
