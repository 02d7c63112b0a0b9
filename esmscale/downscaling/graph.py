"""Step 3 of the pipeline, build the graph: one Dask task per (time chunk, y, x) chunk.

Every task is :func:`esmscale.downscaling.kernel.block_task` on the same
:class:`~esmscale.downscaling.spec.BlockSpec`; the model travels as a small reference and is
loaded once per worker process. A task makes all members of its chunk (the output has one chunk
along ``member``): their network inputs share the network's fixed-size batches, which one
member of a few fields would fill partly with zero padding (10 fields of one window each: 10 of
16 slots, so a third of the network's work was padding), and the graph has a task per chunk
rather than per member. Each task's key is ``("esmscale-block-<token>", 0, time chunk, y
chunk, x chunk)``: the block index of the output, so that a failed task can be named by the
coordinates of its tile (:mod:`esmscale.io.failures`).

With ``resources`` (e.g. ``{"GPU": 1}``) the tile tasks, and only they, carry Dask worker
resources: on a distributed cluster they run only on workers that declare them (``dask worker
--resources GPU=1``), while reading, regridding and writing run anywhere. The restriction is a
layer annotation, which dask's low-level fusion drops;
:func:`esmscale.downscaling.engine.compute_on` (used by :func:`esmscale.io.zarr.write_zarr`)
keeps it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as dsa
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from esmscale.downscaling.kernel import block_task
from esmscale.downscaling.spec import BlockSpec
from esmscale.errors import EsmscaleError

__all__ = ["BLOCK_KEY_PREFIX", "build_graph", "check_resources"]

#: Name prefix of the keys of the tile tasks; the rest of a key is the output block index.
BLOCK_KEY_PREFIX = "esmscale-block-"


def check_resources(resources: Mapping[str, float] | None) -> dict[str, float] | None:
    """``resources`` as a plain ``{name: amount}`` dict, checked (None or empty: None).

    Examples
    --------
    >>> check_resources({"GPU": 1})
    {'GPU': 1.0}
    >>> check_resources({"GPU": 0})
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: resources={'GPU': 0}: the amount of 'GPU' must be ...
    """
    if not resources:
        return None
    if not isinstance(resources, Mapping):
        raise EsmscaleError(
            f"resources={resources!r} is not a mapping; give Dask worker resources per tile "
            "task as a dict, e.g. resources={'GPU': 1}.",
            cli="give --worker-resources GPU=1 (several: GPU=1,MEM=4e9).",
        )
    out: dict[str, float] = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name.strip():
            raise EsmscaleError(
                f"resources={dict(resources)!r}: {name!r} is not a resource name; use the "
                "name your workers declare, e.g. 'GPU'."
            )
        try:
            value = float(amount)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise EsmscaleError(
                f"resources={dict(resources)!r}: the amount of {name!r} must be a number > 0 "
                "(what one tile task takes of what a worker declares), e.g. {'GPU': 1}."
            )
        out[name] = value
    return out


def build_graph(
    data: dsa.Array,
    spec: BlockSpec,
    members: int,
    ych: tuple[int, ...],
    xch: tuple[int, ...],
    resources: Mapping[str, float] | None = None,
) -> dsa.Array:
    """``(member, time, y, x)`` float32 output in model units, lazily, from fine fields ``data``.

    ``data`` is ``(time, y, x)`` in model units with one chunk in space (every task needs
    the whole domain for its tile windows); its time chunks become the output's.
    ``resources`` (checked by :func:`check_resources`) annotates the tile tasks with the Dask
    worker resources each one takes.

    Examples
    --------
    >>> from esmscale.downscaling.tiling import TileGrid
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(16, 16, tile=8, halo=4), t_star=0.2)
    >>> data = dsa.zeros((4, 16, 16), chunks=(2, 16, 16), dtype="float32")
    >>> out = build_graph(data, spec, members=2, ych=(8, 8), xch=(16,))
    >>> out.shape, out.numblocks  # (member, time chunk, y chunk, x chunk)
    ((2, 4, 16, 16), (1, 2, 2, 1))
    >>> out.compute().dtype
    dtype('float32')
    """
    res = check_resources(resources)
    data = data.rechunk({1: -1, 2: -1})
    t_off = np.cumsum((0, *data.chunks[0]))
    name = BLOCK_KEY_PREFIX + dask.base.tokenize(data.name, spec, members, ych, xch)
    y_off, x_off = np.cumsum((0, *ych)), np.cumsum((0, *xch))
    # One layer of tasks that refer to the input blocks by key: a graph linear in the number
    # of blocks (a delayed task and an array per block made it quadratic to merge and optimise).
    layer: dict[Any, Any] = {}
    # all members in one task: their network inputs fill the same fixed-size batches
    every = tuple(range(members))
    for ti in range(data.numblocks[0]):
        tidx = np.arange(t_off[ti], t_off[ti + 1])
        for yi, xi in itertools.product(range(len(ych)), range(len(xch))):
            region = (slice(y_off[yi], y_off[yi + 1]), slice(x_off[xi], x_off[xi + 1]))
            layer[(name, 0, ti, yi, xi)] = (
                block_task,
                spec,
                (data.name, ti, 0, 0),
                region,
                every,
                tidx,
            )
    annotate = dask.annotate(resources=res) if res else contextlib.nullcontext()
    with annotate:  # the tile tasks only: inputs and writes may run on any worker
        deps: list[Any] = [data]  # dask's DaskCollection protocol does not type Array
        graph = HighLevelGraph.from_collections(name, layer, dependencies=deps)
    chunks = ((members,), data.chunks[0], tuple(ych), tuple(xch))
    meta = np.empty((0, 0, 0, 0), dtype=np.float32)
    return dsa.Array(graph, name, chunks, meta=meta)
