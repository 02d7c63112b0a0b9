"""
CNRM-CM5 over Iberia: QDM and an ensemble
=========================================

Real data: daily precipitation of the CMIP5 model CNRM-CM5 (about 1.4 degrees) over the Iberian
Peninsula, bias-corrected by quantile delta mapping (QDM, Cannon et al., 2015) against E-OBS
and downscaled onto the 0.5-degree E-OBS grid into an ensemble of 3 members.

The files come from ``$ESMSCALE_DATA/climate4r_iberia`` (default: ``../shared/data`` beside
the repository; DJF winters 1983-2002). Where that folder is absent, the example runs on
synthetic data instead and says so in its titles and output.

The model is the shipped ``synthetic-pr-4x``, trained on synthetic precipitation at 0.25
degrees, not on E-OBS: this example shows the workflow, not the best achievable quality (a
model trained on E-OBS is in :doc:`/training` and the Iberia benchmark in :doc:`/benchmarks`).
"""

import os
from pathlib import Path

import cartopy
import cartopy.crs as ccrs
import cartopy.feature as cfeature
import matplotlib.pyplot as plt
import shapefile  # pyshp, a Cartopy dependency
import torch
import xarray as xr

import esmscale
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.report.maps import find_coastlines

torch.set_num_threads(1)
# Offline coastlines: GSHHS shapefiles from Debian's python-cartopy-data (or $CARTOPY_DATA_DIR);
# find_coastlines says what to install when there are none. Cartopy downloads nothing.
coastlines = find_coastlines()
cartopy.config["pre_existing_data_dir"] = coastlines.data_dir
shapefile.VERBOSE = False  # pyshp notes on GSHHS lake polygons, not problems

ROOT = Path(esmscale.__file__).resolve().parents[1]  # the repository
DATA = Path(os.environ.get("ESMSCALE_DATA", ROOT.parent / "shared" / "data"))
IBERIA = DATA / "climate4r_iberia"
REAL = (IBERIA / "EOBS_Iberia_pr.nc").is_file() and (IBERIA / "CMIP5_Iberia_pr.nc").is_file()


def winters(ds: xr.Dataset, first: int, last: int) -> xr.Dataset:
    """The DJF days of the winters ``first``..``last`` (December counts with the next year)."""
    year = ds.time.dt.year + (ds.time.dt.month == 12)
    return ds.isel(time=((year >= first) & (year <= last)).values)


if REAL:
    source = "real data: CNRM-CM5 (CMIP5) and E-OBS"
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    eobs = xr.open_dataset(IBERIA / "EOBS_Iberia_pr.nc", engine="netcdf4", decode_times=coder)
    gcm = xr.open_dataset(IBERIA / "CMIP5_Iberia_pr.nc", engine="netcdf4", decode_times=coder)
    eobs, gcm = eobs[["pr"]], gcm[["pr"]]
    reference, historical = winters(eobs, 1983, 1997), winters(gcm, 1983, 1997)
    obs, sim = winters(eobs, 1998, 1998), winters(gcm, 1998, 1998)
else:
    source = f"SYNTHETIC data ({IBERIA} not found; set ESMSCALE_DATA)"
    world = synthetic_precip(64, 64, 465, seed=3)
    esm_all = synthetic_esm(world)
    reference, historical = world.isel(time=slice(0, 365)), esm_all.isel(time=slice(0, 365))
    obs, sim = world.isel(time=slice(365, None)), esm_all.isel(time=slice(365, None))
print(source)
print(f"simulation: {sim.sizes['time']} days, {sim['pr'].attrs.get('units')}")

# %%
# Bias correction and downscaling in one call
# -------------------------------------------
# ``bias_correction="qdm"`` trains QDM on ``historical`` against ``reference`` (the
# observations over the same winters) and applies it to the interpolated simulation before the
# network; ``target=`` puts the output on the observation grid (and its land mask: E-OBS is
# NaN over the sea). ``"qdm-mean"`` would keep the model's mean change instead.
out = sim.chunk({"time": 30}).esm.downscale(
    "synthetic-pr-4x",
    target=obs,
    members=3,
    seed=0,
    bias_correction="qdm",
    reference=reference,
    historical=historical,
)
pr = out["pr"].compute()
units = pr.attrs["units"]
print(pr.sizes, units, pr.attrs["esmscale_bias_correction"])

# %%
# Mean maps over the winter
# -------------------------
# Converted to mm day-1 for plotting (1 kg m-2 s-1 = 86400 mm day-1). The raw GCM is drawn on
# its own coarse grid.
to_mm = 86400.0 if units == "kg m-2 s-1" else 1.0
gcm_to_mm = 86400.0 if sim["pr"].attrs.get("units") == "kg m-2 s-1" else 1.0
maps = [
    (sim["pr"].mean("time") * gcm_to_mm, "GCM as it is (coarse)"),
    (obs["pr"].mean("time"), "observations"),
    (pr.mean(("time", "member")) * to_mm, "QDM + downscaled, ensemble mean"),
]
vmax = float(max(m.max() for m, _ in maps))
proj = {"projection": ccrs.PlateCarree()}
fig, axes = plt.subplots(1, 4, figsize=(18, 4), subplot_kw=proj, layout="constrained")
coast = cfeature.GSHHSFeature(scale=coastlines.scale, levels=[1], edgecolor="black", linewidth=0.6)
for ax, (da, title) in zip(axes[:3], maps, strict=True):
    im = da.plot.pcolormesh(
        ax=ax, x="lon", y="lat", vmin=0, vmax=vmax, cmap="YlGnBu", add_colorbar=False
    )
    ax.set_title(title, fontsize=10)
fig.colorbar(im, ax=axes[:3], shrink=0.8, label="mean precipitation (mm day-1)")
sd = pr.std("member", ddof=1).mean("time") * to_mm
im = sd.plot.pcolormesh(ax=axes[3], x="lon", y="lat", cmap="magma", add_colorbar=False)
axes[3].set_title("mean ensemble SD (3 members)", fontsize=10)
fig.colorbar(im, ax=axes[3], shrink=0.8, label="ensemble SD (mm day-1)")
for ax in axes:
    ax.add_feature(coast)
    ax.set_extent([-10, 4.5, 35, 44.5], crs=ccrs.PlateCarree())
    gl = ax.gridlines(draw_labels=True, linewidth=0.3, color="0.6")
    gl.top_labels = gl.right_labels = False
    gl.xlabel_style = gl.ylabel_style = {"size": 8}
fig.suptitle(f"{source}: DJF mean ({sim.sizes['time']} days)")
plt.show()

# %%
# Daily domain means
# ------------------
# The ensemble follows the GCM's own weather (a free-running GCM is not in phase with the
# observed days: only the statistics are comparable); the members differ at small scales. The
# GCM's mean is over all its cells, the members' over the E-OBS land cells only.
fig, ax = plt.subplots(figsize=(10, 3.5), layout="constrained")
days = range(sim.sizes["time"])
ax.plot(
    days,
    (sim["pr"] * gcm_to_mm).mean(("lat", "lon")),
    color="0.5",
    label="GCM as it is (land and sea)",
)
for m in range(pr.sizes["member"]):
    ax.plot(days, (pr.isel(member=m) * to_mm).mean(("lat", "lon")), linewidth=0.8,
            label=f"member {m + 1}")  # fmt: skip
ax.set_xlabel("day of the winter (days since 1 December)")
ax.set_ylabel("domain-mean precipitation (mm day-1)")
ax.set_title(source)
ax.legend(fontsize=8, ncol=4)
plt.show()
