r"""Invariant test-time prompt tuning (erasing spurious background features per test image).

For each test image :math:`x` with foreground mask :math:`m`, auxiliary views are built:

- foreground views :math:`x_f` (zoom-in crops centred on the object, random margin and mirror;
  or, with ``foreground_mode="mask"``, the object on a neutral fill),
- background-only views :math:`x_b` (the object's bounding box filled with the mean background
  colour, and its mirror image),
- a blank image.

Only the text context :math:`\mathbf{c}` is tuned, for ``steps`` AdamW steps, on

.. math::

    \mathcal{L}(\mathbf{c}) = \lambda_b \frac{1}{|B|}\sum_{v \in B}
        \mathrm{KL}\big(p_{\mathbf{c}}(\cdot\mid v)\,\|\,\mathcal{U}\big)
        + \lambda_f\, H\Big(\frac{1}{|F|}\sum_{v \in F} p_{\mathbf{c}}(\cdot\mid v)\Big),

where :math:`B` holds the background-only and blank views and :math:`F` the foreground views:
background evidence is pushed towards the uniform distribution (it should not predict the class)
while foreground predictions stay confident and consistent (the entropy of their mean is low only
if every view agrees). The image is then classified with the tuned context, and the context and
optimiser are reset before the next image (episodic adaptation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from visionkit._device import (
    DeviceLike,
    autocast,
    check,
    grad_scaler,
    on_device,
    optimizer_step,
    to_device,
    to_host,
)
from visionkit.augment import crops_around, random_resized_crops
from visionkit.backbones.base import DualEncoder
from visionkit.methods.context import ContextClassifier


@dataclass(frozen=True)
class InvariantTTAConfig:
    r"""Hyper-parameters (paper defaults: 20 AdamW steps, learning rate 5e-4).

    Attributes
    ----------
    steps, lr, weight_decay : int, float, float
        AdamW steps and settings per test image.
    background_weight, foreground_weight : float
        :math:`\lambda_b` and :math:`\lambda_f`.
    num_foreground_views : int
        Foreground views.
    foreground_mode : {"crop", "mask"}
        ``"crop"``: zoom-in crops centred on the object's box (random margin and mirror; the
        first is the tightest). ``"mask"``: the object on a neutral grey fill, then random
        crops/flips of it.
    include_blank : bool
        Add the blank image to the background views.
    fill : float
        Grey level of the neutral fill and the blank image.
    init_context : str
        Prompt whose embeddings initialise the context.
    """

    steps: int = 20
    lr: float = 5e-4
    weight_decay: float = 0.01
    background_weight: float = 1.0
    foreground_weight: float = 1.0
    num_foreground_views: int = 4
    foreground_mode: str = "crop"
    include_blank: bool = True
    fill: float = 0.5
    init_context: str = "a photo of a"

    def __post_init__(self) -> None:
        if self.steps < 0 or self.lr <= 0 or self.num_foreground_views < 1:
            raise ValueError("InvariantTTAConfig: steps >= 0, lr > 0, num_foreground_views >= 1")
        if self.foreground_mode not in ("crop", "mask"):
            raise ValueError(
                f"InvariantTTAConfig: foreground_mode must be 'crop' or 'mask', got "
                f"{self.foreground_mode!r}"
            )


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    r"""Mean :math:`\mathrm{KL}(p\,\|\,\mathcal{U}) = \log C - H(p)` over rows of ``logits``.

    Examples
    --------
    >>> kl_to_uniform(torch.zeros(3, 4)).item()
    0.0
    """
    logp = F.log_softmax(logits, dim=-1)
    kl = (logp.exp() * logp).sum(dim=-1) + math.log(logits.shape[-1])
    return kl.mean()


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean predicted distribution over the rows of ``logits``.

    Examples
    --------
    >>> round(marginal_entropy(torch.tensor([[9.0, -9.0], [-9.0, 9.0]])).item(), 4)
    0.6931
    """
    logp = F.log_softmax(logits, dim=-1)
    mean_logp = torch.logsumexp(logp, dim=0) - math.log(logits.shape[0])
    return -(mean_logp.exp() * mean_logp).sum()


