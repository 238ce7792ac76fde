"""The shipped MuJoCo runs of notebooks 05 and 06, each (env, algo, seed) in damdp_lite/shipped.

    python benchmarks/mujoco_runs.py --steps 500000                  # all runs, one after another
    python benchmarks/mujoco_runs.py --steps 500000 --shard 0/2      # half of them (two processes)

`--algos` takes CLI names and aliases (ppo = Gaussian PPO, diffppo, reppo, diffreppo, ...). Each
run is `damdp_lite.train.train` on `damdp_lite/shipped/mujoco/{env}_{algo}_s{seed}`; running
the command again resumes unfinished runs from their checkpoints and skips finished ones, so it
can be restarted after a session ends (start it with nohup). Only config.json and progress.csv
are committed (checkpoints are git-ignored); `damdp-lite reproduce NAME` re-runs one of them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from damdp_lite.algos import resolve
from damdp_lite.results import SHIPPED_RUNS
from damdp_lite.train import RunConfig, algo_config, train


def run_names(envs: list[str], algos: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
    """All (env, algo, seed), seeds outermost so that complete seeds arrive first; the algo
    order alternates between envs so that `--shard i/2` splits slow and fast runs evenly."""
    return [(e, a, s) for s, (j, e) in itertools.product(seeds, enumerate(envs))
            for a in (algos if j % 2 == 0 else algos[::-1])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Hopper-v5"])
    p.add_argument("--algos", nargs="+", default=["ppo", "diffppo"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1_000_000, help="env steps per run")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at i")
    args = p.parse_args()
    i, n = (int(x) for x in args.shard.split("/"))
    for env_id, algo, seed in run_names(args.envs, args.algos, args.seeds)[i::n]:
        spec, implied = resolve(algo)
        config = algo_config(algo, policy=implied.get("policy", "gaussian"), env_id=env_id,
                             total_env_steps=args.steps, seed=seed)
        run = RunConfig(run_dir=str(SHIPPED_RUNS / f"{env_id}_{algo}_s{seed}"),
                        label="" if algo == spec.name else algo)
        t0 = time.time()
        # a bar in a terminal, not in nohup logs
        res = train(config, run, progress=sys.stderr.isatty())
        last = res.history[-1] if res.history else {}
        print(f"{env_id} {algo} s{seed}: resumed at {res.resumed_from}, "
              f"{time.time() - t0:.0f} s, eval {last.get('eval_return')}", flush=True)


if __name__ == "__main__":
    main()
