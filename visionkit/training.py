"""Training loops: contrastive pre-training of a tiny CLIP and a generic minibatch fitter."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from visionkit.backbones.base import DualEncoder


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every training loop.

    Attributes
    ----------
    steps : int
        Optimiser steps.
    batch_size : int
        Examples per step (drawn without replacement within an epoch).
    lr, weight_decay : float
        AdamW settings.
    warmup : int
        Linear warm-up steps, then cosine decay to 0.
    grad_clip : float
        Gradient-norm clip (``0`` disables).
    seed : int
        Seed of the batch order and any training noise.
    """

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 20
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("TrainConfig: steps >= 0, batch_size >= 1 and lr > 0 are required")


def _schedule(config: TrainConfig) -> Callable[[int], float]:
    import math

    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        span = max(1, config.steps - config.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup) / span)))

    return factor


def batches(n: int, config: TrainConfig) -> Iterable[torch.Tensor]:
    """Index batches for ``config.steps`` steps over ``n`` examples (reshuffled every epoch).

    Examples
    --------
    >>> [len(b) for b in batches(10, TrainConfig(steps=3, batch_size=4))]
    [4, 4, 4]
    """
    if n < 1:
        raise ValueError("cannot train on an empty dataset")
    gen = torch.Generator().manual_seed(config.seed)
    size = min(config.batch_size, n)
    order = torch.randperm(n, generator=gen)
    pos = 0
    for _ in range(config.steps):
        if pos + size > n:
            order = torch.randperm(n, generator=gen)
            pos = 0
        yield order[pos : pos + size]
        pos += size


def fit(
    parameters: Sequence[nn.Parameter],
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    config: TrainConfig,
) -> list[float]:
    """Minimise ``loss_fn(batch_indices)`` over ``parameters`` with AdamW; return the losses."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("fit: nothing to train (no parameter requires grad)")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    history: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        for idx in batches(n, config):
            loss = loss_fn(idx)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at step {len(history)}; lower lr"
                )
            optimizer.zero_grad()
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            history.append(float(loss.detach()))
    return history


def contrastive_loss(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) loss of matched rows.

    Examples
    --------
    >>> e = torch.eye(3)
    >>> contrastive_loss(e, e, torch.tensor(100.0)).item() < 1e-6
    True
    """
    img = F.normalize(image_embeds, dim=-1)
    txt = F.normalize(text_embeds, dim=-1)
    logits = scale * img @ txt.t()
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def pretrain_contrastive(
    backbone: DualEncoder,
    images: torch.Tensor,
    input_ids: torch.Tensor,
    config: TrainConfig,
    *,
    groups: torch.Tensor | None = None,
) -> list[float]:
    """Train every backbone weight with the CLIP loss on image-caption pairs, then freeze.

    ``groups`` (optional, ``(N,)``) marks pairs that describe the same thing (for example the
    same person): other pairs of the same group are removed from a row's negatives.
    """
    backbone.check_images(images, "images")
    if images.shape[0] != input_ids.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {input_ids.shape[0]} captions")
    backbone.unfreeze()
    backbone.train()

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        img = backbone.encode_image(images[idx]).embeds
        txt = backbone.encode_text(input_ids[idx]).embeds
        if groups is None:
            return contrastive_loss(img, txt, backbone.logit_scale)
        g = groups[idx]
        same = (g[:, None] == g[None, :]) & ~torch.eye(len(idx), dtype=torch.bool)
        logits = backbone.similarity(img, txt).masked_fill(same, float("-inf"))
        target = torch.arange(len(idx))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2

    try:
        history = fit(list(backbone.parameters()), loss_fn, images.shape[0], config)
    finally:
        backbone.eval()
        backbone.freeze()
    return history
