"""Tests of esmscale.io.zarr: template + region writes, resume after a kill, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from esmscale.errors import EsmscaleError
from esmscale.io.zarr import STORE_FORMAT, existing_chunks, is_complete, write_zarr

REPO = Path(__file__).resolve().parents[2]
SHAPE = (2, 10, 12, 16)
CHUNKS = (1, 3, 12, 8)
GRID = (2, 4, 1, 2)
ALL_BLOCKS = {
    (m, t, y, x)
    for m in range(GRID[0])
    for t in range(GRID[1])
    for y in range(GRID[2])
    for x in range(GRID[3])
}
ZERO_BLOCK = (1, 0, 0, 1)  # all zeros
NAN_BLOCK = (0, 3, 0, 0)  # all NaN (the default float fill value)
COORDER = xr.coders.CFDatetimeCoder(use_cftime=True)


def _fill(block, block_info=None, sleep=0.0, counter=None):
    """Values as a function of the global indices; records which block was computed."""
    loc = block_info[None]["array-location"]
    chunk_index = tuple(block_info[None]["chunk-location"])
    if counter is not None:
        counter.append(chunk_index)
    if sleep:
        time.sleep(sleep)
    m, t, y, x = np.meshgrid(*[np.arange(a, b) for a, b in loc], indexing="ij")
    out = (m * 1000.0 + t * 10.0 + y * 0.5 + x * 0.01 + 0.125).astype(block.dtype)
    if chunk_index == ZERO_BLOCK:
        out[...] = 0.0
    if chunk_index == NAN_BLOCK:
        out[...] = np.nan
    return out


def make_result(
    *, sleep: float = 0.0, counter: list | None = None, calendar: str = "noleap", nt: int = 10
) -> xr.DataArray:
    """A lazy (member, time, lat, lon) ensemble with deterministic values."""
    shape = (SHAPE[0], nt, *SHAPE[2:])
    base = da.zeros(shape, chunks=CHUNKS, dtype="f4")
    data = base.map_blocks(
        _fill, dtype="f4", meta=np.array((), dtype="f4"), sleep=sleep, counter=counter
    )
    time_ = xr.date_range("2001-01-01", periods=nt, freq="D", calendar=calendar, use_cftime=True)
    result = xr.DataArray(
        data,
        dims=("member", "time", "lat", "lon"),
        coords={
            "member": np.arange(shape[0]),
            "time": time_,
            "lat": np.linspace(40.0, 51.0, shape[2]),
            "lon": np.linspace(-5.0, 10.0, shape[3]),
        },
        name="pr",
        attrs={"units": "mm day-1", "long_name": "downscaled precipitation"},
    )
    result["time"].attrs.update(standard_name="time", axis="T")
    result["time"].encoding.update(units="hours since 2000-01-01", calendar=calendar)
    return result


def _files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()
    }


def _chunk_bytes(store: Path, name: str = "pr") -> dict[str, bytes]:
    return {k: v for k, v in _files(store / name).items() if k.startswith("c/")}


def _root_attrs(store: Path) -> dict:
    return json.loads((store / "zarr.json").read_text())["attributes"]


def _block_path(store: Path, index: tuple[int, ...]) -> Path:
    return store.joinpath("pr", "c", *map(str, index))


def _assert_bitwise(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_round_trip_bitwise_with_cftime_calendar(tmp_path, calendar):
    result = make_result(calendar=calendar)
    store = tmp_path / "out.zarr"
    summary = write_zarr(result, store, progress=False)

    assert summary.store == store
    assert summary.variables == ("pr",)
    assert summary.n_chunks_total == summary.n_chunks_written == len(ALL_BLOCKS)
    assert summary.n_chunks_skipped == 0
    assert summary.bytes_written == result.nbytes
    assert summary.complete
    assert summary.seconds > 0
    assert is_complete(store)
    attrs = _root_attrs(store)
    assert attrs["esmscale_store"] == STORE_FORMAT
    assert attrs["esmscale_complete"] is True
    assert "esmscale_written" in attrs
    assert existing_chunks(store, "pr") == ALL_BLOCKS  # NaN (= fill value) block included

    back = xr.open_zarr(store, decode_times=COORDER)
    expected = result.compute()
    _assert_bitwise(back["pr"].values, expected.values)
    assert back["pr"].attrs == expected.attrs
    assert back["pr"].encoding["chunks"] == CHUNKS
    for name in ("member", "lat", "lon"):
        _assert_bitwise(back[name].values, expected[name].values)
    assert list(back["time"].values) == list(expected["time"].values)
    assert back["time"].values[0].calendar == calendar
    assert back["time"].attrs == {"standard_name": "time", "axis": "T"}
    assert back["time"].encoding["units"] == "hours since 2000-01-01"
    assert back["time"].encoding["calendar"] == calendar
    assert zarr.open_group(store, mode="r")["time"].attrs["calendar"] == calendar
    # consolidated at the end: readable with consolidated=True
    assert "pr" in xr.open_zarr(store, consolidated=True, decode_times=COORDER)
    # the caller's object is not modified
    assert result.encoding == {}
    assert result.attrs == {"units": "mm day-1", "long_name": "downscaled precipitation"}


def test_dataset_and_unnamed_dataarray(tmp_path):
    result = make_result()
    ds = xr.Dataset({"pr": result, "tas": (result * 2).rename(None)}, attrs={"title": "t"})
    summary = write_zarr(ds, tmp_path / "ds.zarr", progress=False)
    assert summary.variables == ("pr", "tas")
    assert summary.n_chunks_total == 2 * len(ALL_BLOCKS)
    back = xr.open_zarr(tmp_path / "ds.zarr", decode_times=COORDER)
    assert back.attrs["title"] == "t"
    _assert_bitwise(back["tas"].values, ds["tas"].values)

    unnamed = result.rename(None)
    write_zarr(unnamed, tmp_path / "da.zarr", progress=False)
    back_da = xr.open_dataarray(tmp_path / "da.zarr", engine="zarr", decode_times=COORDER)
    assert back_da.name is None
    _assert_bitwise(back_da.values, unnamed.values)


def test_in_memory_result_is_one_chunk(tmp_path):
    result = make_result().compute()
    summary = write_zarr(result, tmp_path / "mem.zarr", progress=False)
    assert summary.n_chunks_total == 1
    assert existing_chunks(tmp_path / "mem.zarr", "pr") == {(0, 0, 0, 0)}


def test_chunks_equal_to_fill_value_are_written(tmp_path):
    result = make_result()
    result.encoding["fill_value"] = 0.0  # Zarr fill value 0: the ZERO_BLOCK equals it
    store = tmp_path / "zeros.zarr"
    write_zarr(result, store, progress=False)
    assert zarr.open_array(store / "pr", mode="r").fill_value == 0.0
    assert existing_chunks(store, "pr") == ALL_BLOCKS
    assert _block_path(store, ZERO_BLOCK).is_file()
    back = xr.open_zarr(store, decode_times=COORDER)["pr"].values
    _assert_bitwise(back, result.values)

    # Control: without write_empty_chunks Zarr drops such chunks (what write_zarr prevents).
    plain = tmp_path / "plain.zarr"
    result.to_dataset().to_zarr(
        plain,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding={"pr": {"chunks": CHUNKS, "fill_value": 0.0}},
    )
    assert existing_chunks(plain, "pr") == ALL_BLOCKS - {ZERO_BLOCK}


def test_progress_bar(tmp_path, capsys):
    write_zarr(make_result(), tmp_path / "p.zarr", progress=True)
    assert "Completed" in capsys.readouterr().out


WRITER = """
import sys
sys.path.insert(0, {repo!r})
import dask
from tests.io.test_zarr import make_result
from esmscale.io.zarr import write_zarr
dask.config.set(scheduler="synchronous")
write_zarr(make_result(sleep=0.25), sys.argv[1], progress=False)
"""


def test_kill_and_resume(tmp_path):
    store = tmp_path / "killed.zarr"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER.format(repo=str(REPO))))
    proc = subprocess.Popen([sys.executable, str(script), str(store)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the writer finished before it could be killed"
            assert time.monotonic() < deadline, "the writer wrote no chunks in 60 s"
            if (store / "pr" / "zarr.json").is_file() and len(existing_chunks(store, "pr")) >= 3:
                break
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL
        proc.wait()

    present = existing_chunks(store, "pr")
    assert 3 <= len(present) < len(ALL_BLOCKS)
    assert not is_complete(store)
    assert _root_attrs(store)["esmscale_complete"] is False
    assert json.loads((store / "zarr.json").read_text()).get("consolidated_metadata") is None
    # the killed store reads back silently (missing chunks = fill value): why keys are listed
    killed = xr.open_zarr(store, consolidated=False, decode_times=COORDER)["pr"].values
    assert np.isnan(killed).sum() > np.prod(CHUNKS)  # more than the NAN_BLOCK

    counter: list[tuple[int, ...]] = []
    summary = write_zarr(make_result(counter=counter), store, resume=True, progress=False)
    missing = ALL_BLOCKS - present
    assert sorted(counter) == sorted(missing)  # each missing block computed exactly once
    assert summary.n_chunks_written == len(missing)
    assert summary.n_chunks_skipped == len(present)
    assert summary.n_chunks_total == len(ALL_BLOCKS)
    assert summary.complete
    assert is_complete(store)
    assert not list(store.rglob("*.partial"))

    reference = tmp_path / "reference.zarr"
    write_zarr(make_result(), reference, progress=False)
    assert _chunk_bytes(store) == _chunk_bytes(reference)
    a = xr.open_zarr(store, decode_times=COORDER)
    b = xr.open_zarr(reference, decode_times=COORDER)
    _assert_bitwise(a["pr"].values, b["pr"].values)
    for ds in (a, b):
        del ds.attrs["esmscale_written"], ds.attrs["history"]  # timestamps
    xr.testing.assert_identical(a.drop_vars("pr"), b.drop_vars("pr"))


def test_resume_recomputes_exactly_a_deleted_chunk(tmp_path):
    store = tmp_path / "out.zarr"
    write_zarr(make_result(), store, progress=False)
    before = _chunk_bytes(store)
    lost = (1, 2, 0, 1)
    _block_path(store, lost).unlink()
    zarr.open_group(store, mode="r+").attrs["esmscale_complete"] = False
    assert existing_chunks(store, "pr") == ALL_BLOCKS - {lost}
    assert not is_complete(store)

    counter: list[tuple[int, ...]] = []
    summary = write_zarr(make_result(counter=counter), store, resume=True, progress=False)
    assert counter == [lost]
    assert (summary.n_chunks_written, summary.n_chunks_skipped) == (1, len(ALL_BLOCKS) - 1)
    assert summary.bytes_written == np.prod(CHUNKS) * 4
    assert _chunk_bytes(store) == before
    assert is_complete(store)

    # resuming a complete store computes nothing and keeps it complete
    counter.clear()
    again = write_zarr(make_result(counter=counter), store, resume=True, progress=False)
    assert counter == []
    assert (again.n_chunks_written, again.n_chunks_skipped) == (0, len(ALL_BLOCKS))
    assert again.complete


def test_foreign_store_is_left_untouched(tmp_path):
    store = tmp_path / "foreign.zarr"
    xr.Dataset({"x": ("a", np.arange(5.0))}).to_zarr(store, zarr_format=3, consolidated=False)
    snapshot = _files(store)
    mtimes = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    for resume in (False, True):
        with pytest.raises(EsmscaleError, match="not written by esmscale"):
            write_zarr(make_result(), store, resume=resume, progress=False)
    assert _files(store) == snapshot
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == mtimes
    assert not is_complete(store)

    write_zarr(make_result(), store, overwrite=True, progress=False)
    assert is_complete(store)
    assert "x" not in xr.open_zarr(store, decode_times=COORDER)


def test_complete_store_needs_overwrite(tmp_path):
    store = tmp_path / "out.zarr"
    write_zarr(make_result(), store, progress=False)
    snapshot = _files(store)
    with pytest.raises(EsmscaleError, match="already holds a complete esmscale store"):
        write_zarr(make_result(), store, progress=False)
    assert _files(store) == snapshot
    summary = write_zarr(make_result(), store, overwrite=True, progress=False)
    assert summary.n_chunks_written == len(ALL_BLOCKS)
    assert is_complete(store)


def test_partly_written_store_needs_resume_or_overwrite(tmp_path):
    store = tmp_path / "out.zarr"
    write_zarr(make_result(), store, progress=False)
    zarr.open_group(store, mode="r+").attrs["esmscale_complete"] = False
    with pytest.raises(EsmscaleError, match=r"partly written.*resume=True"):
        write_zarr(make_result(), store, progress=False)
    with pytest.raises(EsmscaleError, match="choose one"):
        write_zarr(make_result(), store, resume=True, overwrite=True, progress=False)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_non_zarr_path_is_refused_even_with_overwrite(tmp_path, kind):
    path = tmp_path / "thing"
    if kind == "file":
        path.write_bytes(b"precious")
    else:
        path.mkdir()
        (path / "notes.txt").write_text("precious")
    snapshot = path.read_bytes() if kind == "file" else _files(path)
    for overwrite in (False, True):
        with pytest.raises(EsmscaleError, match="left untouched"):
            write_zarr(make_result(), path, overwrite=overwrite, progress=False)
    assert (path.read_bytes() if kind == "file" else _files(path)) == snapshot


def test_empty_folder_is_written(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    assert write_zarr(make_result(), path, progress=False).complete


def test_resume_mismatches_are_refused(tmp_path):
    store = tmp_path / "out.zarr"
    with pytest.raises(EsmscaleError, match="no store exists there"):
        write_zarr(make_result(), store, resume=True, progress=False)
    write_zarr(make_result(), store, progress=False)
    zarr.open_group(store, mode="r+").attrs["esmscale_complete"] = False
    snapshot = _files(store)

    with pytest.raises(EsmscaleError, match=r"'pr' has shape \(2, 10, 12, 16\) in the store"):
        write_zarr(make_result(nt=9), store, resume=True, progress=False)
    rechunked = make_result().chunk({"lon": 4})
    with pytest.raises(EsmscaleError, match="has chunks"):
        write_zarr(rechunked, store, resume=True, progress=False)
    renamed = make_result().rename("tas")
    with pytest.raises(EsmscaleError, match=r"holds data variables \['pr'\]"):
        write_zarr(renamed, store, resume=True, progress=False)
    shifted = make_result().assign_coords(lat=np.linspace(0.0, 11.0, SHAPE[2]))
    with pytest.raises(EsmscaleError, match="coordinate 'lat' differs"):
        write_zarr(shifted, store, resume=True, progress=False)
    other_calendar = make_result(calendar="360_day")
    with pytest.raises(EsmscaleError, match="coordinate 'time' differs"):
        write_zarr(other_calendar, store, resume=True, progress=False)
    assert _files(store) == snapshot


def test_irregular_chunks_are_refused(tmp_path):
    result = make_result().chunk({"time": (3, 4, 3)})
    with pytest.raises(EsmscaleError, match=r"irregular dask chunks along 'time'.*chunk\("):
        write_zarr(result, tmp_path / "out.zarr", progress=False)
    assert not (tmp_path / "out.zarr").exists()
    ok = make_result().chunk({"time": (4, 4, 2)})  # only the last chunk smaller: fine
    assert write_zarr(ok, tmp_path / "ok.zarr", progress=False).n_chunks_total == 2 * 3 * 2


def test_existing_chunks_errors_and_partial_files(tmp_path):
    store = tmp_path / "out.zarr"
    with pytest.raises(EsmscaleError, match="no Zarr v3 array 'pr'"):
        existing_chunks(store, "pr")
    write_zarr(make_result(), store, progress=False)
    (store / "pr" / "c" / "0" / "0" / "0" / "0.abc123.partial").write_bytes(b"x")
    assert existing_chunks(store, "pr") == ALL_BLOCKS
    assert not is_complete(tmp_path / "nowhere")


def test_failure_leaves_a_resumable_store(tmp_path):
    def boom(block, block_info=None):
        if tuple(block_info[None]["chunk-location"]) == (1, 1, 0, 0):
            raise RuntimeError("model crashed")
        return _fill(block, block_info=block_info)

    good = make_result()
    bad = good.copy(data=good.data.map_blocks(boom, dtype="f4", meta=np.array((), dtype="f4")))
    store = tmp_path / "out.zarr"
    with (
        pytest.raises(RuntimeError, match="model crashed") as info,
        dask.config.set(scheduler="synchronous"),
    ):
        write_zarr(bad, store, progress=False)
    assert any("resume=True" in note for note in info.value.__notes__)
    assert not is_complete(store)
    summary = write_zarr(good, store, resume=True, progress=False)
    assert summary.complete
    assert summary.n_chunks_written >= 1


def _plain_result() -> xr.DataArray:
    """Like make_result, built from dask operations only (worker processes import no tests)."""
    data = da.arange(np.prod(SHAPE), dtype="f4").reshape(SHAPE).rechunk(CHUNKS)
    member = da.arange(SHAPE[0], chunks=1)[:, None, None, None]
    time_ = da.arange(SHAPE[1], chunks=3)[None, :, None, None]
    lon = da.arange(SHAPE[3], chunks=8)[None, None, None, :]
    zero = (member == 1) & (time_ < 3) & (lon >= 8)  # ZERO_BLOCK
    data = da.where(zero, np.float32(0), data)
    result = make_result().copy(data=data)
    result.encoding["fill_value"] = 0.0
    return result


@pytest.mark.timeout(60)
def test_distributed_client_gives_identical_output(tmp_path):
    distributed = pytest.importorskip("distributed")
    reference = tmp_path / "reference.zarr"
    write_zarr(_plain_result(), reference, progress=False)
    store = tmp_path / "distributed.zarr"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        summary = write_zarr(_plain_result(), store, client=client, progress=True)
    assert summary.complete
    assert summary.n_chunks_written == len(ALL_BLOCKS)
    # the all-zero block equals the fill value: write_empty_chunks reached the worker processes
    assert existing_chunks(store, "pr") == ALL_BLOCKS
    assert _chunk_bytes(store) == _chunk_bytes(reference)
    _assert_bitwise(
        xr.open_zarr(store, decode_times=COORDER)["pr"].values,
        xr.open_zarr(reference, decode_times=COORDER)["pr"].values,
    )


def test_clipped_fraction_is_computed_with_the_chunks_and_survives_resume(tmp_path):
    from esmscale.prepare.clipping import CLIP_ATTR, attach_counts, clip_negative_lazy

    counter: list = []
    raw = make_result(counter=counter) - 50.0  # member 0 is partly negative
    values = raw.values
    counter.clear()
    expected = float((values < 0).sum() / np.isfinite(values).sum())
    assert 0.0 < expected < 1.0
    data, counts = clip_negative_lazy(raw.data)
    result = attach_counts(raw.copy(data=data), counts)
    store = tmp_path / "clip.zarr"
    summary = write_zarr(result, store, progress=False)
    n_blocks = int(np.prod(raw.data.numblocks))
    assert summary.n_chunks_written == n_blocks
    assert len(counter) == n_blocks  # counts share the tasks of the chunks: no recomputation
    back = xr.open_zarr(store)
    assert list(back.data_vars) == ["pr"]
    assert back.pr.attrs[CLIP_ATTR] == pytest.approx(expected)
    assert np.nanmin(back.pr.values) == 0.0
    # an interrupted write: one data chunk and its count row are missing
    lost = (0, 1, 0, 1)
    _block_path(store, lost).unlink()
    (store / "esmscale_clip" / "pr" / "c" / "3" / "0").unlink()
    counter.clear()
    again = write_zarr(result, store, resume=True, progress=False)
    assert again.n_chunks_written == 1 and len(counter) == 1
    assert xr.open_zarr(store).pr.attrs[CLIP_ATTR] == pytest.approx(expected)
    # without counts (an ordinary result) no attribute is invented
    write_zarr(raw, tmp_path / "plain.zarr", progress=False)
    assert CLIP_ATTR not in xr.open_zarr(tmp_path / "plain.zarr").pr.attrs


def _cf_failures(nc: Path) -> dict[str, list[str]]:
    """Messages of the failed checks of the IOOS compliance checker's CF-1.8 suite, by level."""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite.load_all_available_checkers()
    report = nc.with_suffix(".json")
    ComplianceChecker.run_checker(
        str(nc), ["cf:1.8"], 1, "strict", output_filename=str(report), output_format=["json"]
    )
    result = json.loads(report.read_text(encoding="utf-8"))["cf:1.8"]
    return {
        level: [
            msg
            for item in result[f"{level}_priorities"]
            if item["value"][0] < item["value"][1]
            for msg in item["msgs"]
        ]
        for level in ("high", "medium", "low")
    }


