"""Aggregate scores over seeds and tasks with rliable (`damdp-lite report DIR...`): the IQM,
median, mean and optimality gap with stratified-bootstrap 95% CIs, performance profiles, and the
probability that each diffusion method improves on its Gaussian base (Agarwal et al., *Deep RL
at the edge of the statistical precipice*, NeurIPS 2021; github.com/google-research/rliable).

    runs = collect_runs(["runs/grid"])                   # every run directory below, scored
    report = write_report(runs, "runs/grid/report")      # report.json and the figures

**Score.** A run's score is its final *evaluation* return: the last non-blank `eval_return` of
its progress.csv, the mean over `eval_episodes` episodes of the stochastic policy with frozen
normalisers that `train.train` runs at the end of every run. Training returns are never used.
Runs that did not finish, have no evaluation, cannot be read or repeat a (method, task, seed)
are left out with a reason ("skipped" in report.json, one warning line).

**Normalisation per task**, so that tasks with different return scales can be aggregated:

- `random-best` (default): 0 = the mean return of uniformly random actions
  (`random_policy_return`, `random_episodes` episodes with env seeds 0, 1, ...), 1 = the best
  score any run *in this report* reached on the task. The scale is relative to the runs compared:
  adding a better run lowers every other normalised score (rankings and P(improvement) do not
  change). A task on which no run beats random actions is an error.
- `none`: raw returns; sensible for one task or tasks of a common scale (no optimality gap).

**Methods** are run labels (`train.run_label`: "reppo", "diffreppo", a sweep's
"diffreppo+lr-0.0003"). A method's score matrix is `(num_seeds, num_tasks)`; when its tasks have
different seed counts, the first n seeds by seed number of each are used, n the smallest count
(recorded under "seeds_used"). Every bootstrap restarts from `seed`, so a method's CIs do not
depend on which other methods are in the report.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .config import SEED, between, check_value, one_of
from .policies import PAIR
from .results import iqm, read_progress, seeded_bootstrap

NORMALISATIONS = ("random-best", "none")
"""How scores are put on a common scale per task (module docstring)."""

METRICS = ("IQM", "Median", "Mean", "Optimality Gap")
"""rliable's aggregates, in report.json's and aggregates.png's order (no gap with `none`)."""

REPORT_FORMAT = 1
"""report.json layout version."""


@dataclass(frozen=True)
class RunScore:
    """One run directory found by `collect_runs`: who it is and its score (or why it is left
    out: `skipped` is "" for a run the report uses)."""

    path: str
    """The run directory."""
    env_id: str = ""
    """Its task."""
    method: str = ""
    """Its label (`train.run_label`): "diffreppo", a sweep's "diffreppo+lr-0.0003", ..."""
    algo: str = ""
    """The registered algorithm (`algo_of(config).name`): ppo, reppo, wpo, sac."""
    kind: str = ""
    """Policy kind: "diffusion" or "gaussian"."""
    default_label: str = ""
    """The algorithm's label of this kind (`Algo.label(kind)`), e.g. "diffreppo"."""
    seed: int = -1
    """Its config's seed."""
    eval_episodes: int = 0
    """Episodes behind each evaluation return."""
    env_steps: int = 0
    """Env steps of the last progress row."""
    planned_env_steps: int = 0
    """Env steps of a finished run: num_iterations * env_steps_per_iteration."""
    score: float | None = None
    """Final evaluation return (None: no evaluation)."""
    skipped: str = ""
    """Why the report leaves the run out ("" = used)."""
    settings: str = ""
    """Its config without the seed, as JSON: the runs of a method on a task should agree."""

    @property
    def finished(self) -> bool:
        return self.planned_env_steps > 0 and self.env_steps >= self.planned_env_steps


