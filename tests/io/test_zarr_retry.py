"""Transient store write errors are retried per chunk; persistent ones stop with a clear error."""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from distributed.scheduler import KilledWorker

from esmscale import EsmscaleError
from esmscale.io import retry
from esmscale.io.failures import block_index, tile_error
from esmscale.io.zarr import existing_chunks, is_complete, is_ours, write_zarr
from tests import _faults


def _result(nonneg: bool) -> xr.DataArray:
    data = da.arange(2 * 4 * 6, dtype="f4").reshape(2, 4, 6).rechunk((1, 2, 3))
    return xr.DataArray(data if nonneg else data - 20, dims=("member", "time", "x"), name="v")


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_each_chunk_failing_once_is_retried_bitwise(tmp_path, scheduler):
    folder = tmp_path / "faults"
    folder.mkdir()
    result = _result(nonneg=False)
    _faults.install_flaky_store(folder)
    try:
        with dask.config.set(scheduler=scheduler):
            summary = write_zarr(result, tmp_path / "out.zarr", progress=False)
    finally:
        _faults.uninstall_flaky_store()
    assert summary.complete
    assert _faults.count(folder, "fail") == summary.n_chunks_written == 8
    got = xr.open_zarr(tmp_path / "out.zarr").v.values
    assert np.array_equal(got, result.values)


def test_a_store_that_keeps_failing_stops_with_the_chunk_and_resume(tmp_path, monkeypatch):
    from zarr.storage import LocalStore

    original = LocalStore.set

    async def broken(self, key, value):  # type: ignore[no-untyped-def]
        if "/c/" in key:
            raise OSError(f"disk quota exceeded writing {key}")
        return await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", broken)
    monkeypatch.setattr(retry.RetryingTarget.__init__, "__defaults__", (retry.ATTEMPTS, 0.0, ""))
    store = tmp_path / "out.zarr"
    with dask.config.set(scheduler="synchronous"), pytest.raises(EsmscaleError) as info:
        write_zarr(_result(nonneg=False), store, progress=False)
    msg = str(info.value)
    assert f"failed {retry.ATTEMPTS} times in a row" in msg
    # The chunk that failed first is named by its slices; which one dask runs first may vary.
    named = re.search(r"v\[(\d+):(\d+), (\d+):(\d+), (\d+):(\d+)\]", msg)
    assert named is not None, msg
    lo_m, hi_m, lo_t, hi_t, lo_x, hi_x = map(int, named.groups())
    assert (hi_m - lo_m, hi_t - lo_t, hi_x - lo_x) == (1, 2, 3)
    assert lo_m % 1 == 0 and lo_t % 2 == 0 and lo_x % 3 == 0
    assert "disk quota exceeded" in msg and "resume" in msg
    assert is_ours(store) and not is_complete(store) and not existing_chunks(store, "v")
    monkeypatch.setattr(LocalStore, "set", original)
    with dask.config.set(scheduler="synchronous"):
        assert write_zarr(_result(nonneg=False), store, resume=True, progress=False).complete


def test_a_killed_tile_is_named_by_its_coordinates():
    ds = xr.Dataset(
        {"pr": (("member", "time", "lat", "lon"), da.zeros((2, 4, 4, 6), chunks=(1, 2, 2, 6)))},
        coords={
            "time": np.array(["2001-01-01", "2001-01-02", "2001-01-03", "2001-01-04"], "M8[ns]"),
            "lat": [40.0, 40.5, 41.0, 41.5],
            "lon": np.arange(6.0),
        },
    )
    key = ("concatenate-truediv-abc", 1, 1, 0, 0)
    assert block_index(key) == (1, 1, 0, 0)
    assert block_index("finalize-abc") is None
    err = tile_error(KilledWorker(key, "tcp://127.0.0.1:1", 3), ds, "out.zarr")
    assert err is not None
    text = err.for_cli()
    assert "member 1, time 2001-01-03 .. 2001-01-04, lat 40.0 .. 40.5, lon 0.0 .. 5.0" in text
    assert "killed 4 workers" in text and "--resume" in text and "skip" in text
    assert tile_error(ValueError("other"), ds, "out.zarr") is None
