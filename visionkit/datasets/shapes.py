"""Coloured shapes on textured backgrounds, with captions and a controllable shortcut.

Each image shows one shape (the class) of some colour on one background texture. In the training
split the background agrees with the shape's "home" background with probability ``correlation``
(a spurious shortcut); the shifted test split draws backgrounds independently of the shape, so
every (shape, background) group appears and worst-group accuracy exposes shortcut learning.
Foreground masks are returned for the test-time-adaptation views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from visionkit.datasets._draw import col, grid

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
COLOURS: tuple[str, ...] = ("red", "yellow", "purple", "orange", "black", "pink")
BACKGROUNDS: tuple[str, ...] = ("grass", "sand", "water", "snow")
SIZES: tuple[str, ...] = ("small", "large")

_COLOUR_RGB = np.array(
    [
        [0.90, 0.10, 0.10],
        [0.95, 0.90, 0.10],
        [0.55, 0.15, 0.75],
        [1.00, 0.55, 0.05],
        [0.05, 0.05, 0.05],
        [1.00, 0.45, 0.75],
    ],
    dtype=np.float32,
)
_BACKGROUND_RGB = np.array(
    [[0.20, 0.60, 0.20], [0.85, 0.75, 0.50], [0.15, 0.35, 0.80], [0.92, 0.92, 0.95]],
    dtype=np.float32,
)
_TEMPLATES: tuple[str, ...] = (
    "a {size} {colour} {shape}",
    "a photo of a {colour} {shape}",
    "a {colour} {shape} in the picture",
    "there is a {size} {shape} that is {colour}",
)
#: Words the captions can contain (used to build the default tokenizer vocabulary).
WORDS: tuple[str, ...] = (
    *SHAPES,
    *COLOURS,
    *BACKGROUNDS,
    *SIZES,
    "a",
    "photo",
    "of",
    "on",
    "in",
    "the",
    "picture",
    "there",
    "is",
    "that",
)


@dataclass(frozen=True)
class ShapesData:
    """A generated split of the shapes dataset.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` float32 in ``[0, 1]``.
    masks : torch.Tensor
        ``(N, H, W)`` bool, true on the shape (foreground).
    labels : torch.Tensor
        ``(N,)`` int64 shape index into :data:`SHAPES` (the class).
    colours, backgrounds : torch.Tensor
        ``(N,)`` int64 indices into :data:`COLOURS` and :data:`BACKGROUNDS`.
    captions : tuple of str
        One caption per image.
    """

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    colours: torch.Tensor
    backgrounds: torch.Tensor
    captions: tuple[str, ...]

    @property
    def groups(self) -> torch.Tensor:
        """Group index ``shape * len(BACKGROUNDS) + background`` for worst-group accuracy."""
        return self.labels * len(BACKGROUNDS) + self.backgrounds

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in label order."""
        return SHAPES

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor | slice) -> ShapesData:
        """Return the images selected by ``index`` (a slice or an index tensor)."""
        if isinstance(index, slice):
            caps = self.captions[index]
        else:
            caps = tuple(self.captions[int(i)] for i in index)
        return ShapesData(
            self.images[index],
            self.masks[index],
            self.labels[index],
            self.colours[index],
            self.backgrounds[index],
            caps,
        )


def home_background(shape: int) -> int:
    """Index of the background a shape co-occurs with in the training split (the shortcut)."""
    return shape % len(BACKGROUNDS)


def _shape_masks(
    kind: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray, size: int
) -> np.ndarray:
    yy, xx = grid(size, size)
    dy = yy - col(cy)
    dx = xx - col(cx)
    rr = col(r)
    circle = dx**2 + dy**2 <= rr**2
    square = (np.abs(dx) <= 0.85 * rr) & (np.abs(dy) <= 0.85 * rr)
    triangle = (dy <= 0.8 * rr) & (dy >= -rr) & (np.abs(dx) <= 0.6 * (dy + rr))
    bar = rr / 3.0
    cross = ((np.abs(dx) <= bar) & (np.abs(dy) <= rr)) | ((np.abs(dy) <= bar) & (np.abs(dx) <= rr))
    k = kind.reshape(-1, 1, 1)
    return np.select([k == 0, k == 1, k == 2, k == 3], [circle, square, triangle, cross])


def _backgrounds(kind: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    n = kind.shape[0]
    yy, xx = grid(size, size)
    base = _BACKGROUND_RGB[kind][:, :, None, None]
    noise = rng.normal(0.0, 1.0, (n, 1, size, size)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32)
    waves = np.sin(yy[None] * 1.2 + phase + 0.3 * xx[None]).astype(np.float32)
    k = kind.reshape(-1, 1, 1, 1)
    amplitude = np.select(
        [k == 0, k == 1, k == 2, k == 3],
        [0.10 * noise, 0.05 * noise, 0.10 * waves + 0.02 * noise, 0.03 * noise],
    )
    return np.clip(base + amplitude, 0.0, 1.0).astype(np.float32)


def make_shapes(
    n: int,
    *,
    correlation: float = 0.9,
    shifted: bool = False,
    image_size: int = 32,
    background_caption_prob: float = 0.0,
    seed: int = 0,
) -> ShapesData:
    """Generate ``n`` coloured-shape images with captions and masks.

    Parameters
    ----------
    n : int
        Number of images.
    correlation : float
        Probability that an image's background is its shape's home background (training split);
        the other backgrounds share the rest uniformly. ``1 / len(BACKGROUNDS)`` removes the
        shortcut.
    shifted : bool
        If true, ignore ``correlation`` and balance the groups: background independent of shape
        (the shifted test split).
    image_size : int
        Height and width in pixels (at least 16).
    background_caption_prob : float
        Probability that a caption also names the background (``"... on sand"``).
    seed : int
        Seed; the same arguments give identical data.

    Returns
    -------
    ShapesData

    Examples
    --------
    >>> data = make_shapes(8, seed=0)
    >>> tuple(data.images.shape), tuple(data.masks.shape), len(data.captions)
    ((8, 3, 32, 32), (8, 32, 32), 8)
    """
    if n < 1:
        raise ValueError(f"make_shapes: n must be positive, got {n}")
    if image_size < 16:
        raise ValueError(f"make_shapes: image_size must be at least 16 pixels, got {image_size}")
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"make_shapes: correlation must lie in [0, 1], got {correlation}")
    rng = np.random.default_rng(seed)
    nb = len(BACKGROUNDS)
    labels = rng.integers(0, len(SHAPES), n)
    if shifted:
        backgrounds = rng.integers(0, nb, n)
    else:
        home = labels % nb
        other = (home + rng.integers(1, nb, n)) % nb
        backgrounds = np.where(rng.random(n) < correlation, home, other)
    colours = rng.integers(0, len(COLOURS), n)
    large = rng.random(n) < 0.5
    radius = np.where(large, rng.uniform(0.34, 0.42, n), rng.uniform(0.24, 0.30, n)) * image_size
    margin = radius + 1.0
    cy = rng.uniform(margin, image_size - margin)
    cx = rng.uniform(margin, image_size - margin)
    masks = _shape_masks(labels, cy, cx, radius, image_size)
    images = _backgrounds(backgrounds, image_size, rng)
    rgb = _COLOUR_RGB[colours][:, :, None, None]
    shade = 1.0 + 0.05 * rng.normal(size=(n, 1, image_size, image_size)).astype(np.float32)
    fg = np.clip(rgb * shade, 0.0, 1.0)
    images = np.where(masks[:, None], fg, images).astype(np.float32)
    template = rng.integers(0, len(_TEMPLATES), n)
    with_bg = rng.random(n) < background_caption_prob
    captions = []
    for i in range(n):
        text = _TEMPLATES[template[i]].format(
            size=SIZES[int(large[i])], colour=COLOURS[colours[i]], shape=SHAPES[labels[i]]
        )
        if with_bg[i]:
            text += f" on {BACKGROUNDS[backgrounds[i]]}"
        captions.append(text)
    return ShapesData(
        images=torch.from_numpy(images),
        masks=torch.from_numpy(masks.astype(bool)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        colours=torch.from_numpy(colours.astype(np.int64)),
        backgrounds=torch.from_numpy(backgrounds.astype(np.int64)),
        captions=tuple(captions),
    )


ENTAILMENT_LABELS: tuple[str, ...] = ("match", "wrong colour", "wrong shape")


@dataclass(frozen=True)
class EntailmentData:
    """Image-caption pairs labelled by whether the caption describes the image.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` images from :func:`make_shapes`.
    captions : tuple of str
        ``"a {colour} {shape}"``-style captions, true or altered.
    labels : torch.Tensor
        ``(N,)`` int64 index into :data:`ENTAILMENT_LABELS`.
    """

    images: torch.Tensor
    captions: tuple[str, ...]
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def make_shape_entailment(n: int, *, image_size: int = 32, seed: int = 0) -> EntailmentData:
    """A visual-entailment task on shapes: does the caption match the image?

    A third of the captions are true, a third name another colour, a third another shape, so
    neither modality alone beats chance: the image and the caption must be compared (the kind
    of fusion MoPE's text-conditioned prompts allow and a head on concatenated features lacks).
    Backgrounds are independent of the shape.

    Examples
    --------
    >>> data = make_shape_entailment(6, seed=0)
    >>> len(data.captions), data.labels.shape
    (6, torch.Size([6]))
    """
    base = make_shapes(n, shifted=True, image_size=image_size, seed=seed)
    rng = np.random.default_rng([seed, 1])
    labels = rng.integers(0, len(ENTAILMENT_LABELS), n)
    colours = base.colours.numpy().copy()
    shapes = base.labels.numpy().copy()
    wrong_colour = labels == 1
    wrong_shape = labels == 2
    colours[wrong_colour] = (
        colours[wrong_colour] + rng.integers(1, len(COLOURS), int(wrong_colour.sum()))
    ) % len(COLOURS)
    shapes[wrong_shape] = (
        shapes[wrong_shape] + rng.integers(1, len(SHAPES), int(wrong_shape.sum()))
    ) % len(SHAPES)
    templates = ("a {c} {s}", "a photo of a {c} {s}", "a {c} {s} in the picture")
    pick = rng.integers(0, len(templates), n)
    captions = tuple(
        templates[pick[i]].format(c=COLOURS[colours[i]], s=SHAPES[shapes[i]]) for i in range(n)
    )
    return EntailmentData(
        images=base.images, captions=captions, labels=torch.from_numpy(labels.astype(np.int64))
    )
