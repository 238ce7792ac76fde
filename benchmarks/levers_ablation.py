"""Ablation of the levers that make DA-MDP REPPO learn on MuJoCo (method.md §10): starting from
the working preset (`damdp-lite train --algo diffreppo`), switch each lever back to its
official / old value on its own, train, and compare final evaluation returns and the
diagnostics every run logs. `--algo diffppo` does the same for DiffPPO's preset, with the
levers suspected of its saturation (chain steps per update, T, sigma_0, the Jacobian).

    python benchmarks/levers_ablation.py run RUNS_DIR [--algo diffppo] [--seeds 0 1 2]
        [--steps 196608]
    python benchmarks/levers_ablation.py collect RUNS_DIR [RUNS_DIR ...] [--algo diffppo]
        [--base SWEEP_DIR] [--out PATH]

`run` starts (or continues: every run is resumable) one `damdp-lite sweep` per variant in
RUNS_DIR/<variant>; `collect` writes damdp_lite/shipped/levers_ablation.json (or
levers_ablation_diffppo.json). The working preset itself is the algorithm's jobs of a main sweep
(`--base`, e.g. the grid behind README's results table) when given, else RUNS_DIR/preset.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from damdp_lite.envs.make import simulator_versions
from damdp_lite.results import SHIPPED, late_mean, read_progress
from damdp_lite.train import load_run

VARIANTS: dict[str, dict] = {  # DA-MDP REPPO's
    "preset": {},
    "mc_kl": {"kl_estimator": "mc"},
    "scaled_rewards": {"scale_rewards": True},
    "no_jacobian": {"tanh_jacobian": False},
    "prior_std_3": {"prior_std": 3.0},
    "torch_init": {"hidden_init": "torch"},
    "prior_std_1": {"prior_std": 1.0},
    "entropy_target_2.32": {"entropy_target_mult": 2.32},
}
"""Each variant switches one lever of the preset back (the preset itself first), but the last two,
which are probes of the saturation the preset shows and Gaussian REPPO does not: a narrower prior,
and an entropy target of about Gaussian REPPO's. The entropy estimate is -E[sum_k ell_k], which
leaves out the prior's entropy, d (log(2 pi e)/2 + log sigma_0) = 1.82 d at sigma_0 = 1.5; so the
official target -5 d (set without the tanh Jacobian) asks for an action entropy near -3.2 d, and
-2.32 d for one near -0.5 d, Gaussian REPPO's target (`REPPO_GAUSSIAN`)."""

DESCRIPTIONS = {
    "preset": "the working preset (closed-form KL, raw rewards with a sized support, tanh "
              "Jacobian, sigma_0 = 1.5, LeCun init)",
    "mc_kl": "16-sample Monte Carlo KL (official) instead of the closed form",
    "scaled_rewards": "rewards scaled by the running return std, the fixed support [-100, 200]",
    "no_jacobian": "latent-space entropy (official: no tanh Jacobian)",
    "prior_std_3": "sigma_0 = 3 (official) instead of 1.5",
    "torch_init": "PyTorch's default init of the control network instead of LeCun normal",
    "prior_std_1": "sigma_0 = 1 instead of 1.5 (a probe of saturation)",
    "entropy_target_2.32": "entropy target -2.32 d instead of -5 d, about Gaussian REPPO's action "
                           "entropy target (a probe of saturation)",
}

DIFFPPO_VARIANTS: dict[str, dict] = {
    "preset": {},
    "kappa_8": {"diffusion_steps_per_update": 8},
    "dppo": {"temperature": 0.0},
    "prior_std_1": {"prior_std": 1.0},
    "no_jacobian": {"tanh_jacobian": False},
}
"""DiffPPO's: each changes one field of its preset (kappa_8 and prior_std_1 are not switches back
to an official value but probes of the saturation DiffPPO shows and PPO does not)."""

DIFFPPO_DESCRIPTIONS = {
    "preset": "the DiffPPO preset (kappa = 2 of K = 8 chain steps per update, T = 2e-4, "
              "sigma_0 = 1.5, tanh Jacobian)",
    "kappa_8": "all K = 8 chain steps of each env step in every update (official)",
    "dppo": "T = 0: DPPO, no entropy",
    "prior_std_1": "sigma_0 = 1 instead of 1.5",
    "no_jacobian": "latent-space entropy (official: no tanh Jacobian)",
}

ABLATIONS: dict[str, tuple[dict[str, dict], dict[str, str], str]] = {
    "diffreppo": (VARIANTS, DESCRIPTIONS, "levers_ablation.json"),
    "diffppo": (DIFFPPO_VARIANTS, DIFFPPO_DESCRIPTIONS, "levers_ablation_diffppo.json"),
}
"""Per algorithm: its variants, their descriptions and the shipped file `collect` writes."""

DIAGNOSTICS = ("saturated", "kl", "kl_violation", "clip_fraction", "dq_dx", "clipped_targets",
               "temperature")
"""progress.csv columns averaged over the last quarter of each run (those a run logs: PPO logs
`clip_fraction` where REPPO logs `kl_violation`, `dq_dx` and `clipped_targets`)."""


