"""dask-jobqueue set-ups (SLURM, PBS): argument handling and job scripts; nothing is submitted."""

from __future__ import annotations

import pytest

from esmscale import EsmscaleError
from esmscale.downscaling.jobqueue import jobqueue_cluster

pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is in the 'cluster' extra")


@pytest.mark.parametrize(
    ("system", "directives"),
    [
        ("slurm", ["#SBATCH -p compute", "#SBATCH -A clim01", "#SBATCH --cpus-per-task=4",
                   "#SBATCH -t 02:00:00"]),
        ("pbs", ["#PBS -q compute", "#PBS -A clim01", "#PBS -l select=1:ncpus=4",
                 "#PBS -l walltime=02:00:00"]),
    ],
)  # fmt: skip
def test_cluster_job_script_has_single_threaded_workers(system, directives):
    kw = {"cores": 4, "memory": "16GiB", "walltime": "02:00:00"}
    with jobqueue_cluster(system, queue="compute", account="clim01", **kw) as cluster:
        script = cluster.job_script()
        assert len(cluster.workers) == 0  # nothing submitted
    for line in directives:
        assert line in script, script
    assert "--nworkers 4" in script and "--nthreads 1" in script
    assert "--memory-limit 4.00GiB" in script
    assert "export OMP_NUM_THREADS=1" in script


def test_bad_arguments_are_refused_with_the_fix():
    with pytest.raises(EsmscaleError, match=r"system='lsf'.*\['pbs', 'slurm'\]"):
        jobqueue_cluster("lsf", cores=4, memory="16GiB")
    with pytest.raises(EsmscaleError, match="cores=0 must be"):
        jobqueue_cluster("slurm", cores=0, memory="16GiB")
    with pytest.raises(EsmscaleError, match="memory='lots' is not a memory size"):
        jobqueue_cluster("slurm", cores=4, memory="lots")
    with pytest.raises(EsmscaleError, match=r"leaves 256 MiB per worker.*at least 3GiB"):
        jobqueue_cluster("pbs", cores=4, memory="1GiB")
    with pytest.raises(EsmscaleError, match="walltime='2h' is not HH:MM:SS"):
        jobqueue_cluster("slurm", cores=4, memory="16GiB", walltime="2h")
