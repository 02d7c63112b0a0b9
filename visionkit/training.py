"""Training loops: contrastive pre-training of a tiny CLIP and a generic minibatch fitter."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from visionkit._device import (
    DeviceLike,
    autocast,
    check,
    grad_scaler,
    on_device,
    optimizer_step,
    to_device,
)
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
    *,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> list[float]:
    """Minimise ``loss_fn(batch_indices)`` over ``parameters`` with AdamW; return the losses.

    Parameters
    ----------
    parameters : sequence of nn.Parameter
        What to train (those with ``requires_grad``); they must already be on ``device``
        (move the model there first, as :func:`pretrain_contrastive` does).
    loss_fn : callable
        Loss of a batch, given the batch's ``(B,)`` int64 example indices on the CPU (they index
        host data; ``loss_fn`` moves its batch to ``device``).
    n : int
        Number of examples.
    config : TrainConfig
        Steps, batch size, AdamW settings, clipping and seed.
    device : str, torch.device or None
        Where the parameters live and the loss runs: ``"cpu"`` (default), ``"cuda"``,
        ``"cuda:N"``, ``"mps"`` or ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of ``loss_fn`` (``"fp32"``: no autocast). The parameters and the
        optimiser step stay float32; fp16 scales the gradients on CUDA and is refused on the
        CPU.

    Returns
    -------
    list of float
        The loss of every step.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> losses = fit([w], lambda idx: ((w - 1) ** 2).sum(), 4, TrainConfig(steps=3, lr=0.1),
    ...              precision="bf16")
    >>> len(losses), w.dtype
    (3, torch.float32)
    """
    dev = check(device, precision)
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("fit: nothing to train (no parameter requires grad)")
    elsewhere = sorted({str(p.device) for p in params if p.device != dev})
    if elsewhere:
        raise ValueError(
            f"fit: parameters are on {', '.join(elsewhere)} but device={str(dev)!r}; move the "
            f"model there first (model.to({str(dev)!r}))"
        )
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    scaler = grad_scaler(dev, precision)
    history: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        for idx in batches(n, config):
            with autocast(dev, precision):
                loss = loss_fn(idx)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at step {len(history)}; lower lr"
                )
            optimizer_step(loss, optimizer, scaler, (params, config.grad_clip))
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
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> list[float]:
    """Train every backbone weight with the CLIP loss on image-caption pairs, then freeze.

    Parameters
    ----------
    backbone : DualEncoder
        Trained in place; it is left frozen, in eval mode, on the CPU (float32).
    images, input_ids : torch.Tensor
        ``(N, C, H, W)`` images and ``(N, L)`` token ids of their captions (host tensors; each
        batch is moved to ``device``).
    config : TrainConfig
        Optimisation settings.
    groups : torch.Tensor, optional
        ``(N,)`` labels of pairs that describe the same thing (for example the same person):
        other pairs of the same group are removed from a row's negatives.
    device : str, torch.device or None
        Where the backbone trains (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"``); see :func:`fit`.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the forward pass and loss; the weights stay float32.

    Returns
    -------
    list of float
        The loss of every step.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> ids = bb.tokenize(["a red circle", "a blue square"])
    >>> losses = pretrain_contrastive(bb, torch.rand(2, 3, 32, 32), ids,
    ...                               TrainConfig(steps=1, batch_size=2), precision="bf16")
    >>> len(losses), bb.parameter_count().trainable
    (1, 0)
    """
    dev = check(device, precision)
    backbone.check_images(images, "images")
    if images.shape[0] != input_ids.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {input_ids.shape[0]} captions")
    backbone.unfreeze()
    backbone.train()

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        img = backbone.encode_image(to_device(images[idx], dev)).embeds
        txt = backbone.encode_text(to_device(input_ids[idx], dev)).embeds
        if groups is None:
            return contrastive_loss(img, txt, backbone.logit_scale)
        g = groups[idx]
        same = (g[:, None] == g[None, :]) & ~torch.eye(len(idx), dtype=torch.bool)
        logits = backbone.similarity(img, txt).masked_fill(to_device(same, dev), float("-inf"))
        target = torch.arange(len(idx), device=dev)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2

    try:
        with on_device(backbone, dev, back="cpu"):
            history = fit(
                list(backbone.parameters()),
                loss_fn,
                images.shape[0],
                config,
                device=dev,
                precision=precision,
            )
    finally:
        backbone.eval()
        backbone.freeze()
    return history
