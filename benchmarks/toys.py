"""Run the multimodal toy experiments and print ONE JSON object `{name: result}`.

    python benchmarks/toys.py --json                          # every experiment, seeds 0 1 2
    python benchmarks/toys.py --json --only dw_T025_K4 --seeds 0
    python benchmarks/toys.py --json --smoke                  # tiny budgets (CI)
    python benchmarks/toys.py --list                          # names only

Experiments come from `toys_bandits.EXPERIMENTS` (method.md §7.1-7.2, I6, I16) and, when it
imports, `toys_turning.EXPERIMENTS` (§7.3-7.5). Each is `fn(seeds, smoke) -> dict` with fixed
seeds; protocol in benchmarks.md §3. Runs are single-threaded (`torch.set_num_threads(1)`),
one after the other. Progress goes to stderr; stdout carries only the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # `python benchmarks/toys.py` from the repo root
    sys.path.insert(0, HERE)


def collect_experiments() -> tuple[dict, dict[str, str]]:
    """Merged `{name: fn}` of every importable experiment module, and `{module: error}` for the
    optional modules that failed to import."""
    import toys_bandits

    experiments = dict(toys_bandits.EXPERIMENTS)
    skipped: dict[str, str] = {}
    try:
        import toys_turning
    except Exception as exc:  # optional module (another issue); report, do not fail
        skipped["toys_turning"] = f"{type(exc).__name__}: {exc}"
    else:
        for name, fn in toys_turning.EXPERIMENTS.items():
            if name in experiments:
                raise ValueError(f"experiment name {name!r} is defined in two modules")
            experiments[name] = fn
    return experiments, skipped


def _finite(obj):
    """JSON-safe copy: NaN/inf floats become None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (the only output mode; kept for symmetry "
                             "with benchmarks/sampling.py)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="seeds (default: 0 1 2)")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (seconds per run)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the toys do not gain from more)")
    parser.add_argument("--list", action="store_true", help="list experiment names and exit")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    experiments, skipped = collect_experiments()
    if args.list:
        print("\n".join(experiments))
        return 0
    names = args.only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; known: {list(experiments)}")

    results: dict = {}
    start = time.perf_counter()
    failed = False
    for name in names:
        print(f"[toys] {name} seeds={args.seeds} smoke={args.smoke}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            res = experiments[name](seeds=tuple(args.seeds), smoke=args.smoke)
        except Exception as exc:  # keep the other experiments' numbers
            failed = True
            traceback.print_exc(file=sys.stderr)
            res = {"error": f"{type(exc).__name__}: {exc}"}
        res.setdefault("experiment_seconds", time.perf_counter() - t0)
        results[name] = res
        print(f"[toys] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr,
              flush=True)
    out = {**results, "_meta": {
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "seeds": list(args.seeds), "smoke": args.smoke,
        "total_seconds": time.perf_counter() - start, "skipped_modules": skipped}}
    print(json.dumps(_finite(out), indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
