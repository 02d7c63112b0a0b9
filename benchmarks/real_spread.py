"""Real-data benchmark at 5 km on a national projected grid: SPREAD over the Balearic Islands.

SPREAD (Serrano-Notivoli et al. 2017) is daily precipitation on a 5 km UTM 30N grid
(``../shared/data/synoptreg_balearic/pcp_spread.nc``, 35 x 53 cells, 88.6 % sea). A consistency
model (CM) is trained on SPREAD 2000-2007 in the grid's own (easting, northing) cells, sea
masked. Held-out days 2008-2010 are coarsened by 5 and by 10 (25 and 50 km block means over
land; blocks with no land are NaN) and downscaled back onto the 5 km grid, the truth known:

- t*: the package's CRPS rule on pairs (:func:`esmscale.calibrate_on_pairs`) on coarsened 2007
  days (every third day), separately for each factor;
- the Iberia benchmark's table: fair CRPS of a CM ensemble (after QDM) against the MAE of
  bilinear + QDM and against the noise-only control (same input and noise, no network);
  spread-skill, rank histogram (flatness and outer bins), PSD error above k* (the wavenumber
  where the coarse input's spectrum falls away from SPREAD's), q99/q99.9 and wet-day frequency
  errors, the mean bias;
- the real-data fidelity scores: ETCCDI index biases (xclim, per year) and the FSS at 1 and
  10 mm/day over 1-9 cell windows, for CM, bilinear + QDM and bilinear.

The domain is the 30 x 50 cells that hold Mallorca, Menorca and Ibiza (northing rows 0-29,
easting columns 3-52), so that 5- and 10-cell blocks tile it exactly.

Usage: ``python benchmarks/real_spread.py [--quick]``; data from ``$ESMSCALE_DATA``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import iberia_fidelity as F
import numpy as np
import torch
import xarray as xr
from _common import write_results

import esmscale
from esmscale import TrainConfig
from esmscale import metrics as M
from esmscale.downscaling.calibration import calibrate_on_pairs
from esmscale.prepare import QDMCorrector

DATA = Path(
    os.environ.get("ESMSCALE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
RUNS = Path(__file__).resolve().parents[1] / "runs" / "bench-spread"
TILE = {"tile": 32, "halo": 8}
FACTORS = (5, 10)
DOMAIN = {"northing": slice(0, 30), "easting": slice(3, 53)}
#: t* candidates: the package's default grid starts at 0.1, which had the lowest CRPS here for
#: both factors (calibrate_on_pairs warns about a t* at the grid's edge), so the search goes lower
T_GRID = (0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8)


def _open() -> xr.Dataset:
    ds = xr.open_dataset(DATA / "synoptreg_balearic" / "pcp_spread.nc").load()
    return ds[["tp", "crs"]]


def _years(ds: xr.Dataset, first: int, last: int) -> xr.Dataset:
    year = ds.time.dt.year
    return ds.isel(time=((year >= first) & (year <= last)).values)


def _coarsen(fine: xr.Dataset, f: int) -> xr.Dataset:
    """Block means over land (a block without land is NaN), on the same projection."""
    c = fine[["tp"]].coarsen(northing=f, easting=f).mean()
    c["tp"].attrs = dict(fine.tp.attrs)
    c["crs"] = fine["crs"]
    for d in ("northing", "easting"):
        c[d].attrs = dict(fine[d].attrs)
    return c


def _train(obs: xr.Dataset, steps: int) -> esmscale.ConsistencyModel:
    out = RUNS / f"consistency-{steps}"
    if (out / "model" / "model.safetensors").exists():
        return esmscale.load_model(out / "model")
    cfg = TrainConfig(
        steps=steps,
        batch_size=16,
        patch_size=16,
        lr=1e-3,
        factor=FACTORS[0],
        name="spread-balearic",
        checkpoint_every=max(steps // 4, 1),
    )
    esmscale.train(obs, cfg, output_dir=out, progress=True)
    return esmscale.load_model(out / "model")


def _table(
    cm: esmscale.ConsistencyModel,
    f: int,
    fine: xr.Dataset,
    coarse: xr.Dataset,
    qdm: QDMCorrector,
    members: int,
    k_star: float,
) -> dict[str, object]:
    """The Iberia table (section a) for one factor, plus index biases and FSS."""
    truth = fine["tp"]
    kw = {"target": fine, "members": members, "seed": 0, "bias_correction": qdm, **TILE}
    res_cm, t_cm = F.timed(lambda: coarse.esm.downscale(cm, **kw)["tp"])
    res_ctrl, _ = F.timed(lambda: coarse.esm.downscale(cm, method="noise-only", **kw)["tp"])
    res_bq, t_qdm = F.timed(
        lambda: coarse.esm.downscale(method="qdm-bilinear", target=fine, bias_correction=qdm)["tp"]
    )
    res_bl, _ = F.timed(lambda: coarse.esm.downscale(method="bilinear", target=fine)["tp"])
    land = truth.notnull().any("time")
    psd_obs = M.radial_psd(truth, mask=land)

    def psd_err(r: xr.DataArray) -> float:
        return float(M.psd_error(M.radial_psd(r, mask=land), psd_obs, k_min=k_star))

    def q(r: xr.DataArray, qq: float) -> float:
        return float(M.quantile_errors(r, truth, [qq], relative=True).values[0])

    wet_obs = float(M.wet_day_fraction(truth))

    def mean_bias(r: xr.DataArray) -> float:
        return float(r.where(truth.notnull()).mean()) / float(truth.mean()) - 1.0

    inp = res_bq.where(land)
    a: dict[str, object] = {
        "crps_cm": float(M.fair_crps(res_cm, truth)),
        "crps_noise_only": float(M.fair_crps(res_ctrl, truth)),
        "mae_bilinear_qdm": float(M.mean_absolute_error(res_bq, truth)),
        "mae_bilinear": float(M.mean_absolute_error(res_bl, truth)),
        "spread_skill": float(M.spread_skill_ratio(res_cm, truth)),
        "rank_flatness": float(M.rank_flatness(M.rank_histogram(res_cm, truth))),
        "rank_outer_bins_ratio": F.outer_bins_ratio(res_cm, truth),
        "intense_day_ratio": F.intense_day_ratio(res_cm, inp),
        "psd_err_cm": psd_err(res_cm),
        "psd_err_interp": psd_err(res_bl),
        "psd_err_bilinear_qdm": psd_err(res_bq),
        "q99_err_cm": q(res_cm, 0.99),
        "q99_err_qdm": q(res_bq, 0.99),
        "q999_err_cm": q(res_cm, 0.999),
        "q999_err_qdm": q(res_bq, 0.999),
        "wet_freq_err_cm": float(M.wet_day_fraction(res_cm)) - wet_obs,
        "wet_freq_err_qdm": float(M.wet_day_fraction(res_bq)) - wet_obs,
        "mean_bias_cm": mean_bias(res_cm),
        "mean_bias_qdm": mean_bias(res_bq),
        "mean_bias_interp": mean_bias(res_bl),
        "days": int(truth.sizes["time"]),
        "members": members,
        "sec_per_field_cm": t_cm / (int(truth.sizes["time"]) * members),
        "sec_per_field_qdm": t_qdm / int(truth.sizes["time"]),
    }
    scored = {"cm": res_cm, "bilinear_qdm": res_bq, "bilinear": res_bl}
    a.update(F.field_scores(scored, truth, freq="YS"))
    a["targets_met"] = {
        "crps_cm<=0.9*mae_bilinear_qdm": a["crps_cm"] <= 0.9 * a["mae_bilinear_qdm"],  # type: ignore[operator]
        "crps_cm<crps_noise_only": a["crps_cm"] < a["crps_noise_only"],  # type: ignore[operator]
        "psd_err_cm<=psd_err_interp/3": a["psd_err_cm"] <= a["psd_err_interp"] / 3,  # type: ignore[operator]
        "0.7<=spread_skill<=1.3": 0.7 <= a["spread_skill"] <= 1.3,  # type: ignore[operator]
    }
    return a


def _k_star(fine: xr.Dataset, coarse: xr.Dataset) -> float:
    """Wavenumber (cycles per km) above which the interpolated input has lost SPREAD's power.

    The smallest wavenumber where the bilinear input's spectrum falls below half of the
    observed one: the scales the network has to add.
    """
    land = fine["tp"].notnull().any("time")
    p_obs = M.radial_psd(fine["tp"], mask=land)
    p_in = M.radial_psd(coarse.esm.downscale(method="bilinear", target=fine)["tp"], mask=land)
    low = (p_in / p_obs).values < 0.5
    k = p_obs["wavenumber"].values
    return float(k[np.argmax(low)]) if low.any() else float(k[-1])


def run(quick: bool) -> dict[str, object]:
    ds = _open()
    steps = 200 if quick else 3000
    members = 4 if quick else 10
    cm = _train(_years(ds, 2000, 2007), steps)
    dom = ds.isel(DOMAIN)
    train, cal_days = _years(dom, 2000, 2007), _years(dom, 2007, 2007)
    test = _years(dom, 2008, 2010)
    # t* pairs: every third day of 2007 (122 days through all seasons); quick: 40 days
    cal_days = cal_days.isel(time=slice(0, 40) if quick else slice(0, None, 3))
    if quick:
        test = test.isel(time=slice(0, 60))
    out: dict[str, object] = {
        "train_steps": steps,
        "domain_cells": {"northing": 30, "easting": 50},
        "land_fraction": float(dom.tp.notnull().any("time").mean()),
        "test_days": int(test.sizes["time"]),
    }
    for f in FACTORS:
        t0 = time.perf_counter()
        cmf = esmscale.load_model(cm)
        cmf.config = cmf.config.replace(factor=f)
        coarse_train = _coarsen(train, f)
        interp = coarse_train.esm.downscale(method="bilinear", target=train)["tp"].squeeze(
            "member", drop=True
        )
        qdm = QDMCorrector.train(train["tp"], interp)
        t_star, pair_crps = calibrate_on_pairs(
            _coarsen(cal_days, f),
            cal_days["tp"].assign_coords(crs=cal_days["crs"]),
            cmf,
            t_grid=T_GRID,
            members=4 if quick else 8,
            bias_correction=qdm,
            **TILE,
        )
        cmf.config = cmf.config.replace(t_star=t_star)
        coarse_test = _coarsen(test, f)
        k_star = _k_star(test, coarse_test)
        rec = _table(cmf, f, test, coarse_test, qdm, members, k_star)
        rec.update(
            t_star=t_star,
            t_star_method="CRPS on coarsened SPREAD 2007 pairs (calibrate_on_pairs)",
            t_star_pairs_crps={f"{k:g}": v for k, v in pair_crps.items()},
            k_star_per_km=k_star,
            coarse_km=5 * f,
            seconds=time.perf_counter() - t0,
        )
        out[f"factor{f}"] = rec
        print(
            f"factor {f}: t*={t_star:g} crps {rec['crps_cm']:.3f} vs mae_bq "
            f"{rec['mae_bilinear_qdm']:.3f}, ssr {rec['spread_skill']:.2f}, psd "
            f"{rec['psd_err_cm']:.3f} vs {rec['psd_err_interp']:.3f} ({rec['seconds']:.0f} s)",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    args = ap.parse_args()
    torch.set_num_threads(1)  # pinned: figures comparable across runs and machines
    write_results("real_spread", run(args.quick), args.quick)


if __name__ == "__main__":
    main()
