"""Throughput benchmark: fields per second, network work per output cell, training steps per second.

Measured in one run, side by side, with the shipped ``synthetic-pr-4x`` model (4x, UNet of
1.2 M parameters):

- **fields per second** (one field = one member of one day) of :func:`esmscale.downscale`
  computed on dask's synchronous scheduler with one torch thread: 64x64 -> 256x256 (a
  regional grid, planned as one window) and a 256x512 -> 1024x2048 global field (tiles that
  wrap at the dateline). The model is loaded and run once on a small field before any clock
  starts; the output's shape is checked to be the grid named.
- **network-work ratio** (network window area / output area) of each grid's tile plan
  (:func:`esmscale.downscaling.plan.plan_grid`): ``halo_work_ratio`` is the global grid's,
  the one with halos; ``halo_work_ratio_256`` the regional grid's.
- **training steps per second** of :func:`esmscale.train` at batch 16 and 64 (the default
  ``TrainConfig`` network and 32x32 crops): the time of a run of ``2 + k`` steps minus that of
  a run of 2 steps, so that data preparation and the first, slower steps are not counted.

Every figure is for the CPU (``_cpu`` keys) and, when an accelerator is present
(``device="auto"`` resolves to one), for it as well (``_gpu`` keys); without one the ``_gpu``
keys are null and ``gpu_note`` says so: nothing is extrapolated.

Usage: ``python benchmarks/throughput.py [--quick] [--threads N]`` (``--quick``: fewer days,
members and steps, same code paths; a few minutes on one thread).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dask
import numpy as np
import torch
import xarray as xr
from _common import write_results

MODEL = "synthetic-pr-4x"


def _fields(days: int, fine: tuple[int, int], *, global_grid: bool, seed: int) -> xr.Dataset:
    """A coarse synthetic ESM whose 4x refinement is the ``fine`` grid."""
    from esmscale.datasets import synthetic_esm, synthetic_precip

    ny, nx = fine
    if global_grid:
        res = 360.0 / nx
        obs = synthetic_precip(ny, nx, days, seed=seed, lat0=-90 + res / 2, lon0=res / 2,
                               resolution=res)  # fmt: skip
    else:  # a regional grid well inside the latitudes (the target grid stops at the poles)
        obs = synthetic_precip(ny, nx, days, seed=seed, lat0=20.0)
    return synthetic_esm(obs, factor=4)


def _fields_per_s(esm: xr.Dataset, members: int, device: str) -> tuple[float, float, int]:
    """Fields per second of downscaling ``esm`` into ``members`` members, with the plan's ratio."""
    from esmscale import downscale
    from esmscale.downscaling.plan import plan_grid

    model = _model()
    with dask.config.set(scheduler="synchronous"):
        _warm_up(device)
        t0 = time.perf_counter()
        out = downscale(esm, model, members=members, seed=1, device=device)
        values = out.pr.values
        dt = time.perf_counter() - t0
    assert np.isfinite(values).any()
    ny, nx = values.shape[-2:]
    assert (ny, nx) == (4 * esm.sizes["lat"], 4 * esm.sizes["lon"]), values.shape
    wrap = bool(np.isclose(float(out.lon[1] - out.lon[0]) * nx, 360.0))
    ratio = plan_grid(ny, nx, model.config.multiple, wrap_x=wrap).work_ratio
    n = members * esm.sizes["time"]
    return n / dt, ratio, n


@functools.cache
def _warm_up(device: str) -> None:
    """Load the model and run it once on ``device`` (a small field) before any clock starts."""
    from esmscale import downscale

    esm = _fields(1, (64, 64), global_grid=False, seed=0)
    downscale(esm, _model(), device=device).pr.values  # noqa: B018


@functools.cache
def _model() -> Any:
    """The benchmark's model, loaded once."""
    from esmscale import load_model

    return load_model(MODEL)


def _train_steps_per_s(batch: int, extra: int, device: str) -> float:
    """Training steps per second at ``batch``: (2 + extra) steps minus 2 steps, timed."""
    from esmscale import TrainConfig, train
    from esmscale.datasets import synthetic_precip

    obs = synthetic_precip(96, 96, 64, seed=3)
    times = []
    for steps in (2, 2 + extra):
        cfg = TrainConfig(steps=steps, batch_size=batch, checkpoint_every=10_000)
        t0 = time.perf_counter()
        train(obs, cfg, progress=False, device=device)
        times.append(time.perf_counter() - t0)
    return extra / max(times[1] - times[0], 1e-9)


def _measure(device: str, quick: bool) -> dict[str, Any]:
    days_256, members_256 = (4, 2) if quick else (32, 4)
    days_glob, members_glob = (1, 1) if quick else (4, 2)
    extra = 3 if quick else 20
    res: dict[str, Any] = {}
    fps, ratio, n = _fields_per_s(_fields(days_256, (256, 256), global_grid=False, seed=5),
                                  members_256, device)  # fmt: skip
    res["fields_256"], res["fields_per_s_256"], res["halo_work_ratio_256"] = n, fps, ratio
    esm = _fields(days_glob, (1024, 2048), global_grid=True, seed=6)
    fps, ratio, n = _fields_per_s(esm, members_glob, device)
    res["fields_global"], res["fields_per_s_global"], res["halo_work_ratio"] = n, fps, ratio
    res["train_steps_per_s"] = {str(b): _train_steps_per_s(b, extra, device) for b in (16, 64)}
    res["train_steps_timed"] = extra
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer days, members and steps")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from esmscale.devices import available_devices

    cpu = _measure("cpu", args.quick)
    accel = available_devices()[0]
    gpu = None if accel == "cpu" else _measure(accel, args.quick)
    res: dict[str, Any] = {
        "model": MODEL,
        "torch_threads": torch.get_num_threads(),
        "fields_per_s_cpu_256": cpu["fields_per_s_256"],
        "fields_per_s_cpu_global": cpu["fields_per_s_global"],
        "halo_work_ratio": cpu["halo_work_ratio"],
        "halo_work_ratio_256": cpu["halo_work_ratio_256"],
        "train_steps_per_s_cpu": cpu["train_steps_per_s"],
        "fields_per_s_gpu_256": gpu and gpu["fields_per_s_256"],
        "fields_per_s_gpu_global": gpu and gpu["fields_per_s_global"],
        "train_steps_per_s_gpu": gpu and gpu["train_steps_per_s"],
        "gpu_device": None if gpu is None else accel,
        "gpu_note": (
            "no accelerator was present on this machine (devices: "
            f"{', '.join(available_devices())}); the _gpu figures are not measured"
            if gpu is None
            else f"measured on {accel} in the same run"
        ),
        "fields_timed": {"256": cpu["fields_256"], "global": cpu["fields_global"]},
        "train_steps_timed": cpu["train_steps_timed"],
        "grids": {"256": "64x64 -> 256x256", "global": "256x512 -> 1024x2048 (wraps in lon)"},
    }
    write_results("throughput", res, args.quick)


if __name__ == "__main__":
    main()
