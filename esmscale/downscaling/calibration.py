"""Choosing the noise level t*: the paper's spectral crossing rule and a perfect-model search.

Spectral rule (Hess et al.): in the model's transformed space, average the RAPSD of the
observations and of the ESM interpolated to the fine grid; ``k*`` is where the ESM's spectrum
drops below the observed one (the first wavenumber where ``log10(PSD_esm / PSD_obs) < -tol``;
for an ESM with excess large-scale power this is just past the crossing), and
``t* = sqrt(PSD_obs(k*))``: noise of that variance swamps every scale the ESM misrepresents.

Perfect-model search (not in the paper): coarsen held-out observations by the ESM's factor, so
the truth is known, downscale them for each ``t`` on a grid (with the production tile kernel,
:func:`esmscale.downscaling.kernel.run_block`, and the tiles and noise of
:func:`esmscale.downscale`) and pick the ``t`` with the lowest fair CRPS among those whose
4x-pooled correlation with the input stays above ``min_corr``.
That choice is the package default (``Calibration.t_star``) because it is what the benchmark
supports; the spectral value is reported beside it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from esmscale.downscaling.arrays import fine_spec
from esmscale.downscaling.kernel import sample_fine
from esmscale.errors import EsmscaleError
from esmscale.metrics import crps_ensemble, pooled_correlation
from esmscale.models.consistency import ConsistencyModel
from esmscale.prepare.inputs import field_values, select_variable
from esmscale.prepare.interp import coarsen_block, upsample_bilinear
from esmscale.prepare.physics import check_field
from esmscale.spectra import rapsd

__all__ = [
    "DEFAULT_T_GRID",
    "Calibration",
    "calibrate_esm",
    "calibrate_noise_level",
    "calibrate_on_pairs",
    "calibrate_spread",
    "spectral_t_star",
]

DEFAULT_T_GRID: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate_noise_level`.

    Attributes
    ----------
    t_star
        The recommended noise level (perfect-model choice if held-out data were given, else the
        spectral one).
    k_star, t_star_spectral
        Wavenumber (cycles per fine cell) and noise level from the spectral rule. Both spectra
        are on the observation grid with unit spacing, where white noise of variance ``s^2``
        is flat at ``s^2`` (so ``t* = sqrt(PSD)``); :func:`esmscale.metrics.per_degree`
        converts ``k_star`` to the cycles per degree of :func:`esmscale.metrics.radial_psd`.
    k, psd_obs, psd_esm
        The two time-mean spectra in the model's transformed space.
    t_grid, crps, pooled_corr
        Perfect-model scores per ``t`` (empty without held-out data).
    t_star_crps
        Perfect-model choice, or None.

    Examples
    --------
    >>> k = np.array([0.1, 0.2, 0.3])
    >>> cal = Calibration(0.5, 0.3, 0.5, k, np.array([4.0, 1.0, 0.25]), np.array([4.0, 1.0, 0.01]))
    >>> print(cal.summary())
    spectral rule: k*=0.3000 cycles/cell -> t*=0.500; recommended t*=0.500 (spectral)
    """

    t_star: float
    k_star: float
    t_star_spectral: float
    k: np.ndarray
    psd_obs: np.ndarray
    psd_esm: np.ndarray
    t_grid: np.ndarray = field(default_factory=lambda: np.empty(0))
    crps: np.ndarray = field(default_factory=lambda: np.empty(0))
    pooled_corr: np.ndarray = field(default_factory=lambda: np.empty(0))
    t_star_crps: float | None = None
    method: str = "spectral"

    def summary(self) -> str:
        """One-paragraph text summary."""
        s = f"spectral rule: k*={self.k_star:.4f} cycles/cell -> t*={self.t_star_spectral:.3f}"
        if self.t_star_crps is not None:
            rows = ", ".join(
                f"t={t:.2f}: CRPS {c:.3f} r {r:.3f}"
                for t, c, r in zip(self.t_grid, self.crps, self.pooled_corr, strict=True)
            )
            s += f"; perfect-model choice t*={self.t_star_crps:.3f} ({rows})"
        return s + f"; recommended t*={self.t_star:.3f} ({self.method})"


