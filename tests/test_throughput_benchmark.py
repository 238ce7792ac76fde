"""Smoke tests of benchmarks/throughput.py (every learner incl. SB3) and benchmarks/runtime_ratio.py
(the six REPPO / WPO / SAC presets): the real scripts, tiny budgets."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_throughput_smoke_prints_every_learner_and_ratio():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "throughput.py"),
                          "--smoke", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["raw_env_sps"] > 0 and res["sb3_ppo_sps"] > 0 and res["sb3_ppo_256_sps"] > 0
    for name in ("ours_ppo", "ours_diffppo_k4", "ours_diffppo_k8", "ours_ppo_64",
                 "ours_diffppo_k8_64"):
        r = res[name]
        parts = r["fraction_env"] + r["fraction_chain_and_rollout"] + r["fraction_update_and_setup"]
        assert r["sps"] > 0 and abs(parts - 1) < 1e-9 and 0 < r["fraction_env"] < 1
    assert set(res["targets"]) == {"ours_ppo >= 1.5 x sb3_ppo", "diffppo_k8 >= 0.5 x ours_ppo"}
    assert all(v > 0 for v in res["ratios"].values())


def test_runtime_ratio_smoke_times_all_six_presets():
    """benchmarks/runtime_ratio.py: each learner timed over the same env steps, one ratio per pair,
    SAC timed with its gradient steps (learning_starts 0), the chain lengths of the presets."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "runtime_ratio.py"),
                          "--smoke", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    learners = res["learners"]
    assert list(learners) == ["reppo", "diffreppo", "wpo", "diffwpo", "sac", "diffsac"]
    assert {n: v["chain_length"] for n, v in learners.items()} == {
        "reppo": 1, "diffreppo": 8, "wpo": 1, "diffwpo": 8, "sac": 1, "diffsac": 8}
    assert all(v["env_steps"] >= 64 and v["seconds"] > 0 for v in learners.values())
    assert set(res["ratios"]) == {"diffreppo / reppo", "diffwpo / wpo", "diffsac / sac"}
    assert all(r > 0 for r in res["ratios"].values())
    assert res["paper_ratios"]["diffreppo / reppo"] == [4.21, 4.76]
