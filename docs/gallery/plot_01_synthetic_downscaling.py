"""
Downscaling a synthetic ESM with the accessor
=============================================

The whole workflow on a synthetic world: a coarse, biased "ESM" precipitation field at 1 degree
is downscaled 4x to 0.25 degrees by the shipped consistency model ``synthetic-pr-4x`` into an
ensemble of 4 members, with ``ds.esm.downscale``.

The synthetic world has no real geography: its coordinates (35.1-50.9 N, 9.9 W-5.9 E) were
chosen so that the maps can show coastlines for orientation, but its rain does not know where
the land is.
"""

# %%
# Data: a synthetic high-resolution "truth" and its coarse ESM
# ------------------------------------------------------------
# :func:`esmscale.datasets.synthetic_precip` makes daily precipitation (mm day-1) on a 64x64 grid
# at 0.25 degrees; :func:`esmscale.datasets.synthetic_esm` block-averages it 4x4 and adds a
# multiplicative bias and smoothed small scales, like a coarse ESM.

import cartopy
import cartopy.crs as ccrs
import cartopy.feature as cfeature
import matplotlib.pyplot as plt
import numpy as np
import shapefile  # pyshp, a Cartopy dependency
import torch

import esmscale  # noqa: F401  (registers the .esm accessor on xarray objects)
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.report.maps import find_coastlines

torch.set_num_threads(1)
# Offline coastlines: GSHHS shapefiles from Debian's python-cartopy-data (or $CARTOPY_DATA_DIR);
# find_coastlines says what to install when there are none. Cartopy downloads nothing.
coastlines = find_coastlines()
cartopy.config["pre_existing_data_dir"] = coastlines.data_dir
shapefile.VERBOSE = False  # pyshp notes on GSHHS lake polygons, not problems

truth = synthetic_precip(64, 64, 4, seed=7)
esm = synthetic_esm(truth)
print(esm["pr"].sizes, esm["pr"].attrs["units"])

# %%
# Downscale
# ---------
# The call is lazy (Dask) until ``.compute()``; the model runs on fixed tiles of the target
# grid, so the result does not depend on the chunks. The output keeps the input's units and
# CF attributes and records its provenance (model, sha256, seed, t*).
out = esm.esm.downscale("synthetic-pr-4x", members=4, seed=0).compute()
pr = out["pr"]
print(pr.sizes)
print({k: v for k, v in pr.attrs.items() if k.startswith("esmscale_model")})

# %%
# Maps with offline coastlines
# ----------------------------
# One colour scale for the coarse input, the truth and two members; the ensemble standard
# deviation has its own. Coastlines come from the GSHHS shapefiles on disk (Cartopy draws
# them without downloading anything).
coast = cfeature.GSHHSFeature(scale=coastlines.scale, levels=[1], edgecolor="0.3", linewidth=0.6)
day = 0
vmax = float(np.quantile(truth["pr"].isel(time=day), 0.995))
panels = [
    (esm["pr"].isel(time=day), "coarse ESM input (1 degree)"),
    (truth["pr"].isel(time=day), "truth (0.25 degree)"),
    (pr.isel(time=day, member=0), "member 1"),
    (pr.isel(time=day, member=1), "member 2"),
]
fig, axes = plt.subplots(
    1, 5, figsize=(17, 3.8), subplot_kw={"projection": ccrs.PlateCarree()}, layout="constrained"
)
for ax, (da, title) in zip(axes[:4], panels, strict=True):
    im = da.plot.pcolormesh(
        ax=ax, x="lon", y="lat", vmin=0, vmax=vmax, cmap="Blues", add_colorbar=False
    )
    ax.set_title(title, fontsize=10)
fig.colorbar(im, ax=axes[:4], shrink=0.8, extend="max", label="precipitation (mm day-1)")
sd = pr.isel(time=day).std("member", ddof=1)
im = sd.plot.pcolormesh(ax=axes[4], x="lon", y="lat", cmap="magma", add_colorbar=False)
axes[4].set_title("ensemble SD", fontsize=10)
fig.colorbar(im, ax=axes[4], shrink=0.8, label="ensemble SD (mm day-1)")
for ax in axes:
    ax.add_feature(coast)
    gl = ax.gridlines(draw_labels=True, linewidth=0.3, color="0.6")
    gl.top_labels = gl.right_labels = False
    gl.xlabel_style = gl.ylabel_style = {"size": 8}
fig.suptitle(f"synthetic world on {str(pr.time.values[day])[:10]} (longitude / latitude, degrees)")
plt.show()

# %%
# The members carry small-scale structure that the 1-degree input lacks; they agree on the
# large-scale pattern (the input's) and differ at small scales, so the ensemble spread is
# largest where it rains. The domain mean stays close to the input's:
for name, da in [("input", esm["pr"]), ("truth", truth["pr"]), ("ensemble", pr)]:
    print(f"{name:9s} mean {float(da.mean()):.2f} mm day-1")
