"""Lazy writes of many dask blocks as one graph layer, whatever their number.

``dask.array.store(sources, targets, compute=False)`` with one source per block (what a
resumable writer needs: only the blocks still missing are written) returns one collection per
block, each carrying the whole graph of its source. Merging and optimising *n* such graphs of
*n* blocks costs memory and time in *n* squared: 3,072 days of output took 6.5 GB in the
client and scheduler process and 6,144 days did not fit in 23 GB. :func:`store_blocks` builds
the same writes as one layer of tasks that refer to the source blocks by key, plus one task
that waits for them all: a graph linear in the number of blocks.

>>> import dask
>>> import dask.array as dsa
>>> import numpy as np
>>> x = dsa.arange(6, chunks=2)
>>> out = np.zeros(6)
>>> write = store_blocks([(x, (i,), out, (slice(2 * i, 2 * i + 2),)) for i in (0, 2)])
>>> dask.compute(write)[0], out.tolist()
(2, [0.0, 1.0, 0.0, 0.0, 4.0, 5.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as dsa
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

__all__ = ["BlockWrite", "store_blocks"]

#: One write: the source array, the index of its block, the target, the target's region.
BlockWrite = tuple[dsa.Array, tuple[int, ...], Any, tuple[slice, ...]]


def _put(target: Any, region: tuple[slice, ...], block: Any) -> None:
    target[region] = block


def _count(results: list[None]) -> int:
    return len(results)


def store_blocks(writes: Sequence[BlockWrite], label: str = "esmscale-store") -> Delayed:
    """One lazy task per ``target[region] = source block``, and one that waits for them all.

    Parameters
    ----------
    writes : sequence of (dask.array.Array, tuple of int, target, tuple of slice)
        The source array, the block index in it, anything with ``__setitem__`` (a Zarr array,
        a :class:`~esmscale.io.retry.RetryingTarget`) and the region of the target the block
        goes to (its shape must be the block's).
    label : str, default "esmscale-store"
        Prefix of the task keys (what a dashboard or progress bar shows).

    Returns
    -------
    dask.delayed.Delayed
        Computes to the number of blocks written. The graph holds the sources' graphs once
        each, one task per write, and the final task: linear in the number of writes.

    Examples
    --------
    >>> import numpy as np
    >>> x = dsa.ones((2, 4), chunks=(1, 4))
    >>> out = np.zeros((2, 4))
    >>> store_blocks([(x, (1, 0), out, (slice(1, 2), slice(0, 4)))]).compute(), float(out.sum())
    (1, 4.0)
    """
    sources: dict[str, Any] = {src.name: src for src, _, _, _ in writes}
    name = f"{label}-" + dask.base.tokenize(
        [(src.name, idx, region) for src, idx, _, region in writes]
    )
    layer: dict[Any, Any] = {}
    keys = []
    for i, (src, index, target, region) in enumerate(writes):
        if len(index) != src.ndim:
            raise ValueError(f"block index {index} of a {src.ndim}-d array")
        key = (name, i)
        layer[key] = (_put, target, region, (src.name, *index))
        keys.append(key)
    layer[name] = (_count, keys)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=list(sources.values()))
    return Delayed(name, graph, layer=name)
