"""benchmarks/gradient_routes.py (notebook 07): the script runs at a tiny size and writes the
schema the notebook reads, with sane numbers; the shipped file was made with today's presets
and holds what the notebook quotes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from damdp_lite import metrics, results
from damdp_lite import routes as R
from damdp_lite.presets import ROUTE_SAMPLER, ROUTE_TARGETS, ROUTE_TRAINING

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gradient_routes.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import bound_vs_K  # noqa: E402
import gradient_routes  # noqa: E402

RUN_KEYS = {"target", "seed", "route", "lr", "updates", "chains", "seconds", "j_bound_trace",
            "j_bound", "j_bound_se", "outside", "escaped", "mode_masses", "eta_1"}
KEYS_1D = {"j_marginal", "kl", "dip_ratio", "mass_pos"}
KEYS_2D = {"kl_hist", "mode_tv"}
VARIANCE_KEYS = {"target", "seed", "route", "batches", "batch_size", "total_variance",
                 "mean_norm_sq", "relative_variance", "cos_to_pathwise"}
COST_KEYS = {"route", "kappa", "K", "batch_size", "saved_bytes", "seconds",
             "bytes_ratio_to_pathwise", "seconds_ratio_to_pathwise"}


def check_schema_and_sanity(res: dict) -> None:
    """What the notebook relies on, for a smoke or a full result."""
    assert list(res["routes"]) == list(R.ROUTES)
    assert set(res["targets"]) == set(ROUTE_TARGETS)
    n_seeds = len(res["seeds"])
    assert len(res["runs"]) == len(ROUTE_TARGETS) * n_seeds * len(R.ROUTES)
    assert len(res["lower_lr"]["runs"]) == len(ROUTE_TARGETS) * len(R.ROUTES)
    for run in res["runs"] + res["lower_lr"]["runs"]:
        dim_keys = KEYS_1D if run["target"] == "double_well" else KEYS_2D
        assert RUN_KEYS | dim_keys <= set(run), set(run) ^ (RUN_KEYS | dim_keys)
        target = res["targets"][run["target"]]
        assert len(run["mode_masses"]) == len(target["mode_names"])
        assert math.isclose(sum(run["mode_masses"]), 1.0, abs_tol=1e-9)
        assert 0.0 <= run["outside"] <= 1.0
        assert run["escaped"] == (run["outside"] > res["escaped_outside"]
                                  or run["j_bound"] is None)
        if run["target"] == "double_well" and not run["escaped"]:
            # J_bound <= J(marginal) <= T log Z (method.md I6), within 4 standard errors
            assert run["j_bound"] <= run["j_marginal"] + 4 * run["j_bound_se"], run
            assert run["j_marginal"] <= target["t_log_z"] + 1e-9, run
            assert run["dip_ratio"] > 0 and 0.0 <= run["mass_pos"] <= 1.0 + 1e-9
        if run["target"] == "double_well" and run["escaped"]:
            assert run["j_marginal"] is None and run["dip_ratio"] is None
    rows = res["variance"]["rows"]
    assert len(rows) == len(ROUTE_TARGETS) * n_seeds * len(R.ROUTES)
    for row in rows:
        assert VARIANCE_KEYS <= set(row)
        assert row["total_variance"] > 0 and -1 - 1e-9 <= row["cos_to_pathwise"] <= 1 + 1e-9
        if row["route"] == "pathwise":
            assert math.isclose(row["cos_to_pathwise"], 1.0, abs_tol=1e-9)
    costs = res["costs"]["rows"]
    assert len(costs) == len(res["costs"]["Ks"]) * len(gradient_routes.COST_VARIANTS)
    for row in costs:
        assert COST_KEYS <= set(row) and row["saved_bytes"] > 0 and row["seconds"] > 0
        if row["route"] == "pathwise":
            assert row["bytes_ratio_to_pathwise"] == 1.0 == row["seconds_ratio_to_pathwise"]

    def bytes_at(route, kappa, K):
        return next(r["saved_bytes"] for r in costs
                    if (r["route"], r["kappa"], r["K"]) == (route, kappa, K))

    k_lo, k_hi = min(res["costs"]["Ks"]), max(res["costs"]["Ks"])
    assert bytes_at("pathwise", 0, k_hi) > bytes_at("pathwise", 0, k_lo)
    assert math.isclose(bytes_at("per_step", 1, k_hi), bytes_at("per_step", 1, k_lo),
                        rel_tol=0.01)
    assert math.isclose(bytes_at("fpo_style", 0, k_hi), bytes_at("fpo_style", 0, k_lo),
                        rel_tol=0.01)


def test_smoke_run_writes_a_sane_json(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "07_gradient_routes.json").read_text())
    assert res["seeds"] == [0] and res["costs"]["Ks"] == [1, 2]
    check_schema_and_sanity(res)


def test_smoke_needs_an_output_folder():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--smoke needs --out" in out.stderr


def test_the_dip_ratio_is_notebook_01s():
    grid = torch.linspace(-4, 4, 801, dtype=torch.float64)
    density = torch.exp(-((grid**2 - 1) ** 2) / 0.3) + 0.1 * torch.exp(-grid**2)
    assert metrics.dip_ratio(grid, density) == bound_vs_K.dip_ratio(grid, density) < 1


@pytest.fixture(scope="module")
def shipped() -> dict:
    return json.loads(results.shipped("07_gradient_routes.json").read_text())


def test_shipped_result_is_sane(shipped):
    assert shipped["seeds"] == list(gradient_routes.SEEDS)
    assert shipped["costs"]["Ks"] == list(gradient_routes.KS)
    check_schema_and_sanity(shipped)


def test_shipped_result_used_todays_presets(shipped):
    assert shipped["sampler_config"] == json.loads(json.dumps(ROUTE_SAMPLER))
    assert shipped["preset_training"] == json.loads(json.dumps(ROUTE_TRAINING))
    assert shipped["smoke_training"] is None
    for key, value in ROUTE_TRAINING.items():
        assert shipped["training"][key] == value, key
    for name, spec in ROUTE_TARGETS.items():
        assert shipped["targets"][name]["temperature"] == spec["temperature"]
    assert all(r["updates"] == ROUTE_TRAINING["iterations"] * ROUTE_TRAINING["update_epochs"]
               for r in shipped["runs"])
