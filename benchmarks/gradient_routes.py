"""Notebook 07: four gradient routes through one diffusion policy, side by side.

    python benchmarks/gradient_routes.py                       # the shipped JSON (3 seeds)
    python benchmarks/gradient_routes.py --smoke --out /tmp/gr # tiny budget (CI): writes only there

The routes are `damdp_lite.routes.ROUTES` (method.md §5.7): (a) the DA-MDP's clipped per-step
surrogate, (b) back-propagation through the whole chain (notebook 01's `bound_loss`), (c) DPPO
= (a) at T = 0, (d) an FPO-style clipped ratio of Monte Carlo ELBOs. The samplers, targets and
budgets are the presets `ROUTE_SAMPLER`, `ROUTE_TARGETS`, `ROUTE_TRAINING` of
`damdp_lite/presets.py`. Four measurements, each with fixed seeds, single-threaded:

1. `runs`: each route trains each seed's sampler on each target with `routes.train_route` (the
   same chains, updates and Adam for every route), then `routes.evaluate_sampler` measures it
   with its own generator (`EVAL_SEED`): `j_bound` (+ `j_bound_se`, Monte Carlo), on the double
   well `j_marginal`, `kl` and `dip_ratio` of the exact marginal (quadrature on
   `routes.EVAL_GRID`; the dip ratio of notebook 01, `metrics.dip_ratio`) and `mass_pos`; on
   the ring `kl_hist` (histogram KLs, q||pi* and pi*||q) and `mode_tv`; on both `mode_masses`
   from samples and `outside`, the fraction of samples outside the target's bounds (where pi*
   has next to no mass). A run has `escaped` when `outside` > `routes.ESCAPED_OUTSIDE` (1 %) or
   J_bound is not finite; its grid-based numbers are then null (the quadrature would not see
   that mass).
   `lower_lr` repeats seed 0 at a tenth of the learning rate, to tell a route's instability
   from the shared step size.
2. `variance`: at a fixed policy per (target, seed), the sampler after `REF_STEPS` steps of
   `fit_sampler`, `VAR_BATCHES` independent batches of `batch_size` chains give per-batch
   gradients g of each route's loss (on-policy, ratio 1): `total_variance` = sum over parameters
   of Var(g), `mean_norm_sq` = |mean g|^2 less its noise (total_variance / VAR_BATCHES),
   `relative_variance` = their ratio, and `cos_to_pathwise`, the cosine between the route's
   mean gradient and the pathwise one (1 for an unbiased route, up to noise).
3. `costs`: for K in `KS`, one update from fresh chains (draw B chains, the route's
   preparation, its loss, backward) per route, plus the per-step route with one chain step per
   chain (kappa = 1): `saved_bytes`, the bytes autograd saves for backward while the loss is
   built (`routes.saved_tensor_bytes`, each storage once, parameters excluded: deterministic,
   not a process-memory reading), and `seconds`, the median of `REPS` timings taken round-robin
   over the variants in this one process; the JSON's ratios to the pathwise route at the same K
   are what to quote (the machine is shared and noisy).

Writes damdp_lite/shipped/07_gradient_routes.json. Nothing is asserted: the numbers are
measured and written. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import damdp_lite as dl
from damdp_lite import routes as R
from damdp_lite.presets import (
    ROUTE_SAMPLER,
    ROUTE_SMOKE,
    ROUTE_TARGETS,
    ROUTE_TRAINING,
    route_config,
    route_policy,
    route_target,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "damdp_lite" / "shipped"
SEEDS = (0, 1, 2)
KS = (1, 2, 4, 8, 16, 32)
REPS = 7
REF_STEPS, REF_LR = 150, 1e-2
VAR_BATCHES = 100
N_EVAL = 20_000
EVAL_SEED = 4
LOWER_LR_FACTOR = 0.1
TRACE_EVERY = 10
COST_VARIANTS = (("per_step", 0), ("per_step", 1), ("pathwise", 0), ("dppo", 0),
                 ("fpo_style", 0))
"""(route, kappa) of the cost measurement: kappa = 1 is the per-step route on one chain step per
chain (`diffusion_steps_per_update`), its other rows use all K."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


REFERENCES: dict[str, dict] = {}
"""log Z and the exact mode masses of each target, computed once (2-D quadrature is slow)."""


def references(name: str) -> dict:
    if name not in REFERENCES:
        target, temperature = route_target(name)
        REFERENCES[name] = {"log_z": target.log_z(temperature),
                            "exact_mode_masses": target.exact_mode_masses(temperature)}
    return REFERENCES[name]


