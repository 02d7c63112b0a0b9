"""Faults on a real LocalCluster of worker processes, each test reporting its figures.

a. a worker killed (``os._exit``) after about a quarter of the tiles: the job completes, every
   chunk is listed in the store and the store is bitwise equal to a clean run;
b. the whole job SIGKILLed mid-write, then ``--resume`` (default scheduler and ``--workers 2``);
c. a poison tile that kills every worker that runs it: the write stops within the retry limit
   with an error naming the tile's member, time, lat and lon, and the store stays resumable;
d. a transient write error on every chunk (injected once per chunk key): retried, bitwise equal.

The figures are printed and, with ``ESMSCALE_RELIABILITY_DIR`` set, saved for
``benchmarks/reliability.py`` (which writes ``docs/reliability.md``). Cluster start and worker
restarts take tens of seconds on a busy 2-core machine, so these tests are ``slow``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import dask
import numpy as np
import pytest
import xarray as xr

from esmscale import ConsistencyModel, EsmscaleError
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling.engine import Engine, open_engine
from esmscale.downscaling.pipeline import downscale
from esmscale.io.zarr import chunk_counts, existing_chunks, is_complete, is_ours, write_zarr
from tests import _faults

cloudpickle.register_pickle_by_value(_faults)  # the workers need not import the tests package

ROOT = Path(__file__).resolve().parents[2]
KW = {"tile": 32, "halo": 8, "members": 2}
CHUNKS = {"lat": 24}
N_TILE_TASKS = 4 * 2  # time chunks (8 times by 2) x lat chunks (48 by 24); members share a task


@pytest.fixture(scope="module")
def esm() -> xr.Dataset:
    return synthetic_esm(synthetic_precip(48, 80, 8, seed=1))  # fine grid 48 x 80


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> ConsistencyModel:
    return ConsistencyModel.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def clean(esm, model) -> np.ndarray:
    """The output of a clean run on the synchronous scheduler."""
    with dask.config.set(scheduler="synchronous"):
        return downscale(esm.chunk({"time": 2}), model, chunks=CHUNKS, **KW).pr.values


def _result(esm, model):
    return downscale(esm.chunk({"time": 2}), model, chunks=CHUNKS, **KW)


def _same(store: Path, clean: np.ndarray) -> bool:
    got = xr.open_zarr(store, consolidated=False).pr.values
    return bool(np.array_equal(got.view(np.uint32), clean.view(np.uint32)))


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.timeout(600)
def test_worker_killed_after_a_quarter_completes_bitwise(tmp_path, esm, model, clean):
    folder = tmp_path / "faults"
    folder.mkdir()
    store = tmp_path / "out.zarr"
    start = time.perf_counter()
    with open_engine(Engine(workers=2)) as client:
        client.register_plugin(_faults.KillOnceAfter(folder, after=N_TILE_TASKS // 4))
        summary = write_zarr(_result(esm, model), store, progress=False, client=client)
    seconds = time.perf_counter() - start
    found = len(existing_chunks(store, "pr"))
    starts = _faults.count(folder, "start")
    figures = {
        "chunks_expected": summary.n_chunks_total,
        "chunks_found_listed": found,
        "tile_tasks": N_TILE_TASKS,
        "tile_task_runs": starts,
        "tasks_rerun": starts - N_TILE_TASKS,
        "workers_killed": _faults.count(folder, "death"),
        "bitwise_equal_to_clean": _same(store, clean),
        "seconds": round(seconds, 1),
    }
    _faults.record("a_worker_killed", figures)
    assert (folder / "killed").exists() and figures["workers_killed"] == 1
    assert summary.complete and is_complete(store)
    assert found == summary.n_chunks_total == N_TILE_TASKS
    assert figures["tasks_rerun"] >= 1  # at least the tile the worker died in
    assert figures["bitwise_equal_to_clean"]


def _cli(nc: Path, store: Path, model_dir: Path, workers: int, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "esmscale.cli", "downscale", str(nc), "--model", str(model_dir)]
    cmd += ["--output", str(store), "--members", "2", "--chunks", "time=2,lat=24"]
    return [*cmd, "--workers", str(workers), "--quiet", *extra]


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", [0, 2])
def test_job_sigkilled_mid_write_then_resume(tmp_path, tiny_model_dir, model, workers):
    esm = synthetic_esm(synthetic_precip(48, 80, 24, seed=2))
    nc = tmp_path / "esm.nc"
    esm.to_netcdf(nc)
    store = tmp_path / "out.zarr"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _cli(nc, store, tiny_model_dir, workers),
        env=env,
        start_new_session=True,  # its own process group: the kill takes the workers too
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    counts = None
    while time.monotonic() < deadline:
        counts = chunk_counts(store) if store.exists() else None
        if counts and counts[0] >= max(1, counts[1] // 4):
            break
        if proc.poll() is not None:
            pytest.fail(f"the job ended before it could be killed: {proc.stderr.read()!r}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert counts is not None
    present, total = chunk_counts(store) or (0, 0)
    assert 0 < present < total, (present, total)
    assert is_ours(store) and not is_complete(store)
    start = time.perf_counter()
    done = subprocess.run(
        _cli(nc, store, tiny_model_dir, workers, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    m = re.search(r"(\d+) chunks written, (\d+) already there", done.stdout)
    assert m, done.stdout
    recomputed, skipped = int(m[1]), int(m[2])
    with dask.config.set(scheduler="synchronous"):
        clean = downscale(esm, model, members=2).pr.values
    figures = {
        "workers": workers,
        "chunks_total": total,
        "chunks_present_after_kill": present,
        "chunks_recomputed_on_resume": recomputed,
        "chunks_skipped_on_resume": skipped,
        "bitwise_equal_to_clean": _same(store, clean),
        "resume_seconds": round(seconds, 1),
    }
    _faults.record(f"b_sigkill_resume_{workers}w", figures)
    assert skipped == present and recomputed == total - present
    assert is_complete(store) and figures["bitwise_equal_to_clean"]


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.timeout(600)
def test_poison_tile_stops_within_retry_limit_naming_the_tile(tmp_path, esm, model, clean):
    folder = tmp_path / "faults"
    folder.mkdir()
    store = tmp_path / "out.zarr"
    allowed = int(dask.config.get("distributed.scheduler.allowed-failures"))
    start = time.perf_counter()
    # member 1 (in one task with member 0), times 2..3 (2000-01-03, 2000-01-04), lat rows
    # 24..47, lon columns 0..79
    with open_engine(Engine(workers=2)) as client:
        client.register_plugin(_faults.PoisonTile(folder, member=1, t0=2, y0=24, x0=0))
        result = _result(esm, model)
        with pytest.raises(EsmscaleError) as info:
            write_zarr(result, store, progress=False, client=client)
    seconds = time.perf_counter() - start
    message = info.value.for_cli()
    lat, lon = result.lat.values, result.lon.values
    deaths = _faults.count(folder, "death")
    present = len(existing_chunks(store, "pr"))
    # the store stays resumable: without the fault, --resume finishes it, bitwise equal
    with dask.config.set(scheduler="synchronous"):
        resumed = write_zarr(result, store, resume=True, progress=False)
    figures = {
        "allowed_failures": allowed,
        "workers_killed_by_the_tile": deaths,
        "seconds_to_error": round(seconds, 1),
        "error": message,
        "chunks_present_after_error": present,
        "chunks_recomputed_on_resume": resumed.n_chunks_written,
        "bitwise_equal_after_resume": _same(store, clean),
    }
    _faults.record("c_poison_tile", figures)
    assert deaths == allowed + 1
    assert "member 0 .. 1" in message and "time 2000-01-03 .. 2000-01-04" in message
    assert f"lat {lat[24]} .. {lat[47]}" in message and f"lon {lon[0]} .. {lon[-1]}" in message
    assert "esmscale-block" not in message  # coordinates, not a Dask key
    assert "--resume" in message and "skip" in message
    assert resumed.complete and resumed.n_chunks_written == N_TILE_TASKS - present
    assert figures["bitwise_equal_after_resume"]


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.timeout(600)
def test_transient_store_write_errors_are_retried_bitwise(tmp_path, esm, model, clean):
    folder = tmp_path / "faults"
    folder.mkdir()
    store = tmp_path / "out.zarr"
    start = time.perf_counter()
    with open_engine(Engine(workers=2)) as client:
        client.register_plugin(_faults.FlakyStore(folder))
        summary = write_zarr(_result(esm, model), store, progress=False, client=client)
    figures = {
        "chunks_written": summary.n_chunks_written,
        "injected_write_errors": _faults.count(folder, "fail"),
        "bitwise_equal_to_clean": _same(store, clean),
        "seconds": round(time.perf_counter() - start, 1),
    }
    _faults.record("d_transient_write_error", figures)
    assert summary.complete
    # every chunk key written by the workers failed once: the data chunks and the clip rows
    assert figures["injected_write_errors"] >= summary.n_chunks_written == N_TILE_TASKS
    assert figures["bitwise_equal_to_clean"]
