"""Turning double-well experiments (method.md §7.3, I7; protocol benchmarks.md §3).

DiffPPO (DA-MDP PPO with a `DiffusionPolicy`, T = 0.05), Gaussian MaxEnt PPO (the same
PPO with `policy="gaussian"`, same T) and DPPO (the diffusion policy at T = 0), each trained
on `damdp_lite/TurningDoubleWell-v0` and evaluated in each of its 8 states against the exact
MaxEnt optimum pi*(a | s) = exp(r(a)/T) / Z (the same in every state; action space, i.e. with
the tanh Jacobian, so the target is proper; without it the latent optimum is improper, D2).

Every experiment is `run_<name>(seeds=(0, 1, 2), smoke=False) -> dict` with fixed seeds and the
presets of `damdp_lite.presets` (`turning_config`), trained by `damdp_lite.train.train`;
`EXPERIMENTS` maps names to them (merged by `benchmarks/toys.py`). Nothing is asserted here:
the numbers are measured and returned; progress goes to stderr only.

    python benchmarks/toys_turning.py                 # 3 methods x 3 seeds, writes the JSON
    python benchmarks/toys_turning.py --smoke --out /tmp/turning.json

The JSON (default `damdp_lite/shipped/04_turning_wells.json`) is what notebook 04 loads for its
3-seed figures.

Per state (10^5 samples of the stochastic chain, 10^4 under smoke; `metrics.turning_state_stats`):
- `mass_pos`: fraction of actions with a > 0 (exact optimum: 0.5);
- `dens_0`, `dens_m05`, `dens_p05`: box-window density estimate p_hat(c) = #{|a - c| < h} / (2 h n)
  with h = 0.05 (`metrics.window_density`) at a = 0, -0.5, +0.5; the same estimator applied to the
  exact optimum gives the `reference` values (valley ratio 0.053 at T = 0.05);
- `valley_ratio` = dens_0 / min(dens_m05, dens_p05);
- `bimodal` = 0.3 <= mass_pos <= 0.7 and valley_ratio < 0.5;
- `one_sided` = max(mass_pos, 1 - mass_pos) > 0.9;
- `std` and `mean` of the action; `tv_mass` = |mass_pos - 0.5|;
- `kl_q_pi`, `kl_pi_q`: plug-in reverse / forward KL between a 200-bin histogram and the exact
  bin masses of pi* at T = 0.05 (the forward one with 0.5 smoothing counts per bin), as in
  `damdp_lite.bound.histogram_kl`; for DPPO (T = 0) this is the distance to the T = 0.05 optimum.
Per run: `bimodal_all8`, returns (training episodes of the last 10 % of iterations; evaluation
episodes from every heading), wall-clock seconds (training, evaluation), the learned step sizes.

Config (chosen by short probes on 2 shared CPU cores, see the notebook 04 text):
- K = 8, `noising_step_pairing="same"`: with the official `"previous"` pairing, and with K = 4,
  the maximiser of J_bound itself is (nearly) flat at T = 0.05 (pathwise fits of the bound,
  no RL), so no RL budget could make it bimodal;
- initial step sizes geometric, eta_k = 0.02 * 2^(k-1) (0.02 ... 2.56) instead of the PPO
  default eta = 0.5: training from eta = 0.5 converges to a similar profile (about 0.013 ...
  1.6) but needs about twice the env steps (~140 s instead of ~75 s per run);
- DPPO: lr 1e-3 instead of 3e-3 (see `METHODS`); it collapses within ~35k env steps anyway;
- gamma = 0.99 and gae_lambda = 0.9 per augmented step (the optimum does not depend on gamma
  here: the reward depends only on the action and every state is equivalent), lr 3e-3,
  64 envs x 8 env steps per rollout, 4 epochs x 4 minibatches, 2 x 64 networks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

import damdp_lite as dl
import damdp_lite.envs  # noqa: F401  (registers the toy envs)
from damdp_lite import metrics
from damdp_lite.envs import TurningDoubleWellEnv
from damdp_lite.presets import (
    PPO_TURNING_METHODS,
    REPPO_TURNING_METHODS,
    TURNING_ID,
    TURNING_LABELS,
    TURNING_TEMPERATURE,
    config_fields,
    turning_config,
    turning_policy,
)
from damdp_lite.train import train

# ---------------------------------------------------------------------------------------------
# Settings of the evaluation (the training presets live in damdp_lite/presets.py)
# ---------------------------------------------------------------------------------------------

TEMPERATURE = TURNING_TEMPERATURE
METHODS, REPPO_METHODS, LABELS = PPO_TURNING_METHODS, REPPO_TURNING_METHODS, TURNING_LABELS
N_EVAL, N_EVAL_SMOKE = 100_000, 10_000
"""Samples per state (benchmarks.md §3)."""
PATHS_PER_HEADING, PATH_STEPS = 3, 100
"""Evaluation episodes from each of the 8 headings (their paths are stored for seed 0)."""
EVAL_SEED = 10_000
"""Evaluation generators use EVAL_SEED + seed, independent of the training noise."""
HIST_BINS = 200
HALF_WIDTH = metrics.TURNING_HALF_WIDTH
DPPO_STD_FACTOR = 0.3
"""DPPO 'collapses' when its per-state std is below this times DiffPPO's (same seed, state)."""