def evaluate(policy: dl.DiffusionPolicy, target_name: str, n_eval: int) -> dict:
    """The record of one trained sampler: `routes.evaluate_sampler` without the density."""
    target, temperature = route_target(target_name)
    refs = references(target_name)
    rec = R.evaluate_sampler(policy, target, temperature, n=n_eval, seed=EVAL_SEED,
                             log_z=refs["log_z"], exact_masses=refs["exact_mode_masses"])
    return {k: v for k, v in rec.items() if k not in ("grid", "density")}


def run_one(target_name: str, seed: int, route: str, smoke: bool, n_eval: int,
            **overrides) -> dict:
    """Train one seed's sampler with one route and evaluate it."""
    target, _ = route_target(target_name)
    policy = route_policy(target_name, seed)
    cfg = route_config(target_name, seed, smoke=smoke, **overrides)
    hist = R.train_route(route, policy, target, cfg)
    return {"target": target_name, "seed": seed, "route": route, "lr": cfg.lr,
            "updates": cfg.iterations * cfg.update_epochs,
            "chains": cfg.iterations * cfg.batch_size, "seconds": round(hist.seconds, 2),
            "j_bound_trace": [finite_or_none(j) for j in hist.j_bound[::TRACE_EVERY]],
            **evaluate(policy, target_name, n_eval)}


def variance_rows(target_name: str, seed: int, smoke: bool) -> list[dict]:
    """Per-batch gradient statistics of every route at one fixed reference policy."""
    target, temperature = route_target(target_name)
    policy = route_policy(target_name, seed)
    cfg = route_config(target_name, seed, smoke=smoke)
    dl.fit_sampler(policy, target, temperature, steps=4 if smoke else REF_STEPS,
                   batch_size=cfg.batch_size, lr=REF_LR, seed=seed)
    n = 4 if smoke else VAR_BATCHES
    grads = {}
    for name in R.ROUTES:
        cg = torch.Generator().manual_seed(1000 + seed)
        ag = torch.Generator().manual_seed(2000 + seed)
        grads[name] = torch.stack([R.route_gradient(name, policy, target, cfg, cg, ag)
                                   for _ in range(n)]).double()  # (n, P)
    rows, ref = [], grads["pathwise"].mean(0)
    for name, g in grads.items():
        mean, total = g.mean(0), float(g.var(0).sum())
        norm_sq = float(mean @ mean) - total / n
        rows.append({"target": target_name, "seed": seed, "route": name, "batches": n,
                     "batch_size": cfg.batch_size, "total_variance": total,
                     "mean_norm_sq": norm_sq,
                     "relative_variance": total / norm_sq if norm_sq > 0 else None,
                     "cos_to_pathwise": float(mean @ ref / (mean.norm() * ref.norm()))})
    return rows


def one_update(policy, target, cfg, route, gens) -> float:
    """Seconds of one update from fresh chains: draw, prepare, loss, backward."""
    t0 = time.perf_counter()
    batch = R.draw_batch(route, policy, target, cfg, *gens)
    R.route_loss(route, policy, target, batch, cfg, gens[1]).backward()
    seconds = time.perf_counter() - t0
    policy.zero_grad(set_to_none=True)
    return seconds


def update_bytes(policy, target, cfg, route, gens) -> int:
    """Bytes autograd saves for backward while one update's loss is built."""
    batch = R.draw_batch(route, policy, target, cfg, *gens)
    params = [p for p in policy.parameters() if p.requires_grad]
    return R.saved_tensor_bytes(
        lambda: R.route_loss(route, policy, target, batch, cfg, gens[1]), exclude=params)


def cost_rows(ks: tuple[int, ...], reps: int, smoke: bool) -> list[dict]:
    """Memory (deterministic) and median wall-clock of one update, per variant and K."""
    target, _ = route_target("double_well")
    rows = []
    for K in ks:
        policy = route_policy("double_well", 0, num_steps=K)
        variants = []
        for name, kappa in COST_VARIANTS:
            cfg = route_config("double_well", 0, smoke=smoke, diffusion_steps_per_update=kappa)
            gens = (torch.Generator().manual_seed(7), torch.Generator().manual_seed(8))
            variants.append((name, kappa, cfg, R.get_route(name), gens))
        times: dict[tuple, list[float]] = {(n, k): [] for n, k, *_ in variants}
        for rep in range(reps + 1):  # the first round warms up and is not kept
            for name, kappa, cfg, route, gens in variants:
                s = one_update(policy, target, cfg, route, gens)
                if rep:
                    times[name, kappa].append(s)
        for name, kappa, cfg, route, gens in variants:
            rows.append({"route": name, "kappa": kappa, "K": K, "batch_size": cfg.batch_size,
                         "saved_bytes": update_bytes(policy, target, cfg, route, gens),
                         "seconds": statistics.median(times[name, kappa])})
        log(f"costs K={K}: " + ", ".join(f"{r['route']}/{r['kappa']} {r['saved_bytes']} B "
                                         f"{1e3 * r['seconds']:.1f} ms"
                                         for r in rows if r["K"] == K))
    for r in rows:
        ref = next(p for p in rows if p["K"] == r["K"] and p["route"] == "pathwise")
        r["bytes_ratio_to_pathwise"] = r["saved_bytes"] / ref["saved_bytes"]
        r["seconds_ratio_to_pathwise"] = r["seconds"] / ref["seconds"]
    return rows


