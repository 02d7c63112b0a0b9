"""Memory benchmark: an output several times a worker's memory limit streams to Zarr.

A ``LocalCluster`` of 2 single-threaded worker processes, each with a memory limit,
downscales the synthetic ESM 4x onto a 256 x 256 grid with
4 members and writes it with :func:`esmscale.io.write_zarr`. The resident memory of every
worker process is sampled every 20 ms from outside (psutil) during the whole write; the
workers' and nannies' logs are searched for pausing, spilling and restarts, and the worker
processes are counted before and after. Two jobs, one after the other, each on a fresh cluster:

- ``stream`` (limit ``--limit``, 1.5 GiB): an output of at least 4x one worker's limit
  (``--ratio``), through the engine's block tasks with the ``noise-only`` method: the same
  tiling, halo, noise, transform and Zarr writes as the consistency model, without the
  network call, which on this 2-core machine would take hours for that many fields;
- ``cm`` (limit ``--cm-limit``, 2.5 GiB: a 256 x 256 window at batch 8 needs about 0.8 GiB of
  activations, and the engine refuses a smaller worker up front): the consistency model
  itself (shipped ``synthetic-pr-4x``) on a smaller output and on one twice as large, so that
  its per-task peak is measured and shown not to grow with the output.

Usage: ``python benchmarks/memory.py [--quick]`` (``--quick``: a ratio of 0.5 and fewer CM
days, same code paths).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import xarray as xr
from _common import write_results

GRID, FACTOR, MEMBERS, WORKERS = 256, 4, 4, 2
_PAUSE = re.compile(r"Pausing worker|paused", re.I)
_RESTART = re.compile(r"Restarting worker|Worker process \d+ was killed|exceeded 95%", re.I)


def _esm(days: int, folder: Path) -> xr.Dataset:
    """``days`` days of the synthetic ESM, read lazily from a Zarr store as a user's input is.

    A 120-day sample is repeated on a longer (noleap) time axis and written once to
    ``folder``; an input held in memory would instead be embedded in the task graph, whose
    copies then dominate the client's memory.
    """
    from esmscale.datasets import synthetic_esm, synthetic_precip

    base = synthetic_esm(synthetic_precip(GRID, GRID, 120, seed=5), factor=FACTOR)
    reps = -(-days // 120)
    esm = xr.concat([base] * reps, "time").isel(time=slice(0, days))
    time_axis = xr.date_range("1950-01-01", periods=days, freq="D", calendar="noleap")
    store = folder / f"esm-{days}.zarr"
    esm.assign_coords(time=time_axis).chunk({"time": 8}).to_zarr(store, mode="w")
    return xr.open_zarr(store, chunks={"time": 8})


class _Sampler(threading.Thread):
    """Peak RSS of a set of processes, sampled every ``dt`` seconds until stopped."""

    def __init__(self, pids: list[int], dt: float = 0.02) -> None:
        import psutil

        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = {p.pid: 0 for p in self.procs}
        self.dt, self.samples = dt, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except Exception:  # a process that died is reported by the pid count
                    continue
            self.samples += 1
            time.sleep(self.dt)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _job(days: int, method: str, limit: str, store: Path) -> dict[str, Any]:
    from dask.utils import parse_bytes

    from esmscale.downscaling.engine import Engine, open_engine
    from esmscale.io.zarr import write_zarr

    esm = _esm(days, store.parent)
    kw = {} if method == "cm" else {"method": method}
    with open_engine(Engine(workers=WORKERS, memory_limit=limit)) as client:
        assert client is not None
        pids = list(client.run(os.getpid).values())
        sampler = _Sampler([*pids, os.getpid()])  # the workers and this client + scheduler
        sampler.start()
        t0 = time.perf_counter()
        out = esm.esm.downscale("synthetic-pr-4x", members=MEMBERS, seed=0, **kw)
        summary = write_zarr(out, store, progress=False, client=client)
        seconds = time.perf_counter() - t0
        sampler.stop()
        after = list(client.run(os.getpid).values())
        logs = client.get_worker_logs(nanny=True) | client.get_worker_logs()
    text = "\n".join(msg for entries in logs.values() for _, msg in entries)
    limit_b = parse_bytes(limit)
    out_bytes = int(np.prod([out.sizes[d] for d in out["pr"].dims])) * 4
    parent = sampler.peak.pop(os.getpid())
    peak = max(sampler.peak.values())
    return {
        "method": method,
        "days": days,
        "members": MEMBERS,
        "grid": "{}x{} -> {}x{}".format(*esm["pr"].shape[1:], *out["pr"].shape[2:]),
        "output_gib": out_bytes / 2**30,
        "output_over_limit": out_bytes / limit_b,
        "worker_limit_gib": limit_b / 2**30,
        "peak_rss_gib": peak / 2**30,
        "peak_over_limit": peak / limit_b,
        "peak_rss_gib_per_worker": [v / 2**30 for v in sampler.peak.values()],
        "client_scheduler_peak_rss_gib": parent / 2**30,
        "samples": sampler.samples,
        "pause_messages": len(_PAUSE.findall(text)),
        "restart_messages": len(_RESTART.findall(text)),
        "workers_before": len(pids),
        "workers_after_same_pids": len(set(pids) & set(after)),
        "complete": bool(summary.complete),
        "seconds": seconds,
        "fields_per_s": days * MEMBERS / seconds,
    }


def _out_cells() -> int:
    """Cells of one output field (the target grid the model's domain gives: 220 x 256)."""
    from esmscale.datasets import synthetic_esm, synthetic_precip

    esm = synthetic_esm(synthetic_precip(GRID, GRID, 8, seed=5), factor=FACTOR)
    out = esm.esm.downscale("synthetic-pr-4x", members=1, method="noise-only")
    return int(np.prod(out["pr"].shape[-2:]))


def run(quick: bool, limit: str, cm_limit: str, ratio: float) -> dict[str, object]:
    from dask.utils import parse_bytes

    ratio = 0.5 if quick else ratio
    per_day = MEMBERS * _out_cells() * 4  # float32
    stream_days = int(np.ceil(ratio * parse_bytes(limit) / per_day / 8)) * 8
    cm_days = 8 if quick else 24
    tmp = Path(tempfile.mkdtemp(prefix="esmscale-memory-"))
    res: dict[str, object] = {
        "worker_limit": limit,
        "cm_worker_limit": cm_limit,
        "workers": WORKERS,
        "threads_per_worker": 1,
    }
    res["stream"] = _job(stream_days, "noise-only", limit, tmp / "stream.zarr")
    print(f"stream: {res['stream']}", flush=True)
    import shutil

    shutil.rmtree(tmp / "stream.zarr", ignore_errors=True)
    res["cm"] = _job(cm_days, "cm", cm_limit, tmp / "cm.zarr")
    print(f"cm: {res['cm']}", flush=True)
    res["cm_double"] = _job(2 * cm_days, "cm", cm_limit, tmp / "cm2.zarr")
    print(f"cm_double: {res['cm_double']}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    s, c, c2 = res["stream"], res["cm"], res["cm_double"]  # type: ignore[assignment]

    def ok(r: dict[str, Any]) -> bool:
        return bool(
            r["peak_over_limit"] < 0.8
            and r["pause_messages"] == 0
            and r["restart_messages"] == 0
            and r["workers_after_same_pids"] == WORKERS
            and r["complete"]
        )

    res["targets_met"] = {
        "stream output >= 4x limit": s["output_over_limit"] >= 4,  # type: ignore[index]
        "stream: peak < 80% of limit, no pause, no restart": ok(s),
        "cm: peak < 80% of limit, no pause, no restart": ok(c) and ok(c2),
        "cm peak flat when the output doubles (within 10%)": (
            c2["peak_rss_gib"] <= 1.1 * c["peak_rss_gib"]  # type: ignore[index]
        ),
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    ap.add_argument("--limit", default="1536MiB", help="worker memory limit, stream job")
    ap.add_argument("--cm-limit", default="2560MiB", help="worker memory limit, CM jobs")
    ap.add_argument("--ratio", type=float, default=4.0, help="stream output / worker limit")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    write_results("memory", run(args.quick, args.limit, args.cm_limit, args.ratio), args.quick)


if __name__ == "__main__":
    main()
