"""Diffusion / Gaussian runtime ratio of REPPO, WPO and SAC with the CLI presets, in one process.

    python benchmarks/runtime_ratio.py --json          # HalfCheetah-v5, 8,192 timed env steps each
    python benchmarks/runtime_ratio.py --smoke --json  # tiny budget (CI)
    python benchmarks/runtime_ratio.py --device cuda   # on a GPU, like the paper's JAX/MJX runs

Each learner is built from its CLI preset (`train.algo_config`, seed 0) on the same env. The first
`--warmup` iterations are not timed (set-up, first-call overheads); SAC's `learning_starts` is set
to one iteration, so that every timed SAC iteration includes its gradient steps, as in a shipped
run after its first 5,000 steps. The learners run interleaved, one iteration each in turn
(`throughput.round_robin`), so that a change of load on the machine hits all of them alike; this
is why the ratios mean more than the wall clocks of separate runs. Printed: seconds per 1,000 env
steps of each learner and diffusion / Gaussian per pair, beside the paper's ratios (its runtime
table, 12 DMC tasks, hardware not stated; benchmarks.md §2.3: DA-MDP REPPO / REPPO 4.21-4.76,
DA-MDP WPO / WPO 3.73-4.89; the paper times no SAC pair).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch
from throughput import Timed, round_robin

from damdp_lite.algos import resolve
from damdp_lite.train import algo_config

PAIRS = (("reppo", "diffreppo"), ("wpo", "diffwpo"), ("sac", "diffsac"))
PAPER = {"reppo": (4.21, 4.76), "wpo": (3.73, 4.89), "sac": None}  # diff / base, min-max


class Preset(Timed):
    """One learner with its CLI preset; one slice = one `train_iteration` (timed after warm-up)."""

    def __init__(self, algo: str, env_id: str, budget: int, warmup: int, device: str,
                 smoke: bool, kappa: int | None = None) -> None:
        super().__init__(algo, budget)
        over: dict = {}
        spec, implied = resolve(algo)
        if spec.name == "sac":
            over["learning_starts"] = 0
        else:
            if smoke:
                over.update(num_env_steps=4, update_epochs=1)
            if kappa is not None:  # no effect on a Gaussian (K = 1: every row is used)
                over["diffusion_steps_per_update"] = kappa
        preset = algo_config(algo, policy=implied.get("policy", "gaussian"), env_id=env_id,
                             device=device, **over)
        self.per_iteration = preset.env_steps_per_iteration
        iterations = warmup + -(-budget // self.per_iteration)
        self.config = dataclasses.replace(preset,
                                          total_env_steps=iterations * self.per_iteration)
        self.learner = spec.learner_cls(self.config)
        for _ in range(warmup):
            self.learner.train_iteration()

    def advance(self) -> None:
        self.timed(self.learner.train_iteration)
        self.steps += self.per_iteration


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--budget", type=int, default=8_192, help="timed env steps per learner")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per learner")
    p.add_argument("--pairs", nargs="+", default=[b for b, _ in PAIRS],
                   choices=[b for b, _ in PAIRS], help="base algorithms of the pairs to time")
    p.add_argument("--kappa", type=int, default=None,
                   help="chain steps per env step in the DA-MDP REPPO/WPO updates (preset: 2; "
                        "0: all K, as the official code)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--smoke", action="store_true", help="tiny budget for CI")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    budget, warmup = (64, 0) if args.smoke else (args.budget, args.warmup)
    pairs = [(b, d) for b, d in PAIRS if b in args.pairs]
    runners = [Preset(a, args.env, budget, warmup, args.device, args.smoke, args.kappa)
               for pair in pairs for a in pair]
    round_robin(runners)
    for r in runners:
        r.learner.close()
    res: dict = {"env_id": args.env, "device": args.device, "threads": args.threads,
                 "torch": torch.__version__, "warmup_iterations": warmup, "smoke": args.smoke,
                 "kappa": "preset" if args.kappa is None else args.kappa}
    res["learners"] = {r.name: {**r.result(), "seconds_per_1k_steps": 1000 * r.seconds / r.steps,
                                "chain_length": r.config.policy.num_steps}
                       for r in runners}
    sec = {n: v["seconds_per_1k_steps"] for n, v in res["learners"].items()}
    res["ratios"] = {f"{d} / {b}": sec[d] / sec[b] for b, d in pairs}
    res["paper_ratios"] = {f"{d} / {b}": PAPER[b] for b, d in pairs}
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'learner':10s} {'K':>2s} {'env steps/s':>11s} {'s per 1k steps':>14s}")
    for name, v in res["learners"].items():
        print(f"{name:10s} {v['chain_length']:2d} {v['sps']:11.0f} "
              f"{v['seconds_per_1k_steps']:14.2f}")
    for b, d in pairs:
        paper = PAPER[b]
        print(f"{d} / {b}: {res['ratios'][f'{d} / {b}']:.2f}x"
              + (f" (paper: {paper[0]}-{paper[1]}x)" if paper else " (not in the paper)"))


if __name__ == "__main__":
    main()