def _as_values(
    x: np.ndarray | xr.DataArray | xr.Dataset, model: ConsistencyModel, what: str
) -> np.ndarray:
    if isinstance(x, xr.Dataset | xr.DataArray):
        da = select_variable(
            x,
            model.config.variable
            if isinstance(x, xr.Dataset) and model.config.variable in x.data_vars
            else None,
        )
        return field_values(da, model.config.transform.units)
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise EsmscaleError(f"{what}: expected (time, y, x) fields, got shape {a.shape}.")
    return a


def spectral_t_star(
    k: np.ndarray, psd_obs: np.ndarray, psd_esm: np.ndarray, tol: float = 0.1
) -> tuple[float, float]:
    """``(k*, t*)`` from two spectra by the crossing rule (see module docstring).

    Examples
    --------
    >>> k = np.array([0.1, 0.2, 0.3, 0.4])
    >>> spectral_t_star(k, np.array([4.0, 1.0, 0.25, 0.0625]), np.array([4.0, 1.0, 0.01, 1e-4]))
    (0.3, 0.5)
    """
    ratio = np.log10(psd_esm / psd_obs)
    below = np.flatnonzero(ratio < -tol)
    i = int(below[0]) if below.size else len(k) - 1
    return float(k[i]), float(np.sqrt(psd_obs[i]))


def calibrate_noise_level(
    obs: np.ndarray | xr.DataArray | xr.Dataset,
    esm_on_fine_grid: np.ndarray | xr.DataArray | xr.Dataset,
    model: ConsistencyModel | str | os.PathLike[str],
    *,
    held_out: np.ndarray | xr.DataArray | xr.Dataset | None = None,
    t_grid: Sequence[float] = DEFAULT_T_GRID,
    members: int = 4,
    max_fields: int = 32,
    min_corr: float = 0.95,
    seed: int = 0,
    tol: float = 0.1,
    progress: bool = False,
    device: str = "cpu",
    precision: str = "fp32",
) -> Calibration:
    """Choose the noise level t* for a model and an ESM.

    Parameters
    ----------
    obs
        High-resolution observations ``(time, y, x)`` (the model's training units if numpy).
    esm_on_fine_grid
        The ESM interpolated onto the observation grid.
    model
        The consistency model (its transform defines the spectral space), a shipped model's
        name or a checkpoint path.
    held_out
        High-resolution observations not used in training; if given, they are coarsened by
        ``model.config.factor`` and downscaled for each ``t`` in ``t_grid`` (perfect-model test).
    members, max_fields
        Ensemble size and number of held-out fields used in the search.
    min_corr
        Minimum pooled correlation with the input for a ``t`` to be eligible.
    progress
        Show a progress bar over ``t_grid`` during the perfect-model search.
    device, precision
        Where and in which precision the search's network calls run (:mod:`esmscale.devices`).

    Returns
    -------
    Calibration

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> from esmscale.prepare import regrid
    >>> obs = synthetic_precip(32, 32, 4, seed=0)["pr"]
    >>> esm_fine = regrid(synthetic_esm(obs.to_dataset())["pr"], obs)
    >>> spectral = calibrate_noise_level(obs, esm_fine, "synthetic-pr-4x")  # the spectral rule
    >>> spectral.method, spectral.t_star == spectral.t_star_spectral
    ('spectral', True)
    >>> cal = calibrate_noise_level(obs, esm_fine, "synthetic-pr-4x", held_out=obs,
    ...                             t_grid=[0.1, 0.3], members=2)  # + the perfect-model search
    >>> cal.t_grid.tolist(), cal.crps.shape, cal.t_star == cal.t_star_crps
    ([0.1, 0.3], (2,), True)
    """
    from tqdm.auto import tqdm

    from esmscale.pretrained import load_model

    model = load_model(model)
    tr = model.config.transform
    o = tr.forward(_as_values(obs, model, "obs"))
    e = tr.forward(_as_values(esm_on_fine_grid, model, "esm_on_fine_grid"))
    if o.shape[-2:] != e.shape[-2:]:
        raise EsmscaleError(
            f"obs grid {o.shape[-2:]} differs from esm_on_fine_grid {e.shape[-2:]}; interpolate "
            "the ESM onto the observation grid first."
        )
    k, p_obs = rapsd(o)
    _, p_esm = rapsd(e, mask=np.isfinite(o).all(axis=0))
    k_star, t_spec = spectral_t_star(k, p_obs, p_esm, tol=tol)
    if held_out is None:
        return Calibration(t_spec, k_star, t_spec, k, p_obs, p_esm)

    truth = _as_values(held_out, model, "held_out")[:max_fields]
    f = model.config.factor
    h, w = (s - s % f for s in truth.shape[-2:])
    truth = truth[:, :h, :w]
    coarse = coarsen_block(truth, f)
    fine = upsample_bilinear(coarse, f)
    crps, corr = [], []
    bar = tqdm(t_grid, desc="calibrate", unit="t", disable=not progress)
    for t in bar:
        bar.set_postfix_str(f"t={float(t):g}")
        spec = fine_spec(
            model,
            fine.shape[1:],
            t_star=float(t),
            seed=seed,
            device=device,
            precision=precision,
        )
        ens = sample_fine(spec, fine, max(members, 2))
        crps.append(crps_ensemble(ens, truth))
        corr.append(pooled_correlation(ens, coarse, f))
    bar.close()
    crps_a, corr_a = np.asarray(crps), np.asarray(corr)
    ok = corr_a >= min_corr
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(crps_a))
    best = int(pool[np.argmin(crps_a[pool])])
    method = "perfect-model CRPS" + ("" if ok.any() else f" (no t reached corr {min_corr})")
    return Calibration(
        float(t_grid[best]),
        k_star,
        t_spec,
        k,
        p_obs,
        p_esm,
        np.asarray(t_grid, dtype=float),
        crps_a,
        corr_a,
        float(t_grid[best]),
        method,
    )


