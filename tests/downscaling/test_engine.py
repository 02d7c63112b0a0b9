"""Engines: dask's default scheduler, a LocalCluster of processes, a scheduler address."""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import xarray as xr

from esmscale import ConsistencyModel, EsmscaleError
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling.engine import (
    LOCAL_CLUSTER_CONFIG,
    Engine,
    active_client,
    open_engine,
    tune_allocator,
)
from esmscale.downscaling.pipeline import downscale
from esmscale.io.zarr import write_zarr

KW = {"tile": 32, "halo": 8, "members": 2}
CLEAN_STDERR_BANNED = ("Traceback", "CommClosedError", "still alive", "Error")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_engine_arguments_are_checked():
    with pytest.raises(EsmscaleError, match="both given") as info:
        Engine(workers=2, scheduler="tcp://127.0.0.1:8786").describe()
    assert "--workers or --scheduler, not both" in info.value.for_cli()
    with pytest.raises(EsmscaleError, match=">= 0"):
        Engine(workers=-1)
    with pytest.raises(EsmscaleError, match="timeout"):
        Engine(scheduler="tcp://x:1", timeout=0)
    assert Engine(workers=3, threads_per_worker=2).describe() == (
        "LocalCluster of 3 worker processes x 2 threads"
    )


def test_default_engine_is_dask_default_scheduler():
    with open_engine(Engine()) as client:
        assert client is None
        assert active_client() is None


@pytest.mark.timeout(60)
def test_unreachable_scheduler_fails_fast_naming_the_address():
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(EsmscaleError) as info, open_engine(Engine(scheduler=address, timeout=3)):
        pass
    elapsed = time.perf_counter() - start
    assert address in str(info.value)
    assert "within 3 s" in str(info.value)
    assert "--scheduler" in info.value.for_cli()
    assert elapsed < 30, elapsed


def test_tune_allocator_applies_on_linux():
    assert tune_allocator() is sys.platform.startswith("linux")


@pytest.mark.timeout(120)
def test_local_cluster_settings_reach_the_workers_and_scheduler_only():
    import dask

    with open_engine(Engine(workers=1)) as client:
        assert client is not None
        got = client.run(lambda: {k: dask.config.get(k) for k in LOCAL_CLUSTER_CONFIG})
        tick = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._tick_interval)
    assert list(got.values()) == [LOCAL_CLUSTER_CONFIG]
    assert tick == 0.2  # seconds: the scheduler started with the cluster's tick
    # the settings were scoped to the cluster's start: this process's config is the user's
    assert dask.config.get("distributed.worker.profile.enabled") is True


