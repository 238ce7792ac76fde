"""benchmarks/bound_vs_K.py (the sweep behind notebook 01 §5): the script runs with a tiny
budget, its checkpoints leave the training run untouched (what the notebook's live check relies
on), and the shipped file holds what the notebook reads from it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import damdp_lite as dl
from damdp_lite import results

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bound_vs_K.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import bound_vs_K  # noqa: E402


def _bound_holds(c: dict, t_log_z: float) -> bool:
    """J_bound <= J(marginal) (within 4 Monte Carlo standard errors) <= T log Z."""
    return (c["j_bound"] <= c["j_marginal"] + 4 * c["j_bound_se"]
            and c["j_marginal"] <= t_log_z + 1e-9)


def test_smoke_run_writes_the_json_and_the_figure(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "01_bound_vs_K.json").read_text())
    assert (tmp_path / "01_bound_vs_K.png").stat().st_size > 0
    assert len(res["runs"]) == len(res["seeds"]) * len(res["pairings"]) * len(res["Ks"])
    assert math.isclose(res["t_log_z"], -0.01339, abs_tol=1e-4)  # method.md I6
    for run in res["runs"]:
        assert [c["steps"] for c in run["checkpoints"]] == res["checkpoints"]
        for c in run["checkpoints"]:
            assert _bound_holds(c, res["t_log_z"]), (run["pairing"], run["K"], c)
    # K = 1: both pairings name the same noising kernel, so the same run
    k1 = [r["checkpoints"] for r in res["runs"] if r["K"] == 1]
    assert len(k1) == 2 and k1[0][-1]["j_marginal"] == k1[1][-1]["j_marginal"]


def test_smoke_needs_an_output_folder():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--smoke needs --out" in out.stderr


def test_a_checkpoint_is_the_run_of_that_many_steps():
    """Evaluating at a checkpoint does not change training: the record at step 6 of a 10-step
    run equals a plain 6-step `fit_sampler` run with the same seeds."""
    torch.set_num_threads(1)
    target = dl.DoubleWell1D()
    grid = torch.linspace(-4, 4, 401, dtype=torch.float64)
    run = bound_vs_K.run_one(1, "same", 2, (6, 10), target, grid)
    dl.seed_everything(1)
    policy = dl.DiffusionPolicy(dl.DiffusionConfig(num_steps=2, noising_step_pairing="same",
                                                   **bound_vs_K.SAMPLER))
    dl.fit_sampler(policy, target, bound_vs_K.TEMPERATURE, steps=6, seed=1, **bound_vs_K.FIT)
    plain = bound_vs_K.evaluate(policy, target, grid)
    at6 = run["checkpoints"][0]
    for key in ("j_bound", "j_marginal", "dip_ratio", "eta_1"):
        assert at6[key] == plain[key], key


@pytest.fixture(scope="module")
def shipped() -> dict:
    return json.loads(results.shipped("01_bound_vs_K.json").read_text())


def test_shipped_sweep_is_complete_and_its_means_are_the_runs_means(shipped):
    runs = shipped["runs"]
    assert len(runs) == len(shipped["seeds"]) * len(shipped["pairings"]) * len(shipped["Ks"])
    for steps in shipped["checkpoints"]:
        for row in shipped["means"][str(steps)]:
            cs = [c for r in runs if r["pairing"] == row["pairing"] and r["K"] == row["K"]
                  for c in r["checkpoints"] if c["steps"] == steps]
            assert len(cs) == len(shipped["seeds"]) == row["seeds"]
            for key in ("j_bound", "j_marginal", "dip_ratio", "eta_1"):
                assert math.isclose(row[key], sum(c[key] for c in cs) / len(cs), rel_tol=1e-12)


def test_shipped_sweep_satisfies_the_bound(shipped):
    for run in shipped["runs"]:
        for c in run["checkpoints"]:
            assert _bound_holds(c, shipped["t_log_z"]), (run["seed"], run["pairing"], run["K"], c)


def test_shipped_sweep_used_the_scripts_settings(shipped):
    assert shipped["sampler_config"] == json.loads(json.dumps(bound_vs_K.SAMPLER))
    assert (shipped["fit"]["lr"], shipped["fit"]["batch_size"]) == (bound_vs_K.FIT["lr"],
                                                                    bound_vs_K.FIT["batch_size"])
    assert shipped["checkpoints"] == list(bound_vs_K.CHECKPOINTS)
    assert shipped["Ks"] == list(bound_vs_K.KS) and shipped["seeds"] == list(bound_vs_K.SEEDS)
