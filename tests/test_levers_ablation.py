"""benchmarks/levers_ablation.py: each variant switches exactly one lever of the DA-MDP REPPO
preset back, its sweeps run and resume through the CLI, and `collect` summarises finished runs
(final evaluation return and late-training diagnostics) into JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from damdp_lite.algos import ALGOS
from damdp_lite.train import load_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import levers_ablation  # noqa: E402
import pytest  # noqa: E402


@pytest.mark.parametrize("algo,base", [("diffreppo", "reppo"), ("diffppo", "ppo")])
def test_each_variant_changes_one_preset_field(algo, base):
    variants, descriptions, _ = levers_ablation.ABLATIONS[algo]
    preset = ALGOS[base].config(policy="diffusion")
    for name, change in variants.items():
        assert name in descriptions
        if name == "preset":
            assert change == {}
            continue
        assert len(change) == 1
        (field, value), = change.items()
        cfg = ALGOS[base].config(policy="diffusion", **change)
        owner = cfg.policy if hasattr(cfg.policy, field) else cfg
        before = preset.policy if owner is cfg.policy else preset
        assert getattr(owner, field) == value != getattr(before, field), (algo, name)


def test_diffppo_ablation_runs_and_reports_its_clip_fraction(tmp_path):
    levers_ablation.run(tmp_path, seeds=[0], steps=2048, env="damdp_lite/TurningDoubleWell-v0",
                        variants=["dppo"], algo="diffppo")
    res = levers_ablation.collect([tmp_path], None, tmp_path / "a.json",
                                  env="damdp_lite/TurningDoubleWell-v0", algo="diffppo")
    assert res["algo"] == "diffppo"
    assert set(res["variants"]) == set(levers_ablation.DIFFPPO_VARIANTS)
    run = res["variants"]["dppo"]["runs"][0]
    assert 0 <= run["clip_fraction"] <= 1 and "kl_violation" not in run
    _, cfg = load_run(next((tmp_path / "dppo" / "runs").iterdir()))
    assert cfg.temperature == 0.0


def test_run_and_collect_on_a_tiny_budget(tmp_path):
    levers_ablation.run(tmp_path, seeds=[0], steps=1024, env="damdp_lite/TurningDoubleWell-v0",
                        variants=["preset", "no_jacobian"])
    out = tmp_path / "ablation.json"
    res = levers_ablation.collect([tmp_path], None, out, env="damdp_lite/TurningDoubleWell-v0")
    assert levers_ablation.collect([tmp_path], None, out, env="Hopper-v5")["variants"]["preset"][
        "seeds"] == 0  # runs of another env are not counted
    res = levers_ablation.collect([tmp_path], None, out, env="damdp_lite/TurningDoubleWell-v0")
    assert json.loads(out.read_text()) == res
    for name in ("preset", "no_jacobian"):
        v = res["variants"][name]
        assert v["seeds"] == 1 and v["runs"][0]["env_steps"] == 1024
        assert v["mean_final_eval_return"] == v["runs"][0]["final_eval_return"]
        assert v["runs"][0]["evaluations"][-1] == [1024, v["runs"][0]["final_eval_return"]]
        assert 0 <= v["runs"][0]["saturated"] <= 1
    assert res["variants"]["mc_kl"]["seeds"] == 0  # not run: reported as missing, not invented
    _, cfg = load_run(next((tmp_path / "no_jacobian" / "runs").iterdir()))
    assert cfg.policy.tanh_jacobian is False and cfg.kl_estimator == "exact"


def test_collect_joins_the_seeds_of_several_roots(tmp_path):
    """Seeds run as separate batches (one RUNS_DIR each) are collected together, by seed."""
    env = "damdp_lite/TurningDoubleWell-v0"
    for root, seed in ((tmp_path / "a", 1), (tmp_path / "b", 0)):
        levers_ablation.run(root, seeds=[seed], steps=1024, env=env, variants=["no_jacobian"])
    res = levers_ablation.collect([tmp_path / "a", tmp_path / "b"], None, tmp_path / "x.json",
                                  env=env)
    v = res["variants"]["no_jacobian"]
    assert [r["seed"] for r in v["runs"]] == [0, 1] and v["seeds"] == 2
    assert v["source"] == "a/no_jacobian, b/no_jacobian"
    assert res["variants"]["preset"]["seeds"] == 0
