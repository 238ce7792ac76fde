"""Bandit experiments: Gaussian vs diffusion policies trained with the package's PPO on the
one-step bandits of method.md §7.1-7.2, against the exact MaxEnt optimum exp(r/T)/Z.

Every experiment is `run_<name>(seeds=(0, 1, 2), smoke=False) -> dict` with fixed seeds and
the configs below; `EXPERIMENTS` maps names to them (merged by `benchmarks/toys.py`). Nothing
is asserted here: the numbers are measured and returned (method.md I6: "measured and reported,
not asserted"; evaluation protocol: benchmarks.md §3). Progress goes to stderr only.

What each result holds, per seed and as means over seeds:
- mode masses (1-D: sign of x, by exact quadrature of the marginal and from 1e5 samples; 2-D:
  quadrant masses from 1e5 samples) next to the exact masses of pi*;
- J_bound = E r + T H(p_0) - T E sum_k ell_k (MC, certified lower bound on J(marginal)) of the
  untrained and of the trained policy, plus a few points along training;
- J(marginal) = T (log Z - KL(q || pi*)) by exact 1-D quadrature (1-D only; for 2-D the
  plug-in histogram KL of benchmarks.md §3 is reported instead);
- 2-D only, tanh saturation (`metrics.box_saturation`): the fraction of actions within 0.01
  of the box's edge (max_i |a_i| > 0.99, i.e. a latent |a^0_i| > atanh(0.99) = 2.65) and
  within 0.05 of a corner (min_i |a_i| > 0.95), next to the exact fractions of pi*;
- T log Z, the best Gaussian's J (1-D), wall-clock seconds of each training run.

Config notes (probes on 2 shared CPU cores; details in notebook 03):
- One PPO config for every bandit run (`PPO_BANDIT`): 512 envs x 4 env steps per rollout,
  8 epochs x 4 minibatches, lr 2e-3, 2 x 64 networks, 120k env steps (96k on the 2-D bandit,
  whose env steps cost more), so that each experiment (3 seeds x 2 policies) fits in ~3 minutes.
- gamma = gae_lambda = 1: a bandit episode is one env step and J_bound is undiscounted;
  lambda = 1 makes the advantage the Monte Carlo return-to-go minus a baseline.
- Diffusion: K = 8, noising_step_pairing="same" (a tighter bound than "previous" at every K
  >= 2 we measured), linear initial step-size schedule with min 0.05 (method.md §6 toy config).
- With PPO's usual lr 1e-3 and 4 epochs (`SLOW_PPO`, experiment `double_well_T025_slow`) the
  diffusion policy stays a broad unimodal blob centred at 0 for 160k env steps: half of its
  mass is on each sign by symmetry, yet it has not found the two wells. Mode masses alone do not
  reveal that; the 1-D results therefore also report `dip_ratio` = q(0) / max q(+-1) (exact:
  e^{-1/T}) and J(marginal).
- Longer runs at lr 2e-3 became unstable in two probes (J_bound estimates of -2.7 and -3e7 after
  ~150k env steps, rare chains thrown far out), hence the 120k budget.
- Four modes, the prior's width: with the official sigma_0 = prior_std = 3 the prior puts most
  latents far beyond atanh(0.8) = 1.1, and within the budget the chain leaves too many of them
  saturated, piled up in the corners of the box. `four_modes_*_prior1` train the same diffusion
  policy with sigma_0 = 1 (`DIFFUSION_2D_PRIOR1`); `four_modes_dql_long` the sigma_0 = 3 one
  for twice the env steps, to tell a short budget from a wide prior.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

import damdp_lite as dl
import damdp_lite.envs  # noqa: F401  (registers the toy envs)
from damdp_lite import metrics
from damdp_lite.presets import (
    DIFFUSION_1D,
    DIFFUSION_2D,
    DIFFUSION_2D_PRIOR1,
    DOUBLE_WELL_ID,
    FOUR_MODES_DQL_REWARDS,
    FOUR_MODES_ENV_STEPS,
    FOUR_MODES_EQUAL_REWARDS,
    FOUR_MODES_SIGMA_R,
    FOUR_MODES_T,
    GAUSSIAN,
    GAUSSIAN_2D,
    SLOW_PPO,
    SWEEP_ENV_STEPS,
    SWEEP_KS,
    bandit_config,
    config_fields,
    seeded_policy,
)
from damdp_lite.train import train

# ---------------------------------------------------------------------------------------------
# Settings of the evaluation (the training presets live in damdp_lite/presets.py)
# ---------------------------------------------------------------------------------------------

QUAD_GRID = torch.linspace(-8.0, 8.0, 4001, dtype=torch.float64)
"""Grid of the exact 1-D marginal (spacing 0.004)."""
N_EVAL, N_EVAL_SMOKE = 100_000, 10_000
"""Samples per evaluation (benchmarks.md §3)."""
N_TRACK = 4_000
"""Chains per J_bound estimate along training."""
N_START = 20_000
"""Chains of the J_bound estimate of the untrained policy."""
EVAL_SEED = 10_000
"""Evaluation generators use EVAL_SEED + offset, independent of the training seed."""


def log(msg: str) -> None:
    print(f"[toys_bandits] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reference numbers (exact)
# ---------------------------------------------------------------------------------------------


def centred_gaussian_double_well(temperature: float) -> dict:
    """The best Gaussian N(0, v) on r(x) = -(x^2 - 1)^2 (mean fixed at 0), in closed form.

    J(0, v) = E r + T H = -(3 v^2 - 2 v + 1) + T/2 log(2 pi e v); dJ/dv = 0 gives
    12 v^2 - 4 v - T = 0, v = (4 + sqrt(16 + 48 T)) / 24. It is a local maximum of J over
    (m, v) whenever d^2J/dm^2 = E r''(x) = 4 - 12 v < 0, i.e. v > 1/3, which holds for every
    T > 0: a Gaussian that starts at m = 0 can stay there (T = 0.25: v = 0.387, J = -0.439,
    while the global optimum is m = +-0.946, J = -0.197; method.md I6).
    """
    T = float(temperature)
    v = (4 + math.sqrt(16 + 48 * T)) / 24
    j = -(3 * v**2 - 2 * v + 1) + 0.5 * T * math.log(2 * math.pi * math.e * v)
    return {"j": j, "mean": 0.0, "var": v, "d2j_dm2": 4 - 12 * v}


def exact_box_saturation(target: dl.Target, temperature: float, n: int = 801) -> dict:
    """`metrics.box_saturation` of pi* = exp(r/T)/Z on [-1, 1]^2 (midpoint rule, n^2 cells)."""
    c = -1 + (torch.arange(n, dtype=torch.float64) + 0.5) * 2 / n
    grid = torch.stack(torch.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    return metrics.box_saturation(grid, torch.softmax(target.reward(grid) / temperature, 0))


def double_well_references(temperature: float) -> dict:
    target = dl.DoubleWell1D()
    best = dl.best_gaussian_1d(target, temperature)
    log_z = target.log_z(temperature)
    return {"temperature": temperature, "log_z": log_z, "t_log_z": temperature * log_z,
            "best_gaussian": {k: best[k] for k in ("j", "mean", "var", "t_kl")},
            "centred_gaussian_local_max": centred_gaussian_double_well(temperature),
            "exact_mass_pos": float(target.exact_mode_masses(temperature)[1])}


# ---------------------------------------------------------------------------------------------
# One training run + evaluation
# ---------------------------------------------------------------------------------------------


def four_mode_env_id(mode_rewards: Sequence[float], sigma_r: float) -> str:
    """A Gymnasium id for `FourModeBandit` with these kwargs (PPOConfig takes only an id)."""
    name = ("damdp_lite/FourModeBandit-R" + "_".join(f"{r:g}" for r in mode_rewards)
            + f"-s{sigma_r:g}-v0")
    if name not in gym.registry:
        gym.register(id=name, entry_point="damdp_lite.envs.bandits:FourModeBanditEnv",
                     kwargs={"mode_rewards": tuple(float(r) for r in mode_rewards),
                             "sigma_r": float(sigma_r)})
    return name


def evaluate(policy: dl.ChainPolicy, target: dl.Target, T: float, n_eval: int,
             log_z: float | None = None) -> dict:
    """Masses, J_bound, KLs of one policy (benchmarks.md §3); fixed evaluation seeds."""
    g = torch.Generator(device=policy.device).manual_seed(EVAL_SEED + 2)
    est = dl.estimate_bound(policy, target, T, n=n_eval, generator=g, log_z=log_z)
    g = torch.Generator(device=policy.device).manual_seed(EVAL_SEED + 3)
    x = policy.sample(n_eval, generator=g).action  # env actions: latents (1-D), box (2-D)
    kl_q_pi, kl_pi_q = dl.histogram_kl(x, target, T)
    res = {"j_bound": est.j_bound, "j_bound_se": est.j_bound_se, "kl_upper": est.kl_upper,
           "masses_mc": target.mode_masses(x).tolist(), "hist_kl_q_pi": kl_q_pi,
           "hist_kl_pi_q": kl_pi_q, **policy.describe()}
    if target.dim == 1:
        # wider than the default (-4, 4): the quadrature renormalises each kernel column on the
        # grid, so mass that leaves the grid would be hidden; the MC tail fraction checks it
        m = dl.exact_marginal_kl_1d(policy, target, T, grid=QUAD_GRID)
        res["frac_abs_gt_4_mc"] = float((x.abs() > 4).double().mean())
        h = float(m["grid"][1] - m["grid"][0])
        res["mass_pos_quad"] = float(m["density"][m["grid"] >= 0].sum() * h)
        res["j_marginal"] = m["j_marginal"]
        res["kl_exact"] = m["kl"]
        dens = lambda v: float(m["density"][torch.argmin((m["grid"] - v).abs())])  # noqa: E731
        res["dip_ratio"] = dens(0.0) / max(dens(-1.0), dens(1.0))
    else:
        res["j_hist"] = T * (est.log_z - kl_q_pi)  # plug-in, biased; labelled as such
        res.update(metrics.box_saturation(x))
    return res


def train_and_evaluate(cfg, target: dl.Target, n_eval: int, n_track_points: int = 6,
                       log_z: float | None = None) -> dict:
    """Train `cfg` (a `PPOConfig`) with `damdp_lite.train.train` and evaluate the final policy
    (`evaluate`).

    J_bound is also estimated at init and at `n_track_points` iterations during training
    (N_TRACK chains, fixed seed), so the curve is not a minibatch statistic.
    """
    T = cfg.temperature
    log_z = target.log_z(T) if log_z is None else log_z  # 2-D: a 2001^2 grid, compute once
    env = gym.make(cfg.env_id)
    obs_dim = env.observation_space.shape[0]
    policy = seeded_policy(cfg, obs_dim, env.action_space)
    env.close()
    eta_init = policy.describe().get("step_sizes")

    def jb(n: int) -> dl.BoundEstimate:
        g = torch.Generator(device=policy.device).manual_seed(EVAL_SEED + 1)
        return dl.estimate_bound(policy, target, T, n=n, generator=g, log_z=log_z)

    start = jb(min(n_eval, N_START))
    every = max(1, cfg.num_iterations // n_track_points)
    curve = [(0, start.j_bound)]

    def callback(row: dict) -> None:
        if (row["iteration"] + 1) % every == 0 and row["iteration"] + 1 < cfg.num_iterations:
            curve.append((row["env_steps"], jb(N_TRACK).j_bound))

    t0 = time.perf_counter()
    history = train(cfg, progress=False, callback=callback, policy=policy).history
    seconds = time.perf_counter() - t0
    res = evaluate(policy, target, T, n_eval, log_z)
    curve.append((history[-1]["env_steps"], res["j_bound"]))
    return {
        "seed": cfg.seed, "train_seconds": seconds, "env_steps": history[-1]["env_steps"],
        "j_bound_start": start.j_bound, "j_bound_start_se": start.j_bound_se,
        "j_bound_curve": curve,
        "j_bound_rose": res["j_bound"] > start.j_bound + 3 * (start.j_bound_se
                                                             + res["j_bound_se"]),
        "final_episode_return": history[-1]["episode_return"], "eta_init": eta_init, **res}


def _mean(rows: list[dict], key: str):
    vals = [r[key] for r in rows]
    if isinstance(vals[0], list):
        return np.mean(np.asarray(vals, dtype=float), axis=0).tolist()
    return float(np.mean(vals))


def _run_policies(env_id: str, target: dl.Target, T: float, policies: dict[str, dict],
                  seeds: Sequence[int], smoke: bool, log_z: float | None = None) -> dict:
    n_eval = N_EVAL_SMOKE if smoke else N_EVAL
    log_z = target.log_z(T) if log_z is None else log_z
    out: dict = {}
    for name, fields in policies.items():
        rows = []
        for seed in seeds:
            cfg = bandit_config(env_id, T, seed, smoke, **fields)
            log(f"{env_id} T={T} {name} seed={seed} ({cfg.total_env_steps} env steps)")
            rows.append(train_and_evaluate(cfg, target, n_eval, log_z=log_z))
        keys = ["masses_mc", "j_bound_start", "j_bound", "hist_kl_q_pi", "hist_kl_pi_q",
                "train_seconds"]
        keys += (["mass_pos_quad", "j_marginal", "kl_exact", "dip_ratio"] if target.dim == 1
                 else ["j_hist", "frac_edge", "frac_corners"])
        summary = {k: _mean(rows, k) for k in keys}
        config = config_fields(cfg)
        out[name] = {"config": config,
                     "per_seed": rows, "mean": summary}
    return out


# ---------------------------------------------------------------------------------------------
# Experiments
# ---------------------------------------------------------------------------------------------


def _double_well(T: float, seeds: Sequence[int], smoke: bool,
                 policies: dict[str, dict] | None = None) -> dict:
    target = dl.DoubleWell1D()
    t0 = time.perf_counter()
    policies = policies or {"diffusion": DIFFUSION_1D, "gaussian": GAUSSIAN}
    res = _run_policies(DOUBLE_WELL_ID, target, T, policies, seeds, smoke)
    res["references"] = double_well_references(T)
    checks: dict = {}  # measured facts, not assertions
    if "diffusion" in res:
        d = res["diffusion"]["per_seed"]
        checks.update({
            "diffusion_balanced_0.5pm0.05_every_seed": all(abs(r["mass_pos_quad"] - 0.5) <= 0.05
                                                           for r in d),
            "diffusion_max_abs_dev_from_0.5": max(abs(r["mass_pos_quad"] - 0.5) for r in d),
            "diffusion_bimodal_every_seed_dip_ratio_lt_1": all(r["dip_ratio"] < 1 for r in d),
            "diffusion_j_marginal_beats_best_gaussian": [
                r["j_marginal"] > res["references"]["best_gaussian"]["j"] for r in d]})
    if "gaussian" in res:
        g = [r["mass_pos_quad"] for r in res["gaussian"]["per_seed"]]
        checks.update({
            "gaussian_one_side_gt_0.9_every_seed": all(max(p, 1 - p) > 0.9 for p in g),
            "gaussian_mass_on_majority_side": [max(p, 1 - p) for p in g]})
    checks["j_bound_rose_every_run"] = all(r["j_bound_rose"] for n in policies
                                           for r in res[n]["per_seed"])
    res["checks"] = checks
    res["seconds"] = time.perf_counter() - t0
    return res


def run_double_well_T025(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """1-D latent double well at T = 0.25: DA-MDP PPO (diffusion) vs MaxEnt PPO (Gaussian)."""
    return _double_well(0.25, seeds, smoke)


def run_double_well_T025_slow(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """The double well at T = 0.25 with lr 1e-3 and 4 epochs for 160k env steps (`SLOW_PPO`):
    the diffusion policy stays a broad unimodal blob (diffusion only)."""
    return _double_well(0.25, seeds, smoke, {"diffusion": {**DIFFUSION_1D, **SLOW_PPO}})


def run_double_well_T1(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """Same at T = 1, where the best Gaussian is centred (m = 0, v = 0.5; method.md I6)."""
    return _double_well(1.0, seeds, smoke)


def _sweep(K: int, pairing: str, seeds: Sequence[int], smoke: bool, T: float = 0.25) -> dict:
    """J_bound and J(marginal) of DA-MDP PPO at one K and one noising-step pairing."""
    target = dl.DoubleWell1D()
    t0 = time.perf_counter()
    fields = {**DIFFUSION_1D, "num_steps": K, "noising_step_pairing": pairing,
              "total_env_steps": SWEEP_ENV_STEPS[K]}
    res = _run_policies(DOUBLE_WELL_ID, target, T, {"diffusion": fields}, seeds, smoke)
    res.update({"K": K, "pairing": pairing, "references": double_well_references(T),
                "seconds": time.perf_counter() - t0})
    return res


def _make_sweep(K: int, pairing: str) -> Callable[..., dict]:
    def run(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
        return _sweep(K, pairing, seeds, smoke)
    run.__name__ = f"run_double_well_sweep_K{K}_{pairing}"
    run.__doc__ = (f"Double well, T = 0.25: J_bound and J(marginal) of DA-MDP PPO at K = {K}, "
                   f"noising_step_pairing={pairing!r} (method.md I6, D13).")
    return run


def _four_modes(mode_rewards: Sequence[float], seeds: Sequence[int], smoke: bool,
                policies: dict[str, dict] | None = None) -> dict:
    T, sigma_r = FOUR_MODES_T, FOUR_MODES_SIGMA_R
    env_id = four_mode_env_id(mode_rewards, sigma_r)
    target = dl.FourModes2D(mode_rewards=mode_rewards, sigma_r=sigma_r)
    t0 = time.perf_counter()
    log_z = target.log_z(T)
    policies = policies or {"diffusion": DIFFUSION_2D, "gaussian": GAUSSIAN_2D}
    res = _run_policies(env_id, target, T, policies, seeds, smoke, log_z=log_z)
    exact = target.exact_mode_masses(T).tolist()
    res["references"] = {"temperature": T, "sigma_r": sigma_r, "mode_rewards": list(mode_rewards),
                         "mode_names": list(target.mode_names), "exact_masses": exact,
                         "softmax_masses": target.softmax_masses(T).tolist(),
                         "log_z": log_z, "t_log_z": T * log_z,
                         "exact_saturation": exact_box_saturation(target, T)}
    checks: dict = {}  # measured facts, not assertions
    for name in policies:
        for r in res[name]["per_seed"]:
            dev = [abs(a - b) for a, b in zip(r["masses_mc"], exact, strict=True)]
            r["max_abs_dev"] = max(dev)
            r["tv_distance"] = 0.5 * sum(dev)
            r["modes_covered_gt_0.02"] = int(sum(m > 0.02 for m in r["masses_mc"]))
    d = res["diffusion"]["per_seed"]
    checks.update({
        "diffusion_within_0.05_every_mode_every_seed": all(r["max_abs_dev"] <= 0.05 for r in d),
        "diffusion_max_abs_dev": max(r["max_abs_dev"] for r in d),
        "j_bound_rose_every_run": all(r["j_bound_rose"] for n in policies
                                      for r in res[n]["per_seed"])})
    if "gaussian" in res:
        g = res["gaussian"]["per_seed"]
        checks.update({
            "gaussian_modes_covered": [r["modes_covered_gt_0.02"] for r in g],
            "gaussian_covers_one_mode_every_seed": all(r["modes_covered_gt_0.02"] == 1
                                                       for r in g)})
    res["checks"] = checks
    res["seconds"] = time.perf_counter() - t0
    return res


def run_four_modes_equal(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """2-D four-mode bandit, equal mode rewards (exact masses 0.25), sigma_r = 0.1, T = 2."""
    return _four_modes(FOUR_MODES_EQUAL_REWARDS, seeds, smoke)


def run_four_modes_dql(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """2-D four-mode bandit, Diffusion-QL rewards (3, 0, 1.5, 5), sigma_r = 0.1, T = 2
    (exact masses 0.227, 0.051, 0.107, 0.616; method.md I16)."""
    return _four_modes(FOUR_MODES_DQL_REWARDS, seeds, smoke)


def run_four_modes_dql_prior1(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """The Diffusion-QL four-mode bandit with a narrower prior, sigma_0 = prior_std = 1
    (`DIFFUSION_2D_PRIOR1`; diffusion only, the Gaussian is that of `four_modes_dql`)."""
    return _four_modes(FOUR_MODES_DQL_REWARDS, seeds, smoke, {"diffusion": DIFFUSION_2D_PRIOR1})


def run_four_modes_equal_prior1(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """The equal-reward four-mode bandit with sigma_0 = prior_std = 1 (diffusion only)."""
    return _four_modes(FOUR_MODES_EQUAL_REWARDS, seeds, smoke,
                       {"diffusion": DIFFUSION_2D_PRIOR1})


def run_four_modes_dql_long(seeds: Sequence[int] = (0, 1, 2), smoke: bool = False) -> dict:
    """The Diffusion-QL four-mode bandit, official sigma_0 = 3, for twice the env steps
    (diffusion only): does a longer budget do what a narrower prior does?"""
    long = {**DIFFUSION_2D, "total_env_steps": 2 * FOUR_MODES_ENV_STEPS}
    return _four_modes(FOUR_MODES_DQL_REWARDS, seeds, smoke, {"diffusion": long})


EXPERIMENTS: dict[str, Callable[..., dict]] = {
    "double_well_T025": run_double_well_T025,
    "double_well_T025_slow": run_double_well_T025_slow,
    "double_well_T1": run_double_well_T1,
    **{f"double_well_sweep_K{K}_{p}": _make_sweep(K, p) for K in SWEEP_KS
       for p in ("previous", "same")},
    "four_modes_equal": run_four_modes_equal,
    "four_modes_dql": run_four_modes_dql,
    "four_modes_dql_prior1": run_four_modes_dql_prior1,
    "four_modes_equal_prior1": run_four_modes_equal_prior1,
    "four_modes_dql_long": run_four_modes_dql_long,
}
"""`{name: fn(seeds, smoke) -> dict}`, merged by `benchmarks/toys.py`."""


# ---------------------------------------------------------------------------------------------
# Compact summary for notebook 03 (damdp_lite/shipped/03_bandits.json)
# ---------------------------------------------------------------------------------------------

_KEEP = ("seed", "train_seconds", "env_steps", "j_bound_start", "j_bound_curve", "j_bound",
         "j_bound_se", "masses_mc", "mass_pos_quad", "j_marginal", "kl_exact", "kl_upper",
         "dip_ratio", "hist_kl_q_pi", "hist_kl_pi_q", "j_hist", "max_abs_dev", "tv_distance",
         "frac_edge", "frac_corners", "gauss_mean", "gauss_std", "latent_mean", "latent_std",
         "step_sizes")
"""Per-seed keys kept in the summary (`gauss_mean`/`gauss_std`: the Gaussian's latent mean and
std under the names of the runs made before `describe` said `latent_mean`/`latent_std`)."""


def _round(x, nd: int = 4):
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, list | tuple):
        return [_round(v, nd) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    return x


def summarise(results: dict) -> dict:
    """The numbers notebook 03 shows, from the output of `toys.py --json` (bandit entries)."""
    out: dict = {"main": {}, "sweep": [], "meta": results.get("_meta", {})}
    for name, res in results.items():
        if not isinstance(res, dict) or "references" not in res:
            continue
        pols = {pol: {"config": res[pol]["config"],
                      "per_seed": [{k: r[k] for k in _KEEP if k in r}
                                   for r in res[pol]["per_seed"]]}
                for pol in ("diffusion", "gaussian") if pol in res}
        if name.startswith("double_well_sweep_"):
            for r in res["diffusion"]["per_seed"]:
                out["sweep"].append({"K": res["K"], "pairing": res["pairing"],
                                     **{k: r[k] for k in ("seed", "env_steps", "train_seconds",
                                                          "j_bound", "j_marginal",
                                                          "mass_pos_quad", "dip_ratio")}})
        else:
            out["main"][name] = {"references": res["references"], **pols,
                                 "checks": res.get("checks"), "seconds": res.get("seconds")}
    return _round(out)


def update(shipped: dict, results: dict, note: str) -> dict:
    """`shipped` (a `summarise` output) with the experiments of `results` (a `toys.py --json`
    output of some experiments) summarised and put in place of, or next to, its own entries;
    `note` says in the meta what was re-run. The double-well sweep is replaced only when
    `results` holds sweep experiments."""
    new = summarise(results)
    out = {"main": {**shipped["main"], **new["main"]},
           "sweep": new["sweep"] or shipped["sweep"], "meta": dict(shipped["meta"])}
    out["meta"]["updates"] = [*out["meta"].get("updates", []),
                              {"experiments": sorted(new["main"]) + sorted(
                                  {f"double_well_sweep_K{r['K']}_{r['pairing']}"
                                   for r in new["sweep"]}),
                               "total_seconds": new["meta"].get("total_seconds"),
                               "torch": new["meta"].get("torch"), "note": note}]
    return out


if __name__ == "__main__":
    # python benchmarks/toys_bandits.py toys.json > 03_bandits.json          (every experiment)
    # python benchmarks/toys_bandits.py part.json --update 03_bandits.json --note "..."
    #   (some experiments re-run: their entries replace those of the shipped file, in place)
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Summarise toys.py --json output for notebook 03")
    ap.add_argument("results", help="output of benchmarks/toys.py --json")
    ap.add_argument("--update", metavar="SHIPPED", help="merge into this summary file (in place)")
    ap.add_argument("--note", default="", help="what was re-run and why (with --update)")
    args = ap.parse_args()
    with open(args.results) as f:
        results = json.load(f)
    if args.update:
        with open(args.update) as f:
            merged = update(json.load(f), results, args.note)
        with open(args.update, "w") as f:
            f.write(json.dumps(merged, indent=1) + "\n")
    else:
        print(json.dumps(summarise(results), indent=1))
