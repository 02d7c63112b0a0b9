"""Lazy, chunk-invariant downscaling of xarray data over Dask: the path a field takes.

``downscale`` runs four named steps: (1) prepare the inputs (:mod:`.inputs`: find the variable,
check time and physics, convert units, regrid onto the target grid with xarray-regrid, optional
QDM bias correction with xsdba); (2) plan the tiles (:mod:`.plan`: fixed tiles of the global
target grid with halos, output chunk sizes); (3) build the graph (:mod:`.graph`: one Dask task
per output chunk, each the tile kernel :func:`esmscale.downscaling.kernel.run_block` on one
shared :class:`~esmscale.downscaling.spec.BlockSpec`); (4) wrap the output (:mod:`.output`:
units back, CF attributes and provenance, conservation, clipping). With Dask input nothing is
computed until the result is; each task loads the model once per process
(:func:`esmscale.io.model_cache.cached_model`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr

from esmscale.devices import PRECISIONS, autocast_dtype
from esmscale.downscaling.arrays import resolve_t_star
from esmscale.downscaling.graph import build_graph, check_resources
from esmscale.downscaling.inputs import as_xarray, prepare_inputs
from esmscale.downscaling.output import (
    MEMBER_ATTRS,
    bias_label,
    conserve_blocks,
    member_coord,
    output_attrs,
    wrap_output,
)
from esmscale.downscaling.plan import is_global, plan_grid, spatial_chunks
from esmscale.downscaling.spec import BlockSpec
from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import model_ref
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import DEFAULT_BATCH, SAMPLERS
from esmscale.prepare.checks import check_time  # re-exported: esmscale.pipeline.check_time
from esmscale.pretrained import load_model

__all__ = [
    "MEMBER_ATTRS",
    "check_time",
    "conserve_blocks",
    "downscale",
    "member_coord",
    "output_attrs",
]


def _client() -> Any:
    """The active distributed ``Client``, or None (dask's local schedulers)."""
    if "distributed" not in sys.modules:
        return None
    from esmscale.downscaling.engine import active_client

    return active_client()


def _wraps(fine: xr.DataArray, xdim: str) -> bool:
    """Whether tiles wrap around the x dim: a global 1-D longitude axis only."""
    if "grid_mapping" in fine.attrs or xdim not in fine.coords:
        return False
    return is_global(np.asarray(fine[xdim].values))


def downscale(
    obj: xr.Dataset | xr.DataArray | str | os.PathLike[str],
    model: ConsistencyModel | str | os.PathLike[str],
    *,
    target: xr.Dataset | xr.DataArray | None = None,
    variable: str | None = None,
    members: int = 1,
    seed: int = 0,
    t_star: float | str = "auto",
    steps: int = 1,
    bias_correction: Any = None,
    reference: xr.DataArray | xr.Dataset | None = None,
    historical: xr.DataArray | xr.Dataset | None = None,
    conserve: bool = False,
    tile: int | None = None,
    halo: int | None = None,
    regrid_method: str = "bilinear",
    chunks: dict[str, int] | None = None,
    threads: int = 1,
    sampler: str = "consistency",
    check: str = "raise",
    device: str = "cpu",
    precision: str = "fp32",
    restore: float | None = None,
    spread: float = 0.0,
    spread_length: float = 4.0,
    resources: dict[str, float] | None = None,
) -> xr.DataArray | xr.Dataset:
    """Downscale coarse ESM fields into a high-resolution ensemble (lazy with Dask input).

    Parameters
    ----------
    obj
        Coarse fields with dims (time, lat, lon) (names found through CF attributes), or the
        path of a NetCDF file or Zarr store holding them (opened lazily).
    model
        A loaded :class:`ConsistencyModel`, a registered name or a checkpoint path.
    target
        Dataset/DataArray whose grid is the output grid (NaN cells of its data, such as sea,
        stay NaN): a 1-D lat/lon grid, a rotated-pole grid or a projected grid with its CF grid
        mapping (:func:`esmscale.prepare.grids.describe_grid`); the output then keeps that grid
        mapping and 2-D lat/lon coordinates. Default: the input grid refined by the model's
        factor.
    variable
        Variable to downscale when ``obj`` is a Dataset with several.
    members, seed
        Ensemble size and noise seed; member ``m`` of seed ``s`` is reproducible on its own.
    t_star
        Noise level, or ``"auto"`` for the model's calibrated default.
    steps
        Network calls per member (1 = the paper's one-step sampling).
    bias_correction
        None, ``"qdm"`` (trained here on ``reference`` and ``historical``), ``"qdm-mean"``
        (the same, also keeping the model's change in each cell's mean) or a trained
        :class:`esmscale.prepare.bias.QDMCorrector`; applied on the target grid before the model.
    conserve
        Rescale each member so that its block mean over each input cell equals the input's
        (bias-corrected) value; needs a target that refines the input grid by an integer factor
        (the default target, or a target in the input's CRS, e.g. a projected grid, whose
        ``k x k`` blocks are exactly the input's cells).
    tile, halo
        Tile core size and halo in fine cells (default: planned from the grid by
        :func:`~esmscale.downscaling.plan.plan_grid` so that the network computes at most
        1.3x the output area: one window for a regional grid up to 512 cells a side, cores of
        up to 480 cells with a halo of 16 beyond). The output does not depend on Dask chunks
        or the device; it does depend on these.
    regrid_method
        ``"bilinear"`` or ``"conservative"``.
    chunks
        Output chunk sizes along the target's lat/lon dims, e.g. ``{"lat": 128, "lon": 128}``.
    threads
        torch threads per task; CPU results are bitwise reproducible for a fixed value.
    sampler
        ``"consistency"`` (``steps`` network calls) or ``"bridge"``: the diffusion-bridge
        baseline, ``steps`` Euler-Maruyama steps of a model trained with
        ``objective="diffusion"``; ``"noise-only"`` is the control that adds the same noise at
        t* and skips the network.
    check
        Physical check of the input (:mod:`esmscale.prepare.physics`): ``"raise"`` (default)
        stops on negative precipitation, temperatures outside 150..350 K, infinities or leaked
        fill values; ``"warn"`` warns and goes on; ``"off"`` skips it. With Dask input the
        chunks are checked when computed.
    device
        Where each block's network runs: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU), resolved on the process that
        runs the block (:mod:`esmscale.devices`): with a distributed client it is checked on
        the workers that will run the tiles, not here. A member is the same field on any
        device up to the device's rounding (the noise is drawn on the host).
    precision
        ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 is refused on the CPU).
    restore
        Keep the input's large scales in every member: the output is rescaled (precipitation)
        or shifted (temperature) so that its Gaussian low-pass of SD ``restore`` target cells
        equals the (bias-corrected) input's (:mod:`esmscale.downscaling.restore`). Brings the
        climatology map and intense days, which the network alone damps, back toward the
        input's; gains and costs on real data in docs/benchmarks.md. None (default): the
        network's output as it is.
    spread, spread_length
        With ``restore``: amplitude and correlation length (target cells) of an independent,
        smooth, mean-one multiplicative perturbation per member, which returns the
        uncertainty of the large scales that the restore takes from the input (0: none;
        calibrate the amplitude on held-out pairs to a spread-skill ratio near 1).
    resources
        Dask worker resources each tile task takes, e.g. ``{"GPU": 1}``: on a distributed
        cluster the tiles (the network) run only on workers that declare them, one model per
        worker on its own device, while reading and writing run on any worker
        (docs/clusters.md). Kept by :func:`esmscale.io.zarr.write_zarr` and
        :func:`esmscale.downscaling.engine.compute_on`; ignored by dask's local schedulers;
        the output does not depend on it. With an active client, a cluster where no worker
        declares them is refused here.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Same kind as ``obj``: dims (member, time, lat, lon) on the target grid, in the input's
        units, with CF attributes, the input's calendar and provenance attributes. Outputs of
        non-negative variables are clipped at 0 and ``esmscale_clipped_fraction`` is the share
        of values clipped: set at once for in-memory input; for Dask input by
        :func:`esmscale.io.zarr.write_zarr` or :func:`esmscale.prepare.compute_clipped`.

    Examples
    --------
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> esm = synthetic_esm(synthetic_precip(32, 32, 2, seed=0))  # 8x8 cells at 1 degree
    >>> out = downscale(esm, "synthetic-pr-4x", members=2, seed=0)
    >>> dict(out["pr"].sizes), out["pr"].attrs["units"]
    ({'member': 2, 'time': 2, 'lat': 32, 'lon': 32}, 'mm day-1')
    >>> out["pr"].attrs["esmscale_model"], float(out["pr"].min()) >= 0
    ('synthetic-pr-4x', True)
    """
    obj = as_xarray(obj)
    cm = load_model(model)
    if members < 1 or steps < 1:
        raise EsmscaleError(f"members={members} and steps={steps} must both be >= 1.")
    ts = resolve_t_star(cm, t_star)
    SAMPLERS.get(sampler).check_model(cm)  # before any data is touched
    client = _client()
    if client is None:
        autocast_dtype(precision, device)  # an absent device or fp16 on the CPU: refused here
    elif precision not in PRECISIONS:
        autocast_dtype(precision, "cpu")  # an unknown name; the device is checked on workers
    res = check_resources(resources)
    bias = {"bias_correction": bias_correction, "reference": reference, "historical": historical}
    inp = prepare_inputs(
        obj,
        cm,
        target=target,
        variable=variable,
        check=check,
        regrid_method=regrid_method,
        bias=bias,
    )
    fine = inp.fine
    grid = plan_grid(
        fine.sizes[inp.lat],
        fine.sizes[inp.lon],
        cm.config.multiple,
        tile=tile,
        halo=halo,
        wrap_x=_wraps(fine, inp.lon),
    )
    ref = model_ref(cm)
    data = fine.data if isinstance(fine.data, dsa.Array) else dsa.from_array(fine.data, chunks=-1)
    ych = spatial_chunks(grid.ny, (chunks or {}).get(inp.lat), grid.halo, inp.lat)
    xch = spatial_chunks(grid.nx, (chunks or {}).get(inp.lon), grid.halo, inp.lon)
    if client is not None:  # a distributed client is the scheduler
        from esmscale.downscaling.engine import (
            check_resource_workers,
            check_worker_memory,
            min_worker_memory,
            network_activation_bytes,
            ship_model,
        )

        check_resource_workers(client, res, device, precision)  # a device absent there
        tmax = max(data.chunks[0])
        model_bytes = sum(p.numel() * p.element_size() for p in cm.parameters())
        act = 0
        if sampler != "noise-only":  # the network runs: its activations count
            c0 = cm.config.block_out_channels[0]
            act = network_activation_bytes(DEFAULT_BATCH, grid.windows, c0)
        need = min_worker_memory(
            tmax * grid.ny * grid.nx * 4, members * tmax * max(ych) * max(xch) * 4, model_bytes, act
        )
        check_worker_memory(client, need)  # before any worker loads the model
        ship_model(ref)  # once per client: every worker gets the checkpoint and loads it once
    spec = BlockSpec.for_model(
        ref,
        grid,
        t_star=ts,
        seed=seed,
        steps=steps,
        sampler=sampler,
        threads=threads,
        device=device,
        precision=precision,
        restore=restore,
        spread=spread,
        spread_length=spread_length,
    )
    out = build_graph(data, spec, members, ych, xch, resources=res)
    prov = {
        "t_star": ts,
        "seed": seed,
        "members": members,
        "steps": steps,
        "sampler": sampler,
        "tile": grid.tile,
        "halo": grid.halo,
        "bias_correction": bias_label(bias_correction),
        "conserve": str(conserve),
        "restore": "none" if restore is None else f"{restore:g} cells",
        "spread": f"{spread:g} (length {spread_length:g} cells)",
    }
    result = wrap_output(
        out, inp, cm, prov, conserve=conserve, default_target=target is None, target=target
    )
    return result.to_dataset() if isinstance(obj, xr.Dataset) else result
