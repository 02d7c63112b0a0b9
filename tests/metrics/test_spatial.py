"""FSS through scores, hand-checked against a direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.metrics.spatial import fractions_skill_score


def _field(seed: int, days: int = 3) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    vals = rng.gamma(0.7, 6.0, (days, 12, 14)).astype(np.float32)
    return xr.DataArray(
        vals,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range("2000-01-01", periods=days),
            "lat": np.arange(12) * 0.5,
            "lon": np.arange(14) * 0.5,
        },
        attrs={"units": "mm day-1"},
    )


def _direct_fss(f: np.ndarray, o: np.ndarray, thr: float, n: int) -> float:
    """Aggregated FSS over windows fully inside the grid, straight from the definition."""

    def fractions(x: np.ndarray) -> np.ndarray:
        e = (x >= thr).astype(float)
        t, ny, nx = e.shape
        out = np.empty((t, ny - n + 1, nx - n + 1))
        for i in range(ny - n + 1):
            for j in range(nx - n + 1):
                out[:, i, j] = e[:, i : i + n, j : j + n].mean(axis=(1, 2))
        return out

    pf, po = fractions(f), fractions(o)
    return 1.0 - ((pf - po) ** 2).sum() / ((pf**2).sum() + (po**2).sum())


def test_fss_matches_the_definition() -> None:
    obs, fc = _field(0), _field(1)
    fss = fractions_skill_score(fc, obs, thresholds=[1.0, 10.0], windows=[1, 3, 5])
    for thr in (1.0, 10.0):
        for n in (1, 3, 5):
            want = _direct_fss(fc.values, obs.values, thr, n)
            assert float(fss.sel(threshold=thr, window=n)) == pytest.approx(want, rel=1e-6)


def test_fss_grows_with_window_and_averages_members() -> None:
    obs = _field(0)
    ens = xr.concat([_field(1), _field(2)], dim="member")
    fss = fractions_skill_score(ens, obs, thresholds=[1.0], windows=[1, 9])
    assert float(fss.sel(window=9).squeeze()) > float(fss.sel(window=1).squeeze())
    each = [
        float(fractions_skill_score(ens.isel(member=m), obs, [1.0], [9]).squeeze())
        for m in range(2)
    ]
    assert float(fss.sel(window=9).squeeze()) == pytest.approx(np.mean(each), rel=1e-9)


def test_sea_cells_count_as_no_event_in_both() -> None:
    obs = _field(0)
    obs[:, :3, :] = np.nan
    fc = obs.fillna(50.0)  # the result has rain at sea, the observations no data there
    assert float(fractions_skill_score(fc, obs, [1.0], [3]).squeeze()) == pytest.approx(1.0)


def test_a_window_larger_than_the_grid_is_refused() -> None:
    obs = _field(0)
    with pytest.raises(EsmscaleError, match=r"window sizes \[13\] do not fit the 12x14 grid"):
        fractions_skill_score(obs, obs, windows=[1, 13])
