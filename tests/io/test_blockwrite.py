"""Block writes as one graph layer: correct values, and a graph linear in the number of blocks."""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.io.blockwrite import store_blocks
from esmscale.io.clipstats import plan_counts
from esmscale.io.stores import open_location
from esmscale.io.zarr import _region_writes


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    chunk=st.integers(1, 7),
    data=st.data(),
)
def test_written_blocks_equal_the_source_and_nothing_else(n: int, chunk: int, data) -> None:
    values = np.arange(n, dtype="f8") + 1
    x = dsa.from_array(values, chunks=chunk)
    starts = np.cumsum((0, *x.chunks[0]))
    picked = data.draw(st.sets(st.integers(0, x.numblocks[0] - 1)))
    out = np.zeros(n)
    write = store_blocks([(x, (i,), out, (slice(starts[i], starts[i + 1]),)) for i in picked])
    assert dask.compute(write)[0] == len(picked)
    expect = np.zeros(n)
    for i in picked:
        expect[starts[i] : starts[i + 1]] = values[starts[i] : starts[i + 1]]
    np.testing.assert_array_equal(out, expect)


def test_a_wrong_block_index_is_refused() -> None:
    x = dsa.ones((2, 2), chunks=1)
    with pytest.raises(ValueError, match="block index"):
        store_blocks([(x, (0,), np.zeros(2), (slice(0, 1),))])


def _write_graph(days: int, folder) -> tuple[int, int]:
    """Layers and tasks of the whole write graph of a downscaling of ``days`` days."""
    esm = synthetic_esm(synthetic_precip(32, 32, days, seed=1), factor=4).chunk({"time": 2})
    out = esm.esm.downscale("synthetic-pr-4x", members=2, seed=0, method="noise-only")
    ds = out.to_dataset() if hasattr(out, "to_dataset") else out
    path = open_location(str(folder / f"o{days}.zarr"))
    ds.to_zarr(path.zarr_store(), mode="w", compute=False, zarr_format=3, consolidated=False)
    counted, handled, *_ = plan_counts(path, ds, list(ds.data_vars), False, None)
    others = [n for n in ds.data_vars if n not in handled]
    writes = _region_writes(path, ds, others, False)[0] + counted
    assert len(writes) == 1  # one collection, whatever the number of blocks
    graph = writes[0].__dask_graph__()
    return len(graph.layers), len(dict(graph))


def test_write_graph_layers_do_not_grow_with_the_blocks(tmp_path) -> None:
    # One collection per block made merging and optimising quadratic (6.5 GB in the client and
    # scheduler for 3,072 days): the layers must stay the same, the tasks grow linearly.
    small_layers, small_tasks = _write_graph(8, tmp_path)
    big_layers, big_tasks = _write_graph(32, tmp_path)
    assert big_layers == small_layers
    assert big_tasks < 4.5 * small_tasks
