"""
A PastNet forecast
==================

:mod:`esmscale.forecast` trains short-range forecasters of gridded fields (:doc:`/forecast`).
Here a deliberately tiny PastNet (Fourier branch + discrete branch) is trained for a few
seconds on vorticity trajectories of the Navier-Stokes benchmark (generated in code,
:func:`esmscale.datasets.navier_stokes.navier_stokes`) and compared with persistence on a held-out
trajectory. A few seconds of training on a CPU make a weak model: the point is the interface,
and the same two calls work on any ``(time, y, x)`` DataArray.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from esmscale import forecast as fc
from esmscale.datasets.navier_stokes import navier_stokes
from esmscale.models.pastnet import PastNetConfig

torch.set_num_threads(1)

# 6 training trajectories of 16 frames on a 32x32 grid; one more held out
data = navier_stokes(n_samples=7, n_frames=16, size=32, seed=0, as_xarray=True)
train_da = data.isel(time=slice(0, 6 * 16))
test_da = data.isel(time=slice(6 * 16, None))
print(dict(data.sizes), data.attrs["long_name"], data.attrs["units"])

tiny = PastNetConfig(
    patch_size=4, embed_dim=16, fourier_depth=1, fourier_blocks=2, hidden=8, res_layers=1,
    num_codes=16, translator_hidden=16, translator_blocks=1,
)  # fmt: skip
config = fc.ForecastConfig(
    model=tiny, t_in=4, t_out=4, steps=150, batch_size=8, eval_every=50, id_warmup_steps=20,
    id_points=400, lr=3e-3, seed=0,
)  # fmt: skip
model = fc.train(train_da, config, progress=False)

# %%
# Forecast the held-out trajectory
# --------------------------------
# :func:`esmscale.forecast.forecast` is lazy (Dask); each init time uses the 4 frames before
# it. The same call runs the baselines (:func:`esmscale.forecast.fit`).
init = test_da.time.values[3]
pastnet = fc.forecast(test_da, model, lead=4, init=[init]).compute()
persistence = fc.forecast(test_da, fc.fit("persistence", train_da), lead=4, init=[init]).compute()
truth = test_da.isel(time=slice(4, 8))

rmse = {
    name: np.sqrt(((f.isel(init_time=0).values - truth.values) ** 2).mean(axis=(1, 2)))
    for name, f in [("PastNet (tiny)", pastnet), ("persistence", persistence)]
}
for name, r in rmse.items():
    print(f"{name:15s} RMSE by lead: {np.round(r, 3)}")

# %%
# The fields at the last lead, and the error by lead
# --------------------------------------------------
fig = plt.figure(figsize=(15, 4), layout="constrained")
grid = fig.add_gridspec(1, 4)
lim = float(np.abs(truth).max())
panels = [
    (test_da.isel(time=3).values, "initial frame"),
    (truth.isel(time=-1).values, "truth, lead 4"),
    (pastnet.isel(init_time=0, lead_time=-1).values, "PastNet, lead 4"),
]
axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
for ax, (field, title) in zip(axes, panels, strict=True):
    im = ax.imshow(field, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set(title=title, xlabel="x (grid cells)", ylabel="y (grid cells)")
fig.colorbar(im, ax=axes, shrink=0.8, label="vorticity (1)")
ax = fig.add_subplot(grid[0, 3])
for name, r in rmse.items():
    ax.plot(np.arange(1, 5), r, "o-", label=name)
ax.set(xlabel="lead (frames)", ylabel="RMSE of vorticity (1)", title="error by lead")
ax.set_xticks([1, 2, 3, 4])
ax.legend(fontsize=8)
plt.show()
