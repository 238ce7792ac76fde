"""A real one-node SLURM cluster (tests/slurm_cluster.py) runs, cancels and serves submitit jobs.

Needs root and `apt-get install slurm-wlm munge` (.ci/install_slurm.sh); otherwise every test
here is skipped with the one-line reason the harness gives. Each test starts and stops its own
cluster (about 1-2 s); clusters take turns across pytest-xdist workers through a lock file.
"""

import contextlib
import os
import time

import pytest
from slurm_cluster import ClusterUnavailable, single_node_cluster


@pytest.fixture
def cluster(tmp_path_factory, monkeypatch):
    """A running cluster whose `env` (SLURM_CONF, PATH) is exported for the test's duration."""
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(single_node_cluster(tmp_path_factory.mktemp("slurm")))
        except ClusterUnavailable as exc:
            pytest.skip(f"no SLURM cluster: {exc}")
        for key, value in running.env.items():
            monkeypatch.setenv(key, value)
        yield running


def test_node_is_idle_and_a_batch_job_writes_its_file(cluster, tmp_path):
    assert cluster.run("sinfo", "-h", "-o", "%P %t %c").stdout.split() == [
        f"{cluster.partition}*", "idle", str(cluster.cpus)]
    out = tmp_path / "hello.txt"
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/bash\necho "job $SLURM_JOB_ID on $(hostname -s)" > {out}\n')
    job = cluster.sbatch(f"--output={tmp_path / 'job.log'}", str(script))
    assert cluster.wait_gone(job, timeout=30) == "COMPLETED"
    assert out.read_text() == f"job {job} on {cluster.node}\n"


def test_scancel_removes_a_running_job(cluster, tmp_path):
    job = cluster.sbatch(f"--output={tmp_path / 'sleep.log'}", "--wrap", "sleep 60")
    deadline = time.monotonic() + 20
    while dict(cluster.squeue()).get(job) != "RUNNING":
        assert time.monotonic() < deadline, f"job {job} not running: {cluster.squeue()}"
        time.sleep(0.25)
    cluster.scancel(job)
    assert cluster.wait_gone(job, timeout=20) == "CANCELLED"
    assert job not in dict(cluster.squeue())


# Without slurmdbd `sacct` fails: submitit logs "Bypassing sacct error" and still reads the
# results from its folder (job.done() looks for the result file first).
def test_submitit_map_array_runs_on_the_cluster(cluster, tmp_path):
    submitit = pytest.importorskip("submitit")

    def square(x):  # pickled by value (cloudpickle): the job need not import this module
        return x * x, os.environ["SLURM_ARRAY_TASK_ID"]

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    assert executor.cluster == "slurm"
    executor.update_parameters(slurm_partition=cluster.partition, timeout_min=5, cpus_per_task=1)
    jobs = executor.map_array(square, [3, 4])
    deadline = time.monotonic() + 45
    while not all(job.done() for job in jobs):
        assert time.monotonic() < deadline, (
            f"submitit jobs not done: {cluster.squeue(all_states=True)}; "
            f"stderr: {[job.stderr() for job in jobs]}")
        time.sleep(0.5)
    assert [job.result() for job in jobs] == [(9, "0"), (16, "1")]
