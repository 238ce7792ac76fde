"""The DA-MDP grid's finished runs (damdp_lite/shipped/damdp_grid/<sweep>/runs/<job>, package
data) and the longer runs beside it (damdp_lite/shipped/long_runs/<sweep>/runs/<job>): each
ships its config.json and progress.csv, trained to its budget and scored by a final
evaluation over at least 10 episodes; it restarts from its config.json now (what `damdp-lite
reproduce` does first) and, on a machine with the recorded MuJoCo version, recomputes its first
iteration as recorded. Also: git never ignores those files (a broad `runs/` pattern once kept them
out of a commit); the shipped report scores every grid run; README's table is the report's; a
long run that continues a grid run holds that run's rows first."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from damdp_lite.algos import algo_of
from damdp_lite.envs.make import simulator_versions
from damdp_lite.results import read_progress
from damdp_lite.train import WALL_CLOCK_FIELDS, load_run, recorded_versions

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "damdp_lite" / "shipped" / "damdp_grid"
LONG = ROOT / "damdp_lite" / "shipped" / "long_runs"
RUNS = sorted(p.parent for root in (GRID, LONG) for p in root.glob("*/runs/*/config.json"))
IDS = [f"{p.parents[1].name}/{p.name}" for p in RUNS]


def test_git_keeps_the_run_files_of_the_grid() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = ["damdp_lite/shipped/damdp_grid/dmc/runs/x_s0/config.json",
             "damdp_lite/shipped/damdp_grid/dmc/runs/x_s0/progress.csv"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "", f"git would ignore: {out.stdout.split()}"
    ckpt = "damdp_lite/shipped/damdp_grid/dmc/runs/x_s0/checkpoint.pt"
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", ckpt], cwd=ROOT)
    assert ignored.returncode == 0, "checkpoints stay out of git"


def test_every_sweep_names_its_shipped_runs() -> None:
    """Each shipped run is a job of its sweep.json, with the grid's budget and evaluation."""
    assert RUNS, "no grid run is shipped"
    for run_dir in RUNS:
        sweep = json.loads((run_dir.parents[1] / "sweep.json").read_text())
        assert run_dir.name in {j["name"] for j in sweep["jobs"]}, run_dir
        assert sweep["run"]["eval_episodes"] >= 10


PRESET_CHANGES = {"auto_temperature"}
"""Preset fields changed after some shipped runs were made: DA-MDP REPPO's temperature, tuned
then, fixed now (`algos.reppo.DIFFUSION_REPPO_TEMPERATURE`)."""


@pytest.mark.parametrize("root", sorted(p.parent for r in (GRID, LONG) for p in r.glob(
    "*/sweep.json")), ids=lambda p: p.name)
def test_each_shipped_sweep_reads_as_a_sweep_and_its_shipped_runs_are_done(root: Path) -> None:
    """`damdp-lite sweep status` and `sweep` itself read each sweep.json (its jobs are those of
    its grids: a sweep run in batches records each batch's grid), and count each shipped run
    done when its config is still its job's, so continuing the sweep never restarts one. The
    others differ only where a preset changed after they ran (`PRESET_CHANGES`); the sweep would
    refuse to continue them, and `damdp-lite reproduce` re-runs them from their own config."""
    from damdp_lite import sweep as sw
    from damdp_lite.train import config_diff

    sweep = sw.Sweep(root)
    record = sweep.record()
    states = {r["name"]: r["state"] for r in sw.sweep_status(root)}
    for job in record["jobs"]:
        if not sweep.run_dir(job.name).exists():
            continue
        if states[job.name] != "done":
            diff = config_diff(load_run(sweep.run_dir(job.name))[1].to_dict(),
                               job.config(record["grids"][0].steps).to_dict())
            assert diff and {k for k, _, _ in diff} <= PRESET_CHANGES, (job.name, diff)


@pytest.mark.parametrize("run_dir", RUNS, ids=IDS)
def test_run_finished_with_a_final_evaluation(run_dir: Path) -> None:
    _, config = load_run(run_dir)
    rows = read_progress(run_dir / "progress.csv")
    assert rows[-1]["env_steps"] == config.num_iterations * config.env_steps_per_iteration
    assert np.isfinite(rows[-1]["eval_return"]), "the last row holds the final evaluation"
    versions = recorded_versions(run_dir)
    assert versions is not None and versions.get("mujoco"), "the MuJoCo version is recorded"


