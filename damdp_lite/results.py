"""Reading shipped runs: learning curves on a common grid, bootstrap CIs over seeds, final
returns and IQM, next to published anchors (notebook 05, benchmarks.md §2.1).

A run directory holds `config.json` and `progress.csv` (`damdp_lite.train`). Its training
return at an iteration is the mean return of the episodes that *finished* in that iteration
(CleanRL's "training episodic return"); iterations where none finished are blank.

The statistics are rliable's (Agarwal et al. 2021, github.com/google-research/rliable): `iqm` is
its `metrics.aggregate_iqm`, `bootstrap_ci` its (stratified) percentile bootstrap. Aggregates over
tasks and methods (`damdp-lite report`) live in `damdp_lite.report`. rliable is imported on first
use: it takes a second to import, and `train` imports this module.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parent / "shipped"
"""The shipped results, installed with the package (package data): the toy experiments' JSON
files and, under `mujoco/`, the MuJoCo runs (config.json + progress.csv each)."""

SHIPPED_RUNS = SHIPPED / "mujoco"
"""The shipped MuJoCo run directories, re-run by `damdp-lite reproduce NAME`."""


def shipped(name: str) -> Path:
    """Path of a shipped result file or run directory, e.g. `shipped("03_bandits.json")`;
    works from an installed package as from a checkout. `ValueError` lists what exists."""
    path = SHIPPED / name
    if not path.exists():
        have = sorted(p.name for p in SHIPPED.iterdir())
        raise ValueError(f"name={name!r} is not a shipped result; shipped: {have}")
    return path

CLEANRL_PPO_V4_1M = {"HalfCheetah-v5": 1442.64, "Hopper-v5": 2382.86}
"""CleanRL PPO, gymnasium MuJoCo **v4**, 1M steps, 3 seeds, training episodic return
(github.com/vwxyzjn/cleanrl, docs/benchmark/ppo_continuous_action.md; method.md §11.1)."""


def read_progress(path: str | Path) -> list[dict]:
    """Rows of a progress.csv as dicts of floats (blank cells -> nan)."""
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


def find_runs(env_id: str, algo: str, results_dir: str | Path = SHIPPED_RUNS) -> list[Path]:
    """Run directories of `env_id` and `algo` under `results_dir`, sorted by seed."""
    from .train import load_run, run_label

    found = []
    for d in Path(results_dir).glob("*"):
        if (d / "config.json").exists() and (d / "progress.csv").exists():
            run, config = load_run(d)
            if config.env_id == env_id and run_label(config, run) == algo:
                found.append((config.seed, d))
    return [d for _, d in sorted(found)]


def training_curve(rows: Sequence[dict], key: str = "episode_return"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(env_steps, value) of the iterations where `key` is not blank, `(n,)` each."""
    steps = np.array([r["env_steps"] for r in rows], float)
    vals = np.array([r[key] for r in rows], float)
    keep = np.isfinite(vals)
    return steps[keep], vals[keep]


