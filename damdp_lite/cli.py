"""The `damdp-lite` command. Options are generated from the config dataclasses, so each one is
documented once (its field docstring) and shared with the widgets and checkpoints.

    damdp-lite fit-sampler --target double_well --temperature 0.25 --num-steps 8 --steps 400
    damdp-lite fit-sampler --policy gaussian --json
    damdp-lite train --algo ppo --policy diffusion --env HalfCheetah-v5 --steps 1e6 --seed 0
    damdp-lite evaluate runs/HalfCheetah-v5_diffppo_s0 --video cheetah.mp4
    damdp-lite sweep runs/grid --algos ppo reppo --envs Hopper-v5 --seeds 0 1 2 --steps 1e6
    damdp-lite sweep status runs/grid
    damdp-lite sweep merge runs/all runs/batch1 runs/batch2
    damdp-lite report runs/grid
    damdp-lite reproduce --list
    damdp-lite reproduce HalfCheetah-v5_diffppo_s0

Bad input prints one line naming the field, the value and what is allowed, and exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
import types
import typing
import warnings
from collections.abc import Sequence

from . import __version__
from .config import field_docs

DIFFUSION_FIELDS = ("num_steps", "step_size_schedule", "noising_step_pairing", "noising_drift_at",
                    "hidden_sizes", "device")
"""Policy options of `fit-sampler` (the diffusion policy's; `hidden_sizes` and `device` apply to
the Gaussian too)."""

FIT_POLICY_DEFAULTS = {"diffusion": dict(hidden_sizes=(64, 64), noising_step_pairing="same",
                                         noising_drift_at="conditioning", num_steps=8),
                       "gaussian": dict(hidden_sizes=(64, 64))}
"""`fit-sampler`'s policy per kind: the teaching preset (notebook 01) with 2 x 64 networks."""


def _base_type(tp):
    """bool/int/float/str (or tuple element type) for a dataclass field annotation."""
    if isinstance(tp, str):
        tp = eval(tp, {"tuple": tuple})  # annotations are strings under `from __future__`
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin is tuple:
        return ("tuple", typing.get_args(tp)[0])
    return tp


