"""Real-data fidelity over Iberia (issue 11): does the CM keep what its input had right?

Used by ``real_iberia.py`` (section d); each candidate is a set of ``downscale`` keywords
(``restore``, ``spread``, ...) applied to the same trained CM at the same t*:

- NCEP -> E-OBS held-out days (truth known): fair CRPS, spread-skill, the outer rank-histogram
  bins relative to uniform, and the intense-day ratio (mean output / mean input over cells and
  days with bias-corrected input >= 20 mm/day);
- CNRM-CM5 historical DJF 1998-2002 after ``qdm-mean``: correlation of the 10-member mean's
  DJF mean map with E-OBS's, over all land cells, coastal cells (within two cells of the sea)
  and inland cells;
- CNRM-CM5 RCP8.5 vs historical after ``qdm-mean``: change of the DJF mean, of Rx1day and of
  R95pTOT (xclim, per winter) divided by the ESM's own change on the E-OBS grid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from esmscale import metrics as M

INTENSE = 20.0  # mm/day
WINTERS = "QS-DEC"


def coast_mask(land: xr.DataArray, cells: int = 2) -> xr.DataArray:
    """Land cells within ``cells`` cells (Chebyshev distance) of a sea cell."""
    near_sea = ndimage.binary_dilation(~land.values, np.ones((2 * cells + 1,) * 2, bool))
    return land & xr.DataArray(near_sea, coords=land.coords, dims=land.dims)


def pattern_corr(a: xr.DataArray, b: xr.DataArray, where: xr.DataArray) -> float:
    """Pearson correlation of two maps over the cells of ``where``."""
    x, y = a.values[where.values], b.values[where.values]
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def outer_bins_ratio(ens: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """Share of the first and last rank-histogram bins relative to uniform (1 = flat)."""
    h = M.rank_histogram(ens, truth).values
    share = h / h.sum()
    uniform = 1.0 / len(h)
    return {"first": float(share[0] / uniform), "last": float(share[-1] / uniform)}


def intense_day_ratio(ens: xr.DataArray, inp: xr.DataArray) -> float:
    """Mean output / mean input over cells and days where the input is >= 20 mm/day."""
    sel = inp >= INTENSE
    return float(ens.mean("member").where(sel).mean()) / float(inp.where(sel).mean())


def pairs_scores(ens: xr.DataArray, truth: xr.DataArray, inp: xr.DataArray) -> dict[str, Any]:
    return {
        "crps": float(M.fair_crps(ens, truth)),
        "spread_skill": float(M.spread_skill_ratio(ens, truth)),
        "rank_outer_bins_ratio": outer_bins_ratio(ens, truth),
        "rank_flatness": float(M.rank_flatness(M.rank_histogram(ens, truth))),
        "intense_day_ratio": intense_day_ratio(ens, inp),
        "mean_bias": float(ens.where(truth.notnull()).mean()) / float(truth.mean()) - 1.0,
    }


def map_scores(ens: xr.DataArray, obs_mean: xr.DataArray, land: xr.DataArray) -> dict[str, float]:
    coast = coast_mask(land)
    m = ens.mean([d for d in ("member", "time") if d in ens.dims])
    return {
        "pattern_corr": pattern_corr(m, obs_mean, land),
        "pattern_corr_coast": pattern_corr(m, obs_mean, coast),
        "pattern_corr_inland": pattern_corr(m, obs_mean, land & ~coast),
    }


def change_ratios(
    fut: xr.DataArray, past: xr.DataArray, esm: dict[str, float], land: xr.DataArray
) -> dict[str, float]:
    """Change of the mean, Rx1day and R95pTOT relative to the ESM's own (``esm``)."""
    ch = M.index_change(fut, past, ["rx1day", "r95ptot"], freq=WINTERS, valid=land)
    mean = float(fut.where(land).mean()) / float(past.where(land).mean()) - 1.0
    return {
        "rcp85_change_ratio": mean / esm["mean"],
        "rx1day_change_ratio": ch["rx1day"] / esm["rx1day"],
        "r95ptot_change_ratio": ch["r95ptot"] / esm["r95ptot"],
    }


def esm_change(fut: xr.DataArray, past: xr.DataArray, land: xr.DataArray) -> dict[str, float]:
    ch = M.index_change(fut, past, ["rx1day", "r95ptot"], freq=WINTERS, valid=land)
    mean = float(fut.where(land).mean()) / float(past.where(land).mean()) - 1.0
    return {"mean": mean, **ch}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` computed (if lazy) and the seconds it took."""
    t0 = time.perf_counter()
    res = fn()
    if hasattr(res, "compute"):
        res = res.compute()
    return res, time.perf_counter() - t0


def field_scores(
    scored: dict[str, xr.DataArray], truth: xr.DataArray, freq: str
) -> dict[str, dict[str, Any]]:
    """ETCCDI index biases (per ``freq`` period) and FSS of each method against ``truth``."""
    out: dict[str, dict[str, Any]] = {"index_bias": {}, "fss": {}}
    for m, r in scored.items():
        out["index_bias"][m] = M.index_bias(r, truth, freq=freq)
        fss = M.fractions_skill_score(r, truth)
        out["fss"][m] = {
            f"{t:g}": {f"{w:g}": float(fss.sel(threshold=t, window=w)) for w in fss.window.values}
            for t in fss.threshold.values
        }
    return out
