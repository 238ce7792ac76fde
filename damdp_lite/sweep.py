"""Sweeps: a grid of training runs (algorithms x policies x envs x seeds x field overrides), each
job the resumable `train.train` on its own run directory, on this machine or on a SLURM cluster.

    damdp-lite sweep runs/grid --algos ppo reppo --policies gaussian diffusion \\
        --envs HalfCheetah-v5 Hopper-v5 --seeds 0 1 2 --steps 1e6 --set lr=1e-4 --set lr=3e-4
    damdp-lite sweep runs/grid                      # the same sweep again: skips, resumes
    damdp-lite sweep status runs/grid               # done / running / stopped / failed jobs
    damdp-lite sweep runs/grid --add --seeds 3 4    # more jobs: a grid added to the sweep
    damdp-lite sweep merge runs/all runs/a runs/b   # sweeps run apart (batches, machines) as one
    damdp-lite sweep runs/grid --executor slurm --slurm-partition gpu --slurm-time 600
    damdp-lite report runs/grid                     # IQM and friends over seeds and tasks

A sweep directory holds

    sweep.json          the grids, the run settings and the job list (a grid added by
                        `--add` or `merge` appends its jobs)
    runs/NAME/          each job's run directory (config.json, progress.csv, checkpoints)
    jobs/NAME.json      each job's state: running / done / failed, attempts, host, pid or SLURM
                        job id, its one-line error
    logs/NAME.log       each job's output (appended over attempts)
    slurm/              submitit's scripts and logs (slurm executor)

Running the same sweep again skips finished jobs and resumes the others from their last
checkpoint (`train` drops progress rows after it and recomputes them, so a resumed run writes
the same progress.csv as an uninterrupted one, but for the wall-clock columns). A job that is
still running is left alone. Executors: `local` (default) runs jobs as child processes, at most
`workers` at a time; `slurm` submits one job array through submitit, requeued on preemption or
timeout (each attempt resumes from the checkpoint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import SEED, Config, Rule, between, one_of, param
from .policies import POLICIES

SWEEP_FORMAT = 2
"""sweep.json layout: {"format", "grids": [grid, ...], "run", "jobs": [{"name", "algo", "policy",
"env_id", "seed", "label", "overrides"}]}: the jobs of its grids in order, a job that two grids
share listed once (`expand_grids`). Format 1, still read, held one "grid"."""

ASK = object()
"""`Sweep.status`'s default: ask squeue when the job was submitted to SLURM."""

STATES = ("pending", "queued", "running", "stopped", "failed", "done")
"""Job states shown by `sweep status`: never started; submitted to SLURM, not started yet;
running now; stopped before the end (killed, cancelled, preempted, the machine went down: the
next sweep resumes it); failed with an error (the next sweep retries it); finished."""

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.+-]")


@dataclass
class Grid(Config):
    """What a sweep trains: the product of its axes, each job one run."""

    algos: tuple[str, ...] = param(("ppo",), Rule("a CLI algorithm name or alias",
                                                  lambda v: bool(v), max_len=64))
    """Algorithms (CLI names or aliases: ppo, reppo, wpo, sac, diffppo, dppo, ...); an alias
    that implies its policy ignores `policies`."""
    policies: tuple[str, ...] = param(("gaussian", "diffusion"), one_of(*POLICIES))
    """Policy kinds of the base names: gaussian (the MaxEnt base) and/or diffusion (DA-MDP)."""
    envs: tuple[str, ...] = param(("HalfCheetah-v5",), Rule("a Gymnasium id", lambda v: bool(v),
                                                           max_len=256))
    """Gymnasium ids, e.g. HalfCheetah-v5, Hopper-v5 or a damdp_lite/* toy."""
    seeds: tuple[int, ...] = param((0, 1, 2), Rule(SEED.allowed, SEED.ok, max_len=1000))
    """Seeds of every (algorithm, policy, env)."""
    steps: int = param(0, between(0, 10**10))
    """Env steps per run (0 = each algorithm's preset)."""
    sets: tuple[str, ...] = param((), Rule("field=value (JSON or text)",
                                           lambda v: "=" in v and bool(v.split("=")[0]),
                                           max_len=256))
    """Config field overrides `field=value` (value as JSON: 3e-4, true, [256, 256], or text);
    a field given several values is an axis of the grid."""
    name_sets: bool = False
    """Name every `sets` field in the run labels, also one given a single value
    (`diffreppo+auto_temperature-false`), so such a sweep's runs report beside the preset's;
    by default only the fields that vary are named."""

    def check(self) -> None:
        for name in ("algos", "policies", "envs", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name}=() is empty; give at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}={list(values)!r} repeats a value")