@pytest.mark.parametrize("run_dir", RUNS, ids=IDS)
def test_run_restarts_from_its_config(run_dir: Path) -> None:
    """Iteration 0 recomputed from config.json: finite where the recorded one is and, under the
    recorded MuJoCo version, equal to it in every logged number but the clock."""
    _, config = load_run(run_dir)
    learner = algo_of(config).learner_cls(config)
    try:
        row = learner.train_iteration()
    finally:
        learner.close()
    shipped = read_progress(run_dir / "progress.csv")[0]
    keys = [k for k in row if k not in WALL_CLOCK_FIELDS and np.isfinite(shipped.get(k, np.nan))]
    assert row["env_steps"] == shipped["env_steps"] and len(keys) >= 3
    if recorded_versions(run_dir).get("mujoco") != simulator_versions()["mujoco"]:
        assert all(np.isfinite(row[k]) for k in keys), row
        return
    for key in keys:
        assert row[key] == pytest.approx(shipped[key], rel=1e-4, abs=1e-7), key


REPORTS = {"report": ("dmc", "mujoco", "fixed_temperature", "prior_std_1", "no_jacobian"),
           "wposac/report": ("wposac", "diffsac_tau", "diffsac_chain")}
"""Each shipped report (`damdp-lite report` of these sweeps, which notebook 06 reads) and the
sweeps whose runs it scores."""


def test_every_sweep_has_one_report() -> None:
    sweeps = {p.parent.name for p in GRID.glob("*/sweep.json")}
    covered = {s for sweeps_of_report in REPORTS.values() for s in sweeps_of_report}
    assert sweeps <= covered, f"no report scores the runs of {sorted(sweeps - covered)}"


@pytest.mark.parametrize("report_dir", list(REPORTS))
def test_the_shipped_report_scores_every_shipped_run(report_dir: str) -> None:
    """The report was remade after the last run was added: each run of its sweeps is in it, used
    or dropped to even the seeds, and nothing else is."""
    from damdp_lite.train import run_label

    path = GRID / report_dir / "report.json"
    if not path.exists() and not any(r.parents[1].name in REPORTS[report_dir] for r in RUNS):
        pytest.skip(f"no run of {REPORTS[report_dir]} is shipped yet")
    report = json.loads(path.read_text())
    assert not report["skipped"]
    scored = set()
    for method, m in report["methods"].items():
        for task, s in m["scores"].items():
            scored |= {(method, task, seed) for seed in s["seeds"]}
        for task, seeds in m["seeds_dropped"].items():
            scored |= {(method, task, seed) for seed in seeds}
    shipped = set()
    for run_dir in (r for r in RUNS if r.parents[1].name in REPORTS[report_dir]):
        run, config = load_run(run_dir)
        shipped.add((run_label(config, run), config.env_id, config.seed))
    assert scored == shipped


@pytest.mark.parametrize("report_dir", list(REPORTS))
def test_readme_holds_the_grid_table_of_the_shipped_report(report_dir: str) -> None:
    """README's DA-MDP grid tables are what benchmarks/grid_table.py prints from the reports."""
    if not (GRID / report_dir / "report.json").exists():
        pytest.skip(f"{report_dir} is not shipped yet")
    import importlib.util

    path = ROOT / "benchmarks" / "grid_table.py"
    spec = importlib.util.spec_from_file_location("grid_table", path)
    grid_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid_table)
    assert tuple(REPORTS) == grid_table.REPORTS
    assert grid_table.table(report_dir) in (ROOT / "README.md").read_text(), \
        f"README's {report_dir} table is stale: paste `python benchmarks/grid_table.py` into it"


def _continued_grid_run(run_dir: Path) -> Path | None:
    """The grid run that `run_dir` continues: same job name and config but for the budget."""
    from damdp_lite.train import config_record

    for base in GRID.glob(f"*/runs/{run_dir.name}"):
        (r0, c0), (r1, c1) = load_run(base), load_run(run_dir)
        a, b = config_record(c0, r0), config_record(c1, r1)
        a["config"].pop("total_env_steps"), b["config"].pop("total_env_steps")
        if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
            return base
    return None


LONG_RUNS = [r for r in RUNS if r.is_relative_to(LONG)]


def test_long_runs_are_shipped_and_some_continue_grid_runs() -> None:
    assert LONG_RUNS, "no long run is shipped"
    assert any(_continued_grid_run(r) for r in LONG_RUNS)


@pytest.mark.parametrize("run_dir", LONG_RUNS,
                         ids=[f"{p.parents[1].name}/{p.name}" for p in LONG_RUNS])
def test_a_long_run_holds_the_rows_of_the_grid_run_it_continues(run_dir: Path) -> None:
    """A continuation, not a rerun: resumed from the grid run's last checkpoint with a larger
    budget (no preset schedule depends on the budget), so its first rows are the grid run's,
    clock aside, and the rows after them are new."""
    base = _continued_grid_run(run_dir)
    if base is None:
        pytest.skip("a run of its own, not a continuation")
    grid_rows, rows = read_progress(base / "progress.csv"), read_progress(run_dir / "progress.csv")
    assert len(rows) > len(grid_rows)
    for old, new in zip(grid_rows, rows[:len(grid_rows)], strict=True):
        for key, value in old.items():
            if key not in WALL_CLOCK_FIELDS and np.isfinite(value):
                assert new[key] == value, (old["iteration"], key)