def calibrate_on_pairs(
    coarse: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    model: ConsistencyModel,
    *,
    t_grid: Sequence[float] = (0.1, 0.25, 0.4, 0.6, 0.8, 1.0, 1.2),
    members: int = 8,
    **downscale_kwargs: Any,
) -> tuple[float, dict[float, float]]:
    """Choose t* by fair CRPS on paired coarse/fine days (e.g. reanalysis vs observations).

    Where a coarse product and the observations describe the same days (a reanalysis over a
    training period), the truth is known for the real coarse input, not only for coarsened
    observations: ``coarse`` is downscaled onto ``obs``'s grid for each ``t`` (with
    ``downscale_kwargs``, e.g. ``bias_correction``) and the ``t`` with the lowest fair CRPS wins.
    Use days that are not in the evaluation period.

    Returns
    -------
    t_star, crps
        The chosen noise level and the CRPS (in ``obs``'s units) for every ``t``.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> from esmscale.pretrained import load_model
    >>> obs = synthetic_precip(32, 32, 3, seed=0)
    >>> t_star, crps = calibrate_on_pairs(synthetic_esm(obs), obs, load_model("synthetic-pr-4x"),
    ...                                   t_grid=(0.1, 0.4), members=2)
    >>> sorted(crps), t_star == min(crps, key=crps.get)
    ([0.1, 0.4], True)
    """
    from esmscale.downscaling.pipeline import downscale
    from esmscale.metrics import fair_crps

    ref = select_variable(obs, None) if isinstance(obs, xr.Dataset) else obs
    scores: dict[float, float] = {}
    for t in t_grid:
        out = downscale(
            coarse, model, target=ref, members=max(members, 2), t_star=float(t), **downscale_kwargs
        )
        scores[float(t)] = float(fair_crps(_in_units_of(out, ref), ref))
    best = min(scores, key=lambda k: scores[k])
    _warn_at_edge(best, sorted(scores), "calibrate_on_pairs")
    return best, scores


