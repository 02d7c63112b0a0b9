"""Tiny data and configs shared by the forecast tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from esmscale.forecast import ForecastConfig
from esmscale.models.pastnet import PastNetConfig

TINY_PASTNET = PastNetConfig(
    patch_size=4,
    embed_dim=8,
    fourier_depth=1,
    fourier_blocks=2,
    hidden=8,
    res_layers=1,
    num_codes=16,
    translator_hidden=16,
    translator_blocks=1,
)


def tiny_config(**changes) -> ForecastConfig:
    base = ForecastConfig(
        model=TINY_PASTNET,
        t_in=3,
        t_out=2,
        steps=6,
        batch_size=4,
        eval_every=3,
        checkpoint_every=3,
        id_warmup_steps=2,
        id_points=400,
    )
    return base.replace(**changes) if changes else base


def djf_times(winters: int = 3, start: int = 2000) -> pd.DatetimeIndex:
    """Daily DJF-only times: a gap between each winter."""
    t = pd.date_range(f"{start}-12-01", f"{start + winters}-02-28", freq="D")
    return t[(t.month == 12) | (t.month <= 2)]


def field(times, ny=12, nx=16, seed=0, name="tas", nan_corner=True) -> xr.DataArray:
    """A smooth moving field (time, lat, lon) in degC with a NaN 'sea' corner."""
    rng = np.random.default_rng(seed)
    n = len(times)
    yy, xx = np.mgrid[0:ny, 0:nx]
    phase = np.cumsum(rng.uniform(0.1, 0.3, n))[:, None, None]
    v = (
        10
        + 3 * np.sin(0.5 * xx[None] - phase)
        + np.cos(0.4 * yy[None])
        + 0.1 * rng.standard_normal((n, ny, nx))
    )
    v = v.astype("float32")
    if nan_corner:
        v[:, :3, :4] = np.nan
    return xr.DataArray(
        v,
        dims=("time", "lat", "lon"),
        coords={"time": times, "lat": np.linspace(35, 40, ny), "lon": np.linspace(-9, -2, nx)},
        name=name,
        attrs={"units": "degC", "standard_name": "air_temperature"},
    )
