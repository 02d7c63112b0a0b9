"""Step 3 of the pipeline, build the graph: one Dask task per (member, time chunk, y, x) chunk.

Every task is :func:`esmscale.downscaling.kernel.block_task` on the same
:class:`~esmscale.downscaling.spec.BlockSpec`; the model travels as a small reference and is
loaded once per worker process. Each task's key is ``("esmscale-block-<token>", member, time
chunk, y chunk, x chunk)``: the block index of the output, so that a failed task can be named
by the coordinates of its tile (:mod:`esmscale.io.failures`).
"""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np

from esmscale.downscaling.kernel import block_task
from esmscale.downscaling.spec import BlockSpec

__all__ = ["BLOCK_KEY_PREFIX", "build_graph"]

#: Name prefix of the keys of the tile tasks; the rest of a key is the output block index.
BLOCK_KEY_PREFIX = "esmscale-block-"


def _row(
    blk: object,
    spec: BlockSpec,
    name: str,
    member: int,
    ti: int,
    tidx: np.ndarray,
    ych: tuple[int, ...],
    xch: tuple[int, ...],
) -> list[list[dsa.Array]]:
    """The ``(y, x)`` grid of chunks of one member and one time chunk."""
    rows, y0 = [], 0
    for yi, ny in enumerate(ych):
        row, x0 = [], 0
        for xi, nx in enumerate(xch):
            region = (slice(y0, y0 + ny), slice(x0, x0 + nx))
            key = (name, member, ti, yi, xi)
            task = dask.delayed(block_task)(spec, blk, region, member, tidx, dask_key_name=key)
            row.append(dsa.from_delayed(task, shape=(1, len(tidx), ny, nx), dtype=np.float32))
            x0 += nx
        rows.append(row)
        y0 += ny
    return rows


def build_graph(
    data: dsa.Array,
    spec: BlockSpec,
    members: int,
    ych: tuple[int, ...],
    xch: tuple[int, ...],
) -> dsa.Array:
    """``(member, time, y, x)`` float32 output in model units, lazily, from fine fields ``data``.

    ``data`` is ``(time, y, x)`` in model units with one chunk in space (every task needs
    the whole domain for its tile windows); its time chunks become the output's.
    """
    data = data.rechunk({1: -1, 2: -1})
    blocks = data.to_delayed().ravel()
    t_off = np.cumsum((0, *data.chunks[0]))
    name = BLOCK_KEY_PREFIX + dask.base.tokenize(data.name, spec, members, ych, xch)
    out = [
        [
            _row(blk, spec, name, m, i, np.arange(t_off[i], t_off[i + 1]), ych, xch)
            for i, blk in enumerate(blocks)
        ]
        for m in range(members)
    ]
    return dsa.block(out)
