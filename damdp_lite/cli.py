"""The `damdp-lite` command. Options are generated from the config dataclasses, so each one is
documented once (its field docstring) and shared with the widgets and checkpoints.

    damdp-lite fit-sampler --target double_well --temperature 0.25 --num-steps 8 --steps 400
    damdp-lite fit-sampler --policy gaussian --json

Bad input prints one line naming the field, the value and what is allowed, and exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import types
import typing
from collections.abc import Sequence

from . import __version__
from .utils import field_docs

DIFFUSION_FIELDS = ("num_steps", "step_size_schedule", "noising_step_pairing", "noising_drift_at",
                    "hidden_sizes", "device")


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


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type,
                       fields: Sequence[str] | None = None, defaults: dict | None = None) -> None:
    """Add `--field-name` options for `fields` of dataclass `cls`; defaults from the class unless
    overridden in `defaults`. The help text is the field's docstring."""
    docs, defaults = field_docs(cls), defaults or {}
    for f in dataclasses.fields(cls):
        if fields is not None and f.name not in fields:
            continue
        tp = _base_type(f.type)
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default)
        help_ = f"{docs.get(f.name, '')} (default: {default})"
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=help_)
        elif isinstance(tp, tuple):
            parser.add_argument(flag, type=tp[1], nargs="+", default=default, help=help_)
        else:
            parser.add_argument(flag, type=tp, default=default, help=help_)


def _pick(ns: argparse.Namespace, cls: type, fields: Sequence[str] | None = None) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(ns).items()
            if k in names and (fields is None or k in fields)}


def build_parser() -> argparse.ArgumentParser:
    from .bound import FitConfig
    from .diffusion import DiffusionConfig

    p = argparse.ArgumentParser(prog="damdp-lite", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"damdp_lite {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit-sampler", help="train a sampler by minimising the reverse-KL bound "
                         "(notebook 01) and print the bound, the exact objective and mode masses")
    fit.add_argument("--target", choices=("double_well", "ring"), default="double_well",
                     help="1-D double well r=-(x^2-1)^2, or a 2-D ring of four Gaussians")
    fit.add_argument("--policy", choices=("diffusion", "gaussian"), default="diffusion",
                     help="chain policy to train")
    fit.add_argument("--json", action="store_true", help="print one JSON object")
    add_dataclass_args(fit, FitConfig)
    add_dataclass_args(fit, DiffusionConfig, DIFFUSION_FIELDS,
                       defaults={"hidden_sizes": (64, 64), "noising_step_pairing": "same"})
    return p


def cmd_fit_sampler(args: argparse.Namespace) -> dict:
    import torch

    from .bound import FitConfig, estimate_bound, exact_marginal_kl_1d, fit_sampler
    from .diffusion import DiffusionConfig, DiffusionPolicy
    from .gaussian import GaussianConfig, GaussianPolicy
    from .targets import make_target

    fit = FitConfig(**_pick(args, FitConfig))
    target = make_target(args.target)
    d = target.dim
    if args.policy == "diffusion":
        cfg = DiffusionConfig.teaching(obs_dim=0, action_dim=d, squash="identity",
                                       **_pick(args, DiffusionConfig, DIFFUSION_FIELDS))
        policy = DiffusionPolicy(cfg)
    else:
        policy = GaussianPolicy(GaussianConfig(obs_dim=0, action_dim=d, squash="identity",
                                               device=args.device))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "fit-sampler":
            out = cmd_fit_sampler(args)
    except ValueError as err:  # bad input: one line, exit 2
        print(f"damdp-lite {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        for key, val in out.items():
            print(f"{key:18s} {val:.4f}" if isinstance(val, float) else f"{key:18s} {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
