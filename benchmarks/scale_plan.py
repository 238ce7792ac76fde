"""What a paper-scale reproduction costs at the speeds this suite measured, and the sweep that
runs it (README, "Sweeps and clusters").

    python benchmarks/scale_plan.py                 # the README's table
    python benchmarks/scale_plan.py --json

Speeds are env steps per second of one run on one CPU thread, read from the shipped benchmark
results (`benchmarks/throughput.py` -> 05_throughput.json for PPO / DiffPPO K = 8,
`benchmarks/runtime_ratio.py` -> 06_runtime_ratio.json for REPPO, WPO, SAC and their DA-MDP
versions, HalfCheetah-v5). The paper's scale: 12 DeepMind Control tasks x 7 seeds x 50M env
steps per run (arXiv 2512.02019). GPU speeds join the table once `benchmarks/gpu_check.sh`
has written damdp_lite/shipped/gpu/.
"""

from __future__ import annotations

import argparse
import json

from damdp_lite.results import SHIPPED

TASKS, SEEDS, STEPS = 12, 7, 50_000_000
"""The paper's grid: 12 DMC tasks, 7 seeds, 50M env steps per run."""


def speeds() -> dict[str, dict]:
    """{method: {"sps", "device", "source"}} from the shipped benchmark JSONs."""
    out = {}
    thr = json.loads((SHIPPED / "05_throughput.json").read_text())
    out["ppo"] = {"sps": thr["ours_ppo"]["sps"], "device": thr["device"],
                  "source": "05_throughput.json"}
    out["diffppo"] = {"sps": thr["ours_diffppo_k8"]["sps"], "device": thr["device"],
                      "source": "05_throughput.json"}
    rr = json.loads((SHIPPED / "06_runtime_ratio.json").read_text())
    for name, res in rr["learners"].items():
        out[name] = {"sps": res["sps"], "device": rr["device"], "source": "06_runtime_ratio.json"}
    gpu = SHIPPED / "gpu"  # written by benchmarks/gpu_check.sh on a GPU machine
    if (gpu / "gpu.json").exists():
        name = json.loads((gpu / "gpu.json").read_text())["gpu"]
        thr = json.loads((gpu / "throughput_cuda.json").read_text())
        for ours, key in (("ppo", "ours_ppo"), ("diffppo", "ours_diffppo_k8")):
            out[f"{ours} (GPU)"] = {"sps": thr[key]["sps"], "device": name,
                                    "source": "gpu/throughput_cuda.json"}
        rr = json.loads((gpu / "runtime_ratio_cuda.json").read_text())
        for learner, res in rr["learners"].items():
            out[f"{learner} (GPU)"] = {"sps": res["sps"], "device": name,
                                       "source": "gpu/runtime_ratio_cuda.json"}
    return out


def plan(tasks: int = TASKS, seeds: int = SEEDS, steps: int = STEPS) -> list[dict]:
    """One row per method: hours per run, core-hours for the grid, days on 64 cores."""
    rows = []
    for name, s in speeds().items():
        hours = steps / s["sps"] / 3600
        rows.append({"method": name, "device": s["device"], "env_steps_per_s": round(s["sps"]),
                     "hours_per_run": round(hours), "runs": tasks * seeds,
                     "core_hours": round(hours * tasks * seeds),
                     "days_on_64_cores": round(hours * tasks * seeds / 64 / 24, 1),
                     "source": s["source"]})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=TASKS)
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = plan(args.tasks, args.seeds, args.steps)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{args.tasks} tasks x {args.seeds} seeds x {args.steps:,} env steps per run, one "
          f"thread per run")
    print("| method | env steps/s (1 thread) | hours per run | core-hours | days on 64 cores |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['env_steps_per_s']} | {r['hours_per_run']} | "
              f"{r['core_hours']:,} | {r['days_on_64_cores']} |")


if __name__ == "__main__":
    main()
