"""Training throughput on HalfCheetah-v5, all in one process: raw env, SB3 PPO, our PPO, DiffPPO.

    python benchmarks/throughput.py --json            # 65,536 env steps each (~10 min, 2 cores)
    python benchmarks/throughput.py --smoke --json    # tiny budget (CI)
    python benchmarks/throughput.py --device cuda     # our learners on a GPU

Every learner gets the same env count (16, SyncVectorEnv / SB3's DummyVecEnv) and the same
budget of env steps, and is timed from construction (env creation included) to the end of its
last update. The learners run interleaved, one iteration each in turn, so that a change of load
on the machine during the run affects all of them alike.

Rows: raw env steps/s with random actions; Stable-Baselines3 PPO with its defaults (64 x 64 tanh
nets, n_steps 2048 per env, batch 64, 10 epochs: what a user would pick) and with
our 2 x 256 widths; our Gaussian PPO and DiffPPO at K = 4 and 8 with `PPOConfig.mujoco` (2 x 256),
and both again with SB3's 64 x 64 widths. Ratios printed: ours / SB3 (target >= 1.5) at each
side's defaults and at matched widths, and DiffPPO K=8 / ours (target >= 0.5). For our learners
the time is split into env stepping, the rest of the rollout (the denoising chain, value and
log-prob passes) and the update.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from damdp_lite.algos import ppo as ppo_mod
from damdp_lite.envs.make import make_vector_env

ENV_ID = "HalfCheetah-v5"


class Timed:
    """One learner advanced a slice at a time; wall-clock seconds are summed per learner.

    `start()` builds it (timed: env creation and network set-up count), `advance()` runs one
    slice and returns the env steps it took. `parts` splits our learners' time into env steps,
    the rest of the rollout and the update.
    """

    def __init__(self, name: str, budget: int) -> None:
        self.name, self.budget, self.steps, self.seconds = name, budget, 0, 0.0
        self.parts = {"env": 0.0, "rollout": 0.0}

    @property
    def done(self) -> bool:
        return self.steps >= self.budget

    def timed(self, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.seconds += time.perf_counter() - t0
        return out

    def result(self) -> dict:
        out = {"sps": self.steps / self.seconds, "seconds": self.seconds, "env_steps": self.steps}
        if self.parts["rollout"]:
            out.update(fraction_env=self.parts["env"] / self.seconds,
                       fraction_chain_and_rollout=(self.parts["rollout"] - self.parts["env"])
                       / self.seconds,
                       fraction_update_and_setup=1 - self.parts["rollout"] / self.seconds)
        return out


class RawEnv(Timed):
    """Random actions through the same `SyncVectorEnv` our learners use."""

    def __init__(self, num_envs: int, budget: int) -> None:
        super().__init__("raw_env", budget)
        self.num_envs = num_envs
        self.envs = self.timed(make_vector_env, ENV_ID, num_envs)
        self.timed(self.envs.reset, 0)
        self.rng = np.random.default_rng(0)

    def advance(self) -> None:
        acts = self.rng.uniform(-1, 1, (128, self.num_envs, 6)).astype(np.float32)
        t0 = time.perf_counter()
        for a in acts:
            self.envs.step(a)
        self.seconds += time.perf_counter() - t0
        self.steps += acts.shape[0] * self.num_envs


class SB3(Timed):
    """SB3 PPO with its defaults (64 x 64 tanh nets, n_steps 2048 per env, batch 64, 10 epochs),
    or with `hidden` widths for policy and value; one slice = one SB3 iteration."""

    def __init__(self, name: str, num_envs: int, budget: int, device: str,
                 hidden: tuple[int, ...] | None = None, n_steps: int = 2048) -> None:
        super().__init__(name, budget)
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env

        t0 = time.perf_counter()
        env = make_vec_env(ENV_ID, n_envs=num_envs, seed=0)
        kwargs = {"policy_kwargs": {"net_arch": list(hidden)}} if hidden else {}
        self.model = PPO("MlpPolicy", env, n_steps=n_steps, seed=0, device=device, verbose=0,
                         **kwargs)
        self.seconds += time.perf_counter() - t0
        self.chunk = n_steps * num_envs

    def advance(self) -> None:
        self.timed(lambda: self.model.learn(self.chunk, reset_num_timesteps=False))
        self.steps = self.model.num_timesteps


class Ours(Timed):
    """Our `PPO` learner (`PPOConfig.mujoco`); one slice = one iteration."""

    def __init__(self, name: str, policy: str, num_steps: int | None, num_envs: int, budget: int,
                 device: str, smoke: bool, hidden: tuple[int, ...] | None = None,
                 kappa: int | None = None) -> None:
        super().__init__(name, budget)
        extra = dict(num_env_steps=16, update_epochs=2) if smoke else {}
        if kappa is not None:
            extra["diffusion_steps_per_update"] = kappa
        if hidden:
            extra.update(hidden_sizes=hidden, value_hidden_sizes=hidden)
        if num_steps is not None:  # K: a field of the diffusion policy only
            extra["num_steps"] = num_steps
        cfg = ppo_mod.PPOConfig.mujoco(policy=policy, env_id=ENV_ID, num_envs=num_envs,
                                       total_env_steps=budget, device=device, **extra)
        self.per_iteration = cfg.env_steps_per_iteration
        self.learner = self.timed(ppo_mod.PPO, cfg)
        real_step = self.learner.envs.step

        def timed_step(action):
            t0 = time.perf_counter()
            out = real_step(action)
            self.parts["env"] += time.perf_counter() - t0
            return out

        self.learner.envs.step = timed_step

    def advance(self) -> None:
        real_rollout = ppo_mod.collect_rollout

        def timed_rollout(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real_rollout(*args, **kwargs)
            finally:
                self.parts["rollout"] += time.perf_counter() - t0

        ppo_mod.collect_rollout = timed_rollout
        try:
            self.timed(self.learner.train_iteration)
        finally:
            ppo_mod.collect_rollout = real_rollout
        self.steps += self.per_iteration


def round_robin(runners: list[Timed]) -> None:
    """Advance every unfinished runner one slice per round, until all reach their budget.

    Interleaving makes the ratios robust to load that changes during the benchmark (other jobs
    on a shared machine): each learner sees the same mix of quiet and busy moments.
    """
    while not all(r.done for r in runners):
        for r in runners:
            if not r.done:
                r.advance()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=65_536, help="env steps per learner")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 measured best)")
    p.add_argument("--smoke", action="store_true", help="tiny budget for CI")
    p.add_argument("--kappa", type=int, default=None,
                   help="chain steps per env step in DiffPPO's update (default: the preset's 2)")
    p.add_argument("--learners", nargs="+", default=None,
                   help="only these rows (e.g. ours_ppo ours_diffppo_k8); ratios need their pair")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    budget = 2 * args.num_envs * 16 if args.smoke else args.budget

    res: dict = {"env_id": ENV_ID, "num_envs": args.num_envs, "budget": budget,
                 "device": args.device, "threads": args.threads,
                 "torch": torch.__version__}
    sb3_steps = 64 if args.smoke else 2048
    sb3_budget = args.num_envs * sb3_steps * (1 if args.smoke else budget // (args.num_envs
                                                                             * sb3_steps))
    n, dev, kappa = args.num_envs, args.device, args.kappa
    res["kappa"] = kappa if kappa is not None else "preset"
    makers = {
        "raw_env": lambda: RawEnv(n, budget),
        "sb3_ppo": lambda: SB3("sb3_ppo", n, sb3_budget, dev, None, sb3_steps),
        "sb3_ppo_256": lambda: SB3("sb3_ppo_256", n, sb3_budget, dev, (256, 256), sb3_steps),
        "ours_ppo": lambda: Ours("ours_ppo", "gaussian", None, n, budget, dev, args.smoke),
        "ours_diffppo_k4": lambda: Ours("ours_diffppo_k4", "diffusion", 4, n, budget, dev,
                                        args.smoke, kappa=kappa),
        "ours_diffppo_k8": lambda: Ours("ours_diffppo_k8", "diffusion", 8, n, budget, dev,
                                        args.smoke, kappa=kappa),
        "ours_ppo_64": lambda: Ours("ours_ppo_64", "gaussian", None, n, budget, dev, args.smoke,
                                    (64, 64)),
        "ours_diffppo_k8_64": lambda: Ours("ours_diffppo_k8_64", "diffusion", 8, n, budget,
                                           dev, args.smoke, (64, 64), kappa=kappa)}
    runners = [makers[name]() for name in (args.learners or makers)]
    round_robin(runners)
    out = {r.name: r.result() for r in runners}
    for name in ("raw_env", "sb3_ppo", "sb3_ppo_256"):
        if name in out:
            res[f"{name}_sps"] = out.pop(name)["sps"]
    res.update(out)
    if args.learners:  # a subset: print what was measured, ratios only between our rows
        if "ours_ppo" in out and "ours_diffppo_k8" in out:
            res["ratios"] = {"diffppo_k8 / ours_ppo": out["ours_diffppo_k8"]["sps"]
                             / out["ours_ppo"]["sps"]}
        print(json.dumps(res))
        return
    sps = {k: (v["sps"] if isinstance(v, dict) else v) for k, v in res.items()
           if k.endswith("sps") or k.startswith("ours_")}
    res["ratios"] = {
        "ours_ppo / sb3_ppo (each at its defaults)": sps["ours_ppo"] / sps["sb3_ppo_sps"],
        "ours_ppo_64 / sb3_ppo (both 64x64 nets)": sps["ours_ppo_64"] / sps["sb3_ppo_sps"],
        "ours_ppo / sb3_ppo_256 (both 2x256 nets)": sps["ours_ppo"] / sps["sb3_ppo_256_sps"],
        "diffppo_k8 / ours_ppo": sps["ours_diffppo_k8"] / sps["ours_ppo"],
        "diffppo_k4 / ours_ppo": sps["ours_diffppo_k4"] / sps["ours_ppo"],
        "diffppo_k8_64 / ours_ppo_64": sps["ours_diffppo_k8_64"] / sps["ours_ppo_64"]}
    res["targets"] = {"ours_ppo >= 1.5 x sb3_ppo": res["ratios"][
        "ours_ppo / sb3_ppo (each at its defaults)"] >= 1.5,
        "diffppo_k8 >= 0.5 x ours_ppo": res["ratios"]["diffppo_k8 / ours_ppo"] >= 0.5}
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'learner':22s} {'env steps/s':>12s}")
    print(f"{'raw env (random)':22s} {res['raw_env_sps']:12.0f}")
    print(f"{'SB3 PPO (defaults)':22s} {res['sb3_ppo_sps']:12.0f}")
    print(f"{'SB3 PPO (2x256 nets)':22s} {res['sb3_ppo_256_sps']:12.0f}")
    for name in ("ours_ppo", "ours_diffppo_k4", "ours_diffppo_k8", "ours_ppo_64",
                 "ours_diffppo_k8_64"):
        r = res[name]
        print(f"{name:22s} {r['sps']:12.0f}   env {r['fraction_env']:.0%}, chain+rollout "
              f"{r['fraction_chain_and_rollout']:.0%}, update {r['fraction_update_and_setup']:.0%}")
    for key, val in res["ratios"].items():
        print(f"{key:45s} {val:.2f}")


if __name__ == "__main__":
    main()
