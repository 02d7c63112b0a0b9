r"""TPT: test-time prompt tuning by entropy minimisation over confident augmented views.

For each test image, ``num_views`` views (the image and random resized crops/flips) are encoded;
the ``confidence_fraction`` of views with the lowest prediction entropy is kept, and the context
:math:`\mathbf{c}` takes ``steps`` AdamW steps on the entropy of their mean prediction

.. math::

    \mathcal{L}(\mathbf{c}) = H\Big(\frac{1}{|S|}\sum_{v\in S} p_{\mathbf{c}}(\cdot\mid v)\Big).

The image is classified with the tuned context and the context is reset (episodic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

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
from visionkit.augment import random_resized_crops
from visionkit.backbones.base import DualEncoder
from visionkit.methods.context import ContextClassifier
from visionkit.methods.invariant_tta import marginal_entropy


@dataclass(frozen=True)
class TPTConfig:
    """TPT hyper-parameters (paper: 64 views, top 10 %, one AdamW step, lr 5e-3)."""

    num_views: int = 64
    confidence_fraction: float = 0.1
    steps: int = 1
    lr: float = 5e-3
    init_context: str = "a photo of a"

    def __post_init__(self) -> None:
        if self.num_views < 1 or not 0 < self.confidence_fraction <= 1 or self.steps < 0:
            raise ValueError(
                "TPTConfig: num_views >= 1, 0 < confidence_fraction <= 1 and steps >= 0 required"
            )


class TPT:
    """Episodic test-time prompt tuning (the baseline of invariant TTA).

    Parameters
    ----------
    backbone : DualEncoder
        Frozen image/text encoder; never modified (it is on ``device`` only while a call runs,
        then back where it was).
    class_names : sequence of str
        Class names for the zero-shot prompts.
    config : TPTConfig
        Hyper-parameters.
    seed : int
        Seed of every image's views (drawn on the CPU, so they do not depend on ``device``).
    device : str, torch.device or None
        Where the encoders run and the context is tuned: ``"cpu"`` (default), ``"cuda"``,
        ``"cuda:N"``, ``"mps"`` or ``"auto"``; see :func:`esmscale.devices.resolve_device`.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the encoders and the entropy loss; the context stays float32.
        fp16 is refused on the CPU.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> tpt = TPT(bb, ["circle", "square"], TPTConfig(num_views=8))
    >>> tpt.predict(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 2])
    """

    name = "tpt"

    def __init__(
        self,
        backbone: DualEncoder,
        class_names: Sequence[str],
        config: TPTConfig | None = None,
        *,
        seed: int = 0,
        device: DeviceLike = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.device = check(device, precision)
        self.precision = precision
        self.config = config if config is not None else TPTConfig()
        self.classifier = ContextClassifier(backbone, class_names, self.config.init_context)
        self.seed = seed

    def adapt_one(
        self, image: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tune on one ``(C, H, W)`` image; return its logits and the tuned context, then reset.

        Both come back on the CPU as float32; the views are drawn on the CPU.
        """
        clf = self.classifier
        prec = self.precision
        with on_device(clf, self.device) as dev:
            clf.reset()
            host = image.detach().cpu()
            views = [host.unsqueeze(0)]
            if self.config.num_views > 1:
                views.append(
                    random_resized_crops(host, self.config.num_views - 1, generator=generator)
                )
            with autocast(dev, prec):
                emb = clf.image_embeddings(to_device(torch.cat(views), dev))
            keep = max(1, round(self.config.confidence_fraction * emb.shape[0]))
            with torch.no_grad(), autocast(dev, prec):
                logp = clf.logits_from_embeddings(emb).log_softmax(-1)
                entropy = -(logp.exp() * logp).sum(-1)
                selected = emb[entropy.argsort()[:keep]]
            optimizer = torch.optim.AdamW([clf.context], lr=self.config.lr)
            scaler = grad_scaler(dev, prec)
            for _ in range(self.config.steps):
                with autocast(dev, prec):
                    loss = marginal_entropy(clf.logits_from_embeddings(selected))
                optimizer_step(loss, optimizer, scaler)
            with torch.no_grad(), autocast(dev, prec):
                logits = clf.logits_from_embeddings(emb[:1])[0]
            tuned = clf.context.detach().clone()
            clf.reset()
        return to_host(logits), to_host(tuned)

    def predict(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Adapted logits ``(N, C)`` on the CPU as float32.

        ``masks`` is accepted for interface parity and ignored.
        """
        self.classifier.backbone.check_images(images, "images")
        with on_device(self.classifier, self.device):
            return torch.stack(
                [self.adapt_one(img, torch.Generator().manual_seed(self.seed))[0] for img in images]
            )