def _as_netcdf(store: Path, nc: Path) -> None:
    """Copy a store to NetCDF as a user would, for a checker that reads NetCDF only.

    NetCDF has no boolean attributes (``esmscale_complete``), and xarray gives floating-point
    variables a ``_FillValue`` unless told not to, which CF forbids on coordinates.
    """
    with xr.open_zarr(store) as ds:
        ds.attrs = {k: int(v) if isinstance(v, bool) else v for k, v in ds.attrs.items()}
        for name in ds.coords:
            ds[name].encoding["_FillValue"] = None
        ds.to_netcdf(nc)


@pytest.mark.filterwarnings("ignore:The ioos_sos checker is deprecated:DeprecationWarning")
def test_downscaled_store_passes_the_cf_checker_offline(tmp_path, tiny_model_dir, monkeypatch):
    import socket

    from esmscale.datasets import synthetic_esm, synthetic_precip
    from esmscale.downscaling.pipeline import downscale

    coarse = synthetic_esm(synthetic_precip(16, 16, 3, seed=2)).chunk({"time": 2})
    store = tmp_path / "out.zarr"
    write_zarr(downscale(coarse, str(tiny_model_dir), members=2, tile=16, halo=4), store,
               progress=False)  # fmt: skip
    attrs = _root_attrs(store)
    assert attrs["Conventions"] == "CF-1.8"
    assert "esmscale" in attrs["title"]
    assert "downscale(model=" in attrs["history"]  # the data variable's provenance line
    with xr.open_zarr(store) as back:
        member = back["member"]
        assert member.dtype == np.int32  # CF-1.8 has no 64-bit integers
        assert member.attrs["long_name"] == "ensemble member"
        assert "equally likely" in member.attrs["comment"]
        for name in back.coords:  # CF: no _FillValue on coordinate variables
            assert (
                "_FillValue" not in back[name].attrs
                and "_FillValue"
                not in json.loads((store / str(name) / "zarr.json").read_text())["attributes"]
            ), name

    _as_netcdf(store, tmp_path / "out.nc")
    attempts: list[object] = []

    def no_network(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    failures = _cf_failures(tmp_path / "out.nc")
    assert attempts == []  # the checker ran offline (packaged standard-name table)
    assert failures == {"high": [], "medium": [], "low": []}


def test_dataset_attributes_of_any_written_result(tmp_path):
    store = tmp_path / "plain.zarr"
    write_zarr(make_result(), store, progress=False)
    attrs = _root_attrs(store)
    assert attrs["Conventions"] == "CF-1.8"
    assert attrs["title"] == "esmscale output: pr (downscaled precipitation)"
    assert "write_zarr('plain.zarr')" in attrs["history"]  # the result had no history of its own
    own = make_result().to_dataset().assign_attrs(Conventions="CF-1.11", history="made by hand")
    write_zarr(own, store, overwrite=True, progress=False)
    attrs = _root_attrs(store)
    assert (attrs["Conventions"], attrs["history"]) == ("CF-1.11", "made by hand")
