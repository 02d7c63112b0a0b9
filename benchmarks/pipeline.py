"""Pipeline benchmark: overhead of ``ds.esm.downscale`` over the bare network, and streaming.

(a) Overhead: wall time of ``ds.esm.downscale(...).compute()`` divided by the time of the bare
    batched network calls over the same tiles (same windows, batch size and thread count),
    measured in the same run.
(b) Streaming: downscale daily 64x64 -> 256x256 fields with 4 members to Zarr through
    ``write_zarr``, in a child process, for N days and for 2N days; report the child's peak RSS
    (flat when memory is bounded by the chunk/tile size) and fields per second.

Usage: ``python benchmarks/pipeline.py [--quick] [--days N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_results


def _world(days: int):
    from esmscale.datasets import synthetic_esm, synthetic_precip

    truth = synthetic_precip(256, 256, days, seed=42)
    return synthetic_esm(truth, factor=4)


def overhead(days: int, members: int) -> dict[str, float]:
    import dask

    import esmscale  # noqa: F401
    from esmscale import load_model
    from esmscale.downscaling.tiling import TileGrid, fixed_threads
    from esmscale.models.sampler import DEFAULT_BATCH, consistency_sample

    model = load_model("synthetic-pr-4x")
    esm = _world(days).chunk({"time": 8})
    with dask.config.set(scheduler="sync"):
        t0 = time.perf_counter()
        out = esm.esm.downscale(model, members=members, seed=0).compute()
        t_pipe = time.perf_counter() - t0
    assert np.isfinite(out.pr.values).all()
    tile, halo = out.pr.attrs["esmscale_tile"], out.pr.attrs["esmscale_halo"]
    grid = TileGrid(256, 256, tile=tile, halo=halo)
    n_windows = grid.shape[0] * grid.shape[1] * days * members
    x = np.zeros((n_windows, grid.window, grid.window), np.float32)
    noise = np.random.default_rng(0).standard_normal((1, *x.shape), dtype=np.float32)
    t_star = float(out.pr.attrs["esmscale_t_star"])
    with fixed_threads(1):
        t0 = time.perf_counter()
        consistency_sample(model, x, t_star, noise, batch_size=DEFAULT_BATCH)
        t_bare = time.perf_counter() - t0
    return {
        "overhead_ratio": t_pipe / t_bare,
        "pipeline_seconds": t_pipe,
        "bare_network_seconds": t_bare,
        "overhead_days": days,
        "overhead_members": members,
        "windows": n_windows,
        "window": grid.window,
    }


def child(days: int, store: str) -> None:
    import esmscale  # noqa: F401
    from esmscale.io import write_zarr

    esm = _world(days).chunk({"time": 16})
    t0 = time.perf_counter()
    result = esm.esm.downscale("synthetic-pr-4x", members=4, seed=0)
    summary = write_zarr(result, store, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "chunks": summary.n_chunks_written}))


def streaming(days: int) -> dict[str, float]:
    """Run the streaming job in a child process and read that child's own peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "out.zarr")
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(days), store],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"streaming child failed with exit code {proc.returncode}")
        info = json.loads(out.strip().splitlines()[-1])
    return {
        "peak_rss_gib": usage.ru_maxrss / 2**20,
        "seconds": info["seconds"],
        "fields_per_s": days * 4 / info["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    ap.add_argument("--days", type=int, default=None, help="streaming days (default 1095)")
    ap.add_argument("--child", nargs=2, metavar=("DAYS", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    days = args.days or (16 if args.quick else 1095)
    res: dict[str, object] = overhead(8 if args.quick else 32, 2)
    single = streaming(days)
    double = streaming(2 * days)
    res.update(
        {
            "streaming_days": days,
            "peak_rss_gib": single["peak_rss_gib"],
            "peak_rss_gib_double_days": double["peak_rss_gib"],
            "fields_per_s": single["fields_per_s"],
            "fields_per_s_double_days": double["fields_per_s"],
            "streaming_seconds": single["seconds"],
        }
    )
    res["targets_met"] = {
        "overhead_ratio<=1.25": bool(res["overhead_ratio"] <= 1.25),  # type: ignore[operator]
        "peak_rss_gib<2": bool(single["peak_rss_gib"] < 2 and double["peak_rss_gib"] < 2),
        "rss_flat_when_days_double": bool(double["peak_rss_gib"] < 1.25 * single["peak_rss_gib"]),
    }
    write_results("pipeline", res, args.quick)


if __name__ == "__main__":
    main()
