"""Where the tasks run: dask's default scheduler, a ``LocalCluster``, a scheduler address or the
active ``Client``, all through one frozen :class:`Engine`.

``esmscale downscale --workers N`` and ``--scheduler ADDRESS`` open an engine with
:func:`open_engine`; in Python an active ``Client`` is used as it is. In every case
the graph is the same and so is the output, bit for bit. The model travels once to each worker
(:class:`ModelPlugin`, registered by :func:`ship_model`, which :func:`esmscale.downscale` calls
when a distributed client is the current scheduler) and is loaded once per worker process; the
graph itself carries only a small :class:`~esmscale.io.model_cache.ModelRef`.

>>> Engine(workers=2).describe()
'LocalCluster of 2 worker processes x 1 thread'
>>> Engine().describe()
"dask's default scheduler"
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import ModelRef, install_model

__all__ = [
    "Engine",
    "ModelPlugin",
    "active_client",
    "check_worker_memory",
    "min_worker_memory",
    "open_engine",
    "ship_model",
    "tune_allocator",
]

#: Seconds a worker of a LocalCluster started here is given to close before it is killed.
SHUTDOWN_TIMEOUT = 60.0

#: glibc ``mallopt`` parameters (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) set on workers.
_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD = -3, -1

#: Resident memory of a worker process that has imported torch, distributed, xarray, zarr and
#: esmscale, before any task (measured here: 571 MiB RSS, rounded up).
WORKER_BASE_BYTES = 600 * 2**20

#: Checkpoint files larger than this are not sent through the scheduler (workers read the path).
MAX_SHIPPED_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Engine:
    """Which scheduler runs the tasks of a write.

    Parameters
    ----------
    workers
        Start a ``LocalCluster`` of this many worker processes (0: no cluster).
    scheduler
        Address of a running dask scheduler, e.g. ``"tcp://10.0.0.5:8786"`` (exclusive with
        ``workers``).
    threads_per_worker
        Dask threads per worker process of a ``LocalCluster`` (torch runs one intra-op thread
        per task: :attr:`esmscale.downscaling.spec.BlockSpec.threads`).
    memory_limit
        Memory limit per ``LocalCluster`` worker (``"4GiB"``, bytes, or ``"auto"``).
    timeout
        Seconds to wait for a scheduler to answer before giving up with an error.

    Examples
    --------
    >>> Engine(scheduler="tcp://127.0.0.1:8786").describe()
    'the scheduler at tcp://127.0.0.1:8786'
    """

    workers: int = 0
    scheduler: str | None = None
    threads_per_worker: int = 1
    memory_limit: str | int | None = "auto"
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise EsmscaleError(
                f"workers={self.workers} must be >= 0 (0: no cluster).",
                cli="give --workers 0 or more.",
            )
        if self.workers and self.scheduler:
            raise EsmscaleError(
                f"workers={self.workers} and scheduler={self.scheduler!r} were both given; "
                "a LocalCluster and a running scheduler exclude each other:",
                python="pass one of them.",
                cli="give --workers or --scheduler, not both.",
            )
        if self.threads_per_worker < 1:
            raise EsmscaleError(f"threads_per_worker={self.threads_per_worker} must be >= 1.")
        if self.timeout <= 0:
            raise EsmscaleError(f"timeout={self.timeout} must be > 0 seconds.")

    def describe(self) -> str:
        """One line saying where the tasks run."""
        if self.scheduler:
            return f"the scheduler at {self.scheduler}"
        if self.workers:
            t = self.threads_per_worker
            return f"LocalCluster of {self.workers} worker processes x {t} thread{'s' * (t > 1)}"
        return "dask's default scheduler"


def _connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at ``address``, or an error naming it within ``timeout``."""
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise EsmscaleError(
            f"no dask scheduler answered at {address!r} within {timeout:g} s "
            f"({type(err).__name__}: {err}); start one (`dask scheduler`, or a dask-jobqueue "
            "cluster's cluster.scheduler_address) and pass its address,",
            python="or leave scheduler unset to run here.",
            cli="or leave --scheduler out to run here.",
        ) from None
    except ValueError as err:  # an unparsable address
        raise EsmscaleError(
            f"scheduler address {address!r} is not valid ({err}); give e.g. tcp://HOST:8786."
        ) from None


@contextlib.contextmanager
def open_engine(engine: Engine) -> Iterator[Client | None]:
    """Start (or connect to) the engine's scheduler; on exit close what was opened here.

    Yields the ``Client`` (set as dask's default scheduler while the block runs), or ``None``
    for dask's default scheduler. A ``LocalCluster`` started here is shut down in order:
    the client first, then the workers (given time to finish), then the scheduler, so that a
    clean run prints no traceback.

    Examples
    --------
    >>> with open_engine(Engine()) as client:
    ...     client is None
    True
    """
    if engine.scheduler:
        client = _connect(engine.scheduler, engine.timeout)
        try:
            yield client
        finally:
            client.close()
        return
    if not engine.workers:
        yield None
        return
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=engine.workers,
        threads_per_worker=engine.threads_per_worker,
        processes=True,
        memory_limit=engine.memory_limit,
        dashboard_address=None,
    )
    client = Client(cluster, set_as_default=True)
    try:
        yield client
    finally:
        client.close()
        # Nannies close their worker with 4 s to spare by default, then kill it and print
        # "Worker process still alive"; on a busy machine a clean close takes longer.
        cluster.sync(_close_workers, cluster, SHUTDOWN_TIMEOUT)
        cluster.close(timeout=SHUTDOWN_TIMEOUT)