def int_like(text: str) -> int:
    """argparse type for integers that also accepts 1e6 / 1_000_000 (an exact integer)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}")
    return int(value)


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (`prog: error: ...`) and exit code 2, without the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type,
                       fields: Sequence[str] | None = None, defaults: dict | None = None,
                       exclude: Sequence[str] = (), preset: bool = False,
                       prefix: str = "") -> None:
    """Add `--field-name` options for `fields` of dataclass `cls` (all but `exclude` when None);
    defaults from the class unless overridden in `defaults`. The help text is the field's
    docstring. With `preset=True` an option that is not given is left out of the namespace
    (argparse.SUPPRESS), so the caller's preset decides; `defaults` then only label the help.
    `prefix` ("slurm_") names the options `--slurm-field-name` and their dests `slurm_field`."""
    docs, defaults = field_docs(cls), defaults or {}
    for f in dataclasses.fields(cls):
        if (fields is not None and f.name not in fields) or f.name in exclude:
            continue
        tp = _base_type(f.type)
        flag = "--" + (prefix + f.name).replace("_", "-")
        default = defaults.get(f.name, f.default)
        help_ = f"{docs.get(f.name, '')} (default: {default})"
        kw = {"default": argparse.SUPPRESS if preset else default, "help": help_,
              "dest": prefix + f.name}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(tp, tuple):
            parser.add_argument(flag, type=int_like if tp[1] is int else tp[1], nargs="+", **kw)
        else:
            parser.add_argument(flag, type=int_like if tp is int else tp, **kw)


def _pick(ns: argparse.Namespace, cls: type, fields: Sequence[str] | None = None) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(ns).items()
            if k in names and (fields is None or k in fields)}


def _algo_classes() -> dict[type, list[str]]:
    """Each registered config class -> the algorithm names that use it."""
    from .algos import ALGOS

    out: dict[type, list[str]] = {}
    for name, algo in ALGOS.items():
        out.setdefault(algo.config_cls, []).append(name)
    return out


def _preset_values() -> dict[str, str]:
    """Per option, its preset value for each algorithm and policy kind it applies to, as text
    for --help: "16" when all agree, else e.g. "16 (ppo, reppo); 4 (sac)"."""
    from .algos import ALGOS
    from .policies import POLICIES, policy_to_dict

    seen: dict[str, dict[tuple[str, str], object]] = {}
    for name, algo in ALGOS.items():
        for kind in POLICIES:
            cfg = algo.config(policy=kind)
            own = {k: v for k, v in cfg.to_dict().items() if k != "policy"}
            for key, val in {**own, **policy_to_dict(cfg.policy)}.items():
                seen.setdefault(key, {})[name, kind] = tuple(val) if isinstance(
                    val, list) else val
    def show(val: object) -> str:
        return f"{val:.6g}" if isinstance(val, float) else str(val)

    out = {}
    for key, by in seen.items():
        groups: dict[object, list[tuple[str, str]]] = {}
        for who, val in by.items():
            groups.setdefault(val, []).append(who)
        if len(groups) == 1:
            out[key] = show(next(iter(groups)))
            continue
        parts = []
        for val, whos in groups.items():
            names = [n if sum(w[0] == n for w in whos) == len(POLICIES) else f"{n} {k}"
                     for n, k in whos]
            parts.append(f"{show(val)} ({', '.join(dict.fromkeys(names))})")
        out[key] = "; ".join(parts)
    return out


def build_parser() -> argparse.ArgumentParser:
    from .algos import ALGOS, ALIASES
    from .algos.common import AlgoConfig, EpochUpdates, LearnedTemperature
    from .bound import FitConfig
    from .diffusion import DiffusionConfig
    from .policies import ENV_FIELDS, POLICIES
    from .sweep import RUN_DEFAULTS, RUN_FIELDS, Grid, SlurmConfig
    from .train import RunConfig

    p = OneLineParser(prog="damdp-lite", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"damdp_lite {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error as well (errors are one line otherwise)")
    sub = p.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit-sampler", help="train a sampler by minimising the reverse-KL bound "
                         "(notebook 01) and print the bound, the exact objective and mode masses")
    fit.add_argument("--target", choices=("double_well", "ring"), default="double_well",
                     help="1-D double well r=-(x^2-1)^2, or a 2-D ring of four Gaussians")
    fit.add_argument("--policy", choices=("diffusion", "gaussian"), default="diffusion",
                     help="chain policy to train")
    fit.add_argument("--json", action="store_true", help="print one JSON object")
    add_dataclass_args(fit, FitConfig)
    add_dataclass_args(fit, DiffusionConfig, DIFFUSION_FIELDS, preset=True,
                       defaults={**FIT_POLICY_DEFAULTS["diffusion"], "device": "cpu"})

    tr = sub.add_parser("train", help="train an algorithm with a diffusion or Gaussian policy "
                        "into a run directory (resumes it when it holds a checkpoint)")
    tr.add_argument("--algo", default="diffppo", metavar="ALGO",
                    help="; ".join([f"{k}: {v.description}" for k, v in ALGOS.items()]
                                   + [f"aliases: {', '.join(ALIASES)} (diffX = X --policy "
                                      f"diffusion; dppo = ppo --policy diffusion "
                                      f"--temperature 0)"]) + " (default: diffppo)")
    tr.add_argument("--policy", choices=tuple(POLICIES), default=None,
                    help="diffusion (the DA-MDP version) or gaussian (the MaxEnt base); "
                         "default: gaussian for a base name (ppo = Gaussian PPO), diffusion "
                         "for a diff* alias")
    tr.add_argument("--env", dest="env_id", default="HalfCheetah-v5",
                    help="Gymnasium id, e.g. HalfCheetah-v5, Hopper-v5 or a damdp_lite/* toy")
    tr.add_argument("--steps", dest="total_env_steps", type=int_like, default=1_000_000,
                    help="env steps in total (1e6 accepted)")
    tr.add_argument("--seed", type=int_like, default=0, help="seed of everything (default: 0)")
    tr.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_dataclass_args(tr.add_argument_group("run directory and logging"), RunConfig)
    presets = _preset_values()
    seen = {"env_id", "total_env_steps", "seed", "device", "policy"}
    classes = _algo_classes()
    groups = [("shared by every algorithm", AlgoConfig)]
    for mixin in (EpochUpdates, LearnedTemperature):
        users = [n for c, ns in classes.items() if issubclass(c, mixin) for n in ns]
        groups.append((f"shared by {', '.join(users)}", mixin))
    groups += [(f"of {', '.join(names)}", cls) for cls, names in classes.items()]
    groups += [(f"of the {kind} policy", cls) for kind, (cls, _) in POLICIES.items()]
    for title, cls in groups:
        names = [f.name for f in dataclasses.fields(cls)
                 if f.name not in seen and f.name not in ENV_FIELDS]
        if names:
            add_dataclass_args(tr.add_argument_group(f"options {title}"), cls, names,
                               preset=True, defaults=presets)
            seen |= set(names)

    ev = sub.add_parser("evaluate", help="evaluate a run's policy; optionally record a video")
    ev.add_argument("run_dir", help="directory written by `damdp-lite train`")
    ev.add_argument("--episodes", type=int_like, default=5, help="episodes (default: 5)")
    ev.add_argument("--seed", type=int_like, default=10_000, help="first episode's seed")
    ev.add_argument("--video", default=None, help="write episode 0 as a video (.mp4 / .gif)")
    ev.add_argument("--max-frames", type=int_like, default=1000, help="frames in the video")
    ev.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    sw = sub.add_parser("sweep", help="train a grid of runs (algorithms x policies x envs x "
                        "seeds x --set overrides) here or on SLURM; again: skips finished runs, "
                        "resumes the others; `damdp-lite sweep status DIR` shows each job",
                        description="`damdp-lite sweep DIR [grid] [options]` starts or "
                        "continues a sweep (`--add`: with another grid); `damdp-lite sweep status "
                        "DIR` shows its jobs; `damdp-lite sweep merge DEST SRC...` joins sweeps "
                        "run apart.")
    sw.add_argument("dir", help="sweep directory (created; an existing one is continued)")
    sw.add_argument("--add", action="store_true",
                    help="add the grid given to the sweep in DIR as a grid of its own (e.g. "
                         "--seeds 3 4); the grid fields left out are its first grid's")
    grid = sw.add_argument_group("the grid (recorded in DIR/sweep.json; leave out to continue "
                                 "a sweep)")
    add_dataclass_args(grid, Grid, exclude=("sets",), preset=True)
    grid.add_argument("--set", dest="sets", nargs="+", action="extend", default=argparse.SUPPRESS,
                      metavar="FIELD=VALUE", help=field_docs(Grid)["sets"]
                      + " e.g. --set lr=1e-4 lr=3e-4 num_steps=4")
    add_dataclass_args(sw.add_argument_group("run settings of every job"), RunConfig,
                       RUN_FIELDS, preset=True, defaults=RUN_DEFAULTS)
    ex = sw.add_argument_group("where the jobs run")
    ex.add_argument("--executor", choices=("local", "slurm"), default="local",
                    help="local: child processes on this machine; slurm: one job array "
                         "through submitit (default: local)")
    ex.add_argument("--workers", type=int_like, default=0,
                    help="local: jobs at once (default: 0 = CPU cores // threads)")
    ex.add_argument("--wait", action="store_true",
                    help="slurm: wait until every job has left the queue, then show the status")
    add_dataclass_args(sw.add_argument_group("the slurm executor"), SlurmConfig,
                       prefix="slurm_")
    sw.add_argument("--json", action="store_true", help="print one JSON object at the end")
    mg = sub.add_parser("sweep-merge", prog="damdp-lite sweep merge",
                        help="`sweep merge DEST SRC...`: sweeps run in batches or on other "
                        "machines as one: DEST gains their grids, jobs and run directories "
                        "(nothing is overwritten)")
    mg.add_argument("dest", help="sweep directory to merge into (created if new)")
    mg.add_argument("sources", nargs="+", help="sweep directories to merge from")
    mg.add_argument("--results-only", action="store_true",
                    help="copy only config.json and progress.csv of the finished runs (what a "
                         "shipped result holds); default: whole run directories, job states "
                         "and logs, so unfinished jobs resume in DEST")
    mg.add_argument("--json", action="store_true", help="print one JSON object")
    st = sub.add_parser("sweep-status", prog="damdp-lite sweep status",
                        help="`sweep status DIR`: each job of a sweep: state, env steps, last "
                        "evaluation, error and log")
    st.add_argument("dir", help="sweep directory")
    st.add_argument("--json", action="store_true", help="print one JSON object")

    from .report import add_report_args

    add_report_args(sub.add_parser("report", help="aggregate scores over seeds and tasks "
                                   "(rliable): IQM, median, mean, optimality gap with 95% "
                                   "bootstrap CIs, performance profiles, P(diffusion > "
                                   "Gaussian); figures and a JSON"))

    rp = sub.add_parser("reproduce", help="re-run a shipped experiment from its recorded config")
    rp.add_argument("name", nargs="?", default=None,
                    help="a shipped run (see --list) or a run directory")
    rp.add_argument("--list", action="store_true",
                    help="list the shipped runs: name, env, algorithm, policy, seed, scores")
    rp.add_argument("--run-dir", default=None,
                    help="where to write (default: runs/reproduce/NAME; resumes when present)")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_fit_sampler(args: argparse.Namespace) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch

    from .bound import FitConfig, estimate_bound, exact_marginal_kl_1d, fit_sampler
    from .diffusion import DiffusionConfig
    from .policies import build_policy, policy_config
    from .targets import make_target

    fit = FitConfig(**_pick(args, FitConfig))
    target = make_target(args.target)
    given = _pick(args, DiffusionConfig, DIFFUSION_FIELDS)  # only the options given
    config = policy_config(args.policy, **{**FIT_POLICY_DEFAULTS[args.policy], **given})
    space = gym.spaces.Box(-np.inf, np.inf, (target.dim,))  # unbounded: the latent is the sample
    policy = build_policy(config, 0, space, config.device)
    t0 = time.time()
    hist = fit_sampler(policy, target, fit.temperature, fit.steps, fit.batch_size, fit.lr,
                       fit.seed, fit.max_grad_norm, progress=not args.json)
    gen = torch.Generator(device=policy.device).manual_seed(fit.seed + 1)
    est = estimate_bound(policy, target, fit.temperature, n=20_000, generator=gen)
    x = policy.sample(20_000, generator=gen).a_0.cpu()
    out = {"target": args.target, "policy": args.policy, "temperature": fit.temperature,
           "num_steps": policy.num_steps, "train_seconds": round(time.time() - t0, 2),
           "j_bound_first": hist.j_bound[0] if hist.j_bound else None,
           "j_bound": est.j_bound, "j_bound_se": est.j_bound_se, "t_log_z": est.t_log_z,
           "kl_upper": est.kl_upper,
           "mode_masses": [round(float(m), 4) for m in target.mode_masses(x)],
           "exact_mode_masses": [round(float(m), 4)
                                 for m in target.exact_mode_masses(fit.temperature)]}
    if target.dim == 1:
        marg = exact_marginal_kl_1d(policy.cpu(), target, fit.temperature)
        out["j_marginal"], out["kl_exact"] = marg["j_marginal"], marg["kl"]
    return out


def _summary(run_dir, history: list[dict], resumed_from: int = 0) -> dict:
    last = [r for r in history if r.get("eval_return") not in ("", None)]
    out = {"run_dir": str(run_dir), "iterations": len(history), "resumed_from": resumed_from}
    if history:
        out.update(env_steps=history[-1]["env_steps"], elapsed_s=round(history[-1]["elapsed_s"], 1))
    if last:
        out["eval_return"] = last[-1]["eval_return"]
    return out


def cmd_train(args: argparse.Namespace) -> dict:
    from .algos import ALGOS, resolve
    from .policies import all_tunable_fields
    from .train import RunConfig, train

    spec, implied = resolve(args.algo)
    kind = implied.pop("policy", None)
    if kind is not None and args.policy not in (None, kind):
        raise ValueError(f"--policy {args.policy} contradicts --algo {args.algo} (the "
                         f"{kind} policy); use --algo {spec.name} --policy {args.policy}")
    kind = kind or args.policy or "gaussian"
    own = {f.name for f in dataclasses.fields(spec.config_cls)}
    options = set(vars(args)) - {"command", "algo", "policy", "quiet", "json", "debug"}
    run_names = {f.name for f in dataclasses.fields(RunConfig)}
    foreign = sorted(k for k in options if k not in own and k not in run_names
                     and k not in all_tunable_fields())
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise ValueError(f"{flags} does not apply to --algo {args.algo} "
                         f"({spec.config_cls.__name__})")
    fields = {k: getattr(args, k) for k in options if k not in run_names}
    for name, value in implied.items():  # e.g. dppo: temperature = 0
        if name in fields and fields[name] != value:
            raise ValueError(f"--{name.replace('_', '-')} {fields[name]} contradicts --algo "
                             f"{args.algo} ({name} = {value})")
    config = spec.config(**{**implied, **fields, "policy": kind})
    run = RunConfig(**{k: getattr(args, k) for k in options if k in run_names})
    if not run.label and args.algo not in ALGOS:
        run.label = args.algo  # an alias names the run (e.g. dppo)
    res = train(config, run, progress=not (args.quiet or args.json))
    return _summary(res.run_dir, res.history, res.resumed_from)


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from pathlib import Path

    import numpy as np

    from .config import SEED, between, check_value
    from .train import evaluate_policy, load_policy, load_run

    check_value("episodes", args.episodes, int, between(1, 100_000))
    check_value("seed", args.seed, int, SEED)
    check_value("max_frames", args.max_frames, int, between(1, 1_000_000))
    if args.video is not None:
        video = Path(args.video)
        if video.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"video={args.video!r} must end in .mp4 or .gif")
        if not video.parent.is_dir():
            raise ValueError(f"video={args.video!r}: its directory {str(video.parent)!r} does "
                             f"not exist")
    _, cfg = load_run(args.run_dir)
    if args.video is not None:
        import gymnasium as gym

        env = gym.make(cfg.env_id)
        modes = env.metadata.get("render_modes") or []
        env.close()
        if "rgb_array" not in modes:
            raise ValueError(f"video={args.video!r}: env_id={cfg.env_id!r} cannot render frames "
                             f"(its render modes: {modes}); evaluate it without --video")
    policy = load_policy(args.run_dir, args.device)
    rets, lens, frames = evaluate_policy(policy, cfg.env_id, args.episodes, args.seed,
                                         render=args.video is not None,
                                         max_frames=args.max_frames)
    out = {"env_id": cfg.env_id, "episodes": args.episodes, "return_mean": float(np.mean(rets)),
           "return_std": float(np.std(rets)), "length_mean": float(np.mean(lens))}
    if args.video:
        from .plotting import write_video

        out["video"] = write_video(frames, args.video)
    return out


def shipped_table() -> list[dict]:
    """One row per shipped run: name, env, algorithm, policy, seed, final training return (mean
    over the last 10% of env steps) and the last evaluation return."""
    import numpy as np

    from .algos import algo_of
    from .policies import policy_kind
    from .results import SHIPPED_RUNS, final_returns, read_progress
    from .train import load_run

    rows = []
    for d in sorted(p for p in SHIPPED_RUNS.glob("*") if (p / "config.json").exists()):
        _, cfg = load_run(d)
        progress = read_progress(d / "progress.csv")
        evals = [r["eval_return"] for r in progress if np.isfinite(r.get("eval_return", np.nan))]
        rows.append({"name": d.name, "env": cfg.env_id, "algo": algo_of(cfg).name,
                     "policy": policy_kind(cfg.policy), "seed": cfg.seed,
                     "env_steps": int(progress[-1]["env_steps"]),
                     "final_return": round(float(np.mean(final_returns(progress))), 1),
                     "eval_return": round(evals[-1], 1) if evals else None})
    return rows


def format_table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned text table."""
    keys = list(rows[0])
    cells = [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_reproduce(args: argparse.Namespace) -> dict | None:
    from pathlib import Path

    from .results import SHIPPED_RUNS
    from .train import load_run, train

    if args.list or args.name is None:
        rows = shipped_table()
        if args.json:
            return {"shipped": rows}
        print(format_table(rows))
        return None
    src = Path(args.name) if Path(args.name, "config.json").exists() else SHIPPED_RUNS / args.name
    if not (src / "config.json").exists():
        raise ValueError(f"name={args.name!r} is neither a shipped run (see `damdp-lite "
                         f"reproduce --list`) nor a run directory with a config.json")
    run, config = load_run(src)
    run.run_dir = args.run_dir or str(Path("runs") / "reproduce" / src.name)
    res = train(config, run, progress=not (args.quiet or args.json))
    return _summary(res.run_dir, res.history, res.resumed_from)


def cmd_sweep(args: argparse.Namespace) -> dict:
    import os

    from . import sweep as sw
    from .train import RunConfig

    names = {f.name for f in dataclasses.fields(sw.Grid)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if given:
        sw.Grid(**given)  # the fields given, checked (one line) before anything is written
    run = {k: getattr(args, k) for k in sw.RUN_FIELDS if hasattr(args, k)}
    try:
        slurm = sw.SlurmConfig(**{f.name: getattr(args, "slurm_" + f.name)
                                  for f in dataclasses.fields(sw.SlurmConfig)})
    except ValueError as err:  # name the option as it is spelled: slurm_time=0 ...
        raise ValueError(f"slurm_{err}") from None
    RunConfig(**run)
    if args.workers < 0:
        raise ValueError(f"workers={args.workers} is not allowed; expected >= 0 (0 = CPU "
                         f"cores // threads)")
    if args.executor == "slurm":
        sw.check_slurm()  # before anything is written
    sweep = sw.Sweep(args.dir)
    record = sweep.create_or_check(given, run, here=args.executor == "local", add=args.add)
    jobs = record["jobs"]
    start, running = sw.todo(sweep, jobs)
    done = len(jobs) - len(start) - len(running)
    echo = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    echo(f"sweep {args.dir}: {len(jobs)} jobs: {done} done, {len(running)} running, "
         f"{len(start)} to run ({args.executor})")
    threads = record["run"]["threads"]
    if args.executor == "local":
        workers = args.workers or max(1, (os.cpu_count() or 1) // threads)
        if start:
            echo(f"{min(workers, len(start))} at a time; a line as each job ends; meanwhile "
                 f"`damdp-lite sweep status {args.dir}` shows their progress and "
                 f"{sweep.root / 'logs'} their output")
        sw.run_local(sweep, start, workers, echo=echo)
    elif start:
        ids = sw.submit_slurm(sweep, start, slurm, threads)
        echo(f"submitted {len(ids)} jobs: SLURM job array {ids[0].split('_')[0]} "
             f"(logs: {sweep.root / 'slurm'}); `damdp-lite sweep status {args.dir}` shows them")
        if args.wait:
            sw.wait_slurm(sweep, [j.name for j in start])
    rows = sw.sweep_status(args.dir)
    counts = sw.count_states(rows)
    failed = [r for r in rows if r["state"] == "failed"]
    if failed and (args.executor == "local" or args.wait):
        raise RuntimeError(f"{len(failed)} of {len(rows)} jobs failed, e.g. {failed[0]['name']}: "
                           f"{failed[0]['error']} (log: {failed[0]['log']}); `damdp-lite sweep "
                           f"status {args.dir}` lists them; run the sweep again to retry")
    return {"sweep": args.dir, "jobs": len(rows), **counts}


def cmd_sweep_merge(args: argparse.Namespace) -> dict:
    from . import sweep as sw

    echo = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    out = sw.merge(args.dest, args.sources, results_only=args.results_only, echo=echo)
    echo(f"merged {len(args.sources)} sweeps into {out['dest']}: {out['jobs']} jobs, "
         f"{out['copied']} runs copied, {out['same']} already there")
    return out


def cmd_sweep_status(args: argparse.Namespace) -> dict | None:
    from . import sweep as sw

    rows = sw.sweep_status(args.dir)
    if args.json:
        return {"sweep": args.dir, "counts": sw.count_states(rows), "jobs": rows}
    table = [{"job": r["name"], "state": r["state"],
              "env_steps": f"{r['env_steps']}/{r['total_env_steps'] or '?'}",
              "eval": "" if r["eval_return"] is None else r["eval_return"],
              "attempts": r["attempts"]} for r in rows]
    print(format_table(table))
    print(", ".join(f"{n} {s}" for s, n in sw.count_states(rows).items()))
    for r in rows:
        if r["state"] == "failed":
            print(f"failed {r['name']}: {r['error']} (log: {r['log']})")
    return None


def cmd_report(args: argparse.Namespace) -> dict:
    from .report import cmd_report as report

    return report(args)


COMMANDS = {"fit-sampler": cmd_fit_sampler, "train": cmd_train, "evaluate": cmd_evaluate,
            "sweep": cmd_sweep, "sweep-status": cmd_sweep_status, "sweep-merge": cmd_sweep_merge,
            "report": cmd_report, "reproduce": cmd_reproduce}


NEGATIVE_VALUE = re.compile(r"^-(inf|infinity|nan|\d|\.\d)", re.IGNORECASE)


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """`--v-min -inf` -> `--v-min=-inf`: argparse takes a value that starts with "-" and is not a
    plain number (-inf, -nan, -1e5) for an option name."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and NEGATIVE_VALUE.match(tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def one_line(err: BaseException) -> str:
    """The first line of an error's message (a message never spans lines on the console)."""
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _traceback_if(debug: bool, code: int) -> int:
    """With `--debug`, the traceback of the exception being handled; returns the exit code."""
    if debug:
        import traceback

        traceback.print_exc()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. Bad input: one line on stderr and exit 2; a run that stops (NaN loss, a
    file that cannot be written): one line and exit 1; Ctrl-C: one line and exit 130.
    `damdp-lite --debug ...` shows the traceback as well."""
    argv = join_negative_values(sys.argv[1:] if argv is None else argv)
    first = next((i for i, tok in enumerate(argv) if not tok.startswith("-")), len(argv))
    if argv[first:first + 2] in (["sweep", "status"], ["sweep", "merge"]):  # `sweep-status`...
        argv = [*argv[:first], f"sweep-{argv[first + 1]}", *argv[first + 2:]]
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    name = f"damdp-lite {args.command.replace('sweep-', 'sweep ')}"

    def note(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{name}: note: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = note  # a warning is one line too
            out = COMMANDS[args.command](args)
    except ValueError as err:  # bad input: one line, exit 2
        print(f"{name}: error: {one_line(err)}", file=sys.stderr)
        return _traceback_if(args.debug, 2)
    except (FloatingPointError, OSError, RuntimeError, MemoryError) as err:
        # the run stopped (a NaN loss, a file it cannot write, memory it cannot get); its last
        # checkpoint is kept. `--debug` shows where.
        print(f"{name}: stopped: {one_line(err)}", file=sys.stderr)
        return _traceback_if(args.debug, 1)
    except KeyboardInterrupt as err:
        print(f"{name}: {one_line(err) if str(err) else 'interrupted'}", file=sys.stderr)
        return _traceback_if(args.debug, 130)
    if out is None:  # the command printed its own output
        return 0
    if args.json:
        print(json.dumps(out))
    else:
        for key, val in out.items():
            print(f"{key:18s} {val:.4f}" if isinstance(val, float) else f"{key:18s} {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
