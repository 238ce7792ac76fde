"""Sequential multimodality: the multi-goal point env and the turning multi-well / GMM (method.md
§7.4-§7.6; notebook 08).

Part 1, `multigoal`: DiffSAC, SAC (tanh-Gaussian), DA-MDP REPPO and REPPO (tanh-Gaussian), each
trained on `damdp_lite/MultiGoal-v0` at the fixed temperature of `presets.MULTIGOAL_TEMPERATURE`
with the presets of `damdp_lite.presets` (`multigoal_config`), then run from the symmetric start
state s0 = 0. The exact optimum at s0 sends a quarter of the episodes to each goal (the env is
symmetric under 90-degree rotations about the origin); there is no closed form beyond that.
Per run (`N_EPISODES` episodes of the stochastic policy, `EVAL_SEED + seed`):
- `goals_reached`: how many of the 4 goals at least one episode ended at, and `goal_fractions`,
  the fraction of episodes that ended at each goal, in the order of `MultiGoalEnv.goals`
  ((5, 0), (-5, 0), (0, 5), (0, -5); `metrics.goals_reached`); `goals_reached_5pct` counts only
  goals with at least 5 % of the episodes;
- `eval_return` (mean, and its standard error), `eval_length`;
- `paths`: the first `N_PATHS` episodes' positions (rounded to 0.01, until the episode ended);
- `first_actions`: `N_FIRST` samples of the policy's action at s0 (rounded to 0.001), the
  per-state distribution behind the paths; `first_dir_fractions`: the fraction of them pointing
  closest to each goal's direction, and `first_centre_fraction`: the fraction with |a| < 0.25;
- training: `train_seconds`, `eval_seconds`, the training return of the last 10 % of iterations.

Part 2, `turning`: DiffPPO and Gaussian PPO (notebook 04's PPO presets, `turning_multi_config`)
on the turning multi-well (T = 0.05) and the turning GMM (T = 1), evaluated in 8 states against
the exact optimum (`optimal_log_density`, per state): 200-bin histograms of `N_HIST` actions per
state (`metrics.state_histograms`), the plug-in KL(q || pi*) and KL(pi* || q) of the histogram
against the optimum's bin masses (as `toys_turning.histogram_kls` and
`damdp_lite.bound.histogram_kl`), the total variation of the mode masses
(`metrics.mode_mass_errors`; modes split at the midpoints between neighbouring preferred turns /
mixture means) and the action std. States: the 8 initial headings of the multi-well; the centres
of the GMM's 8 heading bins.

Fixed seeds; nothing is asserted here, the numbers are measured and returned; progress goes to
stderr. The JSON (default `damdp_lite/shipped/08_multigoal.json`) is what notebook 08 loads.

    python benchmarks/toys_multigoal.py                     # both parts, seeds 0 1 2 (~25 min)
    python benchmarks/toys_multigoal.py --only turning --seeds 0
    python benchmarks/toys_multigoal.py --smoke --out /tmp/multigoal.json
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch

import damdp_lite as dl
import damdp_lite.envs  # noqa: F401  (registers the toy envs)
from damdp_lite import metrics
from damdp_lite.envs import MultiGoalEnv, TurningGMMEnv, TurningMultiWellEnv
from damdp_lite.presets import (
    MULTIGOAL_ID,
    MULTIGOAL_LABELS,
    MULTIGOAL_METHODS,
    MULTIGOAL_TEMPERATURE,
    TURNING_LABELS,
    TURNING_MULTI_ENVS,
    config_fields,
    multigoal_config,
    seeded_policy,
    turning_multi_config,
    turning_policy,
)
from damdp_lite.train import train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toys_turning import histogram_kls, write_payload  # noqa: E402  (the same estimators)

# ---------------------------------------------------------------------------------------------
# Settings of the evaluation (the training presets live in damdp_lite/presets.py)
# ---------------------------------------------------------------------------------------------

N_EPISODES, N_EPISODES_SMOKE = 100, 10
"""Evaluation episodes from s0 = 0 per multi-goal run."""
N_PATHS, N_PATHS_SMOKE = 12, 3
"""Stored trajectories per multi-goal run."""
N_FIRST, N_FIRST_SMOKE = 400, 50
"""Stored action samples at s0 per multi-goal run."""
START = (0.0, 0.0)
"""The symmetric start state s0."""
MIN_FRACTION = 0.05
"""A goal counts in `goals_reached_5pct` when at least this fraction of the episodes end there."""
CENTRE_RADIUS = 0.25
"""`first_centre_fraction`: first actions with |a| below this (a centred unimodal blob puts
mass here; four clusters towards the goals do not)."""
TURNING_METHODS = ("diffppo", "gaussian_ppo")
"""The diffusion method and its Gaussian base on the turning multi-well / GMM."""
N_HIST, N_HIST_SMOKE = 20_000, 2_000
"""Action samples per state of a turning run."""
HIST_BINS = 200
EVAL_SEED = 20_000
"""Evaluation generators use EVAL_SEED + seed, independent of the training noise."""


def log(msg: str) -> None:
    print(f"[multigoal] {msg}", file=sys.stderr, flush=True)


def _progress(name: str, seed: int, iterations: int):
    every = max(1, iterations // 5)

    def callback(row: dict) -> None:
        if (row["iteration"] + 1) % every == 0:
            log(f"{name} seed {seed}: iteration {row['iteration'] + 1}/{iterations}, "
                f"{row['elapsed_s']:.0f} s")
    return callback


def _tail_return(history: list[dict]) -> float | None:
    """Mean training return of the last 10 % of iterations (those with a finished episode)."""
    tail = history[-max(1, len(history) // 10):]
    rets = [r["episode_return"] for r in tail if math.isfinite(r["episode_return"])]
    return float(np.mean(rets)) if rets else None


# ---------------------------------------------------------------------------------------------
# Part 1: the multi-goal env
# ---------------------------------------------------------------------------------------------


def first_action_stats(actions: np.ndarray, goals: np.ndarray = MultiGoalEnv.goals) -> dict:
    """`first_dir_fractions` `(G,)`: fraction of actions `(n, 2)` whose direction is closest to
    each goal's (largest cosine); `first_centre_fraction`: fraction with |a| < CENTRE_RADIUS;
    the mean and per-coordinate std of the actions."""
    unit = goals / np.linalg.norm(goals, axis=1, keepdims=True)  # (G, 2)
    closest = np.argmax(actions @ unit.T, axis=1)  # (n,)
    return {"first_dir_fractions": (np.bincount(closest, minlength=len(goals))
                                    / len(actions)).tolist(),
            "first_centre_fraction": float((np.linalg.norm(actions, axis=1)
                                            < CENTRE_RADIUS).mean()),
            "first_mean": actions.mean(0).tolist(), "first_std": actions.std(0).tolist()}


@torch.no_grad()
def evaluate_multigoal(policy: dl.ChainPolicy, seed: int, smoke: bool) -> dict:
    """Episodes of the stochastic policy from s0 = 0 and its action samples at s0."""
    env = MultiGoalEnv()
    gen = torch.Generator().manual_seed(EVAL_SEED + seed)
    n_ep = N_EPISODES_SMOKE if smoke else N_EPISODES

    def act(obs: np.ndarray) -> np.ndarray:
        return policy.act(torch.as_tensor(obs), generator=gen).numpy()

    ep = env.rollout_paths(act, n_ep, num_steps=30, start=START)
    final = ep["positions"][np.arange(n_ep), ep["lengths"]]  # (E, 2)
    n_goals, fractions = metrics.goals_reached(final, env.goals, env.goal_threshold)
    returns = ep["rewards"].sum(1)
    n_first = N_FIRST_SMOKE if smoke else N_FIRST
    s0 = torch.tensor([START], dtype=torch.float32).expand(n_first, -1)
    first = policy.act(s0, generator=gen).double().numpy()  # (n, 2)
    n_paths = N_PATHS_SMOKE if smoke else N_PATHS
    paths = [np.round(ep["positions"][i, :ep["lengths"][i] + 1], 2).tolist()
             for i in range(min(n_paths, n_ep))]
    return {"n_episodes": n_ep, "goals_reached": n_goals,
            "goals_reached_5pct": int((fractions >= MIN_FRACTION).sum()),
            "goal_fractions": fractions.tolist(),
            "none_fraction": float(1.0 - fractions.sum()),
            "goal_of_episode": ep["goal"].tolist(),
            "eval_return": float(returns.mean()),
            "eval_return_se": float(returns.std() / math.sqrt(n_ep)),
            "eval_length": float(ep["lengths"].mean()),
            "paths": paths, "first_actions": np.round(first, 3).tolist(),
            **first_action_stats(first)}


def train_and_evaluate_multigoal(method: str, seed: int, smoke: bool = False) -> dict:
    """One multi-goal training run (one method, one seed) and its evaluation."""
    cfg = multigoal_config(method, seed, smoke)
    policy = seeded_policy(cfg, 2, gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    t0 = time.perf_counter()
    history = train(cfg, progress=False, policy=policy,
                    callback=_progress(method, seed, cfg.num_iterations)).history
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = evaluate_multigoal(policy, seed, smoke)
    eval_s = time.perf_counter() - t1
    log(f"{method} seed {seed}: {ev['goals_reached']} goals {np.round(ev['goal_fractions'], 2)}"
        f", return {ev['eval_return']:.0f}, train {train_s:.0f} s")
    return {"seed": seed, **ev, "train_return_last10pct": _tail_return(history),
            "train_seconds": train_s, "eval_seconds": eval_s,
            "env_steps": cfg.num_iterations * cfg.env_steps_per_iteration,
            **policy.describe()}


def _config_record(cfg) -> dict:
    record = config_fields(cfg)
    record.pop("seed")
    return record


def run_multigoal_method(method: str, seeds: Sequence[int] = (0, 1, 2), smoke: bool = False
                         ) -> dict:
    """Every seed of one multi-goal method, with per-seed summaries; a failed seed records its
    error."""
    runs: dict[str, dict] = {}
    for seed in seeds:
        try:
            runs[str(seed)] = train_and_evaluate_multigoal(method, seed, smoke)
        except (FloatingPointError, RuntimeError, ValueError) as exc:
            log(f"{method} seed {seed} failed: {type(exc).__name__}: {exc}")
            runs[str(seed)] = {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    ok = {s: r for s, r in runs.items() if "error" not in r}
    return {"method": method, "label": MULTIGOAL_LABELS[method], "env_id": MULTIGOAL_ID,
            "temperature": MULTIGOAL_TEMPERATURE, "smoke": smoke,
            "config": _config_record(multigoal_config(method, 0, smoke)), "seeds": runs,
            "summary": {key: {s: r[key] for s, r in ok.items()}
                        for key in ("goals_reached", "goals_reached_5pct", "goal_fractions",
                                    "eval_return", "first_centre_fraction", "train_seconds")}}


# ---------------------------------------------------------------------------------------------
# Part 2: turning multi-well and GMM against their exact optima
# ---------------------------------------------------------------------------------------------


def turning_env(name: str) -> TurningMultiWellEnv | TurningGMMEnv:
    return TurningMultiWellEnv() if name == "multi_well" else TurningGMMEnv()


def state_headings(name: str) -> np.ndarray:
    """The 8 evaluation headings (degrees): the multi-well's initial headings, the centres of
    the GMM's heading bins."""
    env = turning_env(name)
    if name == "multi_well":
        return np.asarray(env.initial_headings_deg, float)
    return (np.arange(env.num_bins) + 0.5) * env.bin_width_deg