def run(root: Path, seeds: list[int], steps: int, env: str, variants: list[str],
        algo: str = "diffreppo", workers: int | None = None) -> None:
    from damdp_lite.cli import main as cli_main

    table = ABLATIONS[algo][0]
    for name in variants:
        sets = [f"{k}={json.dumps(v)}" for k, v in table[name].items()]
        argv = ["sweep", str(root / name), "--algos", algo, "--envs", env, "--seeds",
                *map(str, seeds), "--steps", str(steps), "--eval-every", "48",
                "--eval-episodes", "10", "--threads", "1"]
        argv += ["--workers", str(workers)] if workers else []
        if cli_main(argv + (["--set", *sets] if sets else [])) != 0:
            raise SystemExit(f"the sweep of variant {name!r} did not finish; rerun to continue")


def summarise_run(run_dir: Path) -> dict:
    """Final evaluation return, every evaluation as (env steps, return), and the late-training
    means of `DIAGNOSTICS` of one run."""
    rows = read_progress(run_dir / "progress.csv")
    _, cfg = load_run(run_dir)
    evals = [r for r in rows if math.isfinite(r.get("eval_return", math.nan))]
    out = {"seed": cfg.seed, "env_steps": int(rows[-1]["env_steps"]),
           "final_eval_return": evals[-1]["eval_return"] if evals else None,
           "evaluations": [[int(r["env_steps"]), r["eval_return"]] for r in evals]}
    for name in (n for n in DIAGNOSTICS if n in rows[0]):  # the columns this run logs
        value = late_mean(rows, name)
        out[name] = value if math.isfinite(value) else None
    return out


def finished_runs(sweep_dir: Path, env: str, label: str = "diffreppo") -> list[Path]:
    """Run directories of `label` jobs on `env` in a sweep whose training reached its budget."""
    out = []
    for d in sorted((sweep_dir / "runs").glob(f"*_{label}_s*")):
        if not (d / "progress.csv").exists():
            continue
        _, cfg = load_run(d)
        if cfg.env_id != env:
            continue
        rows = read_progress(d / "progress.csv")
        if rows and rows[-1]["env_steps"] >= cfg.num_iterations * cfg.env_steps_per_iteration:
            out.append(d)
    return out


def collect(roots: list[Path], base: Path | None, out: Path, env: str = "HalfCheetah-v5",
            algo: str = "diffreppo") -> dict:
    """Summarise every finished run of each variant found under any of `roots` (e.g. one root
    per batch of seeds) into `out`; the preset's runs come from `base` when given."""
    table, descriptions, _ = ABLATIONS[algo]
    result = {"script": "benchmarks/levers_ablation.py", "algo": algo, "env_id": env,
              "versions": simulator_versions(), "variants": {}}
    for name, change in table.items():
        srcs = [base] if (name == "preset" and base is not None) else [r / name for r in roots]
        runs = sorted((summarise_run(d) for src in srcs if src.exists()
                       for d in finished_runs(src, env, algo)), key=lambda r: r["seed"])
        finals = [r["final_eval_return"] for r in runs if r["final_eval_return"] is not None]
        result["variants"][name] = {
            "change": change, "description": descriptions[name],
            "source": ", ".join(f"{s.parent.name}/{s.name}" for s in srcs if s.exists()),
            "runs": runs,
            "seeds": len(finals),
            "mean_final_eval_return": float(np.mean(finals)) if finals else None}
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("root", type=Path)
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    r.add_argument("--steps", type=int, default=196_608)
    r.add_argument("--env", default="HalfCheetah-v5")
    r.add_argument("--algo", choices=list(ABLATIONS), default="diffreppo")
    r.add_argument("--variants", nargs="+", default=None,
                   help="variants to run (default: all but the preset)")
    r.add_argument("--workers", type=int, default=None,
                   help="runs at once per variant (default: the sweep's own default)")
    c = sub.add_parser("collect")
    c.add_argument("roots", type=Path, nargs="+", help="the RUNS_DIRs of `run`")
    c.add_argument("--algo", choices=list(ABLATIONS), default="diffreppo")
    c.add_argument("--base", type=Path, default=None)
    c.add_argument("--out", type=Path, default=None,
                   help="default: damdp_lite/shipped/levers_ablation[_diffppo].json")
    c.add_argument("--env", default="HalfCheetah-v5")
    args = ap.parse_args()
    table = ABLATIONS[args.algo][0]
    if args.cmd == "run":
        variants = args.variants or [v for v in table if v != "preset"]
        unknown = [v for v in variants if v not in table]
        if unknown:
            ap.error(f"--variants {unknown[0]!r} is not a variant of {args.algo}; "
                     f"expected one of {sorted(table)}")
        run(args.root, args.seeds, args.steps, args.env, variants, args.algo, args.workers)
    else:
        out = args.out or SHIPPED / ABLATIONS[args.algo][2]
        res = collect(args.roots, args.base, out, args.env, args.algo)
        for name, v in res["variants"].items():
            print(f"{name:15s} seeds {v['seeds']}  mean final eval {v['mean_final_eval_return']}")


if __name__ == "__main__":
    main()
