"""Forecast benchmark: PastNet vs baselines (and PastNet ablations) on four tasks.

Tasks: 2-D Navier-Stokes vorticity (nu = 1e-3), bouncing digits, E-OBS daily temperature over
Iberia (DJF winters, NaN sea) and daily precipitation over the Balearic Islands (NaN outside
the islands). Each task is split in time: the first 80 % trains (the trainer holds out its own
last 20 % for early stopping), the last 20 % is the test set. Metrics per model and lead:
RMSE, MAE, SSIM, PSNR (float data, range of the test truth), relative L2 (Navier-Stokes),
skill vs persistence (1 - RMSE / RMSE_persistence), CSI and FSS at 1 and 5 mm/day
(precipitation); plus parameters, training time and inference time per sample.

Usage: ``python benchmarks/forecast.py [--quick] [--jobs 2]``; the quick run uses the same code
paths with small grids, few trajectories and few training steps (under 5 minutes on 2 CPU
cores). ``--jobs N`` runs tasks in N processes of one thread each (timings per model stay
single-threaded). The full run trains every model for up to 1500 steps (batch 16) and runs the
PastNet ablations on the two real-data tasks only (64 x 64 PastNet training is the cost).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from _common import write_results

from esmscale.datasets.moving_digits import moving_digits
from esmscale.datasets.navier_stokes import navier_stokes
from esmscale.forecast import ForecastConfig, fit, forecast
from esmscale.forecast import metrics as M
from esmscale.forecast.data import segments, window_starts
from esmscale.forecast.forecaster import NETWORKS
from esmscale.models.fno import FNOConfig
from esmscale.models.pastnet import PastNetConfig
from esmscale.models.simvp import SimVPConfig

DATA = Path(
    os.environ.get("ESMSCALE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
BASELINES = ["persistence", "climatology", "optical_flow"]
STEPS = 1500  # full run: training steps per model (early stopping may end sooner)


def _navier_stokes(quick: bool) -> dict[str, Any]:
    ns = navier_stokes(
        n_samples=40 if quick else 400, n_frames=30, size=32 if quick else 64, viscosity=1e-3,
        seed=0, as_xarray=True,
    )  # fmt: skip
    return {"da": ns, "t_in": 10, "t_out": 10}


def _moving_digits(quick: bool) -> dict[str, Any]:
    digits = moving_digits(
        n_samples=40 if quick else 600, n_frames=20, size=32 if quick else 64,
        digit_size=12 if quick else 24, seed=0, as_xarray=True,
    )  # fmt: skip
    return {"da": digits, "t_in": 10, "t_out": 10}


def _eobs_tas(quick: bool) -> dict[str, Any]:
    tas = xr.open_dataset(DATA / "climate4r_iberia" / "EOBS_Iberia_tas.nc").tas.load()
    return {"da": tas.isel(time=slice(0, 900)) if quick else tas, "t_in": 4, "t_out": 3,
            "ablations": True}  # fmt: skip


def _balearic_pr(quick: bool) -> dict[str, Any]:
    tp = xr.open_dataset(DATA / "synoptreg_balearic" / "pcp_spread.nc").tp.load()
    tp = tp.assign_attrs(units="mm day-1")
    return {"da": tp.isel(time=slice(0, 1200)) if quick else tp, "t_in": 4, "t_out": 3,
            "precip": True, "ablations": True}  # fmt: skip


# name -> builder; the ablations run on every task in --quick and on the real-data tasks
# (small grids) in the full run, where 64 x 64 x 10-frame PastNet training is the cost
TASKS = {
    "navier_stokes": _navier_stokes,
    "moving_digits": _moving_digits,
    "eobs_tas": _eobs_tas,
    "balearic_pr": _balearic_pr,
}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _count(cfg: Any) -> int:
    return int(NETWORKS[cfg.kind](cfg).num_parameters())


def _matched(cfg: Any, field: str, values: range, target: int) -> Any:
    """``cfg`` with ``field`` set so that its parameter count is closest to ``target``."""
    return min((cfg.replace(**{field: v}) for v in values), key=lambda c: abs(_count(c) - target))


def _models(quick: bool, ablations: bool, t_in: int, t_out: int) -> dict[str, Any]:
    small = (
        {"embed_dim": 32, "hidden": 16, "translator_hidden": 32, "num_codes": 64} if quick else {}
    )
    pn = PastNetConfig(t_in=t_in, t_out=t_out, **small)
    if quick:
        simvp, fno = SimVPConfig(translator_hidden=32), FNOConfig(width=16, modes=6)
    else:  # baselines at PastNet's parameter budget (its code dim taken as 16 here)
        budget = _count(pn.replace(code_dim=16))
        simvp = _matched(
            SimVPConfig(t_in=t_in, t_out=t_out, hidden=32), "translator_hidden",
            range(16, 161, 8), budget,
        )  # fmt: skip
        fno = _matched(FNOConfig(t_in=t_in, t_out=t_out), "width", range(6, 33), budget)
    models = {
        "pastnet": pn,
        "pastnet_residual": pn.replace(residual=True),
        "simvp": simvp,
        "fno": fno,
    }
    if ablations or quick:
        models |= {
            "pastnet_no_fourier": pn.replace(use_fourier=False),
            "pastnet_no_memory": pn.replace(use_memory=False),
            "pastnet_fixed_D32": pn.replace(code_dim=32),
        }
    return models


def _test_windows(test: xr.DataArray, t_in: int, t_out: int, limit: int) -> np.ndarray:
    starts = window_starts(segments(test.time.values), t_in + t_out)
    if starts.size > limit:
        starts = starts[np.linspace(0, starts.size - 1, limit).round().astype(int)]
    return starts


def _score(
    fc: np.ndarray, truth: np.ndarray, rng_: float, precip: bool, ns: bool
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("rmse", "mae", "ssim", "psnr")}
    if ns:
        out["rel_l2"] = []
    if precip:
        for k in ("csi_1mm", "csi_5mm", "fss_1mm", "fss_5mm"):
            out[k] = []
    for k in range(fc.shape[1]):
        f, t = fc[:, k], truth[:, k]
        out["rmse"].append(M.rmse(f, t))
        out["mae"].append(M.mae(f, t))
        out["ssim"].append(M.ssim(f, t, rng_))
        out["psnr"].append(M.psnr(f, t, rng_))
        if ns:
            out["rel_l2"].append(M.relative_l2(f, t))
        if precip:
            for thr in (1, 5):
                out[f"csi_{thr}mm"].append(M.csi(f, t, thr))
                out[f"fss_{thr}mm"].append(M.fss(f, t, thr))
    return out


def run_task(name: str, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    _log(f"{name}: building the data")
    task = TASKS[name](quick)
    da, t_in, t_out = task["da"], task["t_in"], task["t_out"]
    n = da.sizes["time"]
    split = int(n * 0.8)
    train_da, test = da.isel(time=slice(0, split)), da.isel(time=slice(split, None))
    starts = _test_windows(test, t_in, t_out, 48 if quick else 256)
    inits = test.time.values[starts + t_in - 1]
    idx = starts[:, None] + t_in + np.arange(t_out)[None, :]
    truth = test.values[idx]
    rng_ = float(np.nanmax(truth) - np.nanmin(truth))
    base = ForecastConfig(
        t_in=t_in, t_out=t_out, steps=100 if quick else STEPS, batch_size=8 if quick else 16,
        eval_every=25 if quick else 100, patience=3 if quick else 5, lr=2e-3,
        id_warmup_steps=20 if quick else 200, checkpoint_every=10**9,
    )  # fmt: skip
    result: dict[str, Any] = {"grid": list(da.shape[-2:]), "t_in": t_in, "t_out": t_out,
                              "test_windows": int(starts.size), "models": {}}  # fmt: skip
    for model_name, mcfg in [
        *[(b, None) for b in BASELINES],
        *_models(quick, bool(task.get("ablations")), t_in, t_out).items(),
    ]:
        t0 = time.perf_counter()
        if mcfg is None:
            kw = {"t_in": 3} if model_name == "optical_flow" else {}
            m = fit(model_name, train_da, base, **kw)
        else:
            m = fit(mcfg.kind, train_da, base.replace(model=mcfg, name=model_name), progress=False)
        train_s = time.perf_counter() - t0
        _log(f"{name}: {model_name} trained in {train_s:.0f} s")
        t0 = time.perf_counter()
        fc = forecast(test, m, lead=t_out, init=inits, chunk_size=64).compute().values
        infer_s = (time.perf_counter() - t0) / max(starts.size, 1)
        scores = _score(fc, truth, rng_, bool(task.get("precip")), name == "navier_stokes")
        entry = {**scores, "params": m.num_parameters(), "train_seconds": round(train_s, 2),
                 "inference_seconds_per_sample": round(infer_s, 5)}  # fmt: skip
        if hasattr(m, "net") and hasattr(m.net.config, "code_dim"):
            entry["code_dim"] = m.net.config.code_dim
            entry["intrinsic_dim"] = m.net.config.intrinsic_dim
            hist = m.info.get("history") or [{}]
            entry["perplexity"] = hist[-1].get("perplexity")
            entry["dead_codes"] = hist[-1].get("dead_codes")
        result["models"][model_name] = entry
    pers = np.asarray(result["models"]["persistence"]["rmse"])
    for entry in result["models"].values():
        entry["skill_vs_persistence"] = (1.0 - np.asarray(entry["rmse"]) / pers).round(4).tolist()
    models = result["models"]
    result["rmse"] = {k: [round(v, 5) for v in e["rmse"]] for k, e in models.items()}
    result["params"] = {k: e["params"] for k, e in models.items()}
    result["skill_vs_persistence_pastnet"] = models["pastnet"]["skill_vs_persistence"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    ap.add_argument(
        "--jobs", type=int, default=1, help="tasks run in this many processes (1 thread each)"
    )
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    args = ap.parse_args()
    names = [n for n in args.tasks.split(",") if n]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        ap.error(f"unknown task(s) {unknown}; choose from {sorted(TASKS)}")
    t0 = time.perf_counter()
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = {pool.submit(run_task, n, args.quick): n for n in names}
            done: dict[str, Any] = {}
            for fut in as_completed(futures):
                if fut.exception() is not None:  # say so now: the pool waits for the others
                    _log(f"task {futures[fut]} failed: {fut.exception()!r}")
                    pool.shutdown(wait=False, cancel_futures=True)
                done[futures[fut]] = fut.result()
                _log(f"task {futures[fut]} done")
            results: dict[str, Any] = {n: done[n] for n in names}
    else:
        results = {n: run_task(n, args.quick) for n in names}
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["jobs"] = args.jobs
    results["train_steps_max"] = 100 if args.quick else STEPS
    write_results("forecast", results, args.quick)


if __name__ == "__main__":
    main()