def on_grid(steps: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Values carried forward onto `grid` (last value at or before each grid point; nan
    before the first), `(len(grid),)`."""
    idx = np.searchsorted(steps, grid, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)
    return out.astype(float)


@contextmanager
def seeded_bootstrap(seed: int) -> Iterator[np.random.RandomState]:
    """A `random_state` for rliable's bootstraps under which they are reproducible.

    rliable 1.2.0's `StratifiedBootstrap` draws its resampling indices with `np.random.choice`,
    NumPy's *global* generator, and hands the `random_state` it is given only to arch, which does
    not draw from it. So the global generator is seeded with `seed` here and restored on exit
    (the caller's NumPy stream is left as it was), and arch's FutureWarning about `random_state`
    is silenced inside the block only. Yields `np.random.RandomState(seed)` for the
    `random_state` argument.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state", category=FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(saved)


def bootstrap_ci(samples: np.ndarray, ci: float = 0.95, n_boot: int = 5000, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its percentile-bootstrap CI (resampling seeds with replacement).

    `samples` `(n_seeds, ...)`; returns (mean, low, high), each of shape `samples.shape[1:]`.
    rliable's `get_interval_estimates` on the samples as one task, `(n_seeds, 1, m)` with the
    trailing axes flattened to `m`: its stratified bootstrap resamples the seeds independently
    at each of the `m` points, so each point's CI is the plain percentile bootstrap of its mean.
    A point where a seed is nan gets nan. With 3 seeds the CI is coarse: it can only reflect
    the spread of 3 numbers (at 95% it is their min and max).
    """
    from rliable import library as rly

    x = np.asarray(samples, float)
    flat = x.reshape(x.shape[0], 1, -1)  # (n_seeds, 1 task, m points)
    with seeded_bootstrap(seed) as state:
        _, interval = rly.get_interval_estimates(
            {"x": flat}, lambda s: s.mean(axis=0).reshape(-1), method="percentile",
            reps=n_boot, confidence_interval_size=ci, random_state=state)
    low, high = interval["x"]  # (m,) each
    return x.mean(0), low.reshape(x.shape[1:]), high.reshape(x.shape[1:])


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (Agarwal et al. 2021): sort the n values, drop floor(n/4) of them at
    each end and average the rest; rliable's `metrics.aggregate_iqm`, i.e.
    `scipy.stats.trim_mean(values, 0.25)`. n = 4: the mean of the middle two; n <= 3: nothing is
    dropped (the mean); n = 10: the middle six. `ValueError` for no values. Exercise 5.1."""
    from rliable import metrics

    x = np.asarray(values, float).reshape(-1)
    if x.size == 0:
        raise ValueError("values is empty; the IQM needs at least one value")
    return float(metrics.aggregate_iqm(x))


def final_returns(rows: Sequence[dict], fraction: float = 0.1, key: str = "episode_return"
                  ) -> np.ndarray:
    """Training returns (or another column, `key`) logged in the last `fraction` of the run's
    env steps, `(m,)`; `fraction=0`: the last value logged alone, `(1,)`."""
    steps, vals = training_curve(rows, key)
    if fraction == 0:
        return vals[-1:]
    total = rows[-1]["env_steps"]
    return vals[steps > (1 - fraction) * total]


def late_mean(rows: Sequence[dict], column: str, fraction: float = 0.25,
              statistic: Callable[[np.ndarray], float] = np.mean) -> float:
    """Mean of `column` over the last `fraction` of a run's progress rows, blank (nan) values
    skipped: a training diagnostic late in the run. nan when the column has no value there.
    `statistic` replaces the mean (`np.median` for a centre that one spike does not move,
    `np.max` for the largest value)."""
    vals = [r[column] for r in rows[int(len(rows) * (1 - fraction)):]
            if np.isfinite(r.get(column, np.nan))]
    return float(statistic(np.asarray(vals, float))) if vals else float("nan")


def summarise(env_id: str, algos: Sequence[str], results_dir: str | Path = SHIPPED_RUNS,
              num_points: int = 100, key: str = "episode_return", final_fraction: float = 0.1
              ) -> dict[str, dict]:
    """Per algorithm: curve (grid, mean, low, high), final return per seed (mean of the last
    `final_fraction` of the run, 10 %), their mean and bootstrap CI, the IQM of those returns
    pooled over seeds, env steps and minutes per run. `key="eval_return"` scores the
    evaluations instead of the training returns; `final_fraction=0` scores each run by the last
    value alone (the final evaluation of a run that evaluates often)."""
    out: dict[str, dict] = {}
    for algo in algos:
        runs = find_runs(env_id, algo, results_dir)
        if not runs:
            continue
        rows = [read_progress(d / "progress.csv") for d in runs]
        total = min(r[-1]["env_steps"] for r in rows)
        grid = np.linspace(total / num_points, total, num_points)
        curves = np.stack([on_grid(*training_curve(r, key), grid) for r in rows])
        mean, lo, hi = bootstrap_ci(curves)
        finals = [float(np.mean(final_returns(r, final_fraction, key))) for r in rows]
        f_mean, f_lo, f_hi = bootstrap_ci(np.array(finals))
        out[algo] = {"grid": grid, "mean": mean, "low": lo, "high": hi, "seeds": len(runs),
                     "final_per_seed": finals, "final_mean": float(f_mean),
                     "final_ci": (float(f_lo), float(f_hi)),
                     "final_iqm": iqm(np.concatenate([final_returns(r, final_fraction, key)
                                                      for r in rows])),
                     "env_steps": [int(r[-1]["env_steps"]) for r in rows],
                     "minutes": [r[-1]["elapsed_s"] / 60 for r in rows]}
    return out


def ablation_table(ablation: dict, columns: Sequence[tuple[str, str, str]]) -> str:
    """The text table of a lever ablation (the JSON `benchmarks/levers_ablation.py collect`
    writes): the simulator versions and evaluation steps, one line per run (variant, seed, every
    evaluation return, then each `(label, key, format)` of `columns`, e.g. `("saturated",
    "saturated", "9.2f")`), "no run" for a variant without one, then each variant's change and
    description."""
    name_w = max(len(n) for n in ablation["variants"]) + 1
    steps = [n for n, _ in ablation["variants"]["preset"]["runs"][0]["evaluations"]]
    lines = [f"evaluations at env steps {', '.join(f'{n:,}' for n in steps)} "
             "(the last is the final one)",
             f"{'variant':{name_w}s} {'seed':>4s} {'evaluations':>36s} "
             + " ".join(f"{label:>{int(fmt.split('.')[0])}s}" for label, _, fmt in columns)]
    for name, v in ablation["variants"].items():
        if not v["runs"]:
            lines.append(f"{name:{name_w}s} {'':>4s} {'no run':>36s}")
        for r in v["runs"]:
            evals = ", ".join(f"{x:6.0f}" for _, x in r["evaluations"])
            lines.append(f"{name:{name_w}s} {r['seed']:4d} {evals:>36s} "
                         + " ".join(format(r[key], fmt) for _, key, fmt in columns))
    lines += [f"  {name}: {json.dumps(v['change'])}, {v['description']}"
              for name, v in ablation["variants"].items()]
    return "\n".join(lines)


def ablation_paired(ablation: dict) -> dict[str, dict]:
    """Each variant of a lever ablation (the JSON `benchmarks/levers_ablation.py collect`
    writes) with a run, against the preset run of the same seed: `seeds` (those the preset
    has too), the final evaluation returns `variant` and `preset` on them, their means,
    `mean_difference` (variant - preset) and `below` (how many of them end below the preset's;
    the means and difference are None without such a seed), and `unpaired`, the variant's seeds
    the preset lacks."""
    base = {r["seed"]: r["final_eval_return"] for r in ablation["variants"]["preset"]["runs"]}
    out = {}
    for name, v in ablation["variants"].items():
        if name == "preset" or not v["runs"]:
            continue
        pairs = [(r["seed"], r["final_eval_return"], base[r["seed"]]) for r in v["runs"]
                 if r["seed"] in base]
        seeds, var, pre = ([p[i] for p in pairs] for i in range(3))
        out[name] = {"seeds": seeds, "variant": var, "preset": pre,
                     "variant_mean": float(np.mean(var)) if pairs else None,
                     "preset_mean": float(np.mean(pre)) if pairs else None,
                     "mean_difference": float(np.mean(np.subtract(var, pre))) if pairs else None,
                     "below": int(np.sum(np.less(var, pre))),
                     "unpaired": [r["seed"] for r in v["runs"] if r["seed"] not in base]}
    return out
