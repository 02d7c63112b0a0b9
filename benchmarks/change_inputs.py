"""Which change can the network's input keep? Bias corrections side by side (issue 11, point 4).

CNRM-CM5 DJF precipitation over Iberia, RCP8.5 2081-2100 against historical 1983-2002, on the
E-OBS grid. The network keeps the large scales of what it is given (``restore``), so the
change signal of a downscaling is decided by the bias-corrected input. Each variant below is
the input alone (no network), all trained on E-OBS winters 1983-1997:

- ``qdm``: plain quantile delta mapping (xsdba), which keeps the ESM's change per quantile;
- ``qdm_mean``: the same, each cell then scaled so that its mean change is the ESM's
  (``QDMCorrector(preserve_mean_change=True)``, the ``qdm-mean`` of the Iberia benchmark);
- ``qdm_keep_change``: plain QDM, then :func:`esmscale.downscaling.change.keep_change`;
- ``qdm_light_days``: plain QDM, then only each cell's days at or below its past wet-day 90th
  percentile scaled so that the cell's mean change is the ESM's (the intense end as QDM left
  it; defined here, a candidate, not in the package).

For each: the change of the mean, Rx1day and R95pTOT (xclim, per winter), per cell and of the
domain mean, as ratios to the ESM's and as differences in percentage points, with the ESM's
bootstrap ranges over winters.

Usage: ``python benchmarks/change_inputs.py [--quick]``; data from ``$ESMSCALE_DATA``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import iberia_fidelity as F
import numpy as np
import torch
import xarray as xr
from _common import write_results
from real_iberia import _mm, _open, _winters

from esmscale.downscaling.change import keep_change
from esmscale.prepare import QDMCorrector, regrid

LIGHT_QUANTILE = 0.9  # wet-day quantile of the past at or below which days are scaled


def light_days_mean_step(
    fut: xr.DataArray, past: xr.DataArray, esm_ratio: xr.DataArray, q: float = LIGHT_QUANTILE
) -> tuple[xr.DataArray, xr.DataArray]:
    """``fut`` with each cell's days at or below the past's wet-day ``q`` quantile scaled by one
    factor (>= 0) so that the cell's mean is ``mean(past) * esm_ratio``; and that factor."""
    v = past.where(past >= 1.0).quantile(q, "time").drop_vars("quantile")
    light = fut <= v
    lo, hi = fut.where(light, 0.0).sum("time"), fut.where(~light, 0.0).sum("time")
    want = past.mean("time") * esm_ratio * fut.sizes["time"]
    factor = ((want - hi) / lo).clip(0.0, None)
    return xr.where(light, fut * factor, fut).where(fut.notnull()), factor


def run(quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    eobs = _open("EOBS_Iberia_pr.nc")
    hist, rcp = _open("CMIP5_Iberia_pr.nc"), _open("CMIP5_Iberia_pr_rcp85.nc")
    if quick:
        hist, rcp = _winters(hist, 1983, 1986), rcp.isel(time=slice(0, 4 * 90))
    land = np.isfinite(eobs).any("time")
    obs_train = _winters(eobs, 1983, 1997)
    hist_train = regrid(_winters(hist, 1983, 1997), eobs)
    fut_fine, past_fine = regrid(rcp, eobs), regrid(hist, eobs)
    esm_f, esm_p = (_mm(x).where(land).compute() for x in (fut_fine, past_fine))
    esm = F.esm_change(esm_f, esm_p, land)
    t0 = time.perf_counter()
    qdm = QDMCorrector.train(obs_train, hist_train)
    qdm_mean = QDMCorrector.train(obs_train, hist_train, preserve_mean_change=True)
    q_f, q_p = (_mm(qdm.adjust(x)).where(land).compute() for x in (fut_fine, past_fine))
    m_f, m_p = (_mm(qdm_mean.adjust(x)).where(land).compute() for x in (fut_fine, past_fine))
    light, factor = light_days_mean_step(q_f, q_p, esm_f.mean("time") / esm_p.mean("time"))
    variants = {
        "qdm": (q_f, q_p),
        "qdm_mean": (m_f, m_p),
        "qdm_keep_change": (keep_change(q_f, q_p, esm_f, esm_p).compute(), q_p),
        "qdm_light_days": (light.assign_attrs(q_f.attrs), q_p),
    }
    out: dict[str, Any] = {"esm": esm, "variants": {}}
    for name, (f, p) in variants.items():
        rec = F.change_ratios(f, p, esm, land)
        out["variants"][name] = rec
        print(
            f"{name}: mean {rec['rcp85_change_ratio']:.3f}, Rx1day "
            f"{rec['rx1day_change_minus_esm_pp']:+.2f} pp, R95pTOT "
            f"{rec['r95ptot_change_ratio']:.2f}",
            flush=True,
        )
    f = factor.where(land).values
    out["light_days_factor"] = {
        "quantile": LIGHT_QUANTILE,
        "min": float(np.nanmin(f)),
        "median": float(np.nanmedian(f)),
        "max": float(np.nanmax(f)),
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 winters per period, same code paths")
    args = ap.parse_args()
    write_results("change_inputs", run(args.quick), args.quick)


if __name__ == "__main__":
    main()
