"""Where the tasks run: dask's default scheduler, a ``LocalCluster``, a scheduler address or the
active ``Client``, all through one frozen :class:`Engine`.

``esmscale downscale --workers N`` and ``--scheduler ADDRESS`` open an engine with
:func:`open_engine`; in Python an active ``Client`` is used as it is. In every case
the graph is the same and so is the output, bit for bit. The model travels once to each worker
(:class:`ModelPlugin`, registered by :func:`ship_model`, which :func:`esmscale.downscale` calls
when a distributed client is the current scheduler) and is loaded once per worker process; the
graph itself carries only a small :class:`~esmscale.io.model_cache.ModelRef`.

GPU workers: ``downscale(..., resources={"GPU": 1})`` restricts the tile tasks to workers that
declare that resource (``Engine(workers=N, resources={"GPU": 1})``, ``dask worker --resources
GPU=1``, dask-cuda's ``LocalCUDACluster(resources={"GPU": 1})``); each such worker loads the model
once and runs it on its own device (``device="auto"`` or ``"cuda"`` is resolved on the worker).
:func:`compute_on` submits a result so that the restriction holds (dask's low-level fusion would
drop it otherwise); :func:`esmscale.io.zarr.write_zarr` uses it.

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
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
from distributed import Client, Future
from distributed.diagnostics.plugin import WorkerPlugin

from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import ModelRef, install_model

__all__ = [
    "Engine",
    "ModelPlugin",
    "WorkerSetup",
    "active_client",
    "check_resource_workers",
    "check_worker_memory",
    "compute_on",
    "min_worker_memory",
    "network_activation_bytes",
    "open_engine",
    "prepare_workers",
    "resource_table",
    "ship_model",
    "tune_allocator",
]

#: Dask settings of a ``LocalCluster`` started here (its scheduler and workers): the worker's
#: statistical profiler (a stack sample every 10 ms), the 20 ms event-loop tick and the 100 ms
#: memory and 500 ms system monitors took a quarter of the CPU of 2 workers on 2 cores
#: (2,000 fields: 40.6 fields/s with dask's defaults, 53.7 with these). Memory limits are
#: still enforced, checked every 0.5 s. A cluster of your own (``scheduler=``) keeps its
#: settings; ``docs/clusters.md`` suggests the same ones.
LOCAL_CLUSTER_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "200ms",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}

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
    resources
        Dask worker resources that each ``LocalCluster`` worker declares, e.g. ``{"GPU": 1}``
        (the tile tasks of ``downscale(..., resources=...)`` run only on such workers).
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
    resources: Mapping[str, float] | None = None
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
        from esmscale.downscaling.graph import check_resources

        object.__setattr__(self, "resources", check_resources(self.resources))

    def describe(self) -> str:
        """One line saying where the tasks run."""
        if self.scheduler:
            return f"the scheduler at {self.scheduler}"
        if self.workers:
            t = self.threads_per_worker
            res = "".join(f", {k}={v:g}" for k, v in (self.resources or {}).items())
            return (
                f"LocalCluster of {self.workers} worker processes x {t} thread{'s' * (t > 1)}"
                + (f" (each declaring {res[2:]})" if res else "")
            )
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
            prepare_workers(client)
            yield client
        finally:
            client.close()
        return
    if not engine.workers:
        yield None
        return
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):  # the scheduler here; workers inherit it
        cluster = LocalCluster(
            n_workers=engine.workers,
            threads_per_worker=engine.threads_per_worker,
            processes=True,
            memory_limit=engine.memory_limit,
            dashboard_address=None,
            **({"resources": dict(engine.resources)} if engine.resources else {}),
        )
    client = Client(cluster, set_as_default=True)
    try:
        prepare_workers(client)
        yield client
    finally:
        client.close()
        # Nannies close their worker with 4 s to spare by default, then kill it and print
        # "Worker process still alive"; on a busy machine a clean close takes longer.
        cluster.sync(_close_workers, cluster, SHUTDOWN_TIMEOUT)
        cluster.close(timeout=SHUTDOWN_TIMEOUT)


class WorkerSetup(WorkerPlugin):
    """Ready a worker process for tile tasks: import the tile kernel (torch, the network's
    libraries) and tune the allocator (:func:`tune_allocator`), when the worker starts.

    Without it the first tile task of each worker pays for these imports inside the job:
    measured on this 2-core machine, a 2,000-field job on 2 fresh workers ran at 60-70 fields/s
    against 95-100 with workers readied first (the imports cost several CPU seconds in each
    worker process, at the same time as the other worker's tiles).

    Examples
    --------
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     _ = client.register_plugin(WorkerSetup())
    ...     plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    >>> [WorkerSetup.name in names for names in plugins.values()]
    [True]
    """

    name = "esmscale-worker-setup"
    idempotent = True

    def setup(self, worker: Any) -> None:
        """Tune the allocator and import the kernel in this worker process."""
        tune_allocator()
        import esmscale.downscaling.kernel  # noqa: F401  (torch and the network's libraries)


def prepare_workers(client: Client) -> None:
    """Register :class:`WorkerSetup` on ``client``: current workers run it now, new ones at start.

    :func:`open_engine` calls it, so that a cluster's start-up includes readying its workers;
    call it yourself on a ``Client`` you made, before a job whose throughput matters. Workers
    whose memory limit is below :data:`WORKER_BASE_BYTES` are left as they are (the imports
    alone would exceed it; a job refuses them with the minimum it needs).

    Examples
    --------
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     prepare_workers(client)
    ...     "esmscale-worker-setup" in client.run(lambda dask_worker: list(dask_worker.plugins))[
    ...         next(iter(client.scheduler_info()["workers"]))]
    True
    """
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    limits = [int(info.get("memory_limit") or 0) for info in workers.values()]
    if any(0 < limit < WORKER_BASE_BYTES for limit in limits):
        # the imports alone would exceed such a worker's limit and get it killed; a job
        # refuses it with the minimum it needs instead (check_worker_memory)
        return
    client.register_plugin(WorkerSetup())


async def _close_workers(cluster: Any, timeout: float) -> None:
    await asyncio.gather(
        *(w.close(timeout=timeout) for w in list(cluster.workers.values())),
        return_exceptions=True,
    )


_SHIPPED: weakref.WeakKeyDictionary[Any, set[ModelRef]] = weakref.WeakKeyDictionary()


def active_client() -> Client | None:
    """The distributed ``Client`` that dask computes on now, or ``None`` (another scheduler).

    Examples
    --------
    >>> active_client() is None  # dask's default scheduler
    True
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     active_client() is client
    True
    """
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

    Examples
    --------
    >>> from esmscale.io.model_cache import model_ref
    >>> from esmscale.pretrained import load_model
    >>> plugin = ModelPlugin.from_ref(model_ref(load_model("synthetic-pr-4x")))
    >>> plugin.name, sorted(plugin.files)
    ('esmscale-model-c4cb5f9f...', ['config.json', 'model.safetensors'])
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

    Examples
    --------
    >>> tune_allocator() or not sys.platform.startswith("linux")  # applied on Linux (glibc)
    True
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

    Examples
    --------
    >>> from esmscale.io.model_cache import model_ref
    >>> from esmscale.pretrained import load_model
    >>> ref = model_ref(load_model("synthetic-pr-4x"))
    >>> ship_model(ref)  # no distributed client: nothing to send
    False
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     ship_model(ref, client), ship_model(ref, client)  # sent once per client
    (True, False)
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


#: Network activation bytes per window cell and per channel of the UNet's first level at the
#: peak of a one-step call (measured on CPU for the shipped 32-channel UNet: 1.5 KB per cell at
#: batch 8 of 256x256 windows, 1.9 KB at 128x128; rounded up to 64 B x channels).
ACTIVATION_BYTES_PER_CELL_CHANNEL = 64


def network_activation_bytes(batch: int, window: tuple[int, int], channels: int) -> int:
    """Peak activation memory of one network call on ``batch`` windows, in bytes (an estimate).

    ``channels`` is the width of the UNet's first level (``config.block_out_channels[0]``).

    Examples
    --------
    >>> network_activation_bytes(8, (256, 256), 32) // 2**20  # MiB; 805 MiB measured
    1024
    """
    return ACTIVATION_BYTES_PER_CELL_CHANNEL * channels * batch * window[0] * window[1]


def min_worker_memory(
    input_block_bytes: int,
    output_block_bytes: int,
    model_bytes: int = 0,
    activation_bytes: int = 0,
) -> int:
    """The least memory a worker needs to run one tile task, in bytes (a lower bound).

    A worker process holds its libraries (:data:`WORKER_BASE_BYTES`), the model (twice: the
    shipped bytes and the loaded weights), per task the input block and the output block with
    room for the tile windows and a copy of each (4x their sum), and the network's activations
    during a call (:func:`network_activation_bytes`).

    Examples
    --------
    >>> min_worker_memory(2**20, 2**20) // 2**20
    608
    >>> act = network_activation_bytes(8, (96, 96), 32)
    >>> min_worker_memory(2**20, 2**20, activation_bytes=act) // 2**20
    752
    """
    return (
        WORKER_BASE_BYTES
        + 2 * model_bytes
        + 4 * (input_block_bytes + output_block_bytes)
        + activation_bytes
    )


def check_worker_memory(client: Client, need: int, *, what: str = "one tile task") -> None:
    """Raise if a worker of ``client`` has a memory limit below ``need`` bytes.

    A worker without a limit (0 or ``None``) passes. The error names the worker, its limit and
    the minimum, and says how to give more.

    Examples
    --------
    >>> with Client(
    ...     processes=False, n_workers=1, memory_limit="1GiB", dashboard_address=None
    ... ) as client:
    ...     check_worker_memory(client, 2**29)  # 512 MiB: passes
    ...     check_worker_memory(client, 2**31)
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: worker inproc://... has a memory limit of 1.00 GiB, below ...
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


def resource_table(*collections: Any) -> dict[Any, dict[str, float]]:
    """``{task key: resources}`` of the tasks annotated with Dask worker resources.

    Read from the collections' high-level graphs before any optimisation (dask's low-level
    fusion renames tasks and drops layer annotations). Empty when nothing is annotated.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> with dask.annotate(resources={"GPU": 1}):
    ...     y = x + 1
    >>> table = resource_table(y)
    >>> len(table), all(r == {"GPU": 1} for r in table.values()), resource_table(x)
    (2, True, {})
    """
    table: dict[Any, dict[str, float]] = {}
    for coll in collections:
        graph = coll.__dask_graph__()
        for layer in getattr(graph, "layers", {}).values():
            res = (layer.annotations or {}).get("resources")
            if res:
                for key in layer:
                    table[key] = res(key) if callable(res) else dict(res)
    return table


def compute_on(client: Client, collections: list[Any]) -> list[Future]:
    """Submit ``collections`` to ``client`` with their tasks' worker resources kept.

    Without resource annotations this is ``client.compute(collections)``. With them (the tile
    tasks of ``downscale(..., resources=...)``), the graph is optimised here with low-level
    fusion off, so that the annotated tasks keep their keys, and each of them is submitted
    with its resources: they run only on workers that declare them. (A plain ``.compute()``
    under a client keeps them only if the scheduler's dask config has
    ``optimization.fuse.active: false``.)

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> out = ds.esm.downscale("synthetic-pr-4x", resources={"GPU": 1})  # doctest: +SKIP
    >>> result = client.gather(compute_on(client, [out]))[0]  # doctest: +SKIP
    """
    table = resource_table(*collections)
    if not table:
        return list(client.compute(list(collections)))
    with dask.config.set({"optimization.fuse.active": False}):
        optimized = dask.optimize(*collections)
    keep: defaultdict[Any, dict[str, float]] = defaultdict(dict, table)
    with dask.annotate(resources=keep.__getitem__):  # evaluated per key on the scheduler
        return list(client.compute(list(optimized), optimize_graph=False))


def _worker_device(device: str, precision: str) -> str | None:
    """On a worker: None if ``device`` and ``precision`` work there, else the error's text."""
    from esmscale.devices import autocast_dtype

    try:
        autocast_dtype(precision, device)
    except EsmscaleError as err:
        return str(err)
    return None


def check_resource_workers(
    client: Client,
    resources: Mapping[str, float] | None,
    device: str = "cpu",
    precision: str = "fp32",
) -> list[str]:
    """The workers of ``client`` that can run the tile tasks, checked; raise if there are none.

    A worker qualifies when it declares at least ``resources`` (all workers when None).
    ``device`` and ``precision`` are then resolved on each of them (``"auto"`` and ``"cuda"``
    mean the worker's own accelerator), so that an absent device is refused before any task
    runs rather than failing in every tile. Without a qualifying worker the tile tasks would
    wait forever: the error lists what each worker declares and how to declare the resource.
    A cluster with no workers yet (batch jobs still queued) is not checked.

    Examples
    --------
    >>> from distributed import LocalCluster
    >>> with (
    ...     LocalCluster(n_workers=1, processes=False, dashboard_address=":0",
    ...                  resources={"GPU": 1}) as cluster,
    ...     Client(cluster) as client,
    ... ):
    ...     fit = check_resource_workers(client, {"GPU": 1})
    ...     try:
    ...         check_resource_workers(client, {"GPU": 2})
    ...     except EsmscaleError:
    ...         refused = True
    >>> len(fit), refused
    (1, True)
    """
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers:  # none yet (e.g. batch jobs still queued): the tasks wait for them
        return []
    need = dict(resources or {})
    fit = [
        addr
        for addr, info in workers.items()
        if all((info.get("resources") or {}).get(k, 0) >= v for k, v in need.items())
    ]
    if not fit:
        declared = "; ".join(
            f"{addr}: {info.get('resources') or 'none'}" for addr, info in workers.items()
        )
        spec = ",".join(f"{k}={v:g}" for k, v in need.items())
        raise EsmscaleError(
            f"no worker declares the resources {need} that each tile task needs, so the tiles "
            f"would wait forever (workers and their resources: {declared or 'no workers'}). "
            f"Start workers that declare them (`dask worker ADDRESS --resources {spec}`, "
            f"LocalCluster(resources={need}), LocalCUDACluster(resources={need})), or wait "
            "for them to join (client.wait_for_workers),",
            python="or pass resources=None.",
            cli=f"or with --workers N add --worker-resources {spec} (or leave it out).",
        )
    if device != "cpu" or precision != "fp32":
        answers = client.run(_worker_device, device, precision, workers=fit)
        bad = {addr: msg for addr, msg in answers.items() if msg}
        if bad:
            addr, msg = next(iter(bad.items()))
            raise EsmscaleError(
                f"{len(bad)} of {len(fit)} workers that would run the tiles cannot use "
                f"device={device!r} with precision={precision!r}; worker {addr}: {msg}"
            )
    return fit
