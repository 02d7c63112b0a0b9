"""Devices and precisions: one place that turns ``device=`` and ``precision=`` into torch.

Every public function that runs a network (:func:`esmscale.train`, :func:`esmscale.downscale`,
``ds.esm.downscale``, :func:`esmscale.downscale_array`, the calibration, :func:`esmscale.evaluate`
and the forecasting API) takes ``device`` and ``precision`` and resolves them here:

- ``device``: ``"cpu"``, ``"cuda"`` (the current CUDA device), ``"cuda:1"``, ``"mps"`` or
  ``"auto"`` (the first accelerator present: CUDA, then MPS, else the CPU). A device that is not
  present is an error that lists the devices that are.
- ``precision``: ``"fp32"`` (no autocast), ``"bf16"`` or ``"fp16"`` (``torch.autocast`` with that
  dtype around the network calls). fp16 is refused on the CPU (autocast on the CPU supports
  bfloat16 only); use ``"bf16"`` there.

Noise is always drawn on the host from ``(seed, member, time, tile)`` and results come back as
float32 numpy arrays, so a member is the same field on any device up to the device's rounding.

Examples
--------
>>> resolve_device("cpu")
device(type='cpu')
>>> autocast_dtype("bf16", "cpu")
torch.bfloat16
>>> autocast_dtype("fp32", "cpu") is None
True
"""

from __future__ import annotations

import contextlib
import copy
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Literal

import torch

from esmscale.errors import EsmscaleError

__all__ = [
    "PRECISIONS",
    "DeviceLike",
    "Precision",
    "autocast",
    "autocast_dtype",
    "available_devices",
    "grad_scaler",
    "model_on",
    "resolve_device",
    "to_device",
]

Precision = Literal["fp32", "bf16", "fp16"]
DeviceLike = str | torch.device | None
#: Precision names and the autocast dtype each stands for (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices torch can use here, CPU last: ``["cuda:0", ..., "mps", "cpu"]``.

    Examples
    --------
    >>> available_devices()[-1]
    'cpu'
    """
    out = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if _mps_available():
        out.append("mps")
    return [*out, "cpu"]


def resolve_device(device: DeviceLike = "cpu") -> torch.device:
    """The :class:`torch.device` for ``device``, checked to be present.

    Parameters
    ----------
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (the first accelerator
        present, else the CPU), a :class:`torch.device` or None (the CPU).

    Raises
    ------
    EsmscaleError
        For an unknown device string, or a device that is not present here (the message lists
        the devices that are).

    Examples
    --------
    >>> resolve_device(None), resolve_device("auto").type in {"cpu", "cuda", "mps"}
    (device(type='cpu'), True)
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device.strip().lower() == "auto":
        first = available_devices()[0]
        return torch.device(first)
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise EsmscaleError(
            f"device={device!r} is not a device name; give 'cpu', 'cuda', 'cuda:N', 'mps' or "
            f"'auto' (devices present here: {', '.join(available_devices())})."
        ) from err
    present = available_devices()
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if dev.index is None else dev.index
        if index < n:
            return torch.device("cuda", index)
    elif dev.type == "mps" and _mps_available():
        return torch.device("mps")
    raise EsmscaleError(
        f"device={device!r} is not present on this machine (devices present: "
        f"{', '.join(present)}); use device='auto' to take the first accelerator present, or "
        "device='cpu'." + (" This torch is a CPU-only build." if torch.version.cuda is None else "")
    )


def autocast_dtype(precision: str, device: DeviceLike = "cpu") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None for ``"fp32"``).

    Raises
    ------
    EsmscaleError
        For an unknown precision, fp16 on the CPU, or bf16 on a CUDA device without it.

    Examples
    --------
    >>> autocast_dtype("fp16", "cpu")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: precision='fp16' is not supported on the CPU ...
    """
    if precision not in PRECISIONS:
        raise EsmscaleError(
            f"precision={precision!r} is unknown; give one of {', '.join(PRECISIONS)}."
        )
    dev = resolve_device(device)
    if precision == "fp16" and dev.type == "cpu":
        raise EsmscaleError(
            "precision='fp16' is not supported on the CPU (torch's CPU autocast runs bfloat16 "
            "only); use precision='bf16' or 'fp32' on the CPU, or fp16 on a CUDA device."
        )
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise EsmscaleError(
            f"precision='bf16' is not supported by {torch.cuda.get_device_name(dev)}; use "
            "precision='fp16' or 'fp32' there."
        )
    return PRECISIONS[precision]


@contextlib.contextmanager
def autocast(device: DeviceLike, precision: str = "fp32") -> Iterator[None]:
    """``torch.autocast`` for ``precision`` on ``device``; a no-op for ``"fp32"``.

    Examples
    --------
    >>> with autocast("cpu", "bf16"):
    ...     y = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    >>> y.dtype
    torch.bfloat16
    """
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        yield
        return
    dev = resolve_device(device)
    with torch.autocast(device_type=dev.type, dtype=dtype):
        yield


def to_device(array: Any, device: torch.device) -> torch.Tensor:
    """A host array (numpy or tensor) on ``device``, through pinned memory for CUDA.

    Examples
    --------
    >>> import numpy as np
    >>> t = to_device(np.arange(3, dtype="float32"), torch.device("cpu"))
    >>> t, t.device
    (tensor([0., 1., 2.]), device(type='cpu'))
    """
    t = torch.as_tensor(array)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


_COPIES: weakref.WeakKeyDictionary[torch.nn.Module, dict[torch.device, torch.nn.Module]] = (
    weakref.WeakKeyDictionary()
)
_COPIES_LOCK = threading.Lock()


def model_on(model: Any, device: DeviceLike) -> Any:
    """``model`` on ``device``: itself if its weights are there, else a cached copy.

    The model passed in is never moved (a model cached for a process stays where it was
    loaded); each (model, device) pair is copied once per process.

    Examples
    --------
    >>> m = torch.nn.Linear(2, 2)
    >>> model_on(m, "cpu") is m
    True
    """
    dev = resolve_device(device)
    first = next(iter(model.parameters()), None)
    here = first.device if first is not None else torch.device("cpu")
    if here == dev or (here.type == dev.type == "cpu"):
        return model
    with _COPIES_LOCK:
        copies = _COPIES.setdefault(model, {})
        moved = copies.get(dev)
        if moved is None:
            moved = copy.deepcopy(model).to(dev).eval()
            for attr in ("source", "sha256"):
                if hasattr(model, attr):
                    setattr(moved, attr, getattr(model, attr))
            copies[dev] = moved
        return moved


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 on CUDA (fp16 gradients underflow without one), else None.

    Examples
    --------
    >>> grad_scaler(torch.device("cpu"), "bf16") is None
    True
    """
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
