"""Property tests (hypothesis) of the downscaling pipeline with the shipped model.

For random Dask chunkings, CF calendars, longitude conventions (-180..180, 0..360, descending
latitude) and NaN masks of the target: the output is identical to the reference chunking (one
chunk, in memory), NaN exactly where the target is NaN (so no NaN leaks past a tile halo into its
neighbours), and a 0..360 grid gives the same field as the same points in -180..180.

The default profile runs a few examples on tiny grids (16x24 fine cells, tiles of 8 with a halo
of 4, so every field has six tiles and halos cross chunk borders); ``ESMSCALE_HYPOTHESIS=heavy``
runs many more (``-m slow`` test below).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling.pipeline import downscale
from esmscale.pretrained import load_model

CALENDARS = [
    "standard",
    "gregorian",
    "proleptic_gregorian",
    "julian",
    "noleap",
    "365_day",
    "all_leap",
    "366_day",
    "360_day",
]
CONVENTIONS = ["-180..180", "0..360", "descending-lat"]
NY, NX, NT = 16, 24, 3  # fine grid (the shipped model refines by 4) and time steps
KW = {"tile": 8, "halo": 4, "members": 1, "seed": 3}


@pytest.fixture(scope="module")
def model():
    return load_model("synthetic-pr-4x")


def _coarse(calendar: str, convention: str, seed: int) -> xr.Dataset:
    """A 4x6 coarse field over lon -10..-4 (west of Greenwich) in the given convention."""
    obs = synthetic_precip(NY, NX, NT, seed=seed, calendar=calendar, start="2000-02-27")
    esm = synthetic_esm(obs)
    if convention == "0..360":
        esm = esm.assign_coords(lon=(esm.lon % 360.0).assign_attrs(esm.lon.attrs))
    elif convention == "descending-lat":
        esm = esm.isel(lat=slice(None, None, -1))
    return esm


def _target(esm: xr.Dataset, model, mask: np.ndarray) -> xr.Dataset:
    """The default fine grid of ``esm`` with NaN cells where ``mask`` is set (e.g. sea)."""
    from esmscale.prepare.regrid import refine_grid

    grid = refine_grid(esm, model.config.factor)
    lat = grid["lat"].values
    if convention_is_descending(esm):
        lat = lat[::-1] if lat[0] < lat[-1] else lat
    values = np.where(mask, np.nan, 1.0).astype("f4")
    return xr.Dataset(
        {"land": (("lat", "lon"), values)},
        coords={"lat": grid["lat"].copy(data=lat), "lon": grid["lon"]},
    )


def convention_is_descending(esm: xr.Dataset) -> bool:
    return bool(esm.lat.values[0] > esm.lat.values[-1])


masks = st.lists(
    st.tuples(st.integers(0, NY - 1), st.integers(0, NX - 1), st.integers(1, 6), st.integers(1, 6)),
    max_size=3,
)


def _mask(boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros((NY, NX), dtype=bool)
    for y, x, h, w in boxes:
        mask[y : y + h, x : x + w] = True
    return mask


def _check(model, calendar, convention, boxes, tchunk, ychunk, xchunk, seed):
    esm = _coarse(calendar, convention, seed)
    mask = _mask(boxes)
    target = _target(esm, model, mask)
    ref = downscale(esm, model, target=target, **KW).pr
    lazy = esm.chunk({"time": tchunk})
    out = downscale(lazy, model, target=target, chunks={"lat": ychunk, "lon": xchunk}, **KW).pr
    assert out.chunks is not None
    got = out.compute(scheduler="sync").values
    want = ref.values
    # 1. identical to the reference chunking, bit for bit (NaN in the same places)
    assert got.tobytes() == want.tobytes()
    # 2. NaN exactly where the target is NaN, in the target's own orientation
    target_nan = np.isnan(target["land"].values)
    assert out.dims[-2:] == ("lat", "lon")
    np.testing.assert_array_equal(out["lat"].values, target["lat"].values)
    assert (np.isnan(got) == target_nan[None, None]).all(), "NaN leaked or a target NaN filled"
    # 3. the calendar is kept
    first = esm.time.values[0]
    if hasattr(first, "calendar"):
        assert out.time.values[0].calendar == first.calendar
    return ref


def _settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


strategy = {
    "calendar": st.sampled_from(CALENDARS),
    "convention": st.sampled_from(CONVENTIONS),
    "boxes": masks,
    "tchunk": st.integers(1, NT),
    "ychunk": st.integers(4, NY),
    "xchunk": st.integers(4, NX),
    "seed": st.integers(0, 3),
}


@_settings(3)
@given(**strategy)
def test_chunking_calendar_convention_and_mask(
    model, calendar, convention, boxes, tchunk, ychunk, xchunk, seed
):
    _check(model, calendar, convention, boxes, tchunk, ychunk, xchunk, seed)


@pytest.mark.slow
@_settings(int(os.environ.get("ESMSCALE_HYPOTHESIS_EXAMPLES", "40")))
@given(**strategy)
def test_chunking_calendar_convention_and_mask_heavy(
    model, calendar, convention, boxes, tchunk, ychunk, xchunk, seed
):
    _check(model, calendar, convention, boxes, tchunk, ychunk, xchunk, seed)


@_settings(2)
@given(boxes=masks, calendar=st.sampled_from(CALENDARS))
def test_0_360_longitudes_give_the_same_field(model, boxes, calendar):
    mask = _mask(boxes)
    fields = []
    for convention in ("-180..180", "0..360"):
        esm = _coarse(calendar, convention, 1)
        fields.append(downscale(esm, model, target=_target(esm, model, mask), **KW).pr)
    west, east = fields
    np.testing.assert_allclose(east.lon.values, west.lon.values % 360.0)
    assert east.values.tobytes() == west.values.tobytes()
