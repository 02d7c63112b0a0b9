"""Dask clusters on HPC batch systems (SLURM, PBS) through dask-jobqueue, set up for esmscale.

:func:`jobqueue_cluster` builds a ``SLURMCluster`` or ``PBSCluster`` whose jobs each run
``cores`` single-threaded worker processes (one torch thread each, ``OMP_NUM_THREADS=1``),
with the job's memory shared among them. Nothing is submitted until you call
``cluster.scale(jobs=N)``; ``cluster.job_script()`` shows what would be. Pass
``cluster.scheduler_address`` to ``esmscale downscale --scheduler`` or use
``Client(cluster)`` in a notebook (see ``docs/clusters.md``).
"""

from __future__ import annotations

import re
from typing import Any

from esmscale.errors import EsmscaleError, MissingExtraError

__all__ = ["SYSTEMS", "jobqueue_cluster"]

#: Batch systems supported, and the dask-jobqueue class of each.
SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}


def jobqueue_cluster(
    system: str,
    *,
    cores: int,
    memory: str,
    walltime: str = "01:00:00",
    queue: str | None = None,
    account: str | None = None,
    local_directory: str | None = None,
    **extra: Any,
) -> Any:
    """A dask-jobqueue cluster for esmscale: one thread per worker, ``cores`` workers per job.

    Parameters
    ----------
    system
        ``"slurm"`` or ``"pbs"``.
    cores
        Cores per job; each becomes one single-threaded worker process.
    memory
        Memory per job, e.g. ``"64GiB"``; each worker gets ``memory / cores``.
    walltime
        ``HH:MM:SS`` per job.
    queue, account
        Partition/queue and account (project) to charge.
    local_directory
        Scratch folder on the compute nodes for spilled data and the shipped model.
    **extra
        Passed on to the dask-jobqueue class (e.g. ``job_extra_directives``).

    Returns
    -------
    dask_jobqueue.SLURMCluster or dask_jobqueue.PBSCluster
        With no jobs submitted.

    Examples
    --------
    >>> cluster = jobqueue_cluster("slurm", cores=4, memory="16GiB")  # doctest: +SKIP
    >>> "--nthreads 1" in cluster.job_script()  # doctest: +SKIP
    True
    """
    from dask.utils import parse_bytes

    kind = SYSTEMS.get(str(system).lower())
    if kind is None:
        raise EsmscaleError(
            f"system={system!r} is not a supported batch system; choose one of "
            f"{sorted(SYSTEMS)} (or build any dask-jobqueue cluster yourself and pass its "
            "scheduler_address)."
        )
    if not isinstance(cores, int) or cores < 1:
        raise EsmscaleError(f"cores={cores!r} must be a whole number >= 1 (cores per job).")
    try:
        per_job = parse_bytes(memory)
    except (ValueError, TypeError):
        raise EsmscaleError(
            f"memory={memory!r} is not a memory size; give e.g. '64GiB' or '8GB' per job."
        ) from None
    from esmscale.downscaling.engine import WORKER_BASE_BYTES

    if per_job // cores < WORKER_BASE_BYTES:
        raise EsmscaleError(
            f"memory={memory!r} over cores={cores} leaves {per_job // cores // 2**20} MiB per "
            f"worker, below the {WORKER_BASE_BYTES // 2**20} MiB a worker needs before any "
            f"task; give at least {cores * WORKER_BASE_BYTES // 2**30 + 1}GiB or fewer cores."
        )
    if not re.fullmatch(r"\d+:[0-5]\d:[0-5]\d", str(walltime)):
        raise EsmscaleError(f"walltime={walltime!r} is not HH:MM:SS, e.g. '02:00:00'.")
    try:
        import dask_jobqueue
    except ImportError:
        raise MissingExtraError("SLURM/PBS clusters", "dask-jobqueue", "cluster") from None
    cls = getattr(dask_jobqueue, kind)
    prologue = ["export OMP_NUM_THREADS=1", "export MKL_NUM_THREADS=1"]
    kwargs: dict[str, Any] = {
        "cores": cores,
        "processes": cores,  # single-threaded workers: torch runs one thread per task
        "memory": memory,
        "walltime": walltime,
        "queue": queue,
        "account": account,
        "job_script_prologue": prologue + list(extra.pop("job_script_prologue", [])),
    }
    extra.setdefault("scheduler_options", {"dashboard_address": ":0"})
    if local_directory:
        kwargs["local_directory"] = local_directory
    return cls(**kwargs, **extra)