def target_record(name: str) -> dict:
    """T, log Z and the exact references of a target."""
    target, temperature = route_target(name)
    log_z = references(name)["log_z"]
    rec = {**ROUTE_TARGETS[name], "temperature": temperature, "log_z": log_z,
           "t_log_z": temperature * log_z, "mode_names": list(target.mode_names),
           "exact_mode_masses": references(name)["exact_mode_masses"].tolist(),
           "bounds": list(target.bounds)}
    if target.dim == 1:
        rec["best_gaussian"] = dl.best_gaussian_1d(target, temperature)
        rec["exact_dip_ratio"] = math.exp(-1 / temperature)
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the JSON (default: the shipped file)")
    p.add_argument("--smoke", action="store_true", help="tiny budget, one seed (CI)")
    args = p.parse_args(argv)
    if args.smoke and args.out is None:
        p.error("--smoke needs --out (a smoke run never replaces the shipped files)")
    out_json = (args.out or SHIPPED) / "07_gradient_routes.json"
    torch.set_num_threads(1)
    seeds, ks, reps = ((0,), (1, 2), 2) if args.smoke else (SEEDS, KS, REPS)
    n_eval = 2_000 if args.smoke else N_EVAL
    start = time.perf_counter()
    runs, lower = [], []
    for target_name in ROUTE_TARGETS:
        for seed in seeds:
            for route in R.ROUTES:
                runs.append(run_one(target_name, seed, route, args.smoke, n_eval))
                r = runs[-1]
                log(f"{target_name} seed {seed} {route:9s}: J_bound {r['j_bound']}, "
                    f"J(marginal) {r.get('j_marginal')}, escaped {r['escaped']}, "
                    f"{r['seconds']:.0f} s")
        lr = route_config(target_name, 0, smoke=args.smoke).lr * LOWER_LR_FACTOR
        for route in R.ROUTES:
            lower.append(run_one(target_name, 0, route, args.smoke, n_eval, lr=lr))
            log(f"{target_name} lr {lr:g} {route:9s}: J_bound {lower[-1]['j_bound']}, "
                f"escaped {lower[-1]['escaped']}")
    variance = [row for t in ROUTE_TARGETS for s in seeds
                for row in variance_rows(t, s, args.smoke)]
    log("variance done")
    costs = cost_rows(ks, reps, args.smoke)
    cfg = route_config("double_well", 0, smoke=args.smoke)
    result = {
        "what": "notebook 07: four gradient routes through one diffusion policy "
                "(benchmarks/gradient_routes.py)",
        "routes": {n: {"label": r.label, "estimates": r.estimates} for n, r in R.ROUTES.items()},
        "targets": {n: target_record(n) for n in ROUTE_TARGETS},
        "seeds": list(seeds), "sampler_config": ROUTE_SAMPLER,
        "training": {k: v for k, v in cfg.to_dict().items() if k not in ("seed", "temperature")},
        "smoke_training": ROUTE_SMOKE if args.smoke else None,
        "preset_training": ROUTE_TRAINING,
        "grid": list(R.EVAL_GRID), "n_eval": n_eval, "eval_seed": EVAL_SEED,
        "escaped_outside": R.ESCAPED_OUTSIDE,
        "runs": runs,
        "lower_lr": {"factor": LOWER_LR_FACTOR, "seed": 0, "runs": lower},
        "variance": {"reference": {"fit_steps": 4 if args.smoke else REF_STEPS, "lr": REF_LR},
                     "rows": variance},
        "costs": {"Ks": list(ks), "reps": reps, "target": "double_well",
                  "memory": "bytes autograd saves for backward while the loss is built "
                            "(saved_tensors_hooks; each storage once, parameters excluded)",
                  "rows": costs},
        "machine": {"torch": torch.__version__, "threads": 1, "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {out_json} in {result['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
