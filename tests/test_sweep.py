"""`damdp-lite sweep` with the local executor on tiny toy runs: the grid's expansion, skipping
finished jobs, resuming stopped ones to the same progress.csv, and failures shown in one line
with their log. The SLURM executor is tested on a real cluster in test_sweep_slurm.py."""

import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from damdp_lite import cli
from damdp_lite import sweep as sw
from damdp_lite.train import RunConfig, train

TURNING = "damdp_lite/TurningDoubleWell-v0"
TINY = ("num_envs=2", "num_env_steps=8", "update_epochs=1", "num_minibatches=2", "num_steps=2",
        "hidden_sizes=[16]", "value_hidden_sizes=[16]")
"""A run of a few seconds: 2 envs x 8 steps per iteration, one epoch, 16-unit networks."""

from test_train import rows, same_but_wall_clock  # noqa: E402


def tiny_grid(**kw) -> sw.Grid:
    base = dict(algos=("ppo",), policies=("gaussian", "diffusion"), envs=(TURNING,), seeds=(0,),
                steps=64, sets=TINY)
    return sw.Grid(**{**base, **kw})


RUN = {"eval_every": 2, "eval_episodes": 2, "checkpoint_every": 1}


# ------------------------------------------------------------------------------- the grid


def test_expand_names_jobs_and_applies_overrides_to_the_jobs_that_have_them():
    grid = tiny_grid(algos=("ppo", "dppo"), seeds=(0, 1),
                     sets=(*(t for t in TINY if not t.startswith("num_steps")), "num_steps=2",
                           "num_steps=4", "lr=1e-3"))
    jobs = sw.expand(grid)
    names = [j.name for j in jobs]
    # seeds outermost; num_steps is an axis of the diffusion jobs only (the Gaussian has no K);
    # dppo implies its policy, so `policies` does not multiply it
    assert names[:5] == ["damdp_lite_TurningDoubleWell-v0_ppo_s0",
                         "damdp_lite_TurningDoubleWell-v0_diffppo+num_steps-2_s0",
                         "damdp_lite_TurningDoubleWell-v0_diffppo+num_steps-4_s0",
                         "damdp_lite_TurningDoubleWell-v0_dppo+num_steps-2_s0",
                         "damdp_lite_TurningDoubleWell-v0_dppo+num_steps-4_s0"]
    assert len(jobs) == 10 and names[5].endswith("_ppo_s1")
    gauss, diff4 = jobs[0], jobs[2]
    assert "num_steps" not in gauss.overrides and gauss.overrides["lr"] == 1e-3
    assert diff4.config(grid.steps).policy.num_steps == 4
    assert diff4.config(grid.steps).total_env_steps == 64
    assert jobs[3].config().temperature == 0.0  # dppo keeps its T = 0


def test_name_sets_names_every_override_also_one_that_does_not_vary(capsys):
    """`--name-sets`: a sweep of one changed field reports beside the preset's runs under its
    own label; without it the single-valued override leaves the label alone."""
    grid = dict(algos=("reppo",), policies=("diffusion",), steps=2048,
                sets=("auto_temperature=false",))
    plain, named = sw.expand(tiny_grid(**grid)), sw.expand(tiny_grid(**grid, name_sets=True))
    assert [j.label for j in plain] == ["diffreppo"]
    assert [j.name for j in named] == [
        "damdp_lite_TurningDoubleWell-v0_diffreppo+auto_temperature-false_s0"]
    assert named[0].config().auto_temperature is False
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    assert "--name-sets" in capsys.readouterr().out