async def _close_workers(cluster: Any, timeout: float) -> None:
    await asyncio.gather(
        *(w.close(timeout=timeout) for w in list(cluster.workers.values())),
        return_exceptions=True,
    )


_SHIPPED: weakref.WeakKeyDictionary[Any, set[ModelRef]] = weakref.WeakKeyDictionary()


def active_client() -> Client | None:
    """The distributed ``Client`` that dask computes on now, or ``None`` (another scheduler)."""
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    return client if isinstance(client, Client) else None


class ModelPlugin(WorkerPlugin):
    """A ``distributed`` worker plugin that carries one checkpoint to every worker.

    On each worker (including workers that join or restart later) the files are written
    under the worker's local directory and loaded once into the process's model cache
    (:func:`esmscale.io.model_cache.install_model`), with the sha256 checked. Tasks then find
    the model by its :class:`~esmscale.io.model_cache.ModelRef` without reading the original
    path, which need not exist on the workers.
    """

    idempotent = True

    def __init__(self, ref: ModelRef, files: dict[str, bytes]) -> None:
        self.ref = ref
        self.files = files
        self.name = f"esmscale-model-{ref.sha256[:16]}"

    @classmethod
    def from_ref(cls, ref: ModelRef) -> ModelPlugin:
        """The plugin with the files of ``ref``'s checkpoint folder."""
        folder = Path(ref.path)
        files = {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}
        return cls(ref, files)

    def setup(self, worker: Any) -> None:
        """Tune the allocator and install the model in this worker process (once)."""
        tune_allocator()
        if not self.files:  # too big to send: the worker reads the path itself
            return
        install_model(self.ref, self.files, Path(worker.local_directory) / "esmscale-models")

    def teardown(self, worker: Any) -> None:
        """Nothing to release: the model stays cached for the life of the process."""


def tune_allocator() -> bool:
    """Let glibc keep freed memory for reuse in this process (Linux; a no-op elsewhere).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches off
    glibc's adaptive mmap threshold: every tensor buffer above 128 KiB is then mapped and
    unmapped at each allocation. Measured here on the tile kernel (2 members x 30 fields of
    64x64, one thread): 23-26 s with that setting against 9-13 s without, the difference being
    system time (6-7 s against 0.3-1.5 s). This sets the mmap threshold to 64 MiB and the trim
    threshold to 128 MiB, which restores the speed; memory is still returned above that.
    Returns whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20) == 1
    return bool(ok and libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20) == 1)


def ship_model(ref: ModelRef, client: Client | None = None) -> bool:
    """Send the checkpoint of ``ref`` once to every worker of ``client`` (default: the active one).

    Returns whether the files were sent (False without a distributed client, when they were
    already sent through this client, or when the checkpoint is too big to send: then the
    workers load ``ref.path`` themselves, once per process). The plugin also tunes each
    worker's allocator (:func:`tune_allocator`).
    """
    client = client if client is not None else active_client()
    if client is None:
        return False
    sent = _SHIPPED.setdefault(client, set())
    if ref in sent:
        return False
    folder = Path(ref.path)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
    plugin = ModelPlugin.from_ref(ref) if 0 < size <= MAX_SHIPPED_BYTES else ModelPlugin(ref, {})
    client.register_plugin(plugin)
    sent.add(ref)
    return bool(plugin.files)


def min_worker_memory(input_block_bytes: int, output_block_bytes: int, model_bytes: int = 0) -> int:
    """The least memory a worker needs to run one tile task, in bytes (a lower bound).

    A worker process holds its libraries (:data:`WORKER_BASE_BYTES`), the model (twice: the
    shipped bytes and the loaded weights) and, per task, the input block and the output block
    with room for the tile windows and a copy of each (4x their sum).

    >>> min_worker_memory(2**20, 2**20) // 2**20
    608
    """
    return WORKER_BASE_BYTES + 2 * model_bytes + 4 * (input_block_bytes + output_block_bytes)


def check_worker_memory(client: Client, need: int, *, what: str = "one tile task") -> None:
    """Raise if a worker of ``client`` has a memory limit below ``need`` bytes.

    A worker without a limit (0 or ``None``) passes. The error names the worker, its limit and
    the minimum, and says how to give more.
    """
    from dask.utils import format_bytes

    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    small = {
        addr: int(info["memory_limit"])
        for addr, info in workers.items()
        if info.get("memory_limit") and int(info["memory_limit"]) < need
    }
    if small:
        addr, limit = min(small.items(), key=lambda kv: kv[1])
        raise EsmscaleError(
            f"worker {addr} has a memory limit of {format_bytes(limit)}, below the minimum of "
            f"{format_bytes(need)} for {what} ({len(small)} of {len(workers)} workers are "
            "below it): it would be paused or killed at the first task. Give each worker at "
            f"least {format_bytes(need)}, or use smaller chunks (time and lat/lon):",
            python=f"LocalCluster(memory_limit='{_mib(need)}MiB') or a jobqueue memory= setting.",
            cli=f"--memory-limit {_mib(need)}MiB (or a larger limit on your cluster).",
        )


def _mib(n: int) -> int:
    return -(-n // 2**20)
