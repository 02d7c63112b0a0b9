"""Downscale coarse fields with a consistency model: interpolate, add noise at t*, denoise.

This module works on plain numpy arrays on regular grids refined by an integer factor; the
xarray accessor builds on it.
"""

from __future__ import annotations

import os

import numpy as np

from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import DEFAULT_BATCH, consistency_sample, field_noise
from esmscale.prepare.clipping import clip_negative
from esmscale.prepare.interp import upsample_bilinear
from esmscale.prepare.physics import check_values, is_nonnegative, rule_for

__all__ = ["denoise_fine", "downscale_array", "noise_only", "resolve_t_star"]


def resolve_t_star(model: ConsistencyModel, t_star: float | str) -> float:
    """Return a numeric noise level; ``"auto"`` uses the model's calibrated ``t_star``."""
    if isinstance(t_star, str):
        if t_star != "auto":
            raise EsmscaleError(
                f"t_star={t_star!r} is neither a number nor 'auto';",
                python="give t_star=<float> or t_star='auto'.",
                cli="give --t-star VALUE or --t-star auto.",
            )
        if model.config.t_star is None:
            raise EsmscaleError(
                f"model {model.config.name!r} stores no calibrated t_star;",
                python="pass t_star=<float> or calibrate it with "
                "esmscale.calibrate_noise_level(...) and save the model.",
                cli="give --t-star VALUE or calibrate the model with `esmscale calibrate ... "
                "--output DIR` and use that DIR as --model.",
            )
        return float(model.config.t_star)
    return float(t_star)


def _pad(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="reflect")
    return x, (h, w)


def denoise_fine(
    model: ConsistencyModel,
    fine: np.ndarray,
    *,
    t_star: float,
    members: int = 1,
    seed: int = 0,
    steps: int = 1,
    time_index: np.ndarray | None = None,
    tile: tuple[int, int] = (0, 0),
    batch_size: int = DEFAULT_BATCH,
    network: bool = True,
) -> np.ndarray:
    """Denoise fields already on the fine grid (physical units) into an ensemble.

    Parameters
    ----------
    fine
        ``(time, H, W)`` interpolated fields in the model's training units; NaN cells stay NaN.
    time_index
        Global time index of each field (noise identity); defaults to ``arange(time)``.
    network
        If False, return the noise-only control: the same noisy field mapped back without the
        network call (used by benchmarks to show what the network adds).

    Returns
    -------
    numpy.ndarray
        ``(members, time, H, W)`` float32 in training units.
    """
    fine = np.asarray(fine, dtype=np.float32)
    if fine.ndim != 3:
        raise EsmscaleError(f"expected (time, H, W) fields, got shape {fine.shape}.")
    if members < 1:
        raise EsmscaleError(f"members={members} must be >= 1.")
    tr = model.config.transform
    nt = fine.shape[0]
    tidx = np.arange(nt) if time_index is None else np.asarray(time_index)
    if tidx.shape != (nt,):
        raise EsmscaleError(f"time_index has shape {tidx.shape}; expected ({nt},).")
    nan = ~np.isfinite(fine)
    y = tr.forward(fine)
    y = np.where(nan, tr.fill_value, y).astype(np.float32)
    y, (h, w) = _pad(y, model.config.multiple)
    out = np.empty((members, nt, h, w), dtype=np.float32)
    for m in range(members):
        noise = np.stack(
            [
                np.stack(
                    [field_noise(seed, m, int(t), y.shape[-2:], tile=tile, step=s) for t in tidx]
                )
                for s in range(steps)
            ]
        )
        if network:
            z = consistency_sample(model, y, t_star, noise, batch_size=batch_size)
        else:
            z = y + t_star * noise[0]
        out[m] = tr.inverse(
            np.clip(z[..., :h, :w], -1.0, None) if tr.kind == "log" else z[..., :h, :w]
        )
    out[:, nan] = np.nan
    return out


def downscale_array(
    model: ConsistencyModel | str | os.PathLike[str],
    coarse: np.ndarray,
    *,
    factor: int | None = None,
    t_star: float | str = "auto",
    members: int = 1,
    seed: int = 0,
    steps: int = 1,
    time_index: np.ndarray | None = None,
    check: str = "raise",
) -> np.ndarray:
    """Downscale coarse ``(time, h, w)`` fields by an integer factor into an ensemble.

    The coarse fields (in the model's training units) are interpolated bilinearly onto the grid
    ``factor`` times finer, noised to ``t_star`` in the model's space and denoised with
    ``steps`` network calls per member. ``model`` is a loaded model, a shipped model's name
    (``"synthetic-pr-4x"``) or a checkpoint path, as for :func:`esmscale.downscale`.
    ``check`` is the physical check of ``coarse`` (``"raise"``, ``"warn"`` or ``"off"``, see
    :mod:`esmscale.prepare.physics`), judged by the model's variable and units; outputs of
    non-negative variables are clipped at 0.

    Returns
    -------
    numpy.ndarray
        ``(members, time, h*factor, w*factor)`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> downscale_array(m, np.ones((2, 4, 4)), factor=2, t_star=0.1, members=3).shape
    (3, 2, 8, 8)
    """
    from esmscale.pretrained import load_model

    if not isinstance(model, ConsistencyModel | str | os.PathLike):
        raise EsmscaleError(
            f"downscale_array(model, coarse): model is a {type(model).__name__}; give a "
            "ConsistencyModel, a shipped model name (esmscale.available_models()) or a "
            "checkpoint path first, then the coarse (time, y, x) array."
        )
    model = load_model(model)
    coarse = np.asarray(coarse, dtype=np.float32)
    if coarse.ndim == 2:
        coarse = coarse[None]
    if coarse.ndim != 3:
        raise EsmscaleError(f"coarse fields must be (time, y, x), got shape {coarse.shape}.")
    tr = model.config.transform
    attrs = {"units": tr.units}
    name = model.config.variable
    if tr.kind == "log" and rule_for(name, attrs) is None:
        attrs["standard_name"] = "lwe_precipitation_rate"  # a log transform means rates >= 0
    check_values(coarse, name=name, attrs=attrs, check=check, dims=("time", "y", "x"))
    f = model.config.factor if factor is None else factor
    fine = upsample_bilinear(coarse, f)
    out = denoise_fine(
        model,
        fine,
        t_star=resolve_t_star(model, t_star),
        members=members,
        seed=seed,
        steps=steps,
        time_index=time_index,
    )
    return clip_negative(out)[0] if is_nonnegative(name, attrs) else out


def noise_only(
    model: ConsistencyModel, fine: np.ndarray, *, t_star: float, members: int = 1, seed: int = 0
) -> np.ndarray:
    """The noise-only control: interpolated field plus the same noise at ``t_star``, no network."""
    return denoise_fine(model, fine, t_star=t_star, members=members, seed=seed, network=False)