@pytest.mark.parametrize("kw,match", [
    (dict(algos=("nope",)), "algos: .*nope"),
    (dict(sets=("nonsense_field=1",)), "sets: nonsense_field is a field of no job"),
    (dict(sets=("lr=1e-3", "lr=1e-3")), "'lr=1e-3' is given twice"),
    (dict(sets=(*TINY, "lr=-1")), r"job damdp_lite_TurningDoubleWell-v0_ppo_s0: lr=-1.0 is not "
                            r"allowed"),
    (dict(envs=("Nope-v0",)), "env_id='Nope-v0'"),
    (dict(sets=("seed=3",)), "sets: 'seed=3' is not allowed; seed is set by --seeds"),
    (dict(sets=("policy=diffusion",)), "policy is set by --policies"),
    (dict(sets=("env-id=Hopper-v5",)), "env_id is set by --envs"),
    (dict(sets=("total_env_steps=64",)), "total_env_steps is set by --steps"),
    (dict(sets=(*TINY, "device=cpu/x", "device=cpu-x")), "two jobs would share the name"),
])
def test_a_bad_grid_is_one_line_naming_the_field(kw, match):
    with pytest.raises(ValueError, match=match) as err:
        sw.expand(tiny_grid(**kw))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw,match", [
    (dict(seeds=()), "seeds=\\(\\) is empty"),
    (dict(seeds=(0, 0)), "seeds=\\[0, 0\\] repeats a value"),
    (dict(policies=("gauss",)), "policies\\[0\\]='gauss' is not allowed"),
    (dict(steps=-1), "steps=-1 is not allowed"),
    (dict(sets=("lr",)), "sets\\[0\\]='lr' is not allowed; expected field=value"),
])
def test_grid_fields_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_grid(**kw)


def test_parse_sets_reads_json_values_and_keeps_text():
    axes = sw.parse_sets(("lr=3e-4", "lr=1e-4", "hidden_sizes=[32, 32]", "step_size_schedule=x",
                          "auto-temperature=false"))
    assert axes == {"lr": [3e-4, 1e-4], "hidden_sizes": [(32, 32)], "step_size_schedule": ["x"],
                    "auto_temperature": [False]}


# ------------------------------------------------------------------------------- running


def _sweep(tmp_path, *extra: str) -> int:
    args = ["sweep", str(tmp_path / "sw"), "--algos", "ppo", "--envs", TURNING, "--seeds", "0",
            "--steps", "64", "--set", *TINY, "--eval-every", "2", "--eval-episodes", "2",
            "--checkpoint-every", "1", "--workers", "2", *extra]
    return cli.main(args)


