"""Smoke test of the toy benchmark CLI (CleanRL style: run the real script with a tiny budget)."""

import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "toys.py")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_list_names_the_bandit_experiments():
    out = run_cli("--list")
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    for name in ("double_well_T025", "double_well_T025_slow", "double_well_T1",
                 "four_modes_equal", "four_modes_dql",
                 "double_well_sweep_K1_previous", "double_well_sweep_K16_same"):
        assert name in names


def test_smoke_run_prints_one_json_object():
    out = run_cli("--json", "--smoke", "--seeds", "0", "--only", "double_well_T025")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)  # stdout is exactly one JSON object
    assert set(res) == {"double_well_T025", "_meta"}
    assert res["_meta"]["threads"] == 1 and res["_meta"]["seeds"] == [0]
    dw = res["double_well_T025"]
    assert math.isclose(dw["references"]["t_log_z"], -0.01339, abs_tol=1e-4)  # method.md I6
    assert math.isclose(dw["references"]["best_gaussian"]["j"], -0.19697, abs_tol=1e-4)
    for pol in ("diffusion", "gaussian"):
        (row,) = dw[pol]["per_seed"]
        assert 0.0 <= row["mass_pos_quad"] <= 1.0
        assert math.isclose(sum(row["masses_mc"]), 1.0, abs_tol=1e-9)
        assert math.isfinite(row["j_bound"]) and math.isfinite(row["j_marginal"])
        assert row["dip_ratio"] > 0
        # the certified bound never exceeds the true objective (MC error allowed)
        assert row["j_bound"] <= row["j_marginal"] + 4 * row["j_bound_se"]
        assert row["train_seconds"] > 0
        assert row["j_bound_curve"][0][0] == 0 and row["j_bound_curve"][-1][1] == row["j_bound"]
    assert isinstance(dw["checks"]["gaussian_one_side_gt_0.9_every_seed"], bool)
    assert "[toys]" in out.stderr  # progress goes to stderr
