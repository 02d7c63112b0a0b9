"""Device and precision plumbing of visionkit, on top of :mod:`esmscale.devices`.

visionkit takes the same ``device=`` and ``precision=`` as esmscale and resolves them with the
same functions (:func:`esmscale.devices.resolve_device`, :func:`esmscale.devices.autocast`), so
the names, the errors and the fp16-on-CPU refusal are the same. What is added here is what
training small modules in place needs: a module is moved to the device for the duration of a
call (:func:`on_device`) and moved back afterwards, because visionkit trains the caller's model
(a cached copy, as :func:`esmscale.devices.model_on` makes, would be trained instead of it), and
fp16 gradients on CUDA are scaled (:func:`esmscale.devices.grad_scaler`).

Examples
--------
>>> check("cpu", "bf16")
device(type='cpu')
>>> m = torch.nn.Linear(2, 2)
>>> with on_device(m, "cpu") as dev:
...     dev.type
'cpu'
>>> to_host(torch.ones(2, dtype=torch.bfloat16)).dtype
torch.float32
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from esmscale.devices import (
    DeviceLike,
    autocast,
    autocast_dtype,
    grad_scaler,
    resolve_device,
    to_device,
)

__all__ = [
    "DeviceLike",
    "autocast",
    "check",
    "grad_scaler",
    "module_device",
    "on_device",
    "optimizer_step",
    "to_device",
    "to_host",
]


def check(device: DeviceLike, precision: str) -> torch.device:
    """The resolved ``device``, after refusing an absent device or an unusable ``precision``.

    Raises
    ------
    esmscale.errors.EsmscaleError
        (a ``ValueError``) for an unknown or absent device (the message lists the devices
        present), an unknown precision, or fp16 on the CPU.

    Examples
    --------
    >>> check("auto", "fp32").type in {"cpu", "cuda", "mps"}
    True
    """
    autocast_dtype(precision, device)
    return resolve_device(device)


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU if it has none).

    Examples
    --------
    >>> module_device(torch.nn.Linear(1, 1))
    device(type='cpu')
    """
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def on_device(
    module: nn.Module, device: DeviceLike, *, back: DeviceLike | None = None
) -> Iterator[torch.device]:
    """Move ``module`` to ``device`` for a ``with`` block, then to ``back``.

    The same module (and so the same parameters) is moved, not copied: training inside the block
    trains the caller's model. A module already on ``device`` is not touched.

    Parameters
    ----------
    module : nn.Module
        The module to move (in place).
    device : str, torch.device or None
        Where it is during the block (:func:`esmscale.devices.resolve_device` names).
    back : str, torch.device or None
        Where it goes afterwards (default: where it was).

    Yields
    ------
    torch.device
        The resolved ``device``.
    """
    dev = resolve_device(device)
    home = module_device(module) if back is None else resolve_device(back)
    if module_device(module) != dev:
        module.to(dev)
    try:
        yield dev
    finally:
        if module_device(module) != home:
            module.to(home)


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` detached on the CPU; floating-point tensors as float32.

    Examples
    --------
    >>> to_host(torch.arange(3)).dtype
    torch.int64
    """
    t = tensor.detach().cpu()
    return t.float() if t.is_floating_point() else t


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    clip: tuple[list[nn.Parameter], float] | None = None,
) -> None:
    """Zero the gradients, back-propagate ``loss`` (scaled if ``scaler``), clip, step.

    The parameters stay float32 whatever the autocast precision of the forward pass.
    """
    optimizer.zero_grad()
    if scaler is None:
        loss.backward()
        if clip is not None and clip[1] > 0:
            nn.utils.clip_grad_norm_(clip[0], clip[1])
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if clip is not None and clip[1] > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(clip[0], clip[1])
    scaler.step(optimizer)
    scaler.update()
