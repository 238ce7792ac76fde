"""`damdp-lite sweep --executor slurm` on a real one-node SLURM cluster (tests/slurm_cluster.py):
a 2 x 2 grid of tiny runs submitted as one job array through submitit; one job gets the
signal of a time limit (it requeues itself and resumes), another is cancelled mid-run with
scancel and the same sweep command resubmits it; every run ends with the progress.csv of an
uninterrupted run (all but the wall-clock columns).

Needs root and the Debian packages (.ci/install_slurm.sh); otherwise it is skipped with the
harness's one-line reason.
"""

import subprocess
import time

import pytest
from test_slurm_cluster import cluster  # noqa: F401  (the fixture: a running cluster)
from test_sweep import TINY, TURNING
from test_train import rows, same_but_wall_clock

from damdp_lite import cli
from damdp_lite import sweep as sw
from damdp_lite.train import RunConfig, train

pytest.importorskip("submitit")

STEPS = 16 * 400
"""400 iterations of 16 env steps: some seconds per job, long enough to cancel one mid-run."""


def _wait(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_cancelled_job_resumes_on_the_next_sweep_to_the_uninterrupted_progress(
        cluster, tmp_path, capsys):  # noqa: F811
    root = tmp_path / "sw"
    command = ["sweep", str(root), "--executor", "slurm", "--slurm-partition",
               cluster.partition, "--slurm-time", "10"]
    grid = ["--algos", "ppo", "--policies", "gaussian", "diffusion", "--envs", TURNING,
            "--seeds", "0", "1", "--steps", str(STEPS), "--set", *TINY,
            "--eval-every", "100", "--eval-episodes", "2", "--checkpoint-every", "1"]
    assert cli.main([*command, *grid]) == 0
    out = capsys.readouterr().out
    assert "4 jobs: 0 done, 0 running, 4 to run (slurm)" in out and "SLURM job array" in out
    sweep = sw.Sweep(root)
    jobs = sweep.jobs()
    assert len(jobs) == 4
    assert all(sweep.read_state(j.name)["state"] == "queued" for j in jobs)

    # the diffusion job of seed 0 is cancelled well into its run; that of seed 1 gets the
    # signal SLURM sends before a time limit (submitit's USR2): it checkpoints, requeues itself
    # and resumes
    victim, timed_out = jobs[1], jobs[3]
    assert victim.policy == timed_out.policy == "diffusion"
    progress = sweep.run_dir(victim.name) / "progress.csv"
    _wait(lambda: progress.exists() and len(rows(progress)) >= 40, 120, "the job to start")
    slurm_id = sweep.read_state(victim.name)["slurm_job_id"]
    cluster.scancel(slurm_id)
    assert cluster.wait_gone(slurm_id, timeout=60) == "CANCELLED"
    stopped_at = len(rows(progress))
    assert 40 <= stopped_at < 400
    assert sweep.status(victim.name)["state"] == "stopped"

    other = sweep.run_dir(timed_out.name) / "progress.csv"
    _wait(lambda: other.exists() and len(rows(other)) >= 40, 120, "the last job to start")
    other_id = sweep.read_state(timed_out.name)["slurm_job_id"]
    subprocess.run(["scancel", "--signal", "USR2", other_id], capture_output=True)
    _wait(lambda: cluster.state(other_id) == "PENDING", 60, "the job to requeue itself")
    # SLURM holds a requeued job for 2 minutes (its BeginTime); start it sooner, but not at once:
    # slurmd kills a job launched within the second its old credential was revoked ("Killing
    # non-startable batch job: Job credential revoked", seen in CI: the task then left the queue
    # and the next sweep rightly submitted the job again, under another id)
    time.sleep(2)
    cluster.run("scontrol", "update", f"JobId={other_id}", "StartTime=now")

    # the same command (the grid may be left out) resubmits the stopped job only
    assert cli.main([*command, "--wait"]) == 0
    out = capsys.readouterr().out
    def finished() -> bool:
        # `StartTime=now` can land before the requeue sets the 2-minute hold (seen on a loaded
        # machine): while the requeued task still waits, release it again
        if cluster.state(other_id) == "PENDING":
            try:
                cluster.run("scontrol", "update", f"JobId={other_id}", "StartTime=now")
            except RuntimeError:  # it started (or ended) between the two calls
                pass
        return all(r["state"] == "done" for r in sw.sweep_status(root))

    _wait(finished, 300, "every job to finish", poll=1.0)
    assert cli.main(["sweep", "status", str(root)]) == 0
    assert "4 done" in capsys.readouterr().out
    state = sweep.read_state(victim.name)
    assert state["attempts"] == 2 and state["slurm_job_id"] != slurm_id
    for job in (victim, timed_out):
        log = sweep.log_path(job.name).read_text()
        assert "SLURM job" in log and "attempt 2" in log, job.name
        assert "done: resumed at iteration 0," not in log.split("attempt 2")[1], job.name
    # requeued under the same id, not submitted again (on failure: what each attempt saw)
    state = sweep.read_state(timed_out.name)
    said = "\n".join([f"state: {state}", sweep.log_path(timed_out.name).read_text()[-3000:],
                      *(p.read_text()[-1500:] for p in sorted(
                          (root / "slurm").glob("*/*_log.err")) if p.parent.name == other_id)])
    assert state["attempts"] == 2 and state["slurm_job_id"] == other_id, said

    # every run against the same job trained without interruption, in this process
    record = sweep.record()
    for job in jobs:
        assert sweep.read_state(job.name)["state"] == "done"
        ref = tmp_path / "ref" / job.name
        train(job.config(STEPS), RunConfig(run_dir=str(ref), label=job.label, **record["run"]),
              progress=False)
        got = rows(sweep.run_dir(job.name) / "progress.csv")
        assert len(got) == 400
        same_but_wall_clock(got, rows(ref / "progress.csv"))
