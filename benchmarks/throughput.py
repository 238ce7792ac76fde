"""Training throughput on HalfCheetah-v5, all in one process: raw env, SB3 PPO, our PPO, DiffPPO.

    python benchmarks/throughput.py --json            # 65,536 env steps each (~5 min on 2 cores)
    python benchmarks/throughput.py --smoke --json    # tiny budget (CI)
    python benchmarks/throughput.py --device cuda     # our learners on a GPU

Every learner gets the same env count (16, SyncVectorEnv / SB3's DummyVecEnv) and the same
budget of env steps, and is timed from construction (env creation included) to the end of its
last update. Rows: raw env steps/s with random actions; Stable-Baselines3 PPO with its defaults
(64 x 64 tanh nets, n_steps 2048 per env, batch 64, 10 epochs: what a user would pick) and with
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


def sb3_ppo_sps(num_envs: int, budget: int, device: str, hidden: tuple[int, ...] | None = None,
                n_steps: int = 2048) -> float:
    """SB3 PPO with its defaults (64 x 64 tanh nets, n_steps 2048, batch 64, 10 epochs), or with
    `hidden` widths for policy and value (to compare at our network size)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    t = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=num_envs, seed=0)
    kwargs = {"policy_kwargs": {"net_arch": list(hidden)}} if hidden else {}
    model = PPO("MlpPolicy", env, n_steps=n_steps, seed=0, device=device, verbose=0, **kwargs)
    model.learn(total_timesteps=budget)
    dt = time.perf_counter() - t
    env.close()
    return model.num_timesteps / dt


def ours_sps(policy: str, num_steps: int, num_envs: int, budget: int, device: str,
             smoke: bool, hidden: tuple[int, ...] | None = None) -> dict:
    extra = dict(num_env_steps=16, update_epochs=2) if smoke else {}
    if hidden:
        extra.update(hidden_sizes=hidden, value_hidden_sizes=hidden)
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
    sb3_budget, sb3_n_steps = (args.num_envs * 64, 64) if args.smoke else (budget, 2048)
    res["sb3_ppo_sps"] = sb3_ppo_sps(args.num_envs, sb3_budget, args.device, None, sb3_n_steps)
    res["sb3_ppo_256_sps"] = sb3_ppo_sps(args.num_envs, sb3_budget, args.device, (256, 256),
                                         sb3_n_steps)
    small = (64, 64)
    for name, policy, K, hidden in [("ours_ppo", "gaussian", 1, None),
                                    ("ours_diffppo_k4", "diffusion", 4, None),
                                    ("ours_diffppo_k8", "diffusion", 8, None),
                                    ("ours_ppo_64", "gaussian", 1, small),
                                    ("ours_diffppo_k8_64", "diffusion", 8, small)]:
        res[name] = ours_sps(policy, K, args.num_envs, budget, args.device, args.smoke, hidden)
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
