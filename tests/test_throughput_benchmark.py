"""Smoke test of benchmarks/throughput.py: the real script, tiny budget, every learner incl. SB3."""

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
