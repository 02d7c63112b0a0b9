"""Sampling kernels: one-step and multi-step consistency sampling, the diffusion bridge, a
many-step ODE sampler, and the registry of samplers (:data:`SAMPLERS`) that pick between them.

Pure numpy/torch, no xarray. Noise is derived from ``(seed, member, time index, tile y, tile x,
step)`` through :class:`numpy.random.SeedSequence`, so a field's result never depends on which
other fields share its batch, how Dask chunks the data or which scheduler runs it. Batches are
padded to a fixed size because CPU kernels can round differently for different batch sizes.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from esmscale.devices import to_device
from esmscale.errors import EsmscaleError, EsmscaleWarning
from esmscale.models.consistency import ConsistencyModel
from esmscale.registry import Registry

__all__ = [
    "DEFAULT_BATCH",
    "SAMPLERS",
    "Sampler",
    "bridge_sample",
    "consistency_sample",
    "field_noise",
    "multistep_times",
    "noise_only_sample",
    "ode_sample",
]

DEFAULT_BATCH = 8


def field_noise(
    seed: int,
    member: int,
    time_index: int,
    shape: tuple[int, int],
    *,
    tile: tuple[int, int] = (0, 0),
    step: int = 0,
) -> np.ndarray:
    """Standard-normal float32 noise for one field, a pure function of its identity.

    Examples
    --------
    >>> a = field_noise(0, 1, 5, (4, 4))
    >>> bool(np.array_equal(a, field_noise(0, 1, 5, (4, 4))))
    True
    >>> bool(np.array_equal(a, field_noise(1, 1, 5, (4, 4))))
    False
    """
    key = (int(member), int(time_index), int(tile[0]), int(tile[1]), int(step))
    if int(seed) < 0 or min(key) < 0:
        raise EsmscaleError(
            f"field_noise: seed={seed} and indices {key} must be non-negative integers."
        )
    ss = np.random.SeedSequence(int(seed), spawn_key=key)
    return np.random.Generator(np.random.PCG64(ss)).standard_normal(shape, dtype=np.float32)


def multistep_times(t_star: float, steps: int, sigma_min: float, rho: float = 7.0) -> list[float]:
    """Decreasing noise levels for ``steps``-step sampling, starting at ``t_star``.

    Examples
    --------
    >>> [round(t, 12) for t in multistep_times(0.5, 1, 0.002)]
    [0.5]
    >>> ts = multistep_times(0.5, 3, 0.002)
    >>> abs(ts[0] - 0.5) < 1e-12 and ts[0] > ts[1] > ts[2] > 0.002
    True
    """
    if steps < 1:
        raise EsmscaleError(f"steps={steps}: need at least one sampling step.")
    lo, hi = sigma_min ** (1 / rho), t_star ** (1 / rho)
    return [float((lo + (steps - k) / steps * (hi - lo)) ** rho) for k in range(steps)]


def _check(x: np.ndarray, noise: np.ndarray, t_star: float, model: ConsistencyModel) -> None:
    if x.ndim != 3:
        raise EsmscaleError(f"expected fields of shape (n, H, W), got {x.shape}.")
    if not np.isfinite(x).all():
        raise EsmscaleError(
            "sampling kernel received NaN/inf; fill masked cells before calling the kernel "
            "(downscale_array does this for you)."
        )
    if noise.shape[1:] != x.shape:
        raise EsmscaleError(f"noise shape {noise.shape} does not match fields {x.shape}.")
    cfg = model.config
    if not cfg.sigma_min < t_star <= cfg.sigma_max:
        raise EsmscaleError(
            f"t_star={t_star} is outside the model's noise range ({cfg.sigma_min}, "
            f"{cfg.sigma_max}]; typical values are 0.05-1."
        )


#: Largest batch that fit on each (device, requested batch, field shape) after an
#: out-of-memory error (later calls start there without running out again).
_FIT: dict[tuple[str, int, tuple[int, ...]], int] = {}


def _call(
    model: ConsistencyModel, x: np.ndarray, t: float, batch_size: int, dev: torch.device
) -> np.ndarray:
    """``f(x, t)`` in zero-padded batches of ``batch_size`` (raises on out-of-memory)."""
    out = np.empty_like(x)
    n = x.shape[0]
    tt = torch.full((batch_size,), t, dtype=torch.float32, device=dev)
    for i in range(0, n, batch_size):
        chunk = x[i : i + batch_size]
        buf = np.zeros((batch_size, 1, *x.shape[1:]), dtype=np.float32)
        buf[: len(chunk), 0] = chunk
        y = model(to_device(buf, dev), tt)
        out[i : i + len(chunk)] = y[: len(chunk), 0].float().cpu().numpy()
    return out


def _batched(model: ConsistencyModel, x: np.ndarray, t: float, batch_size: int) -> np.ndarray:
    """Evaluate ``f(x, t)`` in fixed-size, zero-padded batches (bitwise reproducible on CPU).

    Inputs go to the model's device in pinned, batched transfers; results come back as float32
    on the host. If the device runs out of memory, the batch is halved (a warning, once per
    device and batch, names the batch that fit) until it fits; at batch 1 the error is raised.
    """
    first = next(iter(model.parameters()), None)
    dev = first.device if first is not None else torch.device("cpu")
    key = (str(dev), batch_size, tuple(x.shape[1:]))
    start = size = _FIT.get(key, batch_size)
    with torch.inference_mode():
        while True:
            try:
                out = _call(model, x, t, size, dev)
            except torch.OutOfMemoryError as err:
                if size == 1:
                    raise EsmscaleError(
                        f"the network ran out of memory on {dev} even at batch 1 for fields "
                        f"of {x.shape[1]}x{x.shape[2]} cells; use smaller tiles (tile=), "
                        "precision='bf16', or another device."
                    ) from err
                size //= 2
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            break
    if size != start:
        first_time = key not in _FIT
        _FIT[key] = size
        if first_time:
            warnings.warn(
                f"batch {batch_size} ran out of memory on {dev} for fields of "
                f"{x.shape[1]}x{x.shape[2]} cells; continuing with batch {size}, the largest that "
                "fit (results may differ from a full batch by floating-point rounding).",
                EsmscaleWarning,
                stacklevel=3,
            )
    return out


def consistency_sample(
    model: ConsistencyModel,
    x: np.ndarray,
    t_star: float,
    noise: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Denoise interpolated fields with one or more consistency steps.

    Parameters
    ----------
    model
        The consistency model (in eval mode).
    x
        ``(n, H, W)`` float32 fields in the network's space (finite; H, W multiples of
        ``model.config.multiple``).
    t_star
        Starting noise level.
    noise
        ``(steps, n, H, W)`` standard-normal draws; ``steps = noise.shape[0]`` network calls.
    batch_size
        Fixed batch size; the last batch is zero-padded.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W)`` float32 samples in the network's space.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16))).eval()
    >>> x = np.random.default_rng(0).normal(size=(3, 8, 8)).astype("float32")
    >>> noise = np.stack([[field_noise(0, 0, t, (8, 8), step=s) for t in range(3)]
    ...                   for s in range(2)])  # (steps, n, H, W)
    >>> one = consistency_sample(m, x, 0.5, noise[:1])  # one network call
    >>> two = consistency_sample(m, x, 0.5, noise)  # two
    >>> one.shape, one.dtype, bool(np.array_equal(one, two))
    ((3, 8, 8), dtype('float32'), False)
    >>> near = consistency_sample(m, x, 0.0021, noise[:1])  # t* at the bottom of the range
    >>> bool(np.allclose(near, x, atol=0.02))  # f(x, sigma_min) = x: little noise, kept
    True
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    _check(x, noise, t_star, model)
    times = multistep_times(t_star, noise.shape[0], model.config.sigma_min)
    y = _batched(model, x + t_star * noise[0], t_star, batch_size)
    tmin = model.config.sigma_min
    for k, t in enumerate(times[1:], start=1):
        y = _batched(model, y + float(np.sqrt(t**2 - tmin**2)) * noise[k], t, batch_size)
    return y


def ode_sample(
    model: ConsistencyModel,
    x: np.ndarray,
    t_star: float,
    noise: np.ndarray,
    *,
    n_steps: int = 500,
    batch_size: int = DEFAULT_BATCH,
    times: Sequence[float] | None = None,
) -> np.ndarray:
    """Integrate the probability-flow ODE from ``t_star`` with ``n_steps`` Euler steps.

    The consistency function serves as the denoiser ``D(x, t)``; this is the many-step sampler
    used as the speed reference (one network call per step).

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16))).eval()
    >>> x = np.random.default_rng(0).normal(size=(3, 8, 8)).astype("float32")
    >>> calls = []
    >>> hook = m.register_forward_hook(lambda *args: calls.append(1))
    >>> noise = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    >>> y = ode_sample(m, x, 0.5, noise, n_steps=4)
    >>> y.shape, len(calls)  # 4 Euler steps, one batched network call each
    ((3, 8, 8), 4)
    >>> hook.remove()
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    _check(x, noise[:1], t_star, model)
    tmin = model.config.sigma_min
    ts = list(times) if times is not None else [*multistep_times(t_star, n_steps, tmin), tmin]
    y = x + t_star * noise[0]
    for t, t_next in itertools.pairwise(ts):
        d = (y - _batched(model, y, t, batch_size)) / t
        y = y + (t_next - t) * d
    return y