def state_observations(name: str) -> np.ndarray:
    """(cos, sin) of `state_headings`, `(8, 2)` float32 (as the env computes them)."""
    rad = np.radians(state_headings(name))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def exact_state_bin_masses(name: str, temperature: float, edges: np.ndarray, sub: int = 16
                           ) -> np.ndarray:
    """Mass of pi*(. | s) in each bin of `edges` for each evaluation state, `(8, bins)`
    (midpoint rule, `sub` points per bin, from the env's `optimal_log_density`)."""
    env = turning_env(name)
    bins = len(edges) - 1
    x = edges[0] + (np.arange(bins * sub) + 0.5) * (edges[-1] - edges[0]) / (bins * sub)
    out = []
    for o in state_observations(name).astype(np.float64):
        logp = np.asarray(env.optimal_log_density(x, temperature, o))
        w = np.exp(logp - logp.max())
        out.append((w / w.sum()).reshape(bins, sub).sum(1))
    return np.stack(out)


def mode_edges_and_exact(name: str, temperature: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Per state: the edges of the mode regions from left to right, and the exact mode masses
    in that order `(8, M)`."""
    env = turning_env(name)
    edges, exact = [], []
    for o in state_observations(name).astype(np.float64):
        masses = env.optimal_mode_masses(temperature, o)
        if name == "multi_well":
            e = np.concatenate([[-1.0], env.midpoints_deg / env.max_turn_deg, [1.0]])
        else:
            mu = env.gmm_means[int(env.heading_bin(np.degrees(np.arctan2(o[1], o[0]))))]
            order = np.argsort(mu.astype(np.float64))
            srt = np.sort(mu.astype(np.float64))
            e = np.concatenate([[-1.0], 0.5 * (srt[1:] + srt[:-1]), [1.0]])
            masses = masses[order]
        edges.append(e)
        exact.append(masses)
    return edges, np.stack(exact)


@torch.no_grad()
def sample_state_actions(policy: dl.ChainPolicy, obs: np.ndarray, n: int, seed: int,
                         chunk: int = 20_000) -> np.ndarray:
    """`n` env actions of the stochastic chain in each state of `obs` `(S, 2)`, `(S, n)`."""
    gen = torch.Generator().manual_seed(seed)
    o = torch.as_tensor(obs)
    out = np.zeros((len(o), n))
    for s in range(len(o)):
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            a = policy.sample_chain(o[s:s + 1].expand(m, -1), generator=gen).action
            out[s, i:i + m] = a[:, 0].double().numpy()
    return out


def evaluate_turning(name: str, policy: dl.ChainPolicy, temperature: float, seed: int,
                     smoke: bool) -> dict:
    """Per-state histograms, histogram KLs and mode-mass errors against the exact optimum."""
    n = N_HIST_SMOKE if smoke else N_HIST
    actions = sample_state_actions(policy, state_observations(name), n, EVAL_SEED + seed)
    counts, edges = metrics.state_histograms(actions, HIST_BINS)
    kl_q, kl_p = histogram_kls(counts, exact_state_bin_masses(name, temperature, edges))
    mode_edges, exact = mode_edges_and_exact(name, temperature)
    per_state = []
    for s in range(len(actions)):
        measured = np.histogram(actions[s], bins=mode_edges[s])[0] / n
        err = metrics.mode_mass_errors(measured, exact[s])
        per_state.append({"heading_deg": float(state_headings(name)[s]),
                          "kl_q_pi": float(kl_q[s]), "kl_pi_q": float(kl_p[s]),
                          "mode_tv": err["tv"], "mode_masses": measured.tolist(),
                          "std": float(actions[s].std()), "mean": float(actions[s].mean())})
    return {"n_samples": n, "per_state": per_state, "hist_counts": counts.tolist(),
            "hist_edges": [float(edges[0]), float(edges[-1]), HIST_BINS],
            "mean_kl_q_pi": float(kl_q.mean()), "mean_kl_pi_q": float(kl_p.mean()),
            "mean_mode_tv": float(np.mean([p["mode_tv"] for p in per_state]))}


def train_and_evaluate_turning(name: str, method: str, seed: int, smoke: bool = False) -> dict:
    """One turning run (one env, one method, one seed) and its evaluation."""
    cfg = turning_multi_config(name, method, seed, smoke)
    policy = turning_policy(cfg)
    t0 = time.perf_counter()
    train(cfg, progress=False, policy=policy,
          callback=_progress(f"{name} {method}", seed, cfg.num_iterations))
    train_s = time.perf_counter() - t0
    ev = evaluate_turning(name, policy, cfg.temperature, seed, smoke)
    log(f"{name} {method} seed {seed}: mean KL(q||pi*) {ev['mean_kl_q_pi']:.3f}, "
        f"KL(pi*||q) {ev['mean_kl_pi_q']:.3f}, mode TV {ev['mean_mode_tv']:.3f}, "
        f"train {train_s:.0f} s")
    return {"seed": seed, **ev, "train_seconds": train_s,
            "env_steps": cfg.num_iterations * cfg.env_steps_per_iteration, **policy.describe()}


def exact_reference(name: str, temperature: float) -> dict:
    """The exact optimum in the evaluation states: histogram bin masses `(8, 200)`, mode masses
    (left to right) and the action std."""
    edges = np.linspace(-1.0, 1.0, HIST_BINS + 1)
    pi = exact_state_bin_masses(name, temperature, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    mean = pi @ centres
    std = np.sqrt(pi @ centres**2 - mean**2)
    _, exact = mode_edges_and_exact(name, temperature)
    return {"bin_masses": pi.tolist(), "mode_masses": exact.tolist(), "std": std.tolist()}


def run_turning(name: str, seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """Both methods on one turning env, every seed."""
    temperature = TURNING_MULTI_ENVS[name]["temperature"]
    results = {}
    for method in TURNING_METHODS:
        runs: dict[str, dict] = {}
        for seed in seeds:
            try:
                runs[str(seed)] = train_and_evaluate_turning(name, method, seed, smoke)
            except (FloatingPointError, RuntimeError, ValueError) as exc:
                log(f"{name} {method} seed {seed} failed: {type(exc).__name__}: {exc}")
                runs[str(seed)] = {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
        ok = {s: r for s, r in runs.items() if "error" not in r}
        results[method] = {
            "method": method, "label": TURNING_LABELS[method],
            "config": _config_record(turning_multi_config(name, method, 0, smoke)),
            "seeds": runs,
            "summary": {key: {s: r[key] for s, r in ok.items()}
                        for key in ("mean_kl_q_pi", "mean_kl_pi_q", "mean_mode_tv",
                                    "train_seconds")}}
    return {"env_id": TURNING_MULTI_ENVS[name]["env_id"], "temperature": temperature,
            "state_headings_deg": state_headings(name).tolist(),
            "reference": exact_reference(name, temperature), "results": results}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

PARTS = ("multigoal", "turning")


def run(parts: Sequence[str] = PARTS, seeds: Sequence[int] = (0, 1, 2), smoke: bool = False
        ) -> dict:
    """The payload of the JSON: the chosen parts for the given seeds, with `_meta`."""
    start = time.perf_counter()
    payload: dict = {}
    if "multigoal" in parts:
        env = MultiGoalEnv()
        payload["multigoal"] = {
            "env_id": MULTIGOAL_ID, "temperature": MULTIGOAL_TEMPERATURE,
            "start": list(START), "goals": env.goals.tolist(),
            "goal_threshold": env.goal_threshold, "min_fraction": MIN_FRACTION,
            "centre_radius": CENTRE_RADIUS,
            "results": {m: run_multigoal_method(m, seeds, smoke) for m in MULTIGOAL_METHODS}}
    if "turning" in parts:
        payload["turning"] = {name: run_turning(name, seeds, smoke) for name in TURNING_MULTI_ENVS}
    payload["_meta"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                        "seeds": list(seeds), "smoke": smoke, "parts": list(parts),
                        "total_seconds": time.perf_counter() - start}
    return payload


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "damdp_lite", "shipped", "08_multigoal.json")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--smoke", action="store_true", help="tiny budgets (seconds per run)")
    ap.add_argument("--out", default=default_out, help="JSON file to write")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    payload = run(args.only, tuple(args.seeds), args.smoke)
    write_payload(args.out, payload, start, say=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
