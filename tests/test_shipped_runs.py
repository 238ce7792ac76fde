"""The shipped runs (damdp_lite/shipped/mujoco) against the current code: every one loads from
its recorded config.json (format 1, written before the policy config was nested), builds its
learner, and recomputes its first iteration exactly as recorded (the code-drift guard).

Not every CPU computes these runs bit for bit like the machine that recorded them: on some, the
same code and seeds give HalfCheetah-v5 trajectories that drift apart within one episode, and
Hopper-v5 ones that differ in the ninth digit, enough to move the trust-region statistics of a
REPPO iteration past the tolerance. Such a machine cannot tell code drift from machine drift,
so `machine_matches_recording` first replays a recorded episode of the untrained policy (SAC
before its first gradient step: no learning involved); where it differs, the guard is skipped,
saying why. Nor can another MuJoCo version, whose arithmetic differs: where the installed one is
not the recorded one (config.json "versions", or `SHIPPED_MUJOCO` for runs recorded before
versions were), the guard is skipped saying so. Every shipped run is still loaded, rebuilt and
run for one iteration (`test_every_shipped_run_restarts_from_its_config`).
"""

import functools

import numpy as np
import pytest

from damdp_lite.algos import algo_of
from damdp_lite.envs.make import simulator_versions
from damdp_lite.policies import policy_kind
from damdp_lite.results import SHIPPED_RUNS, read_progress
from damdp_lite.train import (
    WALL_CLOCK_FIELDS,
    config_record,
    load_run,
    parse_record,
    recorded_versions,
    run_label,
)

SHIPPED = sorted(p.name for p in SHIPPED_RUNS.glob("*") if (p / "config.json").exists())


SHIPPED_MUJOCO = "4.0.0"
"""MuJoCo version of the shipped runs whose config.json records none: pyproject.toml pinned
mujoco==4.0.0 from before the first of them was committed until after the last."""


@functools.cache
def machine_matches_recording() -> tuple[bool, str]:
    """Replay HalfCheetah-v5_sac_s0 up to its first finished episode (before learning_starts:
    the untrained policy, no update) and compare that episode's return with the recorded one;
    (False, why) at once when the installed MuJoCo is not the one the run was recorded under."""
    recorded = (recorded_versions(SHIPPED_RUNS / "HalfCheetah-v5_sac_s0") or {}).get(
        "mujoco", SHIPPED_MUJOCO)
    installed = simulator_versions()["mujoco"]
    if installed != recorded:
        return False, (f"the shipped runs were recorded under mujoco {recorded} and mujoco "
                       f"{installed} is installed: another MuJoCo version computes other "
                       f"trajectories, so code drift cannot be told from it")
    _, cfg = load_run(SHIPPED_RUNS / "HalfCheetah-v5_sac_s0")
    rows = read_progress(SHIPPED_RUNS / "HalfCheetah-v5_sac_s0" / "progress.csv")
    first = next(i for i, r in enumerate(rows) if np.isfinite(r["episode_return"]))
    assert (first + 1) * cfg.env_steps_per_iteration < cfg.learning_starts  # no update yet
    learner = algo_of(cfg).learner_cls(cfg)
    try:
        for _ in range(first + 1):
            row = learner.train_iteration()
    finally:
        learner.close()
    here, recorded = row["episode_return"], rows[first]["episode_return"]
    return here == pytest.approx(recorded, rel=1e-6), (
        f"this machine does not reproduce the recording machine's HalfCheetah-v5 trajectories: "
        f"the untrained SAC policy's first episode returns {here:.4f} here, {recorded:.4f} "
        f"recorded (same code, seeds and actions' distribution)")


def test_shipped_runs_are_all_listed():
    assert len(SHIPPED) == 42
    envs = {n.split("_")[0] for n in SHIPPED}
    assert envs == {"HalfCheetah-v5", "Hopper-v5"}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_loads_and_round_trips(name):
    """Format-1 config.json -> configs -> format-2 record -> the same configs."""
    run, config = load_run(SHIPPED_RUNS / name)
    assert run.label == name.split("_")[1]  # the old algorithm name labels the run
    assert config.env_id == name.split("_")[0] and f"_s{config.seed}" in name
    assert policy_kind(config.policy) == ("diffusion" if run.label.startswith("diff")
                                          else "gaussian")
    assert f"{config.env_id}_{run_label(config, run)}_s{config.seed}" == name
    run2, config2 = parse_record(config_record(config, run))
    assert config2 == config and run2.label == run.label


DRIFT_GUARD = ("HalfCheetah-v5_ppo_s0", "Hopper-v5_diffppo_s0", "HalfCheetah-v5_diffreppo_s0",
               "HalfCheetah-v5_wpo_s0", "Hopper-v5_sac_s0", "Hopper-v5_diffsac_s0")
"""Runs whose first iteration is compared number by number: PPO, REPPO and WPO from the
sessions that recorded the shipped runs, and SAC/DiffSAC (whose first iteration has no update)."""


def first_iteration(name: str) -> tuple:
    """(config, the row of iteration 0 recomputed now, the recorded row) of a shipped run."""
    _, config = load_run(SHIPPED_RUNS / name)
    learner = algo_of(config).learner_cls(config)
    try:
        row = learner.train_iteration()
    finally:
        learner.close()
    return config, row, read_progress(SHIPPED_RUNS / name / "progress.csv")[0]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_run_restarts_from_its_config(name):
    """What `damdp-lite reproduce NAME` does first: load the recorded configs, build the learner
    and run one iteration; its statistics are finite where the recorded ones are."""
    config, row, shipped = first_iteration(name)
    assert row["env_steps"] == shipped["env_steps"] == config.env_steps_per_iteration
    finite = [k for k in row if k not in WALL_CLOCK_FIELDS and np.isfinite(shipped.get(k, np.nan))]
    assert len(finite) >= 3 and all(np.isfinite(row[k]) for k in finite), row


@pytest.mark.parametrize("name", DRIFT_GUARD)
def test_current_code_reproduces_the_first_iteration_of_a_shipped_run(name):
    """Code drift guard: iteration 0 of a shipped run, recomputed from its config.json, matches
    its committed progress.csv in every logged number but the clock (to 1e-4 relative: other
    CPUs may round the networks' sums differently)."""
    match, why = machine_matches_recording()
    if not match:
        pytest.skip(why)
    _, row, shipped = first_iteration(name)
    keys = [k for k in row if k not in WALL_CLOCK_FIELDS and np.isfinite(shipped.get(k, np.nan))]
    assert {"iteration", "env_steps", "temperature"} <= set(keys), keys
    for key in keys:
        assert row[key] == pytest.approx(shipped[key], rel=1e-4, abs=1e-7), key


def test_every_shipped_file_is_package_data():
    """pyproject's package-data globs cover every file under damdp_lite/shipped, so an installed
    copy (a wheel, Colab) holds the same results as a checkout."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["damdp_lite"]
    files = [p.relative_to(root / "damdp_lite").as_posix()
             for p in (root / "damdp_lite" / "shipped").rglob("*") if p.is_file()
             and not p.name.endswith((".tmp", ".pyc")) and p.name != "checkpoint.pt"]
    assert len(files) >= 90
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