def log(msg: str) -> None:
    print(f"[turning] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_actions(policy: dl.ChainPolicy, n: int, seed: int, chunk: int = 50_000
                   ) -> np.ndarray:
    """`n` env actions of the stochastic chain in each of the 8 states, `(8, n)` float64."""
    obs = torch.as_tensor(TurningDoubleWellEnv.all_observations())
    gen = torch.Generator().manual_seed(seed)
    out = np.zeros((len(obs), n))
    for s in range(len(obs)):
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            a = policy.sample_chain(obs[s:s + 1].expand(m, -1), generator=gen).action
            out[s, i:i + m] = a[:, 0].double().numpy()
    return out


def exact_bin_masses(temperature: float, edges: np.ndarray, sub: int = 16) -> np.ndarray:
    """Mass of pi* = exp(r/T)/Z in each bin of `edges` (midpoint rule, `sub` points per bin)."""
    env = TurningDoubleWellEnv()
    bins = len(edges) - 1
    x = edges[0] + (np.arange(bins * sub) + 0.5) * (edges[-1] - edges[0]) / (bins * sub)
    logw = env.reward_of_action(x) / temperature
    w = np.exp(logw - logw.max())
    return (w / w.sum()).reshape(bins, sub).sum(1)


def histogram_kls(counts: np.ndarray, pi_bins: np.ndarray, smoothing: float = 0.5
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in KL(q || pi*) (raw frequencies) and KL(pi* || q) (additive smoothing) per row of
    `counts` `(S, bins)`, as `damdp_lite.bound.histogram_kl` does for a single sampler."""
    q = counts / counts.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_q = np.where(q > 0, q * np.log(q / pi_bins), 0.0).sum(1)
    q_s = (counts + smoothing) / (counts.sum(1, keepdims=True) + smoothing * counts.shape[1])
    kl_p = (pi_bins * np.log(pi_bins / q_s)).sum(1)
    return kl_q, kl_p


def exact_reference(temperature: float = TEMPERATURE) -> dict:
    """The estimators of this module applied to the exact optimum (window averages by
    quadrature): per-state reference values, identical in every state."""
    from scipy import integrate

    env = TurningDoubleWellEnv()

    def dens(a: float) -> float:
        return float(np.exp(env.optimal_log_density(np.array([a]), temperature))[0])

    def window(c: float) -> float:
        lo, hi = c - HALF_WIDTH, c + HALF_WIDTH
        pts = [p for p in (-0.5, 0.0, 0.5) if lo < p < hi]
        return integrate.quad(dens, lo, hi, points=pts or None)[0] / (2 * HALF_WIDTH)

    d0, dm, dp = window(0.0), window(-0.5), window(0.5)
    mean_sq = integrate.quad(lambda a: a * a * dens(a), -1, 1, points=[-0.5, 0.0, 0.5])[0]
    return {"temperature": temperature, "log_z": env.log_z(temperature),
            "mass_pos": float(env.optimal_mode_masses(temperature)[1]),
            "dens_0": d0, "dens_m05": dm, "dens_p05": dp,
            "valley_ratio": d0 / min(dm, dp), "std": math.sqrt(mean_sq),
            "density_ratio_0_to_05": dens(0.0) / dens(0.5)}


def evaluate(policy: dl.ChainPolicy, seed: int, smoke: bool, keep_paths: bool) -> dict:
    """Per-state statistics, histograms, histogram KLs and evaluation episodes of a policy."""
    n = N_EVAL_SMOKE if smoke else N_EVAL
    actions = sample_actions(policy, n, EVAL_SEED + seed)
    stats = metrics.turning_state_stats(actions, HALF_WIDTH)
    counts, edges = metrics.state_histograms(actions, HIST_BINS)
    kl_q, kl_p = histogram_kls(counts, exact_bin_masses(TEMPERATURE, edges))
    gen = torch.Generator().manual_seed(EVAL_SEED + 1 + seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return policy.act(torch.as_tensor(obs), generator=gen).numpy()

    heads = np.repeat(TurningDoubleWellEnv.headings_deg, PATHS_PER_HEADING)
    ep = TurningDoubleWellEnv().rollout_paths(act, heads, PATH_STEPS)
    per_state = [{k: (bool(v[s]) if v.dtype == bool else float(v[s])) for k, v in stats.items()}
                 for s in range(actions.shape[0])]
    for s, row in enumerate(per_state):
        row.update(heading_deg=TurningDoubleWellEnv.headings_deg[s], kl_q_pi=float(kl_q[s]),
                   kl_pi_q=float(kl_p[s]))
    out = {"n_samples": n, "per_state": per_state, "hist_counts": counts.tolist(),
           "hist_edges": [float(edges[0]), float(edges[-1]), HIST_BINS],
           "bimodal_all8": bool(stats["bimodal"].all()),
           "n_bimodal": int(stats["bimodal"].sum()),
           "n_one_sided": int(stats["one_sided"].sum()),
           "eval_return": float(ep["rewards"].sum(1).mean()),
           "eval_return_se": float(ep["rewards"].sum(1).std() / math.sqrt(len(heads)))}
    if keep_paths:
        out["paths"] = {"headings_deg": heads.tolist(),
                        "positions": np.round(ep["positions"], 3).tolist()}
    return out


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def train_and_evaluate(method: str, seed: int, smoke: bool = False) -> dict:
    """One training run (one method, one seed) and its evaluation."""
    cfg = turning_config(method, seed, smoke)
    policy = turning_policy(cfg)
    every = max(1, cfg.num_iterations // 5)

    def progress(row: dict) -> None:
        if (row["iteration"] + 1) % every == 0:
            log(f"{method} seed {seed}: iteration {row['iteration'] + 1}/{cfg.num_iterations}"
                f", {row['elapsed_s']:.0f} s")

    t0 = time.perf_counter()
    history = train(cfg, progress=False, callback=progress, policy=policy).history
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = evaluate(policy, seed, smoke, keep_paths=(seed == 0))
    eval_s = time.perf_counter() - t1
    tail = history[-max(1, len(history) // 10):]
    rets = [r["episode_return"] for r in tail if math.isfinite(r["episode_return"])]
    log(f"{method} seed {seed}: {ev['n_bimodal']}/8 bimodal, {ev['n_one_sided']}/8 one-sided, "
        f"train {train_s:.0f} s, eval {eval_s:.0f} s")
    return {"seed": seed, **ev, "train_return_last10pct": float(np.mean(rets)) if rets else None,
            "train_seconds": train_s, "eval_seconds": eval_s, "run_seconds": train_s + eval_s,
            "env_steps": cfg.num_iterations * cfg.env_steps_per_iteration,
            **policy.describe(),
            "final_mean_ell": history[-1]["mean_ell"]}


def _config_record(method: str, smoke: bool) -> dict:
    cfg = config_fields(turning_config(method, 0, smoke))
    cfg.pop("seed")
    return cfg


def run_method(method: str, seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """Every seed of one method, with per-seed summaries; a failed seed records its error."""
    runs: dict[str, dict] = {}
    for seed in seeds:
        try:
            runs[str(seed)] = train_and_evaluate(method, seed, smoke)
        except (FloatingPointError, RuntimeError, ValueError) as exc:
            log(f"{method} seed {seed} failed: {type(exc).__name__}: {exc}")
            runs[str(seed)] = {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}
    ok = [r for r in runs.values() if "error" not in r]
    return {
        "method": method, "label": LABELS[method], "env_id": TURNING_ID,
        "temperature": turning_config(method).temperature_init if method in REPPO_METHODS
        else METHODS[method]["temperature"], "smoke": smoke,
        "config": _config_record(method, smoke), "seeds": runs,
        "summary": {
            "bimodal_all8": {str(r["seed"]): r["bimodal_all8"] for r in ok},
            "n_bimodal": {str(r["seed"]): r["n_bimodal"] for r in ok},
            "n_one_sided": {str(r["seed"]): r["n_one_sided"] for r in ok},
            "mean_std": {str(r["seed"]): float(np.mean([s["std"] for s in r["per_state"]]))
                         for r in ok},
            "eval_return": {str(r["seed"]): r["eval_return"] for r in ok},
            "run_seconds": {str(r["seed"]): r["run_seconds"] for r in ok}},
        "reference": exact_reference(),
    }


def run_diffppo(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """DA-MDP PPO with a K = 8 diffusion policy at T = 0.05 (the rebuttal's DME-PPO run)."""
    return run_method("diffppo", seeds, smoke)


def run_gaussian_ppo(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """MaxEnt PPO with a tanh-Gaussian policy, same code, same T = 0.05."""
    return run_method("gaussian_ppo", seeds, smoke)


def run_dppo(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """DPPO: the DiffPPO diffusion policy and config at T = 0."""
    return run_method("dppo", seeds, smoke)


def run_diffreppo(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """DA-MDP REPPO with the K = 8 diffusion chain at fixed T = 0.05 (issue 5)."""
    return run_method("diffreppo", seeds, smoke)


def run_gaussian_reppo(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """REPPO with a tanh-Gaussian policy, same code and config (issue 5)."""
    return run_method("gaussian_reppo", seeds, smoke)


EXPERIMENTS: dict[str, Callable[..., dict]] = {
    "turning_diffppo": run_diffppo,
    "turning_gaussian_ppo": run_gaussian_ppo,
    "turning_dppo": run_dppo,
    "turning_diffreppo": run_diffreppo,
    "turning_gaussian_reppo": run_gaussian_reppo,
}


def compare(results: dict[str, dict]) -> dict:
    """The issue's three targets from `{method: run_method(...)}` results, per seed and state.

    - DiffPPO bimodal in all 8 states;
    - Gaussian PPO one-sided (> 0.9 of its mass on one side) in most (>= 5) states;
    - DPPO collapsed: per-state std < DPPO_STD_FACTOR x DiffPPO's (same seed and state);
    and issue 5's, when those methods are in `results`:
    - DA-MDP REPPO bimodal in all 8 states;
    - Gaussian REPPO bimodal in none, and one-sided in most (>= 5) states (the paper's
      "unimodal, straight diagonal paths").
    """
    out: dict = {}
    diff, gauss, dppo = (results.get(m, {}).get("seeds", {}) for m in METHODS)
    out["diffppo_bimodal_all8"] = {s: r["bimodal_all8"] for s, r in diff.items()
                                   if "error" not in r}
    out["gaussian_one_sided_most"] = {s: r["n_one_sided"] >= 5 for s, r in gauss.items()
                                      if "error" not in r}
    ratio = {}
    for s, r in dppo.items():
        if "error" in r or s not in diff or "error" in diff[s]:
            continue
        ratio[s] = [a["std"] / b["std"] for a, b in zip(r["per_state"], diff[s]["per_state"],
                                                         strict=True)]
    out["dppo_std_over_diffppo_std"] = ratio
    out["dppo_collapsed_all8"] = {s: bool(max(v) < DPPO_STD_FACTOR) for s, v in ratio.items()}
    diff_r, gauss_r = (results.get(m, {}).get("seeds", {}) for m in REPPO_METHODS)
    out["diffreppo_bimodal_all8"] = {s: r["bimodal_all8"] for s, r in diff_r.items()
                                     if "error" not in r}
    out["gaussian_reppo_unimodal_all8"] = {s: r["n_bimodal"] == 0 for s, r in gauss_r.items()
                                           if "error" not in r}
    out["gaussian_reppo_one_sided_most"] = {s: r["n_one_sided"] >= 5 for s, r in gauss_r.items()
                                            if "error" not in r}
    return out


def merge_payloads(parts: Sequence[dict]) -> dict:
    """One payload from runs of disjoint seeds or methods (e.g. one process per core): per
    method the seeds and per-seed summaries are united and `compare` is recomputed. Files of
    one method must share its config; a seed in two files is an error."""
    results: dict[str, dict] = {}
    for part in parts:
        for m, r in part["results"].items():
            if m not in results:
                results[m] = json.loads(json.dumps(r))  # a deep copy
                continue
            dup = sorted(set(r["seeds"]) & set(results[m]["seeds"]))
            if dup:
                raise ValueError(f"seeds {dup} of {m} appear in more than one file")
            if r["config"] != results[m]["config"]:
                raise ValueError(f"{m}: the files were run with different configs")
            results[m]["seeds"].update(r["seeds"])
            for key, per_seed in r["summary"].items():
                results[m]["summary"][key].update(per_seed)
    for r in results.values():
        r["seeds"] = dict(sorted(r["seeds"].items(), key=lambda kv: int(kv[0])))
    metas = [p["_meta"] for p in parts]
    meta = {"torch": metas[0]["torch"], "threads": metas[0]["threads"],
            "seeds": sorted({s for m in metas for s in m["seeds"]}),
            "smoke": any(m["smoke"] for m in metas),
            "total_seconds": sum(m["total_seconds"] for m in metas), "merged_from": len(parts)}
    return {"results": results, "compare": compare(results), "_meta": meta}


def _rounded(obj, nd: int = 5):
    """JSON-safe, compact copy: floats rounded to `nd` significant decimals, NaN/inf -> None."""
    if isinstance(obj, float):
        return round(obj, nd) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _rounded(v, nd) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v, nd) for v in obj]
    return obj


def write_payload(path: str, payload: dict, start: float, say=log) -> None:
    """Write `payload` (rounded by `_rounded`) as compact JSON to `path`, creating its folder,
    and say where, how large and how long since `start` (a `time.perf_counter()`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(_rounded(payload), f, separators=(",", ":"))
    say(f"wrote {os.path.abspath(path)} ({os.path.getsize(path) / 1e3:.0f} kB) in "
        f"{time.perf_counter() - start:.0f} s")


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "damdp_lite", "shipped", "04_turning_wells.json")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", choices=[*METHODS, *REPPO_METHODS],
                    default=list(METHODS), help="methods (default: the three PPO methods)")
    ap.add_argument("--smoke", action="store_true", help="tiny budgets (seconds per run)")
    ap.add_argument("--out", default=default_out, help="JSON file to write")
    ap.add_argument("--merge", nargs="+", metavar="FILE", default=None,
                    help="no runs: unite JSON files of disjoint seeds/methods into --out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.merge:
        parts = []
        for path in args.merge:
            with open(path) as f:
                parts.append(json.load(f))
        payload = merge_payloads(parts)
    else:
        results = {m: run_method(m, tuple(args.seeds), args.smoke) for m in args.only}
        payload = {"results": results, "compare": compare(results),
                   "_meta": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                             "seeds": args.seeds, "smoke": args.smoke,
                             "total_seconds": time.perf_counter() - start}}
    write_payload(args.out, payload, start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
