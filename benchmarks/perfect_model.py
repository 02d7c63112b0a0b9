"""Perfect-model quality benchmark: held-out synthetic days, truth coarsened 4x and downscaled.

Compares, side by side in one run and at the t* the package picks by default (the model's
calibrated ``t_star``): the consistency model (CM), bilinear interpolation, and the noise-only
control (the interpolated field plus the same noise at t*, no network call).

Usage: ``python benchmarks/perfect_model.py [--quick] [--model NAME_OR_PATH]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_results

from esmscale import load_model
from esmscale.datasets import coarsen_block, synthetic_precip
from esmscale.downscaling.arrays import denoise_fine, noise_only, resolve_t_star
from esmscale.downscaling.calibration import spectral_t_star
from esmscale.metrics import (
    crps_ensemble,
    mae,
    pooled_correlation,
    quantile_error,
    wet_day_frequency,
)
from esmscale.prepare import upsample_bilinear
from esmscale.spectra import log_spectral_error, rapsd


def run(model_name: str, days: int, members: int, size: int, seed: int) -> dict[str, object]:
    model = load_model(model_name)
    f = model.config.factor
    t_star = resolve_t_star(model, "auto")
    truth = synthetic_precip(size, size, days, seed=seed)["pr"].values
    coarse = coarsen_block(truth, f)
    interp = upsample_bilinear(coarse, f)
    t0 = time.perf_counter()
    ens = denoise_fine(model, interp, t_star=t_star, members=members, seed=0)
    sec = time.perf_counter() - t0
    ctrl = noise_only(model, interp, t_star=t_star, members=members, seed=0)

    tr = model.config.transform
    k, p_truth = rapsd(truth)
    _, p_interp = rapsd(interp)
    _, p_cm = rapsd(ens.reshape(-1, size, size))
    _, p_ctrl = rapsd(ctrl.reshape(-1, size, size))
    kt, pt_truth = rapsd(tr.forward(truth))
    _, pt_interp = rapsd(tr.forward(interp))
    k_star, _ = spectral_t_star(kt, pt_truth, pt_interp)
    return {
        "model": model_name,
        "model_sha256": model.sha256,
        "days": days,
        "members": members,
        "grid": [size, size],
        "factor": f,
        "t_star": t_star,
        "k_star": k_star,
        "pooled_corr_cm": pooled_correlation(ens, coarse, f),
        "pooled_corr_noise_only": pooled_correlation(ctrl, coarse, f),
        "psd_err_cm": log_spectral_error(p_cm, p_truth, k, k_star),
        "psd_err_interp": log_spectral_error(p_interp, p_truth, k, k_star),
        "psd_err_noise_only": log_spectral_error(p_ctrl, p_truth, k, k_star),
        "q95_err_cm": quantile_error(ens, truth, 0.95),
        "q99_err_cm": quantile_error(ens, truth, 0.99),
        "q99_err_interp": quantile_error(interp, truth, 0.99),
        "wet_freq_err_cm": wet_day_frequency(ens) - wet_day_frequency(truth),
        "wet_freq_err_interp": wet_day_frequency(interp) - wet_day_frequency(truth),
        "crps_cm": crps_ensemble(ens, truth),
        "crps_noise_only": crps_ensemble(ctrl, truth),
        "mae_interp": mae(interp, truth),
        "sec_per_field_cm": sec / (members * days),
        "spectra": {
            "k": k.tolist(),
            "truth": p_truth.tolist(),
            "interp": p_interp.tolist(),
            "cm": p_cm.tolist(),
            "noise_only": p_ctrl.tolist(),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    ap.add_argument("--model", default="synthetic-pr-4x")
    ap.add_argument("--seed", type=int, default=1001, help="seed of the held-out world")
    args = ap.parse_args()
    days, members = (16, 4) if args.quick else (128, 10)
    res = run(args.model, days, members, 64, args.seed)
    targets = {
        "pooled_corr_cm>=0.95": res["pooled_corr_cm"] >= 0.95,
        "psd_err_cm<=psd_err_interp/3": res["psd_err_cm"] <= res["psd_err_interp"] / 3,
        "abs(q99_err_cm)<=0.10": abs(res["q99_err_cm"]) <= 0.10,
        "crps_cm<=0.9*crps_noise_only": res["crps_cm"] <= 0.9 * res["crps_noise_only"],
        "crps_cm<mae_interp": res["crps_cm"] < res["mae_interp"],
    }
    res["targets_met"] = {k: bool(v) for k, v in targets.items()}
    write_results("perfect_model", res, args.quick)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