def _warn_at_edge(best: float, grid: list[float], who: str) -> None:
    """Warn when the chosen ``t`` is the first or last of a grid of 3 or more values: the
    optimum may lie beyond it.
    """
    if len(grid) < 3 or grid[0] < best < grid[-1]:
        return
    import warnings

    from esmscale.errors import EsmscaleWarning

    low = best == grid[0]
    wider = sorted({*grid, *((best / 4, best / 2) if low else (best * 1.5, best * 2))})
    warnings.warn(
        f"{who}: t*={best:g} is the {'lowest' if low else 'highest'} value of t_grid {grid}; "
        f"the CRPS may fall further {'below' if low else 'above'} it. Run again with a wider "
        f"grid, e.g. t_grid={tuple(round(t, 4) for t in wider)}.",
        EsmscaleWarning,
        stacklevel=3,
    )


def calibrate_spread(
    coarse: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    model: ConsistencyModel,
    *,
    restore: float,
    amplitudes: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2),
    members: int = 8,
    **downscale_kwargs: Any,
) -> tuple[float, dict[float, dict[str, float]]]:
    """Choose the spread amplitude (``downscale(spread=...)``) on paired coarse/fine days.

    With ``restore``, every member has the input's large scales, so the ensemble's spread at
    those scales comes only from the perturbation. ``coarse`` is downscaled onto ``obs``'s grid
    for each amplitude (same members and seed, with ``downscale_kwargs``, e.g.
    ``bias_correction`` and ``spread_length``), then once more at the amplitude interpolated
    linearly to a ratio of 1 between the two grid points around it; the amplitude whose
    spread-skill ratio is closest to 1 wins. Use days outside the evaluation period.

    Returns
    -------
    amplitude, scores
        The chosen amplitude and, for every amplitude, ``{"spread_skill": ..., "crps": ...}``
        (CRPS in ``obs``'s units).

    Examples
    --------
    >>> import esmscale
    >>> from esmscale.datasets import synthetic_precip
    >>> model = esmscale.load_model("synthetic-pr-4x")
    >>> obs = synthetic_precip(32, 32, 4, seed=5).pr
    >>> coarse = obs.coarsen(lat=4, lon=4).mean()
    >>> a, scores = calibrate_spread(
    ...     coarse, obs, model, restore=2.0, amplitudes=(0.0, 0.5), members=3, tile=32, halo=0
    ... )
    >>> a in scores, scores[0.5]["spread_skill"] > scores[0.0]["spread_skill"]
    (True, True)
    """
    from esmscale.downscaling.pipeline import downscale
    from esmscale.metrics import fair_crps, spread_skill_ratio

    if members < 2:
        raise EsmscaleError(
            f"calibrate_spread: members={members}; a spread-skill ratio needs at least 2 "
            "members (8 or more for a stable choice)."
        )
    ref = select_variable(obs, None) if isinstance(obs, xr.Dataset) else obs
    scores: dict[float, dict[str, float]] = {}

    def score(a: float) -> None:
        out = downscale(
            coarse,
            model,
            target=ref,
            members=members,
            restore=restore,
            spread=float(a),
            **downscale_kwargs,
        )
        res = _in_units_of(out, ref).compute()
        scores[float(a)] = {
            "spread_skill": float(spread_skill_ratio(res, ref)),
            "crps": float(fair_crps(res, ref)),
        }

    for a in amplitudes:
        score(float(a))
    # the ratio grows with the amplitude: refine once between the two grid points around 1
    grid = sorted(scores)
    for lo, hi in itertools.pairwise(grid):
        s_lo, s_hi = scores[lo]["spread_skill"], scores[hi]["spread_skill"]
        if s_lo < 1.0 <= s_hi and s_hi > s_lo:
            score(round(lo + (hi - lo) * (1.0 - s_lo) / (s_hi - s_lo), 4))
            break
    best = min(scores, key=lambda k: abs(scores[k]["spread_skill"] - 1.0))
    return best, scores


