"""Smoke test of benchmarks/toys_turning.py (tiny budget) and of its pure helpers."""

import json
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import toys_turning as tt  # noqa: E402

from damdp_lite.presets import ETA_1, TURNING_SMOKE_ENV_STEPS  # noqa: E402


def assert_policy_described(run: dict, method: str) -> None:
    """A diffusion method records its learned step sizes eta (K = 8 rows), a Gaussian one its
    latent mean and std (`ChainPolicy.describe`)."""
    if method.startswith("gaussian"):
        assert "step_sizes" not in run and len(run["latent_std"]) == 1, run.keys()
        assert run["latent_std"][0] > 0
    else:
        eta = np.array(run["step_sizes"])
        assert eta.shape == (8, 1) and (eta > 0).all(), eta


def test_exact_reference_matches_i7():
    ref = tt.exact_reference(0.05)
    assert ref["log_z"] == pytest.approx(19.4765, abs=1e-4)  # method.md I7
    assert ref["density_ratio_0_to_05"] == pytest.approx(math.exp(-0.15 / 0.05), rel=1e-6)
    assert ref["mass_pos"] == pytest.approx(0.5, abs=1e-9)
    assert ref["valley_ratio"] == pytest.approx(0.0526, abs=5e-4) and ref["dens_p05"] > 1.6


def test_exact_bin_masses_and_histogram_kls():
    edges = np.linspace(-1, 1, 201)
    pi = tt.exact_bin_masses(0.05, edges)
    assert pi.shape == (200,) and pi.sum() == pytest.approx(1.0)
    assert pi[:100].sum() == pytest.approx(0.5, abs=1e-9)  # symmetric optimum
    counts = np.round(pi * 1e7)[None].repeat(2, 0)  # a histogram of the optimum itself
    kl_q, kl_p = tt.histogram_kls(counts, pi)
    assert np.all(np.abs(kl_q) < 1e-4) and np.all(np.abs(kl_p) < 1e-4)


def test_smoke_runs_and_compare():
    res = {m: tt.run_method(m, seeds=(0,), smoke=True) for m in tt.METHODS}
    for m, r in res.items():
        run = r["seeds"]["0"]
        assert "error" not in run, run
        assert len(run["per_state"]) == 8 and np.array(run["hist_counts"]).shape == (8, 200)
        assert np.array(run["hist_counts"]).sum(1).tolist() == [tt.N_EVAL_SMOKE] * 8
        assert all(0 <= p["mass_pos"] <= 1 and p["std"] >= 0 for p in run["per_state"])
        assert run["env_steps"] == TURNING_SMOKE_ENV_STEPS and run["run_seconds"] > 0
        assert ("paths" in run) and np.array(run["paths"]["positions"]).shape == (24, 101, 2)
        assert_policy_described(run, m)
    assert res["diffppo"]["config"]["init_step_sizes"][0] == pytest.approx(ETA_1)
    cmp = tt.compare(res)
    assert set(cmp["diffppo_bimodal_all8"]) == {"0"}
    assert len(cmp["dppo_std_over_diffppo_std"]["0"]) == 8


def test_reppo_smoke_runs_and_compare():
    res = {m: tt.run_method(m, seeds=(0,), smoke=True) for m in tt.REPPO_METHODS}
    for m, r in res.items():
        run = r["seeds"]["0"]
        assert "error" not in run, run
        assert np.array(run["hist_counts"]).sum(1).tolist() == [tt.N_EVAL_SMOKE] * 8
        assert run["env_steps"] == TURNING_SMOKE_ENV_STEPS
        assert r["temperature"] == tt.TEMPERATURE and r["config"]["auto_temperature"] is False
        assert_policy_described(run, m)
    cmp = tt.compare(res)
    assert set(cmp["diffreppo_bimodal_all8"]) == set(cmp["gaussian_reppo_unimodal_all8"]) == {"0"}
    assert "diffppo_bimodal_all8" in cmp and cmp["diffppo_bimodal_all8"] == {}


def test_merge_unites_seeds_and_methods_run_apart(tmp_path):
    """Two processes' JSON files (disjoint seeds, and a second method) merge into the payload
    one process would have written; a repeated seed is an error."""
    paths = []
    for name, args in (("a", ["--only", "diffreppo", "--seeds", "0"]),
                       ("b", ["--only", "diffreppo", "--seeds", "1"]),
                       ("c", ["--only", "gaussian_reppo", "--seeds", "0", "1"])):
        paths.append(str(tmp_path / f"{name}.json"))
        assert tt.main([*args, "--smoke", "--out", paths[-1]]) == 0
    out = str(tmp_path / "merged.json")
    assert tt.main(["--merge", *paths, "--out", out]) == 0
    merged = json.loads(open(out).read())
    parts = [json.loads(open(p).read()) for p in paths]
    diff = merged["results"]["diffreppo"]
    assert list(diff["seeds"]) == ["0", "1"]
    assert diff["seeds"]["1"] == parts[1]["results"]["diffreppo"]["seeds"]["1"]
    assert set(diff["summary"]["n_bimodal"]) == {"0", "1"}
    assert merged["results"]["gaussian_reppo"] == parts[2]["results"]["gaussian_reppo"]
    assert set(merged["compare"]["diffreppo_bimodal_all8"]) == {"0", "1"}
    assert merged["_meta"]["seeds"] == [0, 1] and merged["_meta"]["merged_from"] == 3
    with pytest.raises(ValueError, match=r"seeds \['0'\] of diffreppo appear in more than one"):
        tt.merge_payloads([parts[0], parts[0]])
