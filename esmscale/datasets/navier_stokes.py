"""2-D incompressible Navier-Stokes vorticity on the unit torus (the FNO benchmark problem).

``dw/dt + u . grad(w) = nu lap(w) + f``, ``u = (d psi/dy, -d psi/dx)``, ``-lap(psi) = w``, with the
forcing ``f = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))`` and an initial vorticity drawn from the
Gaussian random field ``N(0, 7^(3/2) (-lap + 49 I)^(-2.5))``. Solved pseudo-spectrally: viscosity
by Crank-Nicolson, advection by a Heun predictor-corrector, 2/3-rule dealiasing, time step from
a CFL condition. The mean vorticity (the zero mode) is conserved exactly.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = [
    "fno_forcing",
    "gaussian_vorticity",
    "navier_stokes",
    "solve_vorticity",
    "stack_trajectories",
]


def _wavenumbers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Angular wavenumbers ``(ky, kx)`` on the ``rfft2`` grid of an ``n x n`` unit torus."""
    ky = 2.0 * np.pi * np.fft.fftfreq(n, d=1.0 / n)[:, None]
    kx = 2.0 * np.pi * np.fft.rfftfreq(n, d=1.0 / n)[None, :]
    return np.broadcast_to(ky, (n, n // 2 + 1)), np.broadcast_to(kx, (n, n // 2 + 1))


def fno_forcing(n: int) -> np.ndarray:
    """The FNO benchmark forcing ``0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y)))`` on ``n x n``.

    Examples
    --------
    >>> f = fno_forcing(8)
    >>> f.shape, round(float(f[0, 0]), 3), round(float(f.mean()), 12)
    ((8, 8), 0.1, 0.0)
    """
    x = np.arange(n) / n
    s = 2.0 * np.pi * (x[None, :] + x[:, None])
    return 0.1 * (np.sin(s) + np.cos(s))


def gaussian_vorticity(
    n_samples: int, n: int, rng: np.random.Generator, alpha: float = 2.5, tau: float = 7.0
) -> np.ndarray:
    """Zero-mean Gaussian random fields, covariance ``2 tau^(2a - 2) (-lap + tau^2)^-a``.

    Examples
    --------
    >>> w = gaussian_vorticity(3, 16, np.random.default_rng(0))
    >>> w.shape, bool(np.abs(w.mean(axis=(1, 2))).max() < 1e-12)
    ((3, 16, 16), True)
    """
    ky, kx = _wavenumbers(n)
    sigma = math.sqrt(2.0) * tau ** (alpha - 1.0) * (kx**2 + ky**2 + tau**2) ** (-alpha / 2.0)
    sigma[0, 0] = 0.0
    white = rng.standard_normal((n_samples, n, n))
    return np.fft.irfft2(n * np.fft.rfft2(white) * sigma, s=(n, n))


def solve_vorticity(
    w0: np.ndarray,
    times: np.ndarray,
    viscosity: float = 1e-3,
    forcing: np.ndarray | None = None,
    cfl: float = 0.5,
    max_dt: float = 1e-2,
) -> np.ndarray:
    """Integrate vorticity ``w0`` (``(N, n, n)``) and return it at ``times`` (``(N, T, n, n)``).

    Examples
    --------
    >>> x = np.arange(32) / 32
    >>> w0 = np.cos(2 * np.pi * x)[None, :, None] * np.cos(2 * np.pi * x)[None, None, :]
    >>> w = solve_vorticity(w0, np.array([1.0]), viscosity=0.01)
    >>> bool(np.allclose(w[0, 0], w0[0] * np.exp(-0.01 * 8 * np.pi**2 * 1.0), atol=1e-6))
    True
    """
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim != 3 or w0.shape[1] != w0.shape[2]:
        raise EsmscaleError(f"solve_vorticity expects (N, n, n) fields, got {w0.shape}.")
    n = w0.shape[-1]
    ky, kx = _wavenumbers(n)
    k2 = kx**2 + ky**2
    inv_k2 = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
    kmax = 2.0 * np.pi * (n // 2)
    dealias = (np.abs(kx) <= 2.0 / 3.0 * kmax) & (np.abs(ky) <= 2.0 / 3.0 * kmax)
    f_hat = np.fft.rfft2(forcing) if forcing is not None else np.zeros_like(k2)

    def nonlinear(w_hat: np.ndarray) -> tuple[np.ndarray, float]:
        psi = w_hat * inv_k2
        u = np.fft.irfft2(1j * ky * psi, s=(n, n))
        v = np.fft.irfft2(-1j * kx * psi, s=(n, n))
        wx = np.fft.irfft2(1j * kx * w_hat, s=(n, n))
        wy = np.fft.irfft2(1j * ky * w_hat, s=(n, n))
        adv = np.fft.rfft2(u * wx + v * wy) * dealias
        adv[..., 0, 0] = 0.0  # the advection of a divergence-free flow has zero mean
        return adv, float(max(np.abs(u).max(), np.abs(v).max()))

    w_hat = np.fft.rfft2(w0)
    out = np.empty((w0.shape[0], len(times), n, n), dtype=np.float32)
    t = 0.0
    for j, target in enumerate(np.asarray(times, dtype=np.float64)):
        while t < target - 1e-12:
            adv, speed = nonlinear(w_hat)
            dt = min(max_dt, cfl / (n * max(speed, 1e-12)), target - t)
            a = 0.5 * dt * viscosity * k2
            lhs, rhs = 1.0 + a, 1.0 - a
            pred = (rhs * w_hat + dt * (f_hat - adv)) / lhs
            adv2, _ = nonlinear(pred)
            w_hat = (rhs * w_hat + dt * (f_hat - 0.5 * (adv + adv2))) / lhs
            t += dt
        out[:, j] = np.fft.irfft2(w_hat, s=(n, n))
    return out


def stack_trajectories(
    frames: np.ndarray, dt: float, name: str, attrs: dict[str, str], gap: int = 10
) -> xr.DataArray:
    """``(N, T, y, x)`` trajectories -> one ``(time, y, x)`` DataArray with gaps between them.

    The float time coordinate jumps by ``gap`` steps between trajectories, so forecast windows
    (:mod:`esmscale.forecast`) never mix two trajectories; ``trajectory`` labels each step.

    Examples
    --------
    >>> da = stack_trajectories(np.zeros((2, 3, 4, 4)), 1.0, "w", {"units": "1"}, gap=10)
    >>> da.dims, da["time"].values.tolist()
    (('time', 'y', 'x'), [0.0, 1.0, 2.0, 13.0, 14.0, 15.0])
    """
    n, t, h, w = frames.shape
    times = (np.arange(n)[:, None] * (t + gap) + np.arange(t)[None, :]) * dt
    return xr.DataArray(
        frames.reshape(n * t, h, w),
        dims=("time", "y", "x"),
        coords={
            "time": ("time", times.ravel(), {"units": "model time units"}),
            "trajectory": ("time", np.repeat(np.arange(n), t)),
            "y": ("y", np.arange(h) / h),
            "x": ("x", np.arange(w) / w),
        },
        name=name,
        attrs=attrs,
    )


def navier_stokes(
    n_samples: int = 8,
    n_frames: int = 20,
    size: int = 64,
    viscosity: float = 1e-3,
    record_every: float = 1.0,
    seed: int = 0,
    forced: bool = True,
    as_xarray: bool = False,
) -> np.ndarray | xr.DataArray:
    """Seeded vorticity trajectories of the FNO Navier-Stokes benchmark.

    Parameters
    ----------
    n_samples, n_frames, size
        Trajectories, frames per trajectory (at ``record_every, 2 record_every, ...``) and grid.
    viscosity
        ``nu``; the FNO benchmark uses 1e-3, 1e-4 and 1e-5.
    seed
        Seed of the random initial conditions.
    forced
        Apply the FNO forcing (else freely decaying).
    as_xarray
        Return a ``(time, y, x)`` DataArray (trajectories separated by time gaps) instead of a
        ``(n_samples, n_frames, size, size)`` float32 array.

    Examples
    --------
    >>> navier_stokes(n_samples=2, n_frames=3, size=16).shape
    (2, 3, 16, 16)
    """
    if size < 8 or size % 2:
        raise EsmscaleError(f"navier_stokes: size={size} must be even and >= 8.")
    rng = np.random.default_rng(seed)
    w0 = gaussian_vorticity(n_samples, size, rng)
    times = record_every * np.arange(1, n_frames + 1)
    frames = solve_vorticity(w0, times, viscosity, fno_forcing(size) if forced else None)
    if not as_xarray:
        return frames
    attrs = {"long_name": "vorticity", "units": "1", "viscosity": str(viscosity)}
    return stack_trajectories(frames, record_every, "vorticity", attrs)