def auxiliary_views(
    image: torch.Tensor,
    mask: torch.Tensor,
    config: InvariantTTAConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background(+blank) views of one image.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` image.
    mask : torch.Tensor
        ``(H, W)`` boolean foreground mask.

    Returns
    -------
    foreground, background : torch.Tensor
        ``(F, C, H, W)`` and ``(B, C, H, W)`` views.

    Examples
    --------
    >>> img, m = torch.rand(3, 8, 8), torch.zeros(8, 8, dtype=torch.bool)
    >>> m[2:5, 2:5] = True
    >>> fg, bg = auxiliary_views(img, m, InvariantTTAConfig(num_foreground_views=3))
    >>> tuple(fg.shape), tuple(bg.shape)
    ((3, 3, 8, 8), (3, 3, 8, 8))
    """
    if image.ndim != 3 or mask.shape != image.shape[1:]:
        raise ValueError(
            f"auxiliary_views: image {tuple(image.shape)} and mask {tuple(mask.shape)} must be "
            "(C, H, W) and (H, W)"
        )
    m = mask.to(torch.bool)
    fill = torch.full_like(image, config.fill)
    h, w = m.shape
    if m.any():
        rows = m.any(dim=1).nonzero().flatten()
        cols = m.any(dim=0).nonzero().flatten()
        bounds = (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))
        box = torch.zeros_like(m)
        box[
            max(bounds[0] - 1, 0) : min(bounds[1] + 2, h),
            max(bounds[2] - 1, 0) : min(bounds[3] + 2, w),
        ] = True
    else:  # no object: the whole image is background, foreground views fall back to it
        bounds = (0, h - 1, 0, w - 1)
        box = m
    n_fg = config.num_foreground_views
    if config.foreground_mode == "crop":
        fg_views = list(crops_around(image, bounds, n_fg, generator=generator))
    else:
        foreground = torch.where(m, image, fill)
        fg_views = [foreground]
        if n_fg > 1:
            fg_views.extend(
                random_resized_crops(foreground, n_fg - 1, scale=(0.6, 1.0), generator=generator)
            )
    outside = ~box
    if outside.any():
        mean_bg = image[:, outside].mean(dim=1)
    else:
        mean_bg = torch.full((image.shape[0],), config.fill, dtype=image.dtype)
    background = torch.where(box, mean_bg[:, None, None], image)
    bg_views = [background, background.flip(-1)]
    if config.include_blank:
        bg_views.append(fill)
    return torch.stack(fg_views), torch.stack(bg_views)


def invariance_loss(
    foreground_logits: torch.Tensor, background_logits: torch.Tensor, config: InvariantTTAConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted ``(background term, foreground term)`` of the tuning objective."""
    bg = config.background_weight * kl_to_uniform(background_logits)
    fg = config.foreground_weight * marginal_entropy(foreground_logits)
    return bg, fg


class InvariantTTA:
    """Episodic invariant test-time prompt tuning on a frozen dual encoder.

    Parameters
    ----------
    backbone : DualEncoder
        Frozen image/text encoder; never modified (it is on ``device`` only while a call runs,
        then back where it was).
    class_names : sequence of str
        Class names for the zero-shot prompts.
    config : InvariantTTAConfig
        Hyper-parameters.
    seed : int
        Seed of every image's augmentations (drawn on the CPU, so they do not depend on
        ``device``).
    device : str, torch.device or None
        Where the encoders run and the context is tuned: ``"cpu"`` (default), ``"cuda"``,
        ``"cuda:N"``, ``"mps"`` or ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error listing the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the encoders and the tuning loss (``"fp32"``: none); the context
        stays float32. fp16 is refused on the CPU.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> from visionkit.datasets import make_shapes, SHAPES
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> data = make_shapes(2, seed=0)
    >>> tta = InvariantTTA(bb, SHAPES, InvariantTTAConfig(steps=2))
    >>> tta.predict(data.images, data.masks).shape
    torch.Size([2, 4])
    >>> bf16 = InvariantTTA(bb, SHAPES, InvariantTTAConfig(steps=2), precision="bf16")
    >>> bf16.predict(data.images, data.masks).dtype
    torch.float32
    """

    name = "invariant_tta"

    def __init__(
        self,
        backbone: DualEncoder,
        class_names: Sequence[str],
        config: InvariantTTAConfig | None = None,
        *,
        seed: int = 0,
        device: DeviceLike = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.device = check(device, precision)
        self.precision = precision
        self.config = config if config is not None else InvariantTTAConfig()
        self.classifier = ContextClassifier(backbone, class_names, self.config.init_context)
        self.seed = seed

    def adapt_one(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tune the context on one image, classify it, reset.

        The views are built on the CPU (with ``generator``), then encoded on ``self.device``.

        Returns
        -------
        logits, tuned_context : torch.Tensor
            ``(C,)`` logits of the image with the tuned context, and a copy of that context,
            on the CPU as float32.
        """
        clf = self.classifier
        prec = self.precision
        with on_device(clf, self.device) as dev:
            clf.reset()
            fg, bg = auxiliary_views(image.detach().cpu(), mask.cpu(), self.config, generator)
            with autocast(dev, prec):
                fg_emb = clf.image_embeddings(to_device(fg, dev))
                bg_emb = clf.image_embeddings(to_device(bg, dev))
                img_emb = clf.image_embeddings(to_device(image.unsqueeze(0), dev))
            optimizer = torch.optim.AdamW(
                [clf.context], lr=self.config.lr, weight_decay=self.config.weight_decay
            )
            scaler = grad_scaler(dev, prec)
            for _ in range(self.config.steps):
                with autocast(dev, prec):
                    both = clf.logits_from_embeddings(torch.cat([fg_emb, bg_emb]))
                    bg_term, fg_term = invariance_loss(
                        both[: len(fg_emb)], both[len(fg_emb) :], self.config
                    )
                optimizer_step(bg_term + fg_term, optimizer, scaler)
            with torch.no_grad(), autocast(dev, prec):
                logits = clf.logits_from_embeddings(img_emb)[0]
            tuned = clf.context.detach().clone()
            clf.reset()
        return to_host(logits), to_host(tuned)

    def predict(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Adapted logits ``(N, C)`` for a batch, each image adapted on its own.

        ``masks`` are ``(N, H, W)`` boolean foreground masks (from the data or a segmenter).
        Each image's augmentations use a generator seeded with ``seed``, so an image's result
        does not depend on the other images in the batch. The logits come back on the CPU as
        float32 whatever ``device`` and ``precision``.
        """
        self.classifier.backbone.check_images(images, "images")
        if masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(
                f"masks have shape {tuple(masks.shape)}; expected (N, H, W) = "
                f"{(images.shape[0], *images.shape[2:])}, one foreground mask per image"
            )
        with on_device(self.classifier, self.device):
            # a fresh generator per image: an image's result does not depend on its batch
            return torch.stack(
                [
                    self.adapt_one(img, m, torch.Generator().manual_seed(self.seed))[0]
                    for img, m in zip(images, masks, strict=True)
                ]
            )
