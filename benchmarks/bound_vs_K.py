"""Notebook 01 §5: how tight the reverse-KL bound is against K and the noising-step pairing.

    python benchmarks/bound_vs_K.py                  # the shipped JSON and figure (3 seeds)
    python benchmarks/bound_vs_K.py --smoke --out /tmp/bvk   # tiny budget (CI): writes only there
    python benchmarks/bound_vs_K.py --figure-only    # redraw the figure from the shipped JSON

One diffusion sampler per seed, noising-step pairing and K is trained on the double well
r(x) = -(x^2 - 1)^2 at T = 0.25 by `bound.fit_sampler` (pathwise gradients of J_bound, Adam), and
evaluated at fixed checkpoints of the same run (`CHECKPOINTS`: 300 steps, the budget this sweep
once had (then at half this learning rate); 800, the teaching default of the notebook's panel;
1500, the end). Each run seeds torch before it builds its policy
(`seed_everything(seed)`) and seeds `fit_sampler` with the same seed, so one row is one
`(seed, pairing, K)`; the evaluations use their own generator (`EVAL_SEED`) and leave the
training run as it would be without them. Per checkpoint:

- `j_bound` (+ `j_bound_se`): E r + T H(p_0) - T E sum_k ell_k, Monte Carlo over `N_EVAL` chains;
- `j_marginal`, `kl`: J = T (log Z - KL(q || pi*)) of the exact marginal (quadrature on `GRID`);
- `dip_ratio` = q(0) / max q(+-1) of the exact marginal (exact pi*: exp(-1/T); >= 1: no dip
  between the wells, whatever the mode masses say); `mass_pos` = exact marginal mass on x >= 0;
- `eta_1`, the learned final step size; `seconds` of training so far.

Writes damdp_lite/shipped/01_bound_vs_K.json and damdp_lite/shipped/figures/01_bound_vs_K.png
(the figure at the top of notebook 01: the seed means at the last checkpoint). Nothing is
asserted: the numbers are measured and written. Single-threaded, one run after the
other; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import damdp_lite as dl  # noqa: E402
from damdp_lite import plotting  # noqa: E402
from damdp_lite.bound import FitConfig  # noqa: E402
from damdp_lite.utils import progress_listener  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "damdp_lite" / "shipped"
TEMPERATURE = 0.25
SEEDS = (0, 1, 2)
PAIRINGS = ("previous", "same")
KS = (1, 2, 4, 8)
CHECKPOINTS = (300, 800, 1500)
FIT = dict(batch_size=256, lr=1e-2)
SAMPLER = dict(obs_dim=0, action_dim=1, squash="identity", hidden_sizes=(64, 64))
"""DiffusionConfig fields shared by every run; K and the pairing vary, the rest are defaults."""
GRID = (-4.0, 4.0, 2001)
N_EVAL = 20_000
EVAL_SEED = 4


def dip_ratio(grid: torch.Tensor, density: torch.Tensor) -> float:
    """q(0) / max(q(-1), q(+1)) of a density `(N,)` on `grid` `(N,)`, at the nearest grid points."""
    def at(x: float) -> float:
        return float(density[torch.argmin((grid - x).abs())])
    return at(0.0) / max(at(-1.0), at(1.0))


def evaluate(policy: dl.DiffusionPolicy, target: dl.Target, grid: torch.Tensor) -> dict:
    """The checkpoint record of one sampler (see the module docstring)."""
    est = dl.estimate_bound(policy, target, TEMPERATURE, n=N_EVAL,
                            generator=torch.Generator().manual_seed(EVAL_SEED))
    m = dl.exact_marginal_kl_1d(policy, target, TEMPERATURE, grid=grid)
    h = float(grid[1] - grid[0])
    return {"j_bound": est.j_bound, "j_bound_se": est.j_bound_se, "j_marginal": m["j_marginal"],
            "kl": m["kl"], "dip_ratio": dip_ratio(grid, m["density"]),
            "mass_pos": float(m["density"][grid >= 0].sum() * h),
            "eta_1": policy.step_sizes()[0, 0].item()}


def run_one(seed: int, pairing: str, K: int, checkpoints: tuple[int, ...], target: dl.Target,
            grid: torch.Tensor) -> dict:
    """Train one sampler for `max(checkpoints)` steps; evaluate it at each checkpoint."""
    dl.seed_everything(seed)
    policy = dl.DiffusionPolicy(dl.DiffusionConfig(num_steps=K, noising_step_pairing=pairing,
                                                   **SAMPLER))
    records: dict[int, dict] = {}
    start, evaluating = time.perf_counter(), 0.0

    def listener(done: int, total: int, row) -> None:
        nonlocal evaluating
        if done in checkpoints:
            seconds = time.perf_counter() - start - evaluating  # training time only
            t0 = time.perf_counter()
            records[done] = {"steps": done, **evaluate(policy, target, grid),
                             "seconds": round(seconds, 2)}
            evaluating += time.perf_counter() - t0

    with progress_listener(listener):
        dl.fit_sampler(policy, target, TEMPERATURE, steps=max(checkpoints), seed=seed, **FIT)
    return {"seed": seed, "pairing": pairing, "K": K,
            "checkpoints": [records[s] for s in sorted(records)]}


def seed_means(runs: list[dict], steps: int) -> list[dict]:
    """One row per (pairing, K): the mean over seeds of each number at checkpoint `steps`."""
    rows = []
    for pairing in PAIRINGS:
        for K in sorted({r["K"] for r in runs}):
            cps = [c for r in runs if r["pairing"] == pairing and r["K"] == K
                   for c in r["checkpoints"] if c["steps"] == steps]
            rows.append({"pairing": pairing, "K": K, "seeds": len(cps), **{
                key: sum(c[key] for c in cps) / len(cps)
                for key in ("j_bound", "j_marginal", "kl", "dip_ratio", "mass_pos", "eta_1")}})
    return rows


def bound_vs_k_figure(result: dict):
    """`plotting.plot_bound_vs_steps` of the seed means at the last checkpoint of `result`."""
    steps = result["checkpoints"][-1]
    return plotting.plot_bound_vs_steps(
        result["means"][str(steps)], result["t_log_z"], best_gaussian=result["best_gaussian"]["j"],
        title=f"After {steps} steps, mean of {len(result['seeds'])} seeds")


def write_figure(result: dict, path: Path) -> None:
    plotting.setup_style()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = bound_vs_k_figure(result)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the JSON and the figure (default: the shipped files)")
    p.add_argument("--smoke", action="store_true", help="tiny budget, one seed (CI)")
    p.add_argument("--figure-only", action="store_true",
                   help="redraw the figure from the JSON in --out (default: the shipped one)")
    args = p.parse_args(argv)
    out_json = (args.out or SHIPPED) / "01_bound_vs_K.json"
    out_png = (args.out or SHIPPED / "figures") / "01_bound_vs_K.png"
    if args.figure_only:
        write_figure(json.loads(out_json.read_text()), out_png)
        print(f"wrote {out_png}", file=sys.stderr)
        return 0
    if args.smoke and args.out is None:
        p.error("--smoke needs --out (a smoke run never replaces the shipped files)")
    torch.set_num_threads(1)
    plotting.setup_style()
    seeds, ks, checkpoints = ((0,), (1, 4), (5, 10)) if args.smoke else (SEEDS, KS, CHECKPOINTS)
    target, grid = dl.DoubleWell1D(), torch.linspace(*GRID[:2], GRID[2], dtype=torch.float64)
    runs, start = [], time.perf_counter()
    for seed in seeds:
        for pairing in PAIRINGS:
            for K in ks:
                runs.append(run_one(seed, pairing, K, checkpoints, target, grid))
                last = runs[-1]["checkpoints"][-1]
                print(f"seed {seed} {pairing:8s} K={K}: J_bound {last['j_bound']:.3f}, "
                      f"J(marginal) {last['j_marginal']:.3f}, dip {last['dip_ratio']:.3f}, "
                      f"{last['seconds']:.0f} s", file=sys.stderr, flush=True)
    best = dl.best_gaussian_1d(target, TEMPERATURE)
    log_z = target.log_z(TEMPERATURE)
    result = {
        "what": "notebook 01 §5: J_bound and J(marginal) against K and the noising-step pairing "
                "on the double well (benchmarks/bound_vs_K.py)",
        "temperature": TEMPERATURE, "log_z": log_z, "t_log_z": TEMPERATURE * log_z,
        "best_gaussian": best, "exact_dip_ratio": math.exp(-1 / TEMPERATURE),
        "seeds": list(seeds), "pairings": list(PAIRINGS), "Ks": list(ks),
        "checkpoints": list(checkpoints),
        "sampler_config": SAMPLER,
        "fit": {k: v for k, v in FitConfig(temperature=TEMPERATURE, steps=max(checkpoints),
                                           **FIT).to_dict().items() if k != "seed"},
        "grid": list(GRID), "n_eval": N_EVAL, "eval_seed": EVAL_SEED,
        "runs": runs, "means": {str(s): seed_means(runs, s) for s in checkpoints},
        "machine": {"torch": torch.__version__, "threads": 1, "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    write_figure(result, out_png)
    print(f"wrote {out_json} and {out_png} in {result['total_seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