@dataclass
class SlurmConfig(Config):
    """Where and how the `slurm` executor submits the job array (through submitit)."""

    partition: str = ""
    """SLURM partition ("" = the cluster's default)."""
    time: int = param(24 * 60, between(1, 60 * 24 * 365))
    """Time limit of one attempt, in minutes; a job that reaches it is requeued and resumes."""
    cpus: int = param(0, between(0, 1024))
    """CPUs per job (0 = the run's `threads`)."""
    gpus: int = param(0, between(0, 64))
    """GPUs per job (then pass --set device=cuda)."""
    mem_gb: float = param(0.0, between(0, 4096))
    """Memory per job in GB (0 = the partition's default)."""
    array_parallelism: int = param(64, between(1, 100_000))
    """At most this many jobs of the array run at once."""
    requeues: int = param(3, between(0, 1000))
    """Times a job is requeued after a timeout or a preemption."""
    account: str = ""
    """SLURM account to charge ("" = your default)."""
    setup: tuple[str, ...] = param((), Rule("shell lines", lambda v: "\n" not in v, max_len=64))
    """Shell lines run before each job, e.g. "module load python" "source ~/venv/bin/activate"."""


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


RESERVED = {"policy": "--policies", "seed": "--seeds", "env_id": "--envs",
            "total_env_steps": "--steps", "run_dir": "the sweep directory",
            "label": "the job's name"}
"""Fields that say which job a run is: set by the grid's own axes, never by `--set`."""