def _in_units_of(out: xr.DataArray | xr.Dataset, ref: xr.DataArray) -> xr.DataArray:
    """The downscaled variable of ``out`` in the units (and attributes) of ``ref``."""
    from esmscale.prepare.units import linear_factors

    res = select_variable(out, None) if isinstance(out, xr.Dataset) else out
    s, o = linear_factors(res.attrs.get("units"), str(ref.attrs.get("units")), str(ref.name))
    return (res * s + o).assign_attrs(ref.attrs)


def _field(
    obj: xr.Dataset | xr.DataArray, variable: str | None, model: ConsistencyModel, check: str
) -> xr.DataArray:
    """``variable`` (default: the model's, or the only one) after the physical checks."""
    if variable is None and isinstance(obj, xr.Dataset) and model.config.variable in obj:
        variable = model.config.variable
    return check_field(select_variable(obj, variable), check)


def calibrate_esm(
    esm: xr.Dataset | xr.DataArray | None,
    obs: xr.Dataset | xr.DataArray,
    model: ConsistencyModel | str | os.PathLike[str],
    *,
    held_out: xr.Dataset | xr.DataArray | None = None,
    variable: str | None = None,
    check: str = "raise",
    progress: bool = False,
    **search_kwargs: Any,
) -> Calibration:
    """Choose t* for an ESM against observations: what ``ds.esm.calibrate`` and the CLI run.

    The inputs are prepared as :func:`esmscale.downscale` prepares its input: ``variable`` is
    selected in each, the physical checks run (``check``), values are converted to the model's
    units and the ESM is regridded bilinearly onto the observation grid. Then
    :func:`calibrate_noise_level` chooses t*.

    Parameters
    ----------
    esm
        The coarse ESM. None: the held-out observations coarsened by the model's factor (block
        mean) and upsampled bilinearly stand in for it (a perfect-model spectral rule).
    obs
        High-resolution observations on the grid the model downscales to.
    model
        The consistency model, a shipped model's name or a checkpoint path.
    held_out
        Observations not used in training, for the perfect-model search (needed if ``esm`` is
        None).
    variable
        Variable name in the inputs (default: the model's variable if present, else the one).
    check
        ``"raise"``, ``"warn"`` or ``"off"``: see :func:`esmscale.prepare.check_field`.
    progress
        Show a progress bar over the t grid of the perfect-model search.
    **search_kwargs
        Passed to :func:`calibrate_noise_level` (``t_grid``, ``members``, ``max_fields``,
        ``min_corr``, ``seed``, ``tol``, ``device``, ``precision``).

    Returns
    -------
    Calibration

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> obs = synthetic_precip(32, 32, 4, seed=0)
    >>> cal = calibrate_esm(synthetic_esm(obs), obs, "synthetic-pr-4x", held_out=obs,
    ...                     t_grid=[0.1, 0.3], members=2)
    >>> cal.t_star in (0.1, 0.3), cal.method
    (True, 'perfect-model CRPS')
    """
    from esmscale.prepare.regrid import regrid
    from esmscale.pretrained import load_model

    cm = load_model(model)
    units = cm.config.transform.units
    ref = _field(obs, variable, cm, check)
    held = None if held_out is None else field_values(_field(held_out, variable, cm, check), units)
    if esm is not None:
        fine = field_values(regrid(_field(esm, variable, cm, check), ref, method="bilinear"), units)
    elif held is not None:
        f = cm.config.factor
        fine = upsample_bilinear(coarsen_block(held, f), f)
    else:
        raise EsmscaleError(
            "calibrate_esm: esm is None and held_out is None; give the ESM, or held-out "
            "observations to coarsen in its place."
        )
    return calibrate_noise_level(
        field_values(ref, units), fine, cm, held_out=held, progress=progress, **search_kwargs
    )