@pytest.mark.slow  # fast counterparts in the default run: test_pipeline's and test_zarr's clusters
@pytest.mark.timeout(300)
def test_localcluster_bitwise_model_sent_once_and_clean_shutdown(tmp_path, tiny_model_dir, capfd):
    """One LocalCluster of 2 processes: output equal to the sync run, model loaded once per
    worker from the bytes sent (its folder is deleted before the compute), no traceback."""
    esm = synthetic_esm(synthetic_precip(48, 80, 6, seed=1))
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    model = ConsistencyModel.from_pretrained(folder)
    ref = downscale(esm, model, **KW).pr.values
    capfd.readouterr()
    with open_engine(Engine(workers=2)) as client:
        assert client is not None
        assert active_client() is client
        out = downscale(esm.chunk({"time": 2}), model, chunks={"lat": 24}, **KW)
        shutil.rmtree(folder)  # the workers cannot read the checkpoint: it was sent to them
        summary = write_zarr(out, tmp_path / "out.zarr", progress=False, client=client)
        # a second result on the same client does not send or load the model again
        again = downscale(esm.chunk({"time": 3}), model, **KW).pr.compute().values
        loads = client.run(
            lambda: sum(importlib.import_module("esmscale.io.model_cache").LOAD_COUNT.values())
        )
    err = capfd.readouterr().err
    assert summary.complete
    got = xr.open_zarr(tmp_path / "out.zarr").pr.values
    assert np.array_equal(ref, got, equal_nan=True)
    assert np.array_equal(ref, again, equal_nan=True)
    assert sorted(loads.values()) == [1, 1], loads
    assert not any(word in err for word in CLEAN_STDERR_BANNED), err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_workers_run_is_bitwise_and_prints_no_traceback(tmp_path, tiny_model_dir):
    esm = synthetic_esm(synthetic_precip(32, 32, 8, seed=4))
    esm.to_netcdf(tmp_path / "esm.nc")
    outs = {}
    for workers in (0, 2):
        store = tmp_path / f"w{workers}.zarr"
        cmd = [sys.executable, "-m", "esmscale.cli", "downscale", str(tmp_path / "esm.nc")]
        cmd += ["--model", str(tiny_model_dir), "--output", str(store), "--members", "2"]
        cmd += ["--chunks", "time=4", "--workers", str(workers), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=500, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "wrote" in proc.stdout
        assert not any(word in proc.stderr for word in CLEAN_STDERR_BANNED), proc.stderr
        outs[workers] = xr.open_zarr(store).pr.values
    assert np.array_equal(outs[0], outs[2], equal_nan=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_worker_resources_on_local_workers_is_bitwise(tmp_path, tiny_model_dir):
    """--workers 1 --worker-resources GPU=1: the local worker declares GPU=1, the tiles ask
    for it (they would wait forever otherwise), the store equals the default scheduler's."""
    esm = synthetic_esm(synthetic_precip(32, 32, 8, seed=4))
    esm.to_netcdf(tmp_path / "esm.nc")
    outs = {}
    for extra in ([], ["--workers", "1", "--worker-resources", "GPU=1"]):
        store = tmp_path / f"r{len(extra)}.zarr"
        cmd = [sys.executable, "-m", "esmscale.cli", "downscale", str(tmp_path / "esm.nc")]
        cmd += ["--model", str(tiny_model_dir), "--output", str(store), "--members", "2"]
        cmd += ["--chunks", "time=4", "--quiet", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=500, check=False)
        assert proc.returncode == 0, proc.stderr
        assert not any(word in proc.stderr for word in CLEAN_STDERR_BANNED), proc.stderr
        outs[len(extra)] = xr.open_zarr(store).pr.values
    assert np.array_equal(outs[0], outs[4], equal_nan=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_worker_memory_limit_below_one_tile_is_refused_with_the_minimum(tiny_model_dir):
    esm = synthetic_esm(synthetic_precip(32, 32, 4, seed=2))
    model = ConsistencyModel.from_pretrained(tiny_model_dir)
    with open_engine(Engine(workers=1, memory_limit="200MiB")) as client:
        with pytest.raises(EsmscaleError) as info:
            downscale(esm, model, **KW)
        loads = client.run(
            lambda: (
                sum(importlib.import_module("esmscale.io.model_cache").LOAD_COUNT.values())
                if "esmscale.io.model_cache" in sys.modules
                else 0
            )
        )
    text = info.value.for_cli()
    assert "memory limit of 200.00 MiB, below the minimum of" in text
    assert "--memory-limit" in text and "MiB" in text
    assert sorted(loads.values()) == [0]  # refused before any worker loaded the model


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_scheduler_address_of_a_separate_scheduler_is_bitwise(tmp_path, tiny_model_dir):
    """`dask scheduler` and two `dask worker` processes started apart; --scheduler ADDRESS."""
    esm = synthetic_esm(synthetic_precip(32, 32, 8, seed=4))
    esm.to_netcdf(tmp_path / "esm.nc")
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [
        subprocess.Popen([*dask_cli, "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                          "--no-dashboard"], stderr=subprocess.DEVNULL)
    ]  # fmt: skip
    try:
        for _ in range(2):
            worker = [sys.executable, "-m", "distributed.cli.dask_worker", address]
            worker += ["--nthreads", "1", "--no-dashboard"]
            procs.append(subprocess.Popen(worker, stderr=subprocess.DEVNULL))
        store = tmp_path / "sched.zarr"
        cmd = [sys.executable, "-m", "esmscale.cli", "downscale", str(tmp_path / "esm.nc")]
        cmd += ["--model", str(tiny_model_dir), "--output", str(store), "--members", "2"]
        cmd += ["--chunks", "time=4", "--scheduler", address, "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=500, check=False)
        assert proc.returncode == 0, proc.stderr
        from distributed import Client

        with Client(address, timeout="30s") as client:
            loads = client.run(
                lambda: sum(importlib.import_module("esmscale.io.model_cache").LOAD_COUNT.values())
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    ref = downscale(esm, ConsistencyModel.from_pretrained(tiny_model_dir), members=2).pr.values
    assert np.array_equal(ref, xr.open_zarr(store).pr.values, equal_nan=True)
    assert sorted(loads.values()) == [1, 1], loads  # the model loaded once per worker


# --- GPU workers: tile tasks carry Dask worker resources ---------------------------------------


def test_resources_are_checked_and_annotate_only_the_tile_tasks(tiny_model_dir):
    from esmscale.downscaling.engine import resource_table
    from esmscale.downscaling.graph import BLOCK_KEY_PREFIX, check_resources

    assert check_resources(None) is None and check_resources({}) is None
    assert check_resources({"GPU": 1}) == {"GPU": 1.0}
    for bad in ({"GPU": 0}, {"GPU": -1}, {"GPU": "x"}, {"": 1}):
        with pytest.raises(EsmscaleError, match="resources="):
            check_resources(bad)
    with pytest.raises(EsmscaleError) as info:
        check_resources(["GPU"])  # type: ignore[arg-type]
    assert "--worker-resources GPU=1" in info.value.for_cli()
    assert Engine(workers=1, resources={"GPU": 1}).describe() == (
        "LocalCluster of 1 worker processes x 1 thread (each declaring GPU=1)"
    )
    esm = synthetic_esm(synthetic_precip(32, 32, 4, seed=2))
    model = ConsistencyModel.from_pretrained(tiny_model_dir)
    plain = downscale(esm.chunk({"time": 2}), model, **KW)
    assert resource_table(plain.pr.data) == {}
    out = downscale(esm.chunk({"time": 2}), model, resources={"GPU": 1}, **KW)
    table = resource_table(out.pr.data)
    blocks = [k for k in table if isinstance(k, tuple) and k[0].startswith(BLOCK_KEY_PREFIX)]
    assert len(blocks) == 2  # time chunks, one spatial chunk (all members in one task)
    assert all(v == {"GPU": 1.0} for v in table.values())
    # the input and the output's own layers are not restricted
    graph = dict(out.pr.data.__dask_graph__())
    assert len(table) < len(graph)


def _two_worker_cluster():  # type: ignore[no-untyped-def]
    """A scheduler and two single-threaded worker processes: "gpu" declares GPU=1, "cpu"
    declares only ALT=1 (so each run can be restricted to either worker)."""
    from distributed import Nanny, Scheduler, SpecCluster

    opts = {"nthreads": 1, "memory_limit": "auto"}
    workers = {
        "gpu": {"cls": Nanny, "options": {**opts, "resources": {"GPU": 1}}},
        "cpu": {"cls": Nanny, "options": {**opts, "resources": {"ALT": 1}}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    return SpecCluster(workers=workers, scheduler=scheduler)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tile_tasks_run_only_on_workers_declaring_the_resource(tmp_path, tiny_model_dir):
    """2 worker processes, one declaring GPU=1: every tile task runs on that one, the output
    is bitwise the default scheduler's. The same job restricted to the other worker's resource
    runs there instead, so a dropped restriction cannot pass both halves."""
    from distributed import Client, get_task_stream

    from esmscale.downscaling.engine import compute_on
    from esmscale.downscaling.graph import BLOCK_KEY_PREFIX

    esm = synthetic_esm(synthetic_precip(48, 48, 8, seed=3))
    model = ConsistencyModel.from_pretrained(tiny_model_dir)
    ref = downscale(esm, model, **KW).pr.values
    n_blocks = 4 * 2  # time chunks x lat chunks (all members in one task)
    with _two_worker_cluster() as cluster, Client(cluster, set_as_default=True) as client:
        client.wait_for_workers(2)
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        ran = {}
        for res, store in (({"GPU": 1}, "gpu.zarr"), ({"ALT": 1}, "alt.zarr")):
            out = downscale(esm.chunk({"time": 2}), model, chunks={"lat": 24}, resources=res, **KW)
            with get_task_stream(client) as ts:
                write_zarr(out, tmp_path / store, progress=False, client=client)
            ran[store] = [names[t["worker"]] for t in ts.data if BLOCK_KEY_PREFIX in str(t["key"])]
            assert np.array_equal(ref, xr.open_zarr(tmp_path / store).pr.values, equal_nan=True)
        # a plain in-memory result through compute_on, restricted too
        out = downscale(esm.chunk({"time": 4}), model, resources={"GPU": 1}, **KW)
        with get_task_stream(client) as ts:
            (got,) = client.gather(compute_on(client, [out.pr]))
        ran["compute_on"] = [
            names[t["worker"]] for t in ts.data if BLOCK_KEY_PREFIX in str(t["key"])
        ]
        assert np.array_equal(ref, got.values, equal_nan=True)
        # no worker declares GPU=2: refused at once, naming each worker's resources
        with pytest.raises(EsmscaleError, match="no worker declares the resources") as info:
            downscale(esm, model, resources={"GPU": 2}, **KW)
        if not torch.cuda.is_available():  # "cuda" is resolved on the workers, none has one
            with pytest.raises(EsmscaleError, match="cannot use device='cuda'"):
                downscale(esm, model, resources={"GPU": 1}, device="cuda", **KW)
    assert ran["gpu.zarr"] == ["gpu"] * n_blocks, ran
    assert ran["alt.zarr"] == ["cpu"] * n_blocks, ran
    assert ran["compute_on"] == ["gpu"] * 2, ran  # time chunks (members share a task)
    assert "{'ALT': 1}" in str(info.value) and "--resources GPU=2" in str(info.value)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_minimum_counts_the_network_activations_of_large_windows():
    """A 256x256 window at batch 8 needs ~0.8 GiB of activations (measured): a 1.2 GiB worker
    would be killed mid-task, so the job is refused up front with the minimum instead."""
    from esmscale.downscaling.engine import network_activation_bytes

    esm = synthetic_esm(synthetic_precip(256, 256, 2, seed=2))
    assert network_activation_bytes(8, (256, 256), 32) >= 805 * 2**20
    with open_engine(Engine(workers=1, memory_limit="1200MiB")) as client:
        assert client is not None
        with pytest.raises(EsmscaleError, match=r"below the minimum of 1\.[4-9]\d GiB"):
            downscale(esm, "synthetic-pr-4x", members=1, seed=0)
        # the same job without the network (noise-only) fits in that worker
        out = downscale(esm, "synthetic-pr-4x", sampler="noise-only", members=1, seed=0)
        assert out["pr"].compute().notnull().any()