def parse_sets(sets: tuple[str, ...]) -> dict[str, list]:
    """`("lr=1e-4", "lr=3e-4", "num_steps=4")` -> `{"lr": [1e-4, 3e-4], "num_steps": [4]}`
    (values as JSON when they parse, else text), in the order given."""
    axes: dict[str, list] = {}
    for item in sets:
        name, _, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if name in RESERVED:
            raise ValueError(f"sets: {item!r} is not allowed; {name} is set by "
                             f"{RESERVED[name]}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(value, list):
            value = tuple(value)
        if value in axes.setdefault(name, []):
            raise ValueError(f"sets: {item!r} is given twice")
        axes[name].append(value)
    return axes


def _show(value: object) -> str:
    """A value as a name part: 0.0003, 256-256, true."""
    if isinstance(value, tuple):
        return "-".join(_show(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return _NAME_CHARS.sub("-", repr(value) if isinstance(value, float) else str(value))


@dataclass(frozen=True)
class Job:
    """One run of a sweep: its name (the run directory's name) and what it trains."""

    name: str
    """`{env}_{label}_s{seed}`, e.g. HalfCheetah-v5_diffreppo+lr-0.0003_s0."""
    algo: str
    policy: str
    env_id: str
    seed: int
    label: str
    """The run's label: the algorithm's name for this policy plus the overrides that vary, or
    all of them under `Grid.name_sets` (`diffreppo+lr-0.0003`), so that results group by
    method."""
    overrides: dict = dataclasses.field(default_factory=dict, hash=False)

    def config(self, steps: int = 0):
        """The job's algorithm config (`train.algo_config`, the CLI's rule)."""
        from .train import algo_config

        fields = {"policy": self.policy, "env_id": self.env_id, "seed": self.seed,
                  **self.overrides}
        if steps:
            fields["total_env_steps"] = steps
        return algo_config(self.algo, **fields)


def expand(grid: Grid, here: bool = True) -> list[Job]:
    """The jobs of `grid`, seeds outermost (complete seeds first), each config built (and so
    validated) once. An override applies to the jobs whose algorithm or policy kind has that
    field (`num_steps` to the diffusion jobs only); one that applies to no job, or a value a
    job refuses, is a `ValueError` naming it. `here=False`: the jobs run elsewhere (SLURM), so
    a `device` this machine lacks is not refused here (the job checks it where it runs)."""
    from .algos import ALGOS, resolve
    from .policies import tunable_fields

    axes = parse_sets(grid.sets)
    combos = [dict(zip(axes, values, strict=True))
              for values in itertools.product(*axes.values())]
    jobs: list[Job] = []
    names: dict[str, Job] = {}
    used: set[str] = set()
    for seed, env_id, algo in itertools.product(grid.seeds, grid.envs, grid.algos):
        try:
            spec, implied = resolve(algo)
        except ValueError as err:
            raise ValueError(f"algos: {err}") from None
        kinds = [implied["policy"]] if "policy" in implied else list(grid.policies)
        for kind in kinds:
            fields = {f.name for f in dataclasses.fields(spec.config_cls)} \
                | set(tunable_fields(kind))
            for combo in combos:
                overrides = {k: v for k, v in combo.items() if k in fields}
                used |= set(overrides)
                base = spec.label(kind) if algo in ALGOS else algo
                label = base + "".join(f"+{k}-{_show(v)}" for k, v in overrides.items()
                                       if len(axes[k]) > 1 or grid.name_sets)
                job = Job(f"{_NAME_CHARS.sub('_', env_id)}_{label}_s{seed}", algo, kind,
                          env_id, seed, label, overrides)
                if job.name in names:  # the same job again (an axis of a field it lacks)
                    if names[job.name].overrides != job.overrides:
                        raise ValueError(f"sets: two jobs would share the name {job.name!r} "
                                         f"({names[job.name].overrides} and {job.overrides})")
                    continue
                names[job.name] = job
                jobs.append(job)
    unused = [k for k in axes if k not in used]
    if unused:
        raise ValueError(f"sets: {', '.join(unused)} is a field of no job in this grid "
                         f"(algos {list(grid.algos)}, policies {list(grid.policies)}); see "
                         f"`damdp-lite train --help`")
    for job in jobs:
        try:
            if here or "device" not in job.overrides:
                job.config(grid.steps)
            else:
                dataclasses.replace(job, overrides={**job.overrides, "device": "cpu"}
                                    ).config(grid.steps)
        except ValueError as err:
            raise ValueError(f"job {job.name}: {err}") from None
    return jobs


def expand_grids(grids: list[Grid], here: bool = True) -> list[Job]:
    """The jobs of several grids (a sweep run in batches), in order, a job two grids share
    listed once. One budget per sweep: grids with different `steps`, or two grids that give one
    name to different jobs, are a `ValueError` naming them."""
    budgets = sorted({g.steps for g in grids})
    if len(budgets) > 1:
        raise ValueError(f"steps: the grids train to {budgets} env steps; a sweep trains every "
                         f"job to one budget, so start another sweep for the other")
    jobs: dict[str, Job] = {}
    for grid in grids:
        for job in expand(grid, here):
            if jobs.setdefault(job.name, job) != job:
                raise ValueError(f"job {job.name}: two grids give this name to different jobs "
                                 f"({jobs[job.name].overrides} and {job.overrides})")
    return list(jobs.values())


# ---------------------------------------------------------------------------------------------
# The sweep directory
# ---------------------------------------------------------------------------------------------


RUN_FIELDS = ("eval_every", "eval_episodes", "checkpoint_every", "threads", "tensorboard")
"""The `train.RunConfig` fields a sweep sets for all its jobs (run_dir and label are per job)."""

RUN_DEFAULTS = {"eval_episodes": 10}
"""A sweep scores its seeds by evaluation returns: 10 episodes each by default."""


class Sweep:
    """A sweep directory: its grid, run settings, jobs, and each job's state and log."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._read: tuple = ()  # (sweep.json's stat, its record): read again when it changes

    # paths
    def run_dir(self, name: str) -> Path:
        return self.root / "runs" / name

    def state_path(self, name: str) -> Path:
        return self.root / "jobs" / f"{name}.json"

    def lock_path(self, name: str) -> Path:
        """Held (flock) by the process that trains the job, for as long as it runs."""
        return self.root / "jobs" / f".{name}.lock"

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    # the record
    def record(self) -> dict:
        """sweep.json read and checked: its grids, run settings and jobs agree (a hand-edited
        file that no longer does is one line). Returns {"grids", "run", "jobs"}."""
        from .train import RunConfig

        path = self.root / "sweep.json"
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"sweep dir={str(self.root)!r} is a file, not a directory")
        if not path.exists():
            raise ValueError(f"sweep dir={str(self.root)!r} holds no sweep.json; start one with "
                             f"`damdp-lite sweep DIR --algos ... --envs ...`")
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if self._read and self._read[0] == stamp:
            return self._read[1]
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or record.get("format") not in (1, SWEEP_FORMAT):
                raise ValueError("not a sweep record")
            grids = [Grid.from_dict(g) for g in (
                [record["grid"]] if record["format"] == 1 else record["grids"])]
            RunConfig(**record["run"])
            jobs = [Job(**j) for j in record["jobs"]]
            if [dataclasses.asdict(j) for j in jobs] != json.loads(json.dumps(
                    [dataclasses.asdict(j) for j in expand_grids(grids, here=False)])):
                raise ValueError("its jobs are not those of its grids")
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a valid sweep record (format 1 or {SWEEP_FORMAT}) "
                             f"({one_line(err)}); start a new sweep in another directory"
                             ) from None
        self._read = (stamp, {"grids": grids, "run": record["run"], "jobs": jobs})
        return self._read[1]

    def jobs(self) -> list[Job]:
        return self.record()["jobs"]

    def create_or_check(self, grid: Grid | dict | None, run: dict, here: bool = True,
                        add: bool = False) -> dict:
        """Write sweep.json for a new sweep; for an existing one check that the grid fields
        and run settings given (a `Grid` or a dict of the fields given; None = none) are what
        one of its grids holds, or with `add` append them as a grid of their own (the fields
        not given taken from its first grid). Returns the record. `here`: the jobs run on this
        machine (`expand`)."""
        from .train import RunConfig

        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"sweep dir={str(self.root)!r} is a file, not a directory")
        given = grid.to_dict() if isinstance(grid, Grid) else dict(grid or {})
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".sweep.lock", "w") as lock:  # one writer of sweep.json
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.root / "sweep.json"
            if path.exists():
                record = self.record()
                grids = record["grids"]
                diff = [k for k, v in (run or {}).items() if record["run"].get(k) != v]
                if diff:
                    shown = ", ".join(f"{k}: recorded {record['run'].get(k)}, now {run[k]}"
                                      for k in diff)
                    raise ValueError(f"sweep dir={str(self.root)!r} was started with other "
                                     f"run settings ({shown}); leave them out to continue it")
                if not any(Grid.from_dict({**g.to_dict(), **given}) == g for g in grids):
                    old = grids[0]
                    new = Grid.from_dict({**old.to_dict(), **given})
                    if not add:
                        diff = [k for k in given if getattr(new, k) != getattr(old, k)]
                        shown = ", ".join(f"{k}: recorded {_short(getattr(old, k))}, now "
                                          f"{_short(getattr(new, k))}" for k in diff[:3])
                        more = f" and {len(grids) - 1} grids added" if len(grids) > 1 else ""
                        raise ValueError(f"sweep dir={str(self.root)!r} holds another grid "
                                         f"({shown}{more}); add it with --add, use another "
                                         f"directory, or run `damdp-lite sweep {self.root}` "
                                         f"alone to continue it")
                    jobs = expand_grids([*grids, new], here)
                    if len(jobs) == len(record["jobs"]):
                        raise ValueError(f"--add: the grid given adds no job to sweep "
                                         f"dir={str(self.root)!r} (all {len(jobs)} are in it)")
                    record = {"grids": [*grids, new], "run": record["run"], "jobs": jobs}
                    self._write(record)
                elif add:
                    raise ValueError(f"--add: sweep dir={str(self.root)!r} already holds that "
                                     f"grid; run it without --add to continue it")
                if here:
                    expand_grids(record["grids"])  # e.g. a device this machine lacks: one line
                return record
            if not given:
                raise ValueError(f"sweep dir={str(self.root)!r} holds no sweep yet; give the "
                                 f"grid (--algos, --envs, --seeds, ...)")
            grid = Grid.from_dict({**Grid().to_dict(), **given})
            full = {**{k: getattr(RunConfig(), k) for k in RUN_FIELDS}, **RUN_DEFAULTS, **run}
            RunConfig(**full)  # validated before anything is written
            record = {"grids": [grid], "run": full, "jobs": expand(grid, here)}
            self._write(record)
        return record

    def _write(self, record: dict) -> None:
        """sweep.json from a record ({"grids", "run", "jobs"}), atomically."""
        _write_json(self.root / "sweep.json", {
            "format": SWEEP_FORMAT, "grids": [g.to_dict() for g in record["grids"]],
            "run": record["run"], "jobs": [dataclasses.asdict(j) for j in record["jobs"]]})

    # job states
    def read_state(self, name: str) -> dict:
        path = self.state_path(name)
        if not path.exists():
            return {}
        try:
            state = json.loads(path.read_text())
            if not isinstance(state, dict):
                raise ValueError
            return state
        except ValueError:  # written atomically, so a foreign edit: retried as failed
            return {"state": "failed", "error": f"{path} is not a job state (JSON object)"}

    def write_state(self, name: str, **fields) -> dict:
        state = {**self.read_state(name), **fields}
        _write_json(self.state_path(name), state)
        return state

    def held(self, name: str) -> bool:
        """Whether a process (on any machine sharing this file system's locks) trains the job
        now: its lock file is locked."""
        path = self.lock_path(name)
        if not path.exists():
            return False
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def status(self, name: str, alive: object = ASK) -> dict:
        """A job's state with `state` in `STATES`, its progress (env steps, total, last
        evaluation return) and, when it failed, its error and log. `alive`: the SLURM queue
        (`slurm_queue()`: ids, or None when it cannot be read); by default squeue is asked when
        the job was submitted to SLURM."""
        st = self.read_state(name)
        state, error, log = st.get("state", "pending"), st.get("error"), self.log_path(name)
        if not st and self.run_dir(name).exists():  # a run merged in without its state
            steps = self.finished_run(name)
            if steps:
                state, st = "done", {"total_env_steps": steps}
        if state in ("stopped", "failed") and st.get("slurm_job_id"):
            # a task stopped by a timeout or preemption signal requeues itself (same id) and
            # resumes when SLURM starts it again (its last attempt may have recorded stopped, or
            # failed when the signal landed in a way that raised): while SLURM still holds the
            # task it is queued, never submitted a second time
            queue = slurm_queue() if alive is ASK else alive
            if queue is not None and st["slurm_job_id"] in queue:
                state = "queued"
        if state in ("running", "queued"):
            if st.get("slurm_job_id"):
                queue = slurm_queue() if alive is ASK else alive
                if queue is not None and st["slurm_job_id"] not in queue:
                    if state == "queued":  # the task ended before `run_job` began
                        state, log = "failed", self.slurm_log(st["slurm_job_id"])
                        error = "the SLURM task ended before the job started"
                    else:
                        state = "stopped"
            elif not self.held(name):
                state = "stopped"
        out = {"name": name, "state": state, "attempts": st.get("attempts", 0),
               "env_steps": 0, "total_env_steps": st.get("total_env_steps"),
               "eval_return": None, "error": error if state == "failed" else None,
               "log": str(log)}
        progress = self.run_dir(name) / "progress.csv"
        if progress.exists():
            from .results import read_progress

            rows = read_progress(progress)
            if rows:
                out["env_steps"] = int(rows[-1]["env_steps"])
                evals = [r["eval_return"] for r in rows if math.isfinite(r["eval_return"])]
                out["eval_return"] = round(evals[-1], 2) if evals else None
        return out

    def finished_run(self, name: str) -> int:
        """Env steps of the finished run in job `name`'s run directory when it is that job's
        own run (its config the job's), else 0: what `merge --results-only` copies, and how
        `status` knows such a run, merged in without its job state, is done."""
        from .report import score_run
        from .train import config_diff, load_run

        score = score_run(self.run_dir(name))
        record = self.record()
        job = next((j for j in record["jobs"] if j.name == name), None)
        if not score.finished or job is None:
            return 0
        own = job.config(record["grids"][0].steps).to_dict()
        return 0 if config_diff(load_run(self.run_dir(name))[1].to_dict(), own) else \
            score.planned_env_steps

    def slurm_log(self, task_id: str) -> Path:
        """submitit's stderr file of a SLURM array task (`7_0` -> slurm/7_0/7_0_0_log.err)."""
        return self.root / "slurm" / task_id / f"{task_id}_0_log.err"


def _short(value: object, most: int = 6) -> object:
    """A recorded value for a message: lists longer than `most` shortened."""
    if isinstance(value, tuple | list):
        items = list(value)
        return items if len(items) <= most else f"[{', '.join(map(repr, items[:most]))}, ... " \
                                                 f"({len(items)} values)]"
    return value


def one_line(err: BaseException) -> str:
    """`Type: first line of the message` (`cli.one_line` with the error's type in front)."""
    from .cli import one_line as first_line  # lazy: the CLI imports this module

    text = first_line(err)
    return type(err).__name__ if text == type(err).__name__ else f"{type(err).__name__}: {text}"


def _write_json(path: Path, data: dict) -> None:
    """Write atomically (a temporary file renamed over the target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def slurm_queue() -> set[str] | None:
    """Ids of the jobs in the SLURM queue, array tasks as `ARRAYID_TASK` (None: squeue is
    missing or failed, so nothing can be said)."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return {line.strip() for line in out.splitlines() if line.strip()}


# ---------------------------------------------------------------------------------------------
# One job
# ---------------------------------------------------------------------------------------------

HELD = 3
"""Exit status of `python -m damdp_lite.sweep job` when another process trains the job."""


def run_job(root: str | Path, name: str) -> str:
    """Train job `name` of the sweep in `root` (resuming its run directory) with its output
    appended to logs/NAME.log; records running -> done / failed in jobs/NAME.json. Returns
    the final state ("done" or "failed"; "running" when another process holds the job); a
    Ctrl-C leaves it "stopped"."""
    sweep = Sweep(root)
    record = sweep.record()
    job = next((j for j in record["jobs"] if j.name == name), None)
    if job is None:
        raise ValueError(f"job={name!r} is not in the sweep {root}")
    lock_path = sweep.lock_path(name)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        # one process per job, whoever started it; released when this process ends. A status
        # probe (`Sweep.held`) holds it for microseconds, so try for a moment.
        for _ in range(40):
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                time.sleep(0.05)
        else:
            print(f"{name}: already running in another process; left alone", file=sys.stderr)
            return "running"
        return _run_locked(sweep, record, job)


def _run_locked(sweep: Sweep, record: dict, job: Job) -> str:
    from .train import RunConfig, train

    name = job.name
    prev = sweep.read_state(name)
    slurm_id = _slurm_job_id()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    sweep.write_state(name, state="running", attempts=prev.get("attempts", 0) + 1,
                      host=socket.gethostname(), pid=os.getpid(), slurm_job_id=slurm_id,
                      started=now, ended=None, error=None)
    log_path = sweep.log_path(name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        print(f"== {now} {name}: attempt {prev.get('attempts', 0) + 1} on "
              f"{socket.gethostname()} (pid {os.getpid()}"
              f"{', SLURM job ' + slurm_id if slurm_id else ''})")

        def show(row: dict) -> None:
            ev = row.get("eval_return")
            print(f"iteration {int(row['iteration'])} env_steps {int(row['env_steps'])} "
                  f"return {row['episode_return']:.4g}"
                  + (f" eval {ev:.4g}" if ev not in ("", None) else ""))

        try:
            config = job.config(record["grids"][0].steps)
            sweep.write_state(name, total_env_steps=config.num_iterations
                              * config.env_steps_per_iteration)
            run = RunConfig(run_dir=str(sweep.run_dir(name)), label=job.label, **record["run"])
            res = train(config, run, progress=False, callback=show)
        except Exception as err:  # the job failed: one line in its state, the trace in its log
            traceback.print_exc()
            sweep.write_state(name, state="failed", error=one_line(err),
                              ended=time.strftime("%Y-%m-%d %H:%M:%S"))
            return "failed"
        except KeyboardInterrupt as err:
            print(f"stopped: {err}")
            sweep.write_state(name, state="stopped", ended=time.strftime("%Y-%m-%d %H:%M:%S"))
            raise
        print(f"done: resumed at iteration {res.resumed_from}, {len(res.history)} iterations "
              f"this attempt")
    sweep.write_state(name, state="done", error=None, ended=time.strftime("%Y-%m-%d %H:%M:%S"))
    return "done"


def _slurm_job_id() -> str | None:
    """This process's SLURM job id as squeue -r shows it (`ARRAY_TASK` for array tasks)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


# ---------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------


def _queue_for(sweep: Sweep, jobs: list[Job]) -> set[str] | None:
    """The SLURM queue when a job was submitted to SLURM (one squeue call), else empty."""
    if any(sweep.read_state(j.name).get("slurm_job_id") for j in jobs):
        return slurm_queue()
    return set()


def todo(sweep: Sweep, jobs: list[Job]) -> tuple[list[Job], list[str]]:
    """Jobs to (re)start: all but the done ones and those running now; and the running ones."""
    alive = _queue_for(sweep, jobs)
    start, running = [], []
    for job in jobs:
        state = sweep.status(job.name, alive)["state"]
        if state in ("running", "queued"):
            running.append(job.name)
        elif state != "done":
            start.append(job)
    return start, running


def run_local(sweep: Sweep, jobs: list[Job], workers: int, echo=print) -> dict[str, str]:
    """Run `jobs` as child processes (`python -m damdp_lite.sweep job DIR NAME`), at most
    `workers` at once; returns each job's final state. A child that dies without recording
    its end (a kill, out of memory) is recorded as failed with its exit code; one stopped by
    Ctrl-C as stopped; one whose job another process trains leaves the state alone."""

    def one(job: Job) -> str:
        log = sweep.log_path(job.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        with open(log, "a") as out:
            proc = subprocess.run([sys.executable, "-m", "damdp_lite.sweep", "job",
                                   str(sweep.root), job.name], stdout=out, stderr=out,
                                  stdin=subprocess.DEVNULL)
        state = sweep.read_state(job.name)
        if proc.returncode == HELD:
            echo(f"running {job.name}: another process trains it; left alone")
            return "running"
        if proc.returncode != 0 and state.get("state") in (None, "running", "queued"):
            ended = time.strftime("%Y-%m-%d %H:%M:%S")
            if proc.returncode in (-signal.SIGINT, 130):  # Ctrl-C before the job began
                state = sweep.write_state(job.name, state="stopped", ended=ended)
            else:
                why = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                       else f"exited with code {proc.returncode}")
                state = sweep.write_state(job.name, state="failed", ended=ended,
                                          error=f"the job process {why}")
        final = state.get("state", "failed")
        if final == "failed":
            echo(f"failed  {job.name}: {state.get('error')} (log: {log})")
        else:
            echo(f"{final:7s} {job.name} ({time.time() - t0:.0f} s)")
        return final

    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip([j.name for j in jobs], pool.map(one, jobs), strict=True))


def _import_submitit():
    try:
        import submitit
    except ImportError as err:  # pragma: no cover - a dependency
        raise RuntimeError(f"the slurm executor needs submitit ({err})") from None
    return submitit


def check_slurm():
    """submitit, once `sbatch` is on PATH; else a one-line `RuntimeError`."""
    submitit = _import_submitit()
    if shutil.which("sbatch") is None:
        raise RuntimeError("the slurm executor needs sbatch on PATH (run it on a SLURM login "
                           "node), or use --executor local")
    return submitit


class SlurmJob:
    """The callable each array task runs: `run_job` on one job of the sweep. submitit calls
    `checkpoint` on a timeout or a preemption; it requeues the same call, which resumes the
    run from its checkpoint."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self, name: str) -> str:
        return run_job(self.root, name)

    def checkpoint(self, name: str):
        submitit = _import_submitit()
        return submitit.helpers.DelayedSubmission(SlurmJob(self.root), name)


def submit_slurm(sweep: Sweep, jobs: list[Job], slurm: SlurmConfig, threads: int) -> list[str]:
    """Submit `jobs` as one SLURM job array through submitit; returns the task ids
    (`ARRAY_TASK`), recorded in each job's state as queued."""
    submitit = check_slurm()
    executor = submitit.AutoExecutor(folder=str(sweep.root / "slurm" / "%j"), cluster="slurm",
                                     slurm_max_num_timeout=slurm.requeues)
    params = dict(timeout_min=slurm.time, cpus_per_task=slurm.cpus or threads,
                  slurm_array_parallelism=slurm.array_parallelism, name="damdp-lite-sweep")
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if slurm.gpus:
        params["slurm_gpus_per_node"] = slurm.gpus
    if slurm.mem_gb:
        params["mem_gb"] = slurm.mem_gb
    if slurm.account:
        params["slurm_account"] = slurm.account
    if slurm.setup:
        params["slurm_setup"] = list(slurm.setup)
    executor.update_parameters(**params)
    try:
        submitted = executor.map_array(SlurmJob(str(sweep.root.resolve())),
                                       [j.name for j in jobs])
    except Exception as err:  # sbatch refused: its message, on one line
        raise RuntimeError(f"sbatch failed: {' '.join(str(err).split())[:300]}") from None
    ids = []
    for job, sub in zip(jobs, submitted, strict=True):
        # a task that has already started recorded its own state under this id: keep it
        if sweep.read_state(job.name).get("slurm_job_id") != sub.job_id:
            sweep.write_state(job.name, state="queued", slurm_job_id=sub.job_id, pid=None,
                              host=None, error=None)
        ids.append(sub.job_id)
    return ids


def wait_slurm(sweep: Sweep, names: list[str], poll: float = 5.0, tries: int = 60) -> None:
    """Block until none of `names` is queued or running on SLURM; a `RuntimeError` when
    squeue fails `tries` times in a row."""
    failures = 0
    while True:
        alive = slurm_queue()
        if alive is None:
            failures += 1
            if failures >= tries:
                raise RuntimeError(f"squeue failed {tries} times in a row; the jobs may still "
                                   f"run: `damdp-lite sweep status {sweep.root}`")
        else:
            failures = 0
            if not any(sweep.status(n, alive)["state"] in ("queued", "running") for n in names):
                return
        time.sleep(poll)


def sweep_status(root: str | Path) -> list[dict]:
    """Every job's `Sweep.status`, in the sweep's order."""
    sweep = Sweep(root)
    jobs = sweep.jobs()
    alive = _queue_for(sweep, jobs)
    return [sweep.status(j.name, alive) for j in jobs]


RESULT_FILES = ("config.json", "progress.csv")
"""What `merge(results_only=True)` copies of a finished run: what a shipped result holds."""


def merge(dest: str | Path, sources: list[str | Path], results_only: bool = False,
          echo=print) -> dict:
    """Merge the sweeps in `sources` (run in batches, or on other machines) into `dest` (a
    sweep or a new directory): its sweep.json gains their grids and jobs, its runs/ their run
    directories, with each job's state and log (`results_only`: only `RESULT_FILES` of the
    finished runs, as results ship; an unfinished one is left out and named). Run settings
    and budgets must agree, a job running now is refused, and a run `dest` already holds
    must be the same files; anything else is a `ValueError` before a file is written, so
    nothing is lost. Returns {"dest", "jobs", "copied", "same", "left_out"}."""
    target = Sweep(dest)
    if target.root.exists() and not target.root.is_dir():
        raise ValueError(f"dest={str(target.root)!r} is a file, not a directory")
    records = [(src, src.record()) for src in map(Sweep, sources)]
    first = target.record() if (target.root / "sweep.json").exists() else records[0][1]
    grids, run = list(first["grids"]), first["run"]
    for src, rec in records:
        if src.root.resolve() == target.root.resolve():
            raise ValueError(f"source={str(src.root)!r} is the destination itself")
        diff = [k for k in RUN_FIELDS if rec["run"].get(k) != run.get(k)]
        if diff:
            k = diff[0]
            raise ValueError(f"source={str(src.root)!r}: run setting {k}={rec['run'].get(k)!r}, "
                             f"but {run.get(k)!r} in the sweep it joins; a sweep runs every job "
                             f"alike")
        grids += [g for g in rec["grids"] if g not in grids]
    jobs = expand_grids(grids, here=False)
    plan, same, left_out = [], [], []  # (source sweep, job name, files to copy)
    for src, rec in records:
        for job in rec["jobs"]:
            run_dir = src.run_dir(job.name)
            if not run_dir.is_dir():
                continue
            if src.status(job.name)["state"] in ("running", "queued"):
                raise ValueError(f"job {job.name} is running or queued in {src.root}; merge it "
                                 f"once it has ended or been stopped")
            if results_only and not src.finished_run(job.name):
                left_out.append(job.name)
                continue
            files = sorted(f.relative_to(run_dir) for f in run_dir.rglob("*") if f.is_file()
                           and (not results_only or f.name in RESULT_FILES))
            there = target.run_dir(job.name)
            if there.exists():  # the same run when its config and progress are the same
                if all((there / f).is_file() and (there / f).read_bytes()
                       == (run_dir / f).read_bytes() for f in RESULT_FILES):
                    same.append(job.name)
                    continue
                raise ValueError(f"job {job.name}: {there} already holds another run than "
                                 f"{run_dir}; nothing was merged")
            if any(job.name == name for _, name, _ in plan):
                raise ValueError(f"job {job.name} has a run in two sources; nothing was merged")
            plan.append((src, job.name, files))
    (target.root / "runs").mkdir(parents=True, exist_ok=True)
    with open(target.root / ".sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for src, name, files in plan:
            tmp = target.run_dir(name).with_name(f".{name}.merging")
            shutil.rmtree(tmp, ignore_errors=True)
            for f in files:
                (tmp / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src.run_dir(name) / f, tmp / f)
            os.replace(tmp, target.run_dir(name))  # a run appears whole or not at all
            if not results_only:
                for path in (src.state_path(name), src.log_path(name)):
                    if path.exists():
                        to = target.root / path.relative_to(src.root)
                        to.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, to)
        target._write({"grids": grids, "run": run, "jobs": jobs})
    for name in left_out:
        echo(f"left out {name}: unfinished (--results-only copies finished runs)")
    return {"dest": str(target.root), "jobs": len(jobs), "copied": len(plan), "same": len(same),
            "left_out": left_out}


def count_states(rows: list[dict]) -> dict[str, int]:
    return {s: n for s in STATES if (n := sum(r["state"] == s for r in rows))}


def main(argv: list[str] | None = None) -> int:
    """`python -m damdp_lite.sweep job DIR NAME`: the local executor's child process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "job":
        print("usage: python -m damdp_lite.sweep job SWEEP_DIR JOB_NAME", file=sys.stderr)
        return 2
    return {"done": 0, "running": HELD}.get(run_job(args[1], args[2]), 1)


if __name__ == "__main__":
    sys.exit(main())
