"""Fault injection on real dask workers, for the reliability tests.

Each fault is a ``distributed`` worker plugin that, in every worker process (restarted ones
included), wraps a real function: the tile task (:func:`esmscale.downscaling.kernel.block_task`)
or the local Zarr store's ``set``. State shared across processes (how many tiles ran, whether a
worker was already killed, which chunk writes already failed once) lives in files under a
folder, created with ``O_EXCL`` so that exactly one process wins.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


def _claim(path: Path) -> bool:
    """Create ``path``; True for the one process that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _wrap_block_task(folder: Path, should_die: Any) -> None:
    from esmscale.downscaling import kernel

    original = getattr(kernel.block_task, "__wrapped_original__", kernel.block_task)

    def block_task(spec, fine, region, members, time_index):  # type: ignore[no-untyped-def]
        tile = f"m{members[0]}-t{int(time_index[0])}-y{region[0].start}-x{region[1].start}"
        (folder / f"start-{tile}-{uuid.uuid4().hex}").touch()
        if should_die(folder, tuple(members), int(time_index[0]), region):
            (folder / f"death-{tile}-{uuid.uuid4().hex}").touch()
            os._exit(1)  # the worker process dies at once, mid-task
        return original(spec, fine, region, members, time_index)

    block_task.__wrapped_original__ = original  # type: ignore[attr-defined]
    kernel.block_task = block_task


class KillOnceAfter(WorkerPlugin):
    """Kill one worker (``os._exit``) when ``after`` tile tasks have started, once per cluster."""

    name = "fault-kill-once"

    def __init__(self, folder: Path, after: int) -> None:
        self.folder, self.after = Path(folder), after

    def setup(self, worker: Any) -> None:
        after = self.after

        def should_die(folder: Path, members: tuple[int, ...], t0: int, region: Any) -> bool:
            started = sum(1 for _ in folder.glob("start-*"))
            return started > after and _claim(folder / "killed")

        _wrap_block_task(self.folder, should_die)


class PoisonTile(WorkerPlugin):
    """Kill every worker that starts the tile of ``member`` (with the other members of its
    task), time ``t0`` and region start ``y0``, ``x0`` (a tile that always crashes its worker)."""

    name = "fault-poison-tile"

    def __init__(self, folder: Path, member: int, t0: int, y0: int, x0: int) -> None:
        self.folder, self.tile = Path(folder), (member, t0, y0, x0)

    def setup(self, worker: Any) -> None:
        poison = self.tile

        def should_die(folder: Path, members: tuple[int, ...], t0: int, region: Any) -> bool:
            member, *where = poison
            return member in members and (t0, region[0].start, region[1].start) == tuple(where)

        _wrap_block_task(self.folder, should_die)


class FlakyStore(WorkerPlugin):
    """The first write of every chunk key to a local Zarr store fails with ``OSError``."""

    name = "fault-flaky-store"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def setup(self, worker: Any) -> None:
        install_flaky_store(self.folder)


def install_flaky_store(folder: Path) -> None:
    """Make the first ``set`` of each chunk key (``.../c/...``) in this process raise OSError."""
    from zarr.storage import LocalStore

    original = getattr(LocalStore.set, "__wrapped_original__", LocalStore.set)

    async def set(self, key, value):  # type: ignore[no-untyped-def]
        if "/c/" in key and _claim(folder / ("fail-" + key.replace("/", "_"))):
            raise OSError(f"injected transient write error on {key}")
        return await original(self, key, value)

    set.__wrapped_original__ = original  # type: ignore[attr-defined]
    LocalStore.set = set  # type: ignore[method-assign]


def uninstall_flaky_store() -> None:
    from zarr.storage import LocalStore

    LocalStore.set = getattr(LocalStore.set, "__wrapped_original__", LocalStore.set)  # type: ignore[method-assign]


def count(folder: Path, prefix: str) -> int:
    return sum(1 for _ in Path(folder).glob(f"{prefix}-*"))


def record(name: str, figures: dict[str, Any]) -> None:
    """Print the figures of a reliability test; also save them as JSON when
    ``ESMSCALE_RELIABILITY_DIR`` is set (``benchmarks/reliability.py`` collects them)."""
    print(f"reliability {name}: {json.dumps(figures, default=str)}")
    out = os.environ.get("ESMSCALE_RELIABILITY_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, f"{name}.json").write_text(json.dumps(figures, indent=1, default=str))