def score_run(path: Path) -> RunScore:
    """A `RunScore` of one run directory; anything unreadable becomes a skip reason."""
    from .algos import algo_of
    from .policies import policy_kind
    from .train import load_run, run_label

    try:
        run, cfg = load_run(path)
        rows = read_progress(path / "progress.csv")
        algo, kind = algo_of(cfg), policy_kind(cfg.policy)
    except (ValueError, OSError, KeyError, TypeError, UnicodeDecodeError) as err:
        return RunScore(str(path), skipped=f"unreadable: {str(err).splitlines()[0]}")
    evals = [v for v in (r.get("eval_return", math.nan) for r in rows) if math.isfinite(v)]
    last = rows[-1].get("env_steps", math.nan) if rows else math.nan
    score = RunScore(str(path), cfg.env_id, run_label(cfg, run), algo.name, kind,
                     algo.label(kind), int(cfg.seed), int(run.eval_episodes),
                     int(last) if math.isfinite(last) else 0,
                     cfg.num_iterations * cfg.env_steps_per_iteration,
                     float(evals[-1]) if evals else None,
                     settings=json.dumps({k: v for k, v in cfg.to_dict().items()
                                          if k != "seed"}, sort_keys=True, default=str))
    if not rows:
        why = "no progress rows (the run never completed an iteration)"
    elif not score.finished:
        why = f"unfinished: {score.env_steps} of {score.planned_env_steps} env steps"
    elif not evals:
        why = "no evaluation: eval_return is blank in every row"
    else:
        return score
    return RunScore(**{**asdict(score), "skipped": why})


def find_run_dirs(path: str | Path) -> list[Path]:
    """Run directories (config.json and progress.csv) at or below `path`, sorted; a run
    directory's own subfolders are not searched."""
    path = Path(path)
    if (path / "config.json").is_file() and (path / "progress.csv").is_file():
        return [path]
    found = {c.parent for c in path.rglob("config.json") if (c.parent / "progress.csv").is_file()}
    return sorted(d for d in found if not any(p in found for p in d.parents))


def collect_runs(paths: Sequence[str | Path]) -> list[RunScore]:
    """Every run directory at or below `paths` (run, sweep or any directories), scored.

    Returns all runs found, those left out with `skipped` set (unfinished, no evaluation,
    unreadable, or a second run of the same method, task and seed), and warns once naming
    them. `ValueError` (one line) for a path that does not exist or is not a directory, or
    when no run directory is found at all."""
    if isinstance(paths, str | Path) or not paths:
        raise ValueError(f"paths={paths!r} is not allowed; expected a non-empty list of "
                         f"run or sweep directories")
    dirs: list[Path] = []
    for p in paths:
        if not Path(p).exists():
            raise ValueError(f"paths: {str(p)!r} does not exist; expected a run directory, a "
                             f"sweep directory or a folder holding them")
        if not Path(p).is_dir():
            raise ValueError(f"paths: {str(p)!r} is a file; expected a run directory, a sweep "
                             f"directory or a folder holding them")
        dirs += [d for d in find_run_dirs(p) if d.resolve() not in {x.resolve() for x in dirs}]
    if not dirs:
        raise ValueError(f"paths={[str(p) for p in paths]} hold no run directory (a folder "
                         f"with config.json and progress.csv)")
    runs, seen = [], {}
    for d in dirs:
        run = score_run(d)
        key = (run.method, run.env_id, run.seed)
        if not run.skipped and key in seen:
            run = RunScore(**{**asdict(run), "skipped": f"duplicate of {seen[key]} (same "
                              f"method, task and seed)"})
        elif not run.skipped:
            seen[key] = run.path
        runs.append(run)
    _warn_mixed_settings([r for r in runs if not r.skipped])
    _warn_mixed_simulators([r for r in runs if not r.skipped])
    left = [r for r in runs if r.skipped]
    if left:
        shown = "; ".join(f"{r.path} ({r.skipped})" for r in left[:3])
        more = f"; and {len(left) - 3} more (report.json: skipped)" if len(left) > 3 else ""
        warnings.warn(f"left out {len(left)} of {len(runs)} runs: {shown}{more}", stacklevel=2)
    return runs


def _warn_mixed_settings(used: list[RunScore]) -> None:
    """One warning line per (method, task) whose runs differ in more than their seed (e.g.
    two sweeps of other budgets under one label): their seeds would be pooled."""
    groups: dict[tuple[str, str], list[RunScore]] = {}
    for r in used:
        groups.setdefault((r.method, r.env_id), []).append(r)
    for (method, task), runs in groups.items():
        configs = [json.loads(r.settings) for r in runs]
        diff = sorted(k for k in configs[0] if any(c.get(k) != configs[0][k] for c in configs))
        if diff:
            warnings.warn(f"method {method!r} on {task}: its runs differ in {', '.join(diff[:4])}"
                          f" (e.g. {runs[0].path} and {runs[-1].path}); they are pooled as one "
                          f"method: give them distinct labels to compare them", stacklevel=3)


