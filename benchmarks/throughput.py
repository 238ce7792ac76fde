"""Training throughput on HalfCheetah-v5, all in one process: raw env, SB3 PPO, our PPO, DiffPPO.

    python benchmarks/throughput.py --json            # 65,536 env steps each (~5 min on 2 cores)
    python benchmarks/throughput.py --smoke --json    # tiny budget (CI)
    python benchmarks/throughput.py --device cuda     # our learners on a GPU

Every learner gets the same env count (16, SyncVectorEnv / SB3's DummyVecEnv) and the same
budget of env steps, and is timed from construction (env creation included) to the end of its
last update. Rows: raw env steps/s with random actions; Stable-Baselines3 PPO with its defaults
(n_steps 2048 per env, batch 64, 10 epochs: what a user would pick); our Gaussian PPO and DiffPPO
at K = 4 and 8 with `PPOConfig.mujoco`. Ratios printed: ours / SB3 (target >= 1.5) and DiffPPO
K=8 / ours (target >= 0.5). For our learners the time is split into env stepping, the rest of the
rollout (the denoising chain, value and log-prob passes) and the update.
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


def raw_env_sps(num_envs: int, steps: int) -> float:
    envs = make_vector_env(ENV_ID, num_envs)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (steps // num_envs, num_envs, 6)).astype(np.float32)
    t = time.perf_counter()
    for a in acts:
        envs.step(a)
    dt = time.perf_counter() - t
    envs.close()
    return acts.shape[0] * num_envs / dt


def sb3_ppo_sps(num_envs: int, budget: int, device: str) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    t = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=num_envs, seed=0)
    model = PPO("MlpPolicy", env, seed=0, device=device, verbose=0)
    model.learn(total_timesteps=budget)
    dt = time.perf_counter() - t
    env.close()
    return model.num_timesteps / dt


def ours_sps(policy: str, num_steps: int, num_envs: int, budget: int, device: str,
             smoke: bool) -> dict:
    extra = dict(num_env_steps=16, update_epochs=2) if smoke else {}
    cfg = ppo_mod.PPOConfig.mujoco(policy, env_id=ENV_ID, num_steps=num_steps,
                                   num_envs=num_envs, total_env_steps=budget, device=device,
                                   **extra)
    timers = {"rollout": 0.0, "env": 0.0}
    real_rollout = ppo_mod.collect_rollout

    def timed_rollout(envs, *args, **kwargs):
        real_step = envs.step

        def timed_step(action):
            t0 = time.perf_counter()
            out = real_step(action)
            timers["env"] += time.perf_counter() - t0
            return out

        envs.step = timed_step
        t0 = time.perf_counter()
        try:
            return real_rollout(envs, *args, **kwargs)
        finally:
            timers["rollout"] += time.perf_counter() - t0
            del envs.step

    ppo_mod.collect_rollout = timed_rollout
    try:
        t = time.perf_counter()
        learner = ppo_mod.PPO(cfg)
        for _ in range(cfg.num_iterations):
            learner.train_iteration()
        learner.close()
        dt = time.perf_counter() - t
    finally:
        ppo_mod.collect_rollout = real_rollout
    steps = cfg.num_iterations * cfg.env_steps_per_iteration
    return {"sps": steps / dt, "seconds": dt,
            "fraction_env": timers["env"] / dt,
            "fraction_chain_and_rollout": (timers["rollout"] - timers["env"]) / dt,
            "fraction_update_and_setup": 1 - timers["rollout"] / dt}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=65_536, help="env steps per learner")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 measured best)")
    p.add_argument("--smoke", action="store_true", help="tiny budget for CI")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    budget = 2 * args.num_envs * 16 if args.smoke else args.budget

    res: dict = {"env_id": ENV_ID, "num_envs": args.num_envs, "budget": budget,
                 "device": args.device, "threads": args.threads,
                 "torch": torch.__version__}
    res["raw_env_sps"] = raw_env_sps(args.num_envs, budget)
    res["sb3_ppo_sps"] = (_sb3_smoke(args.num_envs, args.device) if args.smoke
                          else sb3_ppo_sps(args.num_envs, budget, args.device))
    for name, policy, K in [("ours_ppo", "gaussian", 1), ("ours_diffppo_k4", "diffusion", 4),
                            ("ours_diffppo_k8", "diffusion", 8)]:
        res[name] = ours_sps(policy, K, args.num_envs, budget, args.device, args.smoke)
    res["ratio_ours_ppo_vs_sb3"] = res["ours_ppo"]["sps"] / res["sb3_ppo_sps"]
    res["ratio_diffppo_k8_vs_ours_ppo"] = res["ours_diffppo_k8"]["sps"] / res["ours_ppo"]["sps"]
    res["ratio_diffppo_k4_vs_ours_ppo"] = res["ours_diffppo_k4"]["sps"] / res["ours_ppo"]["sps"]
    res["targets_met"] = {"ours_ppo >= 1.5 x sb3": res["ratio_ours_ppo_vs_sb3"] >= 1.5,
                          "diffppo_k8 >= 0.5 x ours": res["ratio_diffppo_k8_vs_ours_ppo"] >= 0.5}
    if args.json:
        print(json.dumps(res))
        return
    print(f"{'learner':22s} {'env steps/s':>12s}")
    print(f"{'raw env (random)':22s} {res['raw_env_sps']:12.0f}")
    print(f"{'SB3 PPO (defaults)':22s} {res['sb3_ppo_sps']:12.0f}")
    for name in ("ours_ppo", "ours_diffppo_k4", "ours_diffppo_k8"):
        r = res[name]
        print(f"{name:22s} {r['sps']:12.0f}   env {r['fraction_env']:.0%}, chain+rollout "
              f"{r['fraction_chain_and_rollout']:.0%}, update {r['fraction_update_and_setup']:.0%}")
    print(f"ours PPO / SB3 PPO      {res['ratio_ours_ppo_vs_sb3']:.2f}  (target >= 1.5)")
    print(f"DiffPPO K=8 / ours PPO  {res['ratio_diffppo_k8_vs_ours_ppo']:.2f}  (target >= 0.5)")


def _sb3_smoke(num_envs: int, device: str) -> float:
    """SB3 PPO with n_steps=64 (its default 2048 x 16 envs is too long for a smoke run)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    t = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=num_envs, seed=0)
    model = PPO("MlpPolicy", env, n_steps=64, seed=0, device=device, verbose=0)
    model.learn(total_timesteps=num_envs * 64)
    env.close()
    return model.num_timesteps / (time.perf_counter() - t)


if __name__ == "__main__":
    main()
