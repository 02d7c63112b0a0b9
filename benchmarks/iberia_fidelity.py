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


def first_bin_dry_share(ens: xr.DataArray, truth: xr.DataArray, dry: float = 1.0) -> float:
    """Of the cases where the truth is below every member, the share where it is dry (< ``dry``
    mm/day): a multiplicative spread cannot make a member dry where the input rains."""
    below = (truth < ens.min("member")) & truth.notnull()
    return float((below & (truth < dry)).sum()) / max(float(below.sum()), 1.0)


def intense_day_ratio(ens: xr.DataArray, inp: xr.DataArray) -> float:
    """Mean output / mean input over cells and days where the input is >= 20 mm/day."""
    sel = inp >= INTENSE
    return float(ens.mean("member").where(sel).mean()) / float(inp.where(sel).mean())


def pairs_scores(ens: xr.DataArray, truth: xr.DataArray, inp: xr.DataArray) -> dict[str, Any]:
    # a diagnostic, not a method: the ensemble scaled by one factor so that its mean over the
    # held-out days is the truth's (it uses the truth); if the outer bins then flatten, their
    # excess is the mean bias of the input, not the ensemble's dispersion
    factor = float(truth.mean()) / float(ens.where(truth.notnull()).mean())
    return {
        "rank_outer_bins_ratio_debiased": outer_bins_ratio(ens * factor, truth),
        "rank_first_bin_dry_share": first_bin_dry_share(ens, truth),
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


CHANGE_INDICES = ("rx1day", "r95ptot")


def _changes(fut: xr.DataArray, past: xr.DataArray, land: xr.DataArray) -> dict[str, float]:
    """Relative change of the mean, Rx1day and R95pTOT: per cell averaged over land (every
    cell alike) and of the domain mean (``*_domain_total``, wet cells weigh most)."""
    out: dict[str, float] = {}
    for per_cell, suffix in ((True, ""), (False, "_domain_total")):
        ch = M.index_change(
            fut, past, list(CHANGE_INDICES), freq=WINTERS, valid=land, per_cell=per_cell
        )
        if per_cell:
            other = [d for d in fut.dims if d not in ("lat", "lon")]
            rel = fut.mean(other) / past.mean([d for d in past.dims if d in other]) - 1.0
            mean = float(rel.where(land).mean())
        else:
            mean = float(fut.where(land).mean()) / float(past.where(land).mean()) - 1.0
        out[f"mean{suffix}"] = mean
        out.update({f"{k}{suffix}": float(ch[k]) for k in CHANGE_INDICES})
    return out


def change_ratios(
    fut: xr.DataArray, past: xr.DataArray, esm: dict[str, float], land: xr.DataArray
) -> dict[str, Any]:
    """Change of the mean, Rx1day and R95pTOT relative to the ESM's own (``esm``).

    The headline ratios are per cell (each cell's relative change averaged over land, for the
    ESM likewise); ``*_domain_total`` ratios use the change of the domain mean. With a
    ``member`` dim of more than one member, ``members`` holds each member's ratios and
    ``*_se`` the standard error of the ensemble's ratio from their spread.
    """
    ch = _changes(fut, past, land)
    names = {"mean": "rcp85_change_ratio", "rx1day": "rx1day_change_ratio",
             "r95ptot": "r95ptot_change_ratio"}  # fmt: skip
    out: dict[str, Any] = {"change": ch}
    for k, name in names.items():
        out[name] = ch[k] / esm[k]
        out[f"{name}_domain_total"] = ch[f"{k}_domain_total"] / esm[f"{k}_domain_total"]
        out[f"{name.replace('_ratio', '')}_minus_esm_pp"] = 100.0 * (ch[k] - esm[k])
    if "member" in fut.dims and fut.sizes["member"] > 1:
        per = [
            _changes(fut.isel(member=m), past.isel(member=m), land)
            for m in range(fut.sizes["member"])
        ]
        out["members"] = {name: [p[k] / esm[k] for p in per] for k, name in names.items()}
        for name, vals in out["members"].items():
            out[f"{name}_se"] = float(np.std(vals, ddof=1) / np.sqrt(len(vals)))
    return out


def mean_change_ratio(
    fut: xr.DataArray, past: xr.DataArray, esm: dict[str, Any], land: xr.DataArray
) -> float:
    """The per-cell mean change (as :func:`_changes`) relative to the ESM's."""
    other = [d for d in fut.dims if d not in ("lat", "lon")]
    rel = fut.mean(other) / past.mean([d for d in past.dims if d in other]) - 1.0
    return float(rel.where(land).mean()) / float(esm["mean"])


def esm_change(fut: xr.DataArray, past: xr.DataArray, land: xr.DataArray) -> dict[str, Any]:
    """The ESM's own changes (as :func:`_changes`) and, per index, the 5-95 % range of its
    domain-total change when the winters of each period are resampled (2,000 bootstrap draws):
    how far the change itself is from zero, given 20 winters."""
    out: dict[str, Any] = _changes(fut, past, land)
    rng = np.random.default_rng(0)
    ci: dict[str, list[float]] = {}
    fi = M.climate_indices(fut, list(CHANGE_INDICES), freq=WINTERS, base=past, name="future")
    pi = M.climate_indices(past, list(CHANGE_INDICES), freq=WINTERS, base=past, name="past")
    series = {k: (_winter_means(fi[k], land), _winter_means(pi[k], land)) for k in CHANGE_INDICES}
    w = WINTERS
    series["mean"] = (
        _winter_means(fut.resample(time=w).mean(), land),
        _winter_means(past.resample(time=w).mean(), land),
    )
    for k, (a, b) in series.items():
        draws = [
            a[rng.integers(0, a.size, a.size)].mean() / b[rng.integers(0, b.size, b.size)].mean()
            - 1.0
            for _ in range(2000)
        ]
        ci[k] = [float(v) for v in np.percentile(draws, [5, 95])]
    out["bootstrap_90"] = ci
    out["winters"] = int(series["mean"][0].size)
    return out


def _winter_means(ix: xr.DataArray, land: xr.DataArray) -> np.ndarray:
    """The land mean of a per-winter index, one value per complete winter."""
    v = ix.where(land).mean([d for d in ix.dims if d != "time"]).values
    return np.asarray(v[np.isfinite(v)], dtype=np.float64)


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
