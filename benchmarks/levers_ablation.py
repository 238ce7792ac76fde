"""Ablation of the levers that make DA-MDP REPPO learn on MuJoCo (method.md §10): starting from
the working preset (`damdp-lite train --algo diffreppo`), switch each lever back to its
official / old value on its own, train, and compare final evaluation returns and the
diagnostics every run logs. `--algo diffppo` does the same for DiffPPO's preset, with the
levers suspected of its saturation (chain steps per update, T, sigma_0, the Jacobian).

    python benchmarks/levers_ablation.py run RUNS_DIR [--algo diffppo] [--seeds 0 1 2]
        [--steps 196608]
    python benchmarks/levers_ablation.py collect RUNS_DIR [RUNS_DIR ...] [--algo diffppo]
        [--from VARIANT=SWEEP_DIR[:LABEL] ...] [--steps 196608] [--out PATH]

`run` starts (or continues: every run is resumable) one `damdp-lite sweep` per variant in
RUNS_DIR/<variant>; `collect` writes damdp_lite/shipped/levers_ablation.json (or
levers_ablation_diffppo.json). A variant named by `--from` takes its runs from another sweep
(e.g. the preset's from the grid behind README's results table), else from RUNS_DIR/<variant>;
every run counted must have exactly the config `run` would build for its variant today.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from damdp_lite.envs.make import simulator_versions
from damdp_lite.report import score_run
from damdp_lite.results import SHIPPED, find_runs, late_mean, read_progress
from damdp_lite.train import algo_config, config_diff, load_run

VARIANTS: dict[str, dict] = {  # DA-MDP REPPO's
    "preset": {},
    "mc_kl": {"kl_estimator": "mc"},
    "scaled_rewards": {"scale_rewards": True},
    "no_jacobian": {"tanh_jacobian": False},
    "prior_std_3": {"prior_std": 3.0},
    "torch_init": {"hidden_init": "torch"},
    "tuned_temperature": {"auto_temperature": True},
    "prior_std_1": {"prior_std": 1.0},
}
"""Each variant switches one lever of the preset back to its official / old value (the preset
itself first), but the last, a probe of the saturation the preset shows and Gaussian REPPO does
not: a narrower prior. The preset holds its temperature fixed, so the entropy target (which only
the temperature's loss reads) is no lever of it; an ablation from the earlier, tuned-temperature
preset, with a probe of that target, is kept in `levers_ablation_tuned_temperature.json`."""

DESCRIPTIONS = {
    "preset": "the working preset (closed-form KL, raw rewards with a sized support, tanh "
              "Jacobian, sigma_0 = 1.5, LeCun init, the temperature held at 0.01)",
    "mc_kl": "16-sample Monte Carlo KL (official) instead of the closed form",
    "scaled_rewards": "rewards scaled by the running return std, the fixed support [-100, 200]",
    "no_jacobian": "latent-space entropy (official: no tanh Jacobian)",
    "prior_std_3": "sigma_0 = 3 (official) instead of 1.5",
    "torch_init": "PyTorch's default init of the control network instead of LeCun normal",
    "tuned_temperature": "the temperature tuned toward the entropy target -5 d (official) "
                         "instead of held at 0.01",
    "prior_std_1": "sigma_0 = 1 instead of 1.5 (a probe of saturation)",
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


EVAL_EVERY, EVAL_EPISODES = 48, 10
"""Every ablation run evaluates every 48 iterations and at its end over 10 episodes, as the grid."""


def run(root: Path, seeds: list[int], steps: int, env: str, variants: list[str],
        algo: str = "diffreppo", workers: int | None = None) -> None:
    from damdp_lite.cli import main as cli_main

    table = ABLATIONS[algo][0]
    for name in variants:
        sets = [f"{k}={json.dumps(v)}" for k, v in table[name].items()]
        argv = ["sweep", str(root / name), "--algos", algo, "--envs", env, "--seeds",
                *map(str, seeds), "--steps", str(steps), "--eval-every", str(EVAL_EVERY),
                "--eval-episodes", str(EVAL_EPISODES), "--threads", "1"]
        argv += ["--workers", str(workers)] if workers else []
        if cli_main(argv + (["--set", *sets] if sets else [])) != 0:
            raise SystemExit(f"the sweep of variant {name!r} did not finish; rerun to continue")


def summarise_run(run_dir: Path) -> dict:
    """Final evaluation return, every evaluation as (env steps, return), and the late-training
    means of `DIAGNOSTICS` of one run; ValueError, one line, for a run without an evaluation."""
    rows = read_progress(run_dir / "progress.csv")
    _, cfg = load_run(run_dir)
    evals = [r for r in rows if math.isfinite(r.get("eval_return", math.nan))]
    if not evals:
        raise ValueError(f"{run_dir}: no evaluation in its progress.csv, so no final return")
    out = {"seed": cfg.seed, "env_steps": int(rows[-1]["env_steps"]),
           "final_eval_return": evals[-1]["eval_return"],
           "evaluations": [[int(r["env_steps"]), r["eval_return"]] for r in evals]}
    for name in (n for n in DIAGNOSTICS if n in rows[0]):  # the columns this run logs
        value = late_mean(rows, name)
        out[name] = value if math.isfinite(value) else None
    return out


def finished_runs(sweep_dir: Path, env: str, label: str = "diffreppo") -> list[Path]:
    """Run directories of a sweep whose recorded label is `label` (`results.find_runs`) on
    `env`, and whose training reached its budget, by seed."""
    return [d for d in find_runs(env, label, sweep_dir / "runs") if score_run(d).finished]


def check_variant_config(run_dir: Path, algo: str, change: dict, steps: int) -> None:
    """Raise ValueError, one line, unless the run is exactly what `run` makes for this variant
    today: the config `train.algo_config` builds with the variant's change, the run's env and
    seed and `steps`, evaluated every `EVAL_EVERY` iterations over `EVAL_EPISODES` episodes. A
    run made under another preset, with another field changed or evaluated otherwise stops
    `collect`."""
    run_cfg, cfg = load_run(run_dir)
    for name, want in (("eval_every", EVAL_EVERY), ("eval_episodes", EVAL_EPISODES)):
        if getattr(run_cfg, name) != want:
            raise ValueError(f"{run_dir}: {name} = {getattr(run_cfg, name)!r}, but the ablation's "
                             f"runs have {want}")
    want = algo_config(algo, env_id=cfg.env_id, seed=cfg.seed, total_env_steps=steps, **change)
    diff = config_diff(cfg.to_dict(), want.to_dict())
    if diff:
        name, have, expected = diff[0]
        raise ValueError(f"{run_dir}: {name} = {have!r}, but the variant {json.dumps(change)} of "
                         f"today's {algo} preset with {steps} env steps has {expected!r}")


def parse_source(text: str, variants: dict[str, dict], algo: str) -> tuple[str, Path, str]:
    """`VARIANT=SWEEP_DIR[:LABEL]` (`--from`) as (variant, sweep dir, run label; default the
    algorithm's name); ValueError, one line, for a variant the ablation does not have or no
    directory."""
    name, sep, rest = text.partition("=")
    where, colon, label = rest.rpartition(":")
    if not colon or "/" in label:  # no label given (a colon inside the path is kept)
        where, label = rest, ""
    if not sep or not where or name not in variants:
        raise ValueError(f"--from {text!r}: expected VARIANT=SWEEP_DIR[:LABEL] with VARIANT one "
                         f"of {sorted(variants)}")
    return name, Path(where), label or algo


def collect(roots: list[Path], existing: dict[str, tuple[Path, str]] | None, out: Path,
            env: str = "HalfCheetah-v5", algo: str = "diffreppo",
            steps: int = 196_608) -> dict:
    """Summarise every finished run of each variant found under any of `roots` (e.g. one root
    per batch of seeds) into `out`. A variant named in `existing` (variant -> (sweep dir, run
    label), e.g. the preset's runs in the grid behind README's table) takes its runs from there
    instead, and must find at least one. Every run must be the variant's
    (`check_variant_config`) and each seed may appear once; anything else raises ValueError,
    one line, and writes nothing."""
    table, descriptions, _ = ABLATIONS[algo]
    existing = existing or {}
    unknown = sorted(set(existing) - set(table))
    if unknown:
        raise ValueError(f"variant {unknown[0]!r} is not a variant of {algo}; expected one of "
                         f"{sorted(table)}")
    result = {"script": "benchmarks/levers_ablation.py", "algo": algo, "env_id": env,
              "versions": simulator_versions(), "variants": {}}
    for name, change in table.items():
        in_roots = [d for r in roots if (r / name).is_dir()
                    for d in finished_runs(r / name, env, algo)]
        if name in existing:
            (where, label), srcs = existing[name], [existing[name][0]]
            dirs = finished_runs(where, env, label) if where.is_dir() else []
            if not dirs:
                raise ValueError(f"--from {name}={where}:{label}: no finished run labelled "
                                 f"{label!r} on {env} in {where / 'runs'}")
            if in_roots:
                raise ValueError(f"variant {name!r} has runs both in {in_roots[0].parents[1]} and "
                                 f"from --from {where}; keep one source")
        else:
            srcs, dirs = [r / name for r in roots], in_roots
        seen: dict[int, Path] = {}
        for d in dirs:
            check_variant_config(d, algo, change, steps)
            seed = load_run(d)[1].seed
            if seed in seen:
                raise ValueError(f"variant {name!r} has seed {seed} twice: {seen[seed]} and {d}")
            seen[seed] = d
        runs = [summarise_run(seen[sd]) for sd in sorted(seen)]
        finals = [r["final_eval_return"] for r in runs]
        result["variants"][name] = {
            "change": change, "description": descriptions[name],
            "source": ", ".join(f"{s.parent.name}/{s.name}" for s in srcs if s.exists())
                      + (f", runs labelled {existing[name][1]}" if name in existing else ""),
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
    c.add_argument("--from", dest="sources", action="append", default=[],
                   metavar="VARIANT=SWEEP_DIR[:LABEL]",
                   help="take a variant's runs from a sweep (run label: default the algorithm's "
                        "name), e.g. the preset's from the grid; repeatable")
    c.add_argument("--steps", type=int, default=196_608,
                   help="the budget every run must have been trained for")
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
        try:
            existing: dict[str, tuple[Path, str]] = {}
            for text in args.sources:
                name, where, label = parse_source(text, table, args.algo)
                if name in existing:
                    raise ValueError(f"--from names variant {name!r} twice; give one source")
                existing[name] = (where, label)
            res = collect(args.roots, existing, out, args.env, args.algo, args.steps)
        except ValueError as err:
            raise SystemExit(f"levers_ablation.py collect: {err}") from None
        for name, v in res["variants"].items():
            print(f"{name:18s} seeds {v['seeds']}  mean final eval {v['mean_final_eval_return']}"
                  + ("" if v["seeds"] else "  (no finished run)"))


if __name__ == "__main__":
    main()
