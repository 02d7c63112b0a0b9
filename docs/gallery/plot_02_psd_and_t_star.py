"""
Power spectra and the choice of t*
==================================

t* is the noise level added to the interpolated ESM field before the network denoises it
(:doc:`/choosing_t_star`). :func:`esmscale.calibrate_noise_level` reports both rules:

* the **spectral rule** (Hess et al., 2025): the wavenumber k* where the ESM's power spectrum
  drops below the observations' gives t* = sqrt(PSD_obs(k*)) in the model's normalised space;
* the **perfect-model search**: held-out observations are coarsened 4x, downscaled for a grid
  of t, and the t with the lowest fair CRPS whose pooled correlation with the input stays at or
  above 0.95 is chosen.

Tiny sizes here (16 held-out days, 2 members, 5 values of t), so the numbers are noisier than
the evidence on the :doc:`/choosing_t_star` page (64 days, 8 members, 10 values).
"""

import matplotlib.pyplot as plt
import torch

import esmscale
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.metrics import per_degree, radial_psd
from esmscale.prepare import regrid

torch.set_num_threads(1)

obs = synthetic_precip(64, 64, 16, seed=11)["pr"]
esm = synthetic_esm(obs.to_dataset())["pr"]
esm_fine = regrid(esm, obs)  # bilinear onto the 0.25-degree grid
cal = esmscale.calibrate_noise_level(
    obs, esm_fine, "synthetic-pr-4x", held_out=obs, t_grid=[0.1, 0.2, 0.3, 0.5, 0.8], members=2
)
print(cal.summary())

# %%
# The spectra and the search
# --------------------------
# Left: the interpolated ESM has the observations' power at large scales and far less at
# small scales; k* marks where the two part. The downscaled ensemble (here at the chosen t*)
# restores much of the missing small-scale power.
out = esm.to_dataset().esm.downscale("synthetic-pr-4x", members=2, seed=0, t_star=cal.t_star)
spectra = {
    "observations": radial_psd(obs),
    "ESM, bilinear to 0.25 degree": radial_psd(esm_fine),
    f"downscaled (t* = {cal.t_star:g})": radial_psd(out["pr"]).compute(),
}
k_star = per_degree(cal.k_star, obs)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
for label, p in spectra.items():
    style = {"color": "black", "linewidth": 2} if label == "observations" else {}
    ax1.loglog(p["wavenumber"], p, label=label, **style)
ax1.axvline(k_star, color="0.4", linestyle="--", label=f"k* = {k_star:.2f} cycles per degree")
ax1.set_xlabel("wavenumber (cycles per degree)")
ax1.set_ylabel("PSD ((mm day-1)$^2$ degree$^2$)")
ax1.set_title("radially averaged PSD, mean over 16 days")
ax1.legend(fontsize=8)
# Right: the perfect-model search. Fair CRPS (lower is better) and pooled correlation with the
# coarse input against t; the shaded band is where the correlation falls below 0.95 (not
# eligible).
ax2.plot(cal.t_grid, cal.crps, "o-", color="tab:blue")
ax2.set_xlabel("noise level t (normalised units)")
ax2.set_ylabel("fair CRPS (mm day-1)", color="tab:blue")
ax2.axvline(cal.t_star, color="tab:blue", linestyle="--", label=f"chosen t* = {cal.t_star:g}")
ax2.legend(loc="upper center", fontsize=8)
twin = ax2.twinx()
twin.plot(cal.t_grid, cal.pooled_corr, "s-", color="tab:red")
twin.axhline(0.95, color="tab:red", linestyle=":")
twin.fill_between(cal.t_grid, 0, 1, where=cal.pooled_corr < 0.95, color="tab:red", alpha=0.1,
                  transform=twin.get_xaxis_transform())  # fmt: skip
twin.set_ylabel("pooled correlation with the input (1)", color="tab:red")
ax2.set_title(f"perfect-model search; spectral rule: t* = {cal.t_star_spectral:.2f}")
plt.show()

# %%
# The spectral rule gives a much larger t* than the search: it is an upper bound, at which the
# ensemble would no longer follow the ESM's weather (pooled correlation well below 0.95).
print(f"spectral rule t* = {cal.t_star_spectral:.2f}; perfect-model t* = {cal.t_star_crps:.2f}")