def bridge_sample(
    model: ConsistencyModel,
    x: np.ndarray,
    t_star: float,
    noise: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """Diffusion bridge: reverse VE-SDE from ``t_star`` with Euler-Maruyama steps.

    ``noise`` is ``(n_steps + 1, n, H, W)``: the first draw noises the input to ``t_star``, one
    more per step. With a denoiser ``D`` (a model trained with ``objective="diffusion"``) the
    score is ``(D(x, t) - x) / t^2`` and each step from ``t_i`` to ``t_{i+1} < t_i`` is
    ``x += (t_i^2 - t_{i+1}^2) score + sqrt(t_i^2 - t_{i+1}^2) z`` (Bischoff & Deck 2023, the
    paper's baseline with 500 steps), ending with a last denoising call.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig
    >>> cfg = ConsistencyConfig(block_out_channels=(8, 16), objective="diffusion")
    >>> denoiser = ConsistencyModel(cfg).eval()
    >>> x = np.zeros((2, 8, 8), dtype="float32")
    >>> noise = np.random.default_rng(0).standard_normal((4, 2, 8, 8))  # 3 steps + 1
    >>> bridge_sample(denoiser, x, 0.5, noise).shape
    (2, 8, 8)
    >>> bridge_sample(denoiser, x, 0.5, noise[:1])
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: bridge_sample needs noise for at least one step ...
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    _check(x, noise[:1], t_star, model)
    n_steps = noise.shape[0] - 1
    if n_steps < 1:
        raise EsmscaleError("bridge_sample needs noise for at least one step (n_steps + 1 draws).")
    tmin = model.config.sigma_min
    ts = [*multistep_times(t_star, n_steps, tmin), tmin]
    y = x + t_star * noise[0]
    for k, (t, t_next) in enumerate(itertools.pairwise(ts), start=1):
        score = (_batched(model, y, t, batch_size) - y) / t**2
        var = t**2 - t_next**2
        y = y + var * score + float(np.sqrt(var)) * noise[k]
    return _batched(model, y, tmin, batch_size)


# the sampler registry ---------------------------------------------------------------------------
SampleFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Sampler:
    """How a sampler turns interpolated fields and noise into samples.

    Parameters
    ----------
    name
        Registered name.
    run
        ``run(model, x, t_star, noise, batch_size=...)`` -> samples; ``noise`` is
        ``(draws(steps), n, H, W)``.
    objective
        The ``ConsistencyConfig.objective`` the model must have (None: the network is not
        called, any model will do).
    extra_draws
        Noise draws needed beyond one per step (the bridge needs one more).

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig
    >>> bridge = SAMPLERS.get("bridge")
    >>> bridge.draws(4), SAMPLERS.get("consistency").draws(4)
    (5, 4)
    >>> bridge.check_model(ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16))))
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: sampler='bridge' needs a model trained with objective=...
    >>> mine = Sampler("halfway", lambda m, x, t, noise, **kw: x + 0.5 * t * noise[0], None)
    >>> mine.run(None, np.zeros(2), 0.4, np.ones((1, 2)))
    array([0.2, 0.2])
    """

    name: str
    run: SampleFn
    objective: str | None = "consistency"
    extra_draws: int = 0

    def draws(self, steps: int) -> int:
        """Number of noise draws for ``steps`` steps."""
        return steps + self.extra_draws

    def check_model(self, model: ConsistencyModel) -> None:
        """Refuse a model trained with the wrong objective (an error naming both)."""
        if self.objective is not None and model.config.objective != self.objective:
            raise EsmscaleError(
                f"sampler={self.name!r} needs a model trained with objective="
                f"{self.objective!r}, but {model.config.name!r} was trained with "
                f"objective={model.config.objective!r}."
            )


def noise_only_sample(
    model: ConsistencyModel,
    x: np.ndarray,
    t_star: float,
    noise: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> np.ndarray:
    """The control: the input plus the noise at ``t_star``, without calling the network.

    Examples
    --------
    >>> x = np.ones((1, 2, 2), dtype="float32")
    >>> noise = np.full((1, 1, 2, 2), 2.0)
    >>> noise_only_sample(None, x, 0.25, noise)  # no model needed
    array([[[1.5, 1.5],
            [1.5, 1.5]]], dtype=float32)
    """
    return np.asarray(x + t_star * np.asarray(noise)[0], dtype=np.float32)


#: Samplers by name: ``consistency`` (``steps`` network calls), ``multistep`` (the same
#: kernel, for several steps), ``bridge`` (the diffusion-bridge baseline, ``steps``
#: Euler-Maruyama steps of a diffusion denoiser) and ``noise-only`` (no network).
SAMPLERS: Registry[Sampler] = Registry("sampler")
SAMPLERS.register("consistency", Sampler("consistency", consistency_sample))
SAMPLERS.register("multistep", Sampler("multistep", consistency_sample))
SAMPLERS.register("bridge", Sampler("bridge", bridge_sample, "diffusion", extra_draws=1))
SAMPLERS.register("noise-only", Sampler("noise-only", noise_only_sample, objective=None))
