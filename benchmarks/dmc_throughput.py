"""Raw env throughput of DeepMind Control suite tasks through our vector env (random actions).

    python benchmarks/dmc_throughput.py              # 5 tasks + HalfCheetah-v5, 16 envs (~1-2 min)
    python benchmarks/dmc_throughput.py --json       # one JSON object
    python benchmarks/dmc_throughput.py --smoke      # tiny budget (CI)

Each task is built by `damdp_lite.envs.make.make_vector_env` (the `SyncVectorEnv` the learners
use: flat float32 observations, same-step autoreset, episode statistics) and stepped with uniform
random actions. The tasks take turns, one slice of `--slice` vector steps each, so that a change
of load on the machine during the run affects all of them alike; env creation, the first reset
and a first slice (dm-control's lazy set-up) are not timed. Printed: env steps per second (over
all envs) per task, with the MuJoCo and dm-control versions, the number of CPU cores and the
machine's load average before and after (other processes slow the numbers down).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from damdp_lite.envs.make import make_vector_env, simulator_versions

TASKS = ("dm_control/cartpole-swingup-v0", "dm_control/pendulum-swingup-v0",
         "dm_control/cheetah-run-v0", "dm_control/walker-walk-v0", "dm_control/hopper-stand-v0")
"""Five suite tasks of the paper's benchmark family, from the cheapest physics to contacts."""

REFERENCE = ("HalfCheetah-v5",)
"""Timed alongside by default: the Gymnasium MuJoCo task of notebooks 05-06, for scale."""


def measure(env_ids: tuple[str, ...], num_envs: int, steps: int, slice_steps: int,
            seed: int = 0) -> dict[str, float]:
    """Env steps per second (all envs together) of each task over `steps` vector steps."""
    envs = {e: make_vector_env(e, num_envs) for e in env_ids}
    rng = np.random.default_rng(seed)
    seconds = dict.fromkeys(env_ids, 0.0)
    for v in envs.values():
        v.reset(seed=seed)

    def run(v, n: int) -> float:
        space = v.single_action_space
        acts = rng.uniform(space.low, space.high, (n, num_envs, *space.shape))
        t0 = time.perf_counter()
        for a in acts:
            v.step(a)
        return time.perf_counter() - t0

    for v in envs.values():  # warm-up, not timed
        run(v, slice_steps)
    done = 0
    while done < steps:
        n = min(slice_steps, steps - done)
        for e, v in envs.items():
            seconds[e] += run(v, n)
        done += n
    for v in envs.values():
        v.close()
    return {e: steps * num_envs / seconds[e] for e in env_ids}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=[*TASKS, *REFERENCE],
                   help="Gymnasium ids to time (default: the five tasks and HalfCheetah-v5)")
    p.add_argument("--num-envs", type=int, default=16, help="envs per vector env (default 16)")
    p.add_argument("--steps", type=int, default=1024, help="vector steps per task")
    p.add_argument("--slice", type=int, default=64, help="vector steps per turn")
    p.add_argument("--smoke", action="store_true", help="tiny budget for CI")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    steps = 16 if args.smoke else args.steps
    load = os.getloadavg()[0]
    sps = measure(tuple(args.envs), args.num_envs, steps, min(args.slice, steps))
    res = {"num_envs": args.num_envs, "vector_steps": steps, "vectorization": "sync",
           "cpu_count": os.cpu_count(), "load_average": [load, os.getloadavg()[0]],
           **simulator_versions(), "env_steps_per_s": sps}
    if args.json:
        print(json.dumps(res))
        return
    print(f"{args.num_envs} envs, {steps} vector steps per task, mujoco {res['mujoco']}, "
          f"dm_control {res['dm_control']}, {res['cpu_count']} CPU cores, load average "
          f"{res['load_average'][0]:.1f} -> {res['load_average'][1]:.1f}")
    for env_id, value in sps.items():
        print(f"{env_id:36s} {value:8.0f} env steps/s")


if __name__ == "__main__":
    main()