def _warn_mixed_simulators(used: list[RunScore]) -> None:
    """One warning line when the runs were recorded under different MuJoCo versions
    (config.json "versions"; runs recorded before versions were count as "not recorded")."""
    from .train import recorded_versions

    groups: dict[str, list[str]] = {}
    for r in used:
        version = (recorded_versions(r.path) or {}).get("mujoco", "not recorded")
        groups.setdefault(f"mujoco {version}" if version != "not recorded" else version,
                          []).append(r.path)
    if len(groups) > 1:
        said = "; ".join(f"{v}: {len(p)} runs (e.g. {p[0]})" for v, p in sorted(groups.items()))
        warnings.warn(f"the runs were made under different MuJoCo versions ({said}); the "
                      f"simulator alone can move their returns", stacklevel=3)


class _UniformActions:
    """Uniform actions over the env's Box (standard normal on unbounded dimensions), behind the
    `act` of a chain policy, so that `train.evaluate_policy` runs them."""

    device = torch.device("cpu")

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        low, high = (torch.as_tensor(np.asarray(b, float)) for b in (low, high))
        self.bounded = torch.isfinite(low) & torch.isfinite(high)  # (d,)
        self.low = torch.where(self.bounded, low, 0.0)
        self.span = torch.where(self.bounded, high - low, 0.0)

    def act(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shape = (obs.shape[0], self.low.shape[0])  # (B, d)
        u = torch.rand(shape, generator=generator, dtype=torch.float64)
        z = torch.randn(shape, generator=generator, dtype=torch.float64)
        return torch.where(self.bounded, self.low + self.span * u, z).float()


def random_policy_return(env_id: str, episodes: int = 10, seed: int = 0) -> float:
    """Mean return of uniformly random actions over `episodes` episodes (one env each, env
    seeds seed..seed+episodes-1, actions from a torch generator seeded with `seed`): the 0 of
    `random-best` normalisation. Uses `train.evaluate_policy`, the loop that scores the runs."""
    space = _action_space(env_id, episodes, seed)
    return _mean_return(_UniformActions(space.low, space.high), env_id, episodes, seed)


def pinned_action_return(env_id: str, action: float | Sequence[float] = 0.0,
                         episodes: int = 10, seed: int = 0) -> float:
    """Mean return of one constant action (`action` on every dimension, or one value per
    dimension `(d,)`, in the env's action units) over `episodes` episodes with env seeds
    seed..seed+episodes-1: the "pinned action" reference of a return plot. The same loop as
    `random_policy_return` (`train.evaluate_policy`). An action outside the action space is
    an error naming it and the allowed range."""
    space = _action_space(env_id, episodes, seed)
    try:
        a = np.broadcast_to(np.asarray(action, float), space.shape).copy()  # (d,)
    except ValueError:
        raise ValueError(f"action={action!r} must be one number or a sequence of length "
                         f"{space.shape[0]} (the action dimension of {env_id})") from None
    if not (np.all(np.isfinite(a)) and np.all(a >= space.low) and np.all(a <= space.high)):
        raise ValueError(f"action={action!r} must lie in the action space of {env_id}: "
                         f"[{np.min(space.low):g}, {np.max(space.high):g}] per dimension")
    return _mean_return(_PinnedAction(a), env_id, episodes, seed)


class _PinnedAction:
    """One constant action `(d,)` behind the `act` of a chain policy (`train.evaluate_policy`)."""

    device = torch.device("cpu")

    def __init__(self, action: np.ndarray) -> None:
        self.action = torch.as_tensor(action, dtype=torch.float32)

    def act(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.action.expand(obs.shape[0], -1).clone()


def _action_space(env_id: str, episodes: int, seed: int):
    """The single-env action space of `env_id`, after checking `episodes` and `seed`."""
    from .envs.make import make_vector_env

    check_value("episodes", episodes, int, between(1, 10_000))
    check_value("seed", seed, int, SEED)
    envs = make_vector_env(env_id, 1)
    space = envs.single_action_space
    envs.close()
    return space


def _mean_return(policy, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of `policy` (an object with `act` and `device`) over `episodes` episodes."""
    from .train import evaluate_policy

    returns, _, _ = evaluate_policy(policy, env_id, episodes, seed)
    return float(np.mean(returns))


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def _num(x) -> float | None:
    """A float for strict JSON (nan / inf -> None)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _interval(scores, fn, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """rliable's point estimate and percentile-bootstrap 95% CI `(2, m)` of `fn(scores)`;
    `scores` one `(num_seeds, num_tasks)` array, or a list of them (independent bootstrap)."""
    from rliable import library as rly

    with seeded_bootstrap(seed) as state:
        point, ci = rly.get_interval_estimates({"x": scores}, fn, method="percentile", reps=reps,
                                               random_state=state)
    return np.asarray(point["x"], float).reshape(-1), np.asarray(ci["x"], float).reshape(2, -1)


def _normalisation(used: list[RunScore], normalise: str, random_episodes: int,
                   random_scores: Mapping[str, float] | None) -> dict[str, dict]:
    """Per task: the random-action return ("random", None for `none`) and the best score."""
    out = {}
    for task in sorted({r.env_id for r in used}):
        best = max((r for r in used if r.env_id == task), key=lambda r: r.score)
        low = None
        if normalise == "random-best":
            low = (float(random_scores[task]) if random_scores and task in random_scores
                   else random_policy_return(task, random_episodes))
            if not best.score > low:
                raise ValueError(f"normalise='random-best': on task {task!r} no run beats random "
                                 f"actions (best {best.score:.4g} <= random {low:.4g}); use "
                                 f"--normalise none (normalise='none')")
        out[task] = {"random": low, "best": best.score, "best_method": best.method,
                     "best_run": best.path}
    return out


def _normalised(norm: dict, task: str, raw) -> np.ndarray:
    """(raw - random) / (best - random) on `task`, or `raw` itself without normalisation."""
    n, x = norm[task], np.asarray(raw, float)
    return x if n["random"] is None else (x - n["random"]) / (n["best"] - n["random"])


def _only(values) -> str | None:
    """The one value of a method's runs (None when they disagree: such a method is not paired)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _methods(used: list[RunScore], norm: dict) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Per method: its report.json entry (without the aggregates) and its normalised score
    matrix `(n, num_tasks)`, n the smallest seed count over its tasks (first n seeds each).
    Methods come grouped: each Gaussian base after its diffusion version."""
    entries, matrices = {}, {}
    for name in sorted({r.method for r in used}):
        mine = [r for r in used if r.method == name]
        tasks = sorted({r.env_id for r in mine})
        by_task = {t: sorted((r for r in mine if r.env_id == t), key=lambda r: r.seed)
                   for t in tasks}
        n = min(len(v) for v in by_task.values())
        matrices[name] = np.stack([_normalised(norm, t, [r.score for r in by_task[t][:n]])
                                   for t in tasks], axis=1)  # (n seeds, num_tasks)
        entries[name] = {
            "algo": _only(r.algo for r in mine), "kind": _only(r.kind for r in mine),
            "default_label": _only(r.default_label for r in mine) or "", "tasks": tasks,
            "seeds": n, "seeds_used": {t: [r.seed for r in v[:n]] for t, v in by_task.items()},
            "seeds_dropped": {t: [r.seed for r in v[n:]] for t, v in by_task.items() if v[n:]},
            "scores": {t: {"seeds": [r.seed for r in v], "runs": [r.path for r in v],
                           "eval_episodes": [r.eval_episodes for r in v],
                           "raw": [r.score for r in v],
                           "normalised": [_num(x) for x in _normalised(norm, t,
                                                                       [r.score for r in v])],
                           "raw_iqm": iqm([r.score for r in v]),
                           "raw_mean": float(np.mean([r.score for r in v]))}
                       for t, v in by_task.items()}}

    def order(name: str) -> tuple:
        m = entries[name]
        suffix = name[len(m["default_label"]):] if name.startswith(m["default_label"]) else name
        return (m["algo"] or "", suffix, m["kind"] or "", name)
    names = sorted(entries, key=order)
    return {n: entries[n] for n in names}, {n: matrices[n] for n in names}


def _pairs(methods: dict[str, dict]) -> list[tuple[str, str]]:
    """(diffusion method, its Gaussian base): the same algorithm and tasks, labels the
    algorithm's defaults or those plus the same overrides ("diffreppo+lr-0.0003" with
    "reppo+lr-0.0003"). Overrides of fields only one policy kind has (a sweep's
    "+num_steps-4") are left out of the match, so every "diffppo+num_steps-K" pairs with
    "ppo"."""
    from .policies import tunable_fields

    own = set(tunable_fields(PAIR[0])) ^ set(tunable_fields(PAIR[1]))  # one kind's fields

    def shared(suffix: str) -> tuple[str, ...]:
        parts = [p for p in suffix.split("+") if p]
        return tuple(p for p in parts if p.split("-", 1)[0] not in own)

    by_key: dict[tuple, dict[str, list[str]]] = {}
    for name, m in methods.items():
        if m["kind"] in PAIR and name.startswith(m["default_label"]):
            suffix = name[len(m["default_label"]):]
            if suffix and not suffix.startswith("+"):
                continue  # a custom label that merely starts like the default one
            key = (m["algo"], shared(suffix), tuple(m["tasks"]))
            by_key.setdefault(key, {}).setdefault(m["kind"], []).append(name)
    return [(d, g) for kinds in by_key.values()
            for d in kinds.get(PAIR[0], []) for g in kinds.get(PAIR[1], [])]


def _profiles(matrices: dict[str, np.ndarray], normalise: str, reps: int, seed: int
              ) -> tuple[np.ndarray, dict, dict]:
    """rliable's performance profiles (score distributions: the fraction of a method's runs,
    over all its tasks, with score > tau) and their CIs, on 101 thresholds tau spanning the
    scores (and [0, 1] when normalised)."""
    from rliable import library as rly

    scores = np.concatenate([m.reshape(-1) for m in matrices.values()])
    lo, hi = float(scores.min()), float(scores.max())
    if normalise == "random-best":
        lo, hi = min(lo, 0.0), max(hi, 1.0)
    tau = np.linspace(lo, hi if hi > lo else lo + 1.0, 101)
    profiles, cis = {}, {}
    for name, m in matrices.items():
        with seeded_bootstrap(seed):
            p, c = rly.create_performance_profile(  # vectorised over tau, same definition
                {name: m}, tau, reps=reps,
                custom_profile_func=lambda s, t: (s.reshape(-1, 1) > t).mean(axis=0))
        profiles[name], cis[name] = p[name], c[name]
    return tau, profiles, cis


def write_report(runs: Sequence[RunScore], out_dir: str | Path, normalise: str = "random-best",
                 reps: int = 2000, seed: int = 0, random_episodes: int = 10,
                 random_scores: Mapping[str, float] | None = None) -> dict:
    """Aggregate `runs` (from `collect_runs`; skipped ones are listed, not used) and write
    `out_dir`/report.json, aggregates.png, profiles.png and, when a diffusion method has its
    Gaussian base, improvement.png. Returns what report.json holds:

        rliable_version, normalise, reps, seed, confidence, metrics, tasks, runs_used
        normalisation   per task: random (None for `none`), best, best_method, best_run
        methods         per method: algo, kind, tasks, seeds (n), seeds_used, seeds_dropped;
                        scores per task (seeds, runs, eval_episodes, raw, normalised, raw_iqm,
                        raw_mean, over all its seeds); aggregate per metric {point, ci}
        pairs           [{x (diffusion), y (Gaussian), algo, tasks,
                          probability_of_improvement, ci}]
        profiles        tau, and per method the profile and its CI (low, high) at each tau
        skipped         [{path, reason}]; figures: the files written

    Args:
        normalise: "random-best" or "none" (module docstring).
        reps: bootstrap replications of every CI (>= 100; rliable's default for profiles: 2000).
        seed: seed of every bootstrap (each restarts from it).
        random_episodes: episodes of `random_policy_return` per task.
        random_scores: the random-action return per task, measured when not given.
    """
    from rliable import metrics

    check_value("normalise", normalise, str, one_of(*NORMALISATIONS))
    check_value("reps", reps, int, between(100, 1_000_000))
    check_value("seed", seed, int, SEED)
    check_value("random_episodes", random_episodes, int, between(1, 10_000))
    used = [r for r in runs if not r.skipped]
    if not used:
        raise ValueError(f"runs: none of the {len(runs)} runs can be scored (all skipped: "
                         f"unfinished, no evaluation or unreadable); see the warning")
    norm = _normalisation(used, normalise, random_episodes, random_scores)
    methods, matrices = _methods(used, norm)
    if len({tuple(m["tasks"]) for m in methods.values()}) > 1:
        warnings.warn("the methods cover different tasks, so their aggregates are not "
                      "comparable (report.json: methods.*.tasks)", stacklevel=2)

    metric_names = METRICS if normalise == "random-best" else METRICS[:3]  # no gap on raw returns

    def aggregates(scores: np.ndarray) -> np.ndarray:  # (num_seeds, num_tasks) -> (metrics,)
        out = [metrics.aggregate_iqm(scores), metrics.aggregate_median(scores),
               metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores, gamma=1)]
        return np.array(out[:len(metric_names)])

    points, cis = {}, {}
    for method, m in matrices.items():
        points[method], cis[method] = _interval(m, aggregates, reps, seed)
        methods[method]["aggregate"] = {
            metric: {"point": _num(points[method][i]),
                     "ci": [_num(cis[method][0, i]), _num(cis[method][1, i])]}
            for i, metric in enumerate(metric_names)}
    tau, profiles, profile_cis = _profiles(matrices, normalise, reps, seed)
    pairs = []
    for x, y in _pairs(methods):  # P(X > Y): Mann-Whitney per task, averaged over tasks
        point, ci = _interval([matrices[x], matrices[y]],
                              lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
                              reps, seed)
        pairs.append({"x": x, "y": y, "algo": methods[x]["algo"], "tasks": methods[x]["tasks"],
                      "probability_of_improvement": _num(point[0]),
                      "ci": [_num(ci[0, 0]), _num(ci[1, 0])]})

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out_dir)!r} is a file; expected a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out_dir={str(out_dir)!r} cannot be created: "
                         f"{err.strerror or err}") from None
    figures = _figures(out, points, cis, metric_names, tau, profiles, profile_cis, pairs, normalise)
    report = {
        "format": REPORT_FORMAT, "rliable_version": _version("rliable"),
        "normalise": normalise, "reps": reps, "seed": seed, "confidence": 0.95,
        "interval": "percentile, stratified bootstrap over seeds",
        "random_episodes": random_episodes if normalise == "random-best" else None,
        "metrics": list(metric_names), "tasks": sorted(norm), "normalisation": norm,
        "methods": methods, "pairs": pairs,
        "profiles": {"tau": [float(t) for t in tau],
                     "methods": {n: {"profile": [_num(v) for v in profiles[n]],
                                     "low": [_num(v) for v in profile_cis[n][0]],
                                     "high": [_num(v) for v in profile_cis[n][1]]}
                                 for n in methods}},
        "runs_used": len(used),
        "skipped": [{"path": r.path, "reason": r.skipped} for r in runs if r.skipped],
        "figures": figures}
    (out / "report.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    return report


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - rliable is a dependency
        return None


def _figures(out: Path, points: dict, cis: dict, metric_names, tau, profiles, profile_cis,
             pairs: list[dict], normalise: str) -> list[str]:
    """aggregates.png, profiles.png and improvement.png (with pairs) in `out`; paths written.
    Figures are closed once saved: nothing shows in a notebook, and any backend works."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from rliable import plot_utils

    names = list(points)
    colors = dict(zip(names, sns.color_palette("colorblind", len(names)), strict=True))
    xlabel = ("normalised score (0 = random actions, 1 = best run)"
              if normalise == "random-best" else "final evaluation return")
    written = []
    with plt.rc_context({"figure.constrained_layout.use": False}):
        fig, _ = plot_utils.plot_interval_estimates(
            points, cis, list(metric_names), algorithms=names[::-1], colors=colors, xlabel=xlabel,
            row_height=0.45, xlabel_y_coordinate=-0.45 / (0.45 * len(names)))
        written.append(_save(fig, out / "aggregates.png"))
        fig, ax = plt.subplots(figsize=(6.0, 3.5))
        plot_utils.plot_performance_profiles(
            profiles, tau, performance_profile_cis=profile_cis, ax=ax, colors=colors,
            xlabel=xlabel.replace("score", r"score $\tau$").replace("return", r"return $\tau$"),
            ylabel=r"fraction of runs with score $> \tau$", labelsize="medium",
            ticklabelsize="medium")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", frameon=False)
        written.append(_save(fig, out / "profiles.png"))
        if pairs:
            fig, ax = plt.subplots(figsize=(5.0, 1.0 + 0.5 * len(pairs)))
            plot_utils.plot_probability_of_improvement(
                {f"{p['x']},{p['y']}": p["probability_of_improvement"] for p in pairs},
                {f"{p['x']},{p['y']}": np.array(p["ci"], float) for p in pairs}, ax=ax,
                colors=[colors[p["x"]] for p in pairs],
                xlabel="P(diffusion > Gaussian)", left_ylabel="diffusion",
                right_ylabel="Gaussian")
            written.append(_save(fig, out / "improvement.png"))
        else:
            (out / "improvement.png").unlink(missing_ok=True)  # of an earlier report
    return written


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return str(path)


# ---------------------------------------------------------------------------------------------
# The command line (`damdp-lite report`)
# ---------------------------------------------------------------------------------------------


def add_report_args(parser: argparse.ArgumentParser) -> None:
    """The options of `damdp-lite report`."""
    from .cli import int_like  # lazy: the CLI imports this module while building its parser

    parser.add_argument("paths", nargs="+", help="run directories, sweep directories or folders "
                        "holding them (searched recursively)")
    parser.add_argument("--out", default=None, help="output directory (default: DIR/report for "
                        "one sweep directory, else report/ here)")
    parser.add_argument("--normalise", choices=NORMALISATIONS, default="random-best",
                        help="per-task scale: random-best (0 = uniformly random actions, 1 = "
                        "the best run in the report) or none (raw returns) (default: random-best)")
    parser.add_argument("--reps", type=int_like, default=2000,
                        help="bootstrap replications per CI, >= 100 (default: 2000)")
    parser.add_argument("--seed", type=int_like, default=0,
                        help="seed of the bootstrap (default: 0)")
    parser.add_argument("--random-episodes", type=int_like, default=10,
                        help="episodes of random actions per task for random-best (default: 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_report(args: argparse.Namespace) -> dict:
    """`damdp-lite report`: collect, aggregate, write. Returns a short summary: out_dir,
    methods, tasks, runs_used, skipped (a count), normalise, per method its IQM [point, low,
    high] and per pair its P(improvement) [point, low, high], rounded to 4 decimals."""
    import matplotlib

    matplotlib.use("Agg")  # a command writes files; it never opens a window
    check_value("reps", args.reps, int, between(100, 1_000_000))
    check_value("seed", args.seed, int, SEED)
    check_value("random_episodes", args.random_episodes, int, between(1, 10_000))
    check_value("normalise", args.normalise, str, one_of(*NORMALISATIONS))
    paths = list(args.paths)
    if args.out:
        out = args.out
    elif len(paths) == 1 and (Path(paths[0]) / "sweep.json").exists():
        out = str(Path(paths[0]) / "report")  # a sweep's report lives with it
    else:
        out = "report"  # never inside a run directory or the installed package
    runs = collect_runs(paths)
    rep = write_report(runs, out, args.normalise, args.reps, args.seed, args.random_episodes)
    short = lambda *xs: [None if x is None else round(x, 4) for x in xs]  # noqa: E731
    return {"out_dir": out, "methods": list(rep["methods"]), "tasks": rep["tasks"],
            "runs_used": rep["runs_used"], "skipped": len(rep["skipped"]),
            "normalise": rep["normalise"],
            "iqm": {n: short(m["aggregate"]["IQM"]["point"], *m["aggregate"]["IQM"]["ci"])
                    for n, m in rep["methods"].items()},
            "pairs": {f"{p['x']} > {p['y']}": short(p["probability_of_improvement"], *p["ci"])
                      for p in rep["pairs"]}}