def test_a_sweep_runs_every_job_then_skips_them_when_run_again(tmp_path, capsys):
    assert _sweep(tmp_path) == 0
    out = capsys.readouterr().out
    assert "2 jobs: 0 done, 0 running, 2 to run (local)" in out
    root = tmp_path / "sw"
    record = json.loads((root / "sweep.json").read_text())
    names = [j["name"] for j in record["jobs"]]
    assert record["run"]["eval_episodes"] == 2 and len(names) == 2
    for name in names:
        run = root / "runs" / name
        assert (run / "config.json").exists() and (run / "policy.pt").exists()
        assert len(rows(run / "progress.csv")) == 4
        state = json.loads((root / "jobs" / f"{name}.json").read_text())
        assert state["state"] == "done" and state["attempts"] == 1
        assert "done: resumed at iteration 0, 4 iterations" in (root / "logs" /
                                                                f"{name}.log").read_text()
    before = {n: (root / "logs" / f"{n}.log").read_text() for n in names}
    # the same command, and the directory alone, both skip everything
    assert _sweep(tmp_path) == 0
    assert cli.main(["sweep", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("2 jobs: 2 done, 0 running, 0 to run") == 2
    assert {n: (root / "logs" / f"{n}.log").read_text() for n in names} == before
    # status lists them
    assert cli.main(["sweep", "status", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 done" in out and "64/64" in out and names[0] in out
    # and `report` aggregates the sweep: its figures and report.json in DIR/report
    assert cli.main(["report", str(root), "--normalise", "none", "--reps", "200", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["runs_used"] == 2 and sorted(summary["methods"]) == ["diffppo", "ppo"]
    report = json.loads((root / "report" / "report.json").read_text())
    for name in names:  # each seed's score is its run's final evaluation return
        status = next(r for r in sw.sweep_status(root) if r["name"] == name)
        method = name.split("_")[-2]
        raw = report["methods"][method]["scores"][TURNING]["raw"]
        assert raw == [pytest.approx(status["eval_return"], abs=0.01)]
    for name in ("aggregates.png", "profiles.png", "improvement.png"):
        assert (root / "report" / name).stat().st_size > 0


def test_continuing_a_sweep_with_another_grid_or_run_setting_is_refused(tmp_path, capsys):
    assert _sweep(tmp_path) == 0
    capsys.readouterr()
    assert _sweep(tmp_path, "--seeds", "0", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another grid (seeds: recorded [0], now [0, 1])" in err
    assert cli.main(["sweep", str(tmp_path / "sw"), "--eval-episodes", "5"]) == 2
    err = capsys.readouterr().err
    assert "other run settings (eval_episodes: recorded 2, now 5)" in err
    assert cli.main(["sweep", str(tmp_path / "new")]) == 2
    assert "holds no sweep yet; give the grid" in capsys.readouterr().err


def test_add_appends_a_grid_whose_new_jobs_run_and_the_old_ones_are_kept(tmp_path, capsys):
    assert _sweep(tmp_path, "--policies", "diffusion") == 0
    root = tmp_path / "sw"
    first = (root / "runs" / "damdp_lite_TurningDoubleWell-v0_diffppo_s0" / "progress.csv"
             ).read_text()
    capsys.readouterr()
    assert _sweep(tmp_path, "--policies", "diffusion", "--seeds", "1") == 2  # not without --add
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another grid (seeds: recorded [0], now [1])" in err
    assert "add it with --add" in err
    assert cli.main(["sweep", str(root), "--add", "--seeds", "1", "--workers", "2"]) == 0
    assert "2 jobs: 1 done, 0 running, 1 to run" in capsys.readouterr().out
    record = json.loads((root / "sweep.json").read_text())
    assert record["format"] == 2 and [g["seeds"] for g in record["grids"]] == [[0], [1]]
    assert record["grids"][1]["policies"] == ["diffusion"]  # left out: the first grid's
    assert [j["name"][-6:] for j in record["jobs"]] == ["ppo_s0", "ppo_s1"]
    assert (root / "runs" / "damdp_lite_TurningDoubleWell-v0_diffppo_s0" / "progress.csv"
            ).read_text() == first
    # each grid continues the sweep; the whole sweep is done
    for extra in ((), ("--seeds", "1"), ("--seeds", "0")):
        assert cli.main(["sweep", str(root), *extra]) == 0
        assert "2 jobs: 2 done" in capsys.readouterr().out
    for extra, why in [(("--seeds", "1"), "already holds that grid"),
                       (("--seeds", "0", "1"), "adds no job to sweep dir="),
                       (("--seeds", "2", "--steps", "128"),
                        "steps: the grids train to [64, 128] env steps; a sweep trains every")]:
        assert cli.main(["sweep", str(root), "--add", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err, err
    assert json.loads((root / "sweep.json").read_text()) == record  # nothing written


def _finished_sweep(root, seeds=(0,), **run) -> sw.Sweep:
    sweep = sw.Sweep(root)
    jobs = sweep.create_or_check(tiny_grid(policies=("diffusion",), seeds=seeds),
                                 {**RUN, **run})["jobs"]
    assert set(sw.run_local(sweep, jobs, 2).values()) == {"done"}
    return sweep


def test_merge_joins_sweeps_run_apart_and_never_overwrites(tmp_path, capsys):
    a, b = _finished_sweep(tmp_path / "a"), _finished_sweep(tmp_path / "b", seeds=(1, 2))
    dest = tmp_path / "all"
    assert cli.main(["sweep", "merge", str(dest), str(a.root), str(b.root)]) == 0
    assert "3 jobs, 3 runs copied, 0 already there" in capsys.readouterr().out
    merged = sw.Sweep(dest)
    assert [g.seeds for g in merged.record()["grids"]] == [(0,), (1, 2)]
    names = [j.name for j in merged.jobs()]
    assert [n[-2:] for n in names] == ["s0", "s1", "s2"]
    for src, name in [(a, names[0]), (b, names[1]), (b, names[2])]:  # whole run dirs, states
        for f in ("config.json", "progress.csv", "checkpoint.pt", "policy.pt"):
            assert (dest / "runs" / name / f).read_bytes() == (src.run_dir(name) / f).read_bytes()
        assert merged.read_state(name)["state"] == "done"
        assert merged.log_path(name).read_text() == src.log_path(name).read_text()
    assert cli.main(["sweep", str(dest)]) == 0
    assert "3 jobs: 3 done, 0 running, 0 to run" in capsys.readouterr().out
    # again: the same runs are already there
    assert sw.merge(dest, [a.root, b.root], echo=lambda *_: None)["same"] == 3
    # results only: config and progress of finished runs; status still knows they are done
    unfinished = _finished_sweep(tmp_path / "c", seeds=(3,))
    (job,) = unfinished.jobs()
    progress = unfinished.run_dir(job.name) / "progress.csv"
    progress.write_text("\n".join(progress.read_text().splitlines()[:-1]) + "\n")
    unfinished.write_state(job.name, state="stopped")
    shipped = tmp_path / "shipped"
    assert cli.main(["sweep", "merge", str(shipped), str(a.root), str(unfinished.root),
                     "--results-only"]) == 0
    out = capsys.readouterr().out
    assert f"left out {job.name}: unfinished" in out and "2 jobs, 1 runs copied" in out
    assert sorted(p.name for p in (shipped / "runs" / names[0]).iterdir()) == [
        "config.json", "progress.csv"]
    assert not (shipped / "runs" / job.name).exists() and not (shipped / "jobs").exists()
    assert [r["state"] for r in sw.sweep_status(shipped)] == ["done", "pending"]
    # a different run under a name DEST holds, another run setting, a running job: one line,
    # nothing written
    before = (dest / "sweep.json").read_text()
    other = _finished_sweep(tmp_path / "d", seeds=(0,), eval_episodes=3)
    assert cli.main(["sweep", "merge", str(dest), str(other.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run setting eval_episodes=3, but 2 in the sweep it" in err
    changed = _finished_sweep(tmp_path / "e", seeds=(0,), eval_every=4)
    record = json.loads((changed.root / "sweep.json").read_text())
    record["run"]["eval_every"] = RUN["eval_every"]  # same settings, other progress
    (changed.root / "sweep.json").write_text(json.dumps(record))
    assert cli.main(["sweep", "merge", str(dest), str(changed.root)]) == 2
    assert "already holds another run than" in capsys.readouterr().err
    with open(a.lock_path(names[0]), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        a.write_state(names[0], state="running")
        assert cli.main(["sweep", "merge", str(tmp_path / "new"), str(a.root)]) == 2
    assert "is running or queued in" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert (dest / "sweep.json").read_text() == before


def test_a_format_1_sweep_record_is_still_read(tmp_path):
    sweep = _finished_sweep(tmp_path / "old")
    record = json.loads((sweep.root / "sweep.json").read_text())
    (sweep.root / "sweep.json").write_text(json.dumps(
        {"format": 1, "grid": record["grids"][0], "run": record["run"], "jobs": record["jobs"]}))
    assert [j.name for j in sweep.jobs()] == [j["name"] for j in record["jobs"]]
    assert sw.sweep_status(sweep.root)[0]["state"] == "done"


def test_a_stopped_job_resumes_and_writes_the_same_progress_csv(tmp_path):
    grid = tiny_grid(policies=("diffusion",))
    root = tmp_path / "sw"
    sweep = sw.Sweep(root)
    (job,) = sweep.create_or_check(grid, RUN)["jobs"]
    # an attempt that stopped after 2 of 4 iterations (a killed process: its state still says
    # running, its pid is gone)
    run = RunConfig(run_dir=str(sweep.run_dir(job.name)), label=job.label, **{
        **RUN, "threads": 1, "tensorboard": False})
    calls = []
    train(job.config(grid.steps), run, progress=False,
          callback=lambda row: calls.append(row) or len(calls) == 2)
    # pid 1 is alive: a reused pid must not keep the job "running"; its lock decides
    sweep.write_state(job.name, state="running", attempts=1, host=socket.gethostname(), pid=1)
    assert sweep.status(job.name)["state"] == "stopped"
    assert len(rows(sweep.run_dir(job.name) / "progress.csv")) == 2
    start, running = sw.todo(sweep, [job])
    assert start == [job] and running == []
    assert sw.run_local(sweep, start, 1) == {job.name: "done"}
    assert sweep.read_state(job.name)["attempts"] == 2
    assert "resumed at iteration 2" in sweep.log_path(job.name).read_text()
    # the same job without interruption
    other = sw.Sweep(tmp_path / "ref")
    other.create_or_check(grid, RUN)
    assert sw.run_local(other, [job], 1) == {job.name: "done"}
    same_but_wall_clock(rows(sweep.run_dir(job.name) / "progress.csv"),
                        rows(other.run_dir(job.name) / "progress.csv"))


def test_a_failed_job_is_one_line_with_its_log_and_the_others_finish(tmp_path, capsys):
    root = tmp_path / "sw"
    sweep = sw.Sweep(root)
    jobs = sweep.create_or_check(tiny_grid(), RUN)["jobs"]
    # the first job's run directory holds a run of other settings: train refuses it
    bad = sweep.run_dir(jobs[0].name)
    bad.mkdir(parents=True)
    train(jobs[0].config(32), RunConfig(run_dir=str(bad), label=jobs[0].label), progress=False)
    assert cli.main(["sweep", str(root)]) == 1
    captured = capsys.readouterr()
    line = captured.err.strip()
    assert line.count("\n") == 0 and line.startswith("damdp-lite sweep: stopped: 1 of 2 jobs "
                                                     "failed")
    assert "ValueError: run_dir=" in line and f"(log: {sweep.log_path(jobs[0].name)})" in line
    assert f"failed  {jobs[0].name}: ValueError" in captured.out
    assert "Traceback" in sweep.log_path(jobs[0].name).read_text()
    assert sweep.read_state(jobs[1].name)["state"] == "done"
    assert cli.main(["sweep", "status", str(root)]) == 0
    out = capsys.readouterr().out
    assert "1 failed, 1 done" in out and f"failed {jobs[0].name}: ValueError" in out
    rows_ = sw.sweep_status(root)
    assert [r["state"] for r in rows_] == ["failed", "done"]


def test_a_killed_job_process_is_recorded_as_failed_and_resumed_by_the_next_sweep(tmp_path):
    grid = tiny_grid(policies=("gaussian",), steps=16 * 400,
                     sets=tuple(t for t in TINY if not t.startswith("num_steps")))
    sweep = sw.Sweep(tmp_path / "sw")
    (job,) = sweep.create_or_check(grid, {**RUN, "eval_every": 100})["jobs"]
    result = {}
    thread = threading.Thread(target=lambda: result.update(sw.run_local(sweep, [job], 1,
                                                                        echo=lambda *a: None)))
    thread.start()
    progress = sweep.run_dir(job.name) / "progress.csv"
    deadline = time.time() + 60
    while time.time() < deadline and not (progress.exists() and len(rows(progress)) >= 20):
        time.sleep(0.05)
    pid = sweep.read_state(job.name)["pid"]
    os.kill(pid, signal.SIGKILL)
    thread.join(60)
    assert result == {job.name: "failed"}
    state = sweep.read_state(job.name)
    assert state["error"] == "the job process killed by signal 9"
    done_before = len(rows(progress))
    assert 20 <= done_before < 400
    assert sw.run_local(sweep, sw.todo(sweep, [job])[0], 1) == {job.name: "done"}
    assert len(rows(progress)) == 400
    assert sweep.read_state(job.name)["attempts"] == 2


def test_a_job_held_by_another_process_is_left_alone(tmp_path):
    import fcntl

    sweep = sw.Sweep(tmp_path / "sw")
    job = sweep.create_or_check(tiny_grid(), RUN)["jobs"][0]
    (sweep.root / "jobs").mkdir()
    with open(sweep.root / "jobs" / f".{job.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert sw.run_job(sweep.root, job.name) == "running"
    assert not sweep.run_dir(job.name).exists()


def test_the_slurm_executor_passes_its_settings_to_submitit(tmp_path, monkeypatch):
    """What `submit_slurm` asks of submitit (the real cluster run is test_sweep_slurm.py)."""
    submitit = pytest.importorskip("submitit")
    seen = {}

    class FakeExecutor:
        def __init__(self, folder, cluster, **kw):
            seen.update(folder=folder, cluster=cluster, **kw)

        def update_parameters(self, **kw):
            seen["params"] = kw

        def map_array(self, fn, names):
            seen["fn"], seen["names"] = fn, list(names)
            return [type("J", (), {"job_id": f"7_{i}"})() for i in range(len(seen["names"]))]

    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    bin_dir = tmp_path / "bin"  # an sbatch on PATH (never run: the executor is a fake)
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sweep = sw.Sweep(tmp_path / "sw")
    jobs = sweep.create_or_check(tiny_grid(), RUN)["jobs"]
    slurm = sw.SlurmConfig(partition="gpu", time=90, gpus=1, mem_gb=8, account="proj",
                           setup=("module load cuda",), requeues=5, array_parallelism=3)
    assert sw.submit_slurm(sweep, jobs, slurm, threads=2) == ["7_0", "7_1"]
    assert seen["cluster"] == "slurm" and seen["slurm_max_num_timeout"] == 5
    assert seen["params"] == dict(timeout_min=90, cpus_per_task=2, slurm_array_parallelism=3,
                                  name="damdp-lite-sweep", slurm_partition="gpu",
                                  slurm_gpus_per_node=1, mem_gb=8.0, slurm_account="proj",
                                  slurm_setup=["module load cuda"])
    assert seen["names"] == [j.name for j in jobs]
    assert isinstance(seen["fn"], sw.SlurmJob) and seen["fn"].root == str(sweep.root.resolve())
    # a timeout or a preemption requeues the same call (submitit calls `checkpoint`)
    again = seen["fn"].checkpoint(jobs[0].name)
    assert isinstance(again, submitit.helpers.DelayedSubmission)
    assert again.args == (jobs[0].name,) and again.function.root == seen["fn"].root
    for i, job in enumerate(jobs):
        assert sweep.status(job.name, alive={"7_0", "7_1"})["state"] == "queued"
        assert sweep.status(job.name, alive=None)["state"] == "queued"  # squeue failed
        # a task that left the queue without starting the job: failed, with submitit's log
        gone = sweep.status(job.name, alive=set())
        assert gone["state"] == "failed" and gone["error"].startswith("the SLURM task ended")
        assert gone["log"] == str(sweep.root / "slurm" / f"7_{i}" / f"7_{i}_0_log.err")
    # one that started records running under its id: gone from the queue, it is stopped
    sweep.write_state(jobs[0].name, state="running")
    assert sweep.status(jobs[0].name, alive=set())["state"] == "stopped"
    assert sweep.status(jobs[0].name, alive={"7_0"})["state"] == "running"
    # stopped by a timeout / preemption signal, the task requeued itself under the same id: while
    # it waits in the queue it is queued (not resubmitted), once gone it is stopped
    sweep.write_state(jobs[0].name, state="stopped")
    assert sweep.status(jobs[0].name, alive={"7_0"})["state"] == "queued"
    assert sweep.status(jobs[0].name, alive=set())["state"] == "stopped"
    assert sweep.status(jobs[0].name, alive=None)["state"] == "stopped"  # squeue failed
    # the same when its last attempt recorded a failure: SLURM runs the requeued task again
    sweep.write_state(jobs[0].name, state="failed", error="RuntimeError: x")
    assert sweep.status(jobs[0].name, alive={"7_0"})["state"] == "queued"
    assert sweep.status(jobs[0].name, alive={"7_1"})["state"] == "failed"
    monkeypatch.setattr(sw, "slurm_queue", lambda: {"7_0"})
    assert sw.todo(sweep, jobs[:1]) == ([], [jobs[0].name])  # not submitted a second time
    monkeypatch.setattr(sw, "slurm_queue", lambda: set())
    assert sw.todo(sweep, jobs[:1]) == ([jobs[0]], [])  # gone from the queue: retried


def test_the_slurm_executor_without_sbatch_is_one_line_before_anything_is_written(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch (nor anything else) on PATH
    assert _sweep(tmp_path, "--executor", "slurm") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs sbatch on PATH" in err
    assert not (tmp_path / "sw").exists()


def test_close_values_name_distinct_jobs():
    jobs = sw.expand(tiny_grid(policies=("gaussian",), sets=(
        *(t for t in TINY if not t.startswith("num_steps")), "gamma=0.9999999",
        "gamma=0.99999999")))
    assert [j.label for j in jobs] == ["ppo+gamma-0.9999999", "ppo+gamma-0.99999999"]


def test_a_job_another_sweep_runs_is_left_alone_by_run_local(tmp_path):
    import fcntl

    sweep = sw.Sweep(tmp_path / "sw")
    job = sweep.create_or_check(tiny_grid(), RUN)["jobs"][0]
    sweep.lock_path(job.name).parent.mkdir(parents=True)
    with open(sweep.lock_path(job.name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the child of another sweep holds it
        assert sweep.held(job.name)
        assert sw.run_local(sweep, [job], 1, echo=lambda *a: None) == {job.name: "running"}
    assert sweep.read_state(job.name) == {}  # nothing recorded over the other's state
    assert not sweep.held(job.name)


def test_a_child_stopped_by_ctrl_c_before_its_job_began_is_stopped(tmp_path, monkeypatch):
    sweep = sw.Sweep(tmp_path / "sw")
    job = sweep.create_or_check(tiny_grid(), RUN)["jobs"][0]
    monkeypatch.setattr(sw.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, -signal.SIGINT))
    assert sw.run_local(sweep, [job], 1, echo=lambda *a: None) == {job.name: "stopped"}


def test_a_device_the_submitting_machine_lacks_is_checked_where_the_job_runs(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    grid = tiny_grid(sets=(*TINY, "device=cuda"))
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available here"):
        sw.Sweep(tmp_path / "here").create_or_check(grid, RUN)
    record = sw.Sweep(tmp_path / "slurm").create_or_check(grid, RUN, here=False)
    assert all(j.overrides["device"] == "cuda" for j in record["jobs"])


def test_a_hand_edited_or_misplaced_sweep_record_is_one_line(tmp_path, capsys):
    sweep = sw.Sweep(tmp_path / "sw")
    sweep.create_or_check(tiny_grid(), RUN)
    path = sweep.root / "sweep.json"
    record = json.loads(path.read_text())
    record["grids"][0]["seeds"] = [0, 1]  # its jobs no longer match
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="is not a valid sweep record .*its jobs are not those"):
        sweep.jobs()
    (tmp_path / "afile").write_text("")
    assert cli.main(["sweep", str(tmp_path / "afile"), "--algos", "ppo"]) == 2
    assert "sweep dir=" in capsys.readouterr().err
    assert cli.main(["sweep", "status", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("damdp-lite sweep status: error: sweep dir=") and "is a file" in err
    assert cli.main(["--debug", "sweep", "status", str(tmp_path / "nothing")]) == 2
    assert "holds no sweep.json" in capsys.readouterr().err
    assert _sweep(tmp_path, "--executor", "slurm", "--slurm-time", "0") == 2
    assert "slurm_time=0 is not allowed" in capsys.readouterr().err


def test_waiting_on_slurm_gives_up_in_one_line_when_squeue_keeps_failing(tmp_path,
                                                                          monkeypatch):
    sweep = sw.Sweep(tmp_path / "sw")
    job = sweep.create_or_check(tiny_grid(), RUN)["jobs"][0]
    sweep.write_state(job.name, state="queued", slurm_job_id="7_0")
    monkeypatch.setattr(sw, "slurm_queue", lambda: None)
    with pytest.raises(RuntimeError, match="squeue failed 3 times in a row; the jobs may still"):
        sw.wait_slurm(sweep, [job.name], poll=0, tries=3)
