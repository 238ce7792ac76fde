"""The one training loop, shared by the CLI (`damdp-lite train`), the notebooks, the benchmarks
and the tests, for every registered algorithm and both policy kinds.

    train(config)                       in memory: the history rows and the trained policy
    train(config, RunConfig(...))       a run directory:
        config.json      the algorithm, its config and the run settings, as written at the start,
                         and the MuJoCo / dm-control versions it started under ("versions")
        progress.csv     one row per iteration, appended as the run goes (flushed)
        checkpoint.pt    atomic (write, fsync, rename); tensors, numbers and strings only,
                         loaded by `checkpoint.load_checkpoint` (no pickle)
        policy.pt        the policy's weights at the end (for `evaluate`, videos)
        tb/              TensorBoard events when `tensorboard=True`

Running the same command again on the same run directory resumes from `checkpoint.pt`: rows
after the checkpoint are dropped from `progress.csv` and recomputed, so on CPU an interrupted and
resumed run writes the same file as an uninterrupted one (every column but the wall-clock ones,
`elapsed_s` and `sps`). A NaN / inf loss stops the run with a message naming the loss and the
iteration; the last good checkpoint is kept. Introduced in notebook 05.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .algos import algo_of, resolve
from .algos.common import AlgoConfig
from .chain import ChainPolicy
from .checkpoint import load_checkpoint, load_policy_weights, save_atomic  # noqa: F401
from .config import Config, Rule, at_least, param
from .envs.make import make_vector_env, simulator_versions
from .envs.render import render_frame
from .policies import build_policy, policy_kind
from .results import read_progress  # noqa: F401  (re-exported)
from .utils import report_progress

WALL_CLOCK_FIELDS = ("elapsed_s", "sps")
"""Columns that depend on the machine's speed, not on the seed."""

CONFIG_FORMAT = 2
"""config.json layout: 2 = {"format", "algo", "label", "run", "config"} with a nested policy
(and "versions": `envs.make.simulator_versions()` at the start, in runs recorded since it was
added); 1 (no "format" key) = {"run": {algo, env_id, ...}, "algo_config": flat fields}."""


@dataclass
class RunConfig(Config):
    """Where a run goes and how it is logged; what is trained is the algorithm's config."""

    run_dir: str = ""
    """Run directory ("" = runs/{env_id}_{label}_s{seed}); an existing one is resumed."""
    label: str = param("", Rule("letters, digits, '_', '-', '.' and '+' only (a directory name)",
                                lambda v: bool(re.fullmatch(r"[A-Za-z0-9_.+-]*", v))
                                and v not in (".", "..")))
    """Name of the run in its directory and in result tables ("" = the paper's name of the
    algorithm with this policy, e.g. diffppo, reppo)."""
    eval_every: int = param(50, at_least(0))
    """Evaluate every this many iterations and at the end (0 = only at the end)."""
    eval_episodes: int = param(5, at_least(1))
    """Episodes per evaluation (one env each, stochastic policy, frozen normalisers)."""
    checkpoint_every: int = param(10, at_least(1))
    """Checkpoint every this many iterations and at the end."""
    threads: int = param(1, at_least(1))
    """torch.set_num_threads (1 measured fastest for 2 x 256 MLPs on a 2-core CPU)."""
    tensorboard: bool = False
    """Also write TensorBoard events to run_dir/tb (needs `pip install tensorboard`)."""


def run_fields(config: AlgoConfig) -> tuple[str, ...]:
    """Columns of progress.csv: the learner's row, the periodic evaluation (blank when none
    ran at that iteration) and env steps per second of the iteration."""
    return (*algo_of(config).learner_cls.CSV_FIELDS, "eval_return", "eval_length", "sps")


def run_label(config: AlgoConfig, run: RunConfig | None = None) -> str:
    """The run's name: `run.label`, else the paper's name of its algorithm and policy."""
    if run is not None and run.label:
        return run.label
    return algo_of(config).label(policy_kind(config.policy))


def default_run_dir(config: AlgoConfig, run: RunConfig | None = None) -> Path:
    """runs/{env_id}_{label}_s{seed}."""
    return Path("runs") / f"{config.env_id.replace('/', '_')}_{run_label(config, run)}" \
                          f"_s{config.seed}"


def algo_config(algo: str, **fields) -> AlgoConfig:
    """The preset config of a CLI algorithm name or alias with `fields` (flat; policy fields by
    name) on top: what `damdp-lite train` builds. As on the command line, a base name without
    `policy` means the Gaussian (`algo_config("ppo")` is MaxEnt PPO) and an alias implies its
    fields (`"diffppo"`: the diffusion policy; `"dppo"`: also T = 0), which `fields` may not
    contradict."""
    spec, implied = resolve(algo)
    for name, value in implied.items():
        if name in fields and isinstance(fields[name], str | int | float) \
                and fields[name] != value:
            raise ValueError(f"{name}={fields[name]!r} contradicts algo={algo!r} ({name} = "
                             f"{value!r})")
    return spec.config(**{"policy": "gaussian", **implied, **fields})


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_policy(policy: ChainPolicy, env_id: str, episodes: int = 5, seed: int = 0,
                    render: bool = False, max_frames: int | None = None
                    ) -> tuple[list[float], list[int], list[np.ndarray]]:
    """Run `episodes` episodes (one env each, seeds seed..seed+episodes-1), stochastic policy.

    Normalisers are frozen (`policy.act` does not update them). Returns each episode's return
    and length, and (with `render=True`, env 0 only, up to `max_frames`) its RGB frames.
    Rendering changes nothing else; where no off-screen GL backend works it raises
    `damdp_lite.envs.render.RenderingUnavailable`, one line saying why.
    """
    envs = make_vector_env(env_id, episodes, render_mode="rgb_array" if render else None)
    gen = torch.Generator(policy.device).manual_seed(seed)
    obs, _ = envs.reset(seed=seed)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, int)
    done = np.zeros(episodes, bool)
    frames: list[np.ndarray] = []
    try:
        while not done.all():
            if render and not done[0] and (max_frames is None or len(frames) < max_frames):
                frames.append(render_frame(envs.unwrapped.envs[0]))
            obs_t = torch.as_tensor(np.asarray(obs, np.float32), device=policy.device)
            action = policy.act(obs_t, generator=gen).cpu().numpy()
            obs, reward, term, trunc, _ = envs.step(action)
            returns += np.where(done, 0.0, reward)
            lengths += ~done
            done |= np.logical_or(term, trunc)
    finally:
        envs.close()
    return returns.tolist(), lengths.tolist(), frames


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _rewrite_progress(path: Path, keep_below: int, columns: tuple[str, ...]) -> None:
    """Keep the header and the rows of iterations < keep_below (resume), atomically."""
    rows = []
    if path.exists():
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                if keep_below and list(reader.fieldnames or []) != list(columns):
                    raise ValueError("its header is not this run's columns")
                rows = [r for r in reader if int(r["iteration"]) < keep_below]
        except (ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not this run's progress log ({err}); restore it, or "
                             f"delete it together with checkpoint.pt to start over") from None
        if len(rows) != keep_below:
            raise ValueError(f"{path} holds {len(rows)} of the {keep_below} rows before the "
                             f"checkpoint; restore it, or delete it together with checkpoint.pt "
                             f"to start over")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path}: {err.strerror or err}") from None


def config_record(config: AlgoConfig, run: RunConfig) -> dict:
    """What config.json holds (the location `run_dir` is not part of it: a moved run resumes)."""
    run_d = {k: v for k, v in asdict(run).items() if k not in ("run_dir", "label")}
    return {"format": CONFIG_FORMAT, "algo": algo_of(config).name,
            "label": run_label(config, run), "run": run_d, "config": config.to_dict()}


def parse_record(record: dict, where: str = "config.json") -> tuple[RunConfig, AlgoConfig]:
    """The run settings and the algorithm config of a config.json record (either format).
    `ValueError` names the file and what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"{where} is not a damdp-lite run config (expected a JSON object, got "
                         f"{type(record).__name__})")
    try:
        if record.get("format") == CONFIG_FORMAT:
            spec, _ = resolve(record["algo"])
            run = RunConfig(**{**record["run"], "label": record.get("label", "")})
            return run, spec.config_cls.from_dict(record["config"])
        old = dict(record["run"])  # format 1: run held algo, env_id, total_env_steps, seed, device
        spec, implied = resolve(old.pop("algo"))
        for name in ("env_id", "total_env_steps", "seed", "device", "run_dir"):
            old.pop(name, None)
        flat = dict(record["algo_config"])
        flat.update({k: v for k, v in {**spec.preset, **implied}.items()
                     if k not in flat and k != "policy"})
        run = RunConfig(**old, label=record["run"]["algo"])
        return run, spec.config_cls.from_dict(flat)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where} is not a damdp-lite run config ({err})") from None


def load_run(run_dir: str | Path) -> tuple[RunConfig, AlgoConfig]:
    """The run settings and algorithm config of a run directory (or a shipped result)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"run_dir={str(run_dir)!r} has no config.json; expected a directory "
                         f"written by `damdp-lite train`")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    run, config = parse_record(record, str(path))
    run.run_dir = str(run_dir)
    return run, config


def recorded_versions(run_dir: str | Path) -> dict[str, str | None] | None:
    """The simulator versions a run's config.json recorded at its start, e.g. `{"mujoco":
    "3.17.0", "dm_control": "1.0.50"}` (None: recorded before versions were, or unreadable)."""
    try:
        versions = json.loads((Path(run_dir) / "config.json").read_text()).get("versions")
    except (OSError, ValueError, AttributeError):
        return None
    return versions if isinstance(versions, dict) else None


def load_policy(run_dir: str | Path, device: str = "cpu") -> ChainPolicy:
    """The policy of a run: `policy.pt` if the run finished, else the last checkpoint's."""
    _, cfg = load_run(run_dir)
    envs = make_vector_env(cfg.env_id, 1)
    policy = build_policy(cfg.policy, envs.single_observation_space.shape[0],
                          envs.single_action_space, device)
    envs.close()
    run_dir = Path(run_dir)
    if (run_dir / "policy.pt").exists():
        path = run_dir / "policy.pt"
        state = load_policy_weights(path, device)
    elif (run_dir / "checkpoint.pt").exists():
        path = run_dir / "checkpoint.pt"
        state = load_checkpoint(path, device)["learner"]["policy"]
    else:
        raise ValueError(f"run_dir={str(run_dir)!r} has neither policy.pt nor checkpoint.pt")
    try:
        policy.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        detail = "; ".join(line.strip() for line in str(err).splitlines()[1:3]) or str(err)
        raise ValueError(f"{path} does not hold the weights of this run's policy "
                         f"({detail})") from None
    return policy.to(device).eval()


# ---------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What `train` returns: the run directory (None in memory), its rows and the policy."""

    run_dir: Path | None
    history: list[dict] = field(default_factory=list)
    policy: ChainPolicy | None = None
    resumed_from: int = 0
    """Iteration the run resumed at (0: started fresh)."""


def flat_fields(d: dict, prefix: str = "") -> dict:
    """A nested config dict's leaves by dotted name (`policy.prior_std`)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(dotted field, value in `a`, value in `b`) of each leaf on which two nested config dicts
    differ, sorted by field; a field one of them lacks shows as None there."""
    fa, fb = flat_fields(a), flat_fields(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _check_same_run(cfg_path: Path, record: dict) -> None:
    """`ValueError` naming the fields on which the run recorded in `cfg_path` differs."""
    try:
        recorded = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{cfg_path} is not valid JSON ({err}); restore it, or choose another "
                         f"run_dir") from None
    old_run, old_config = parse_record(recorded, str(cfg_path))
    old = json.loads(json.dumps(config_record(old_config, old_run)))
    new = json.loads(json.dumps(record))
    old.pop("label"), new.pop("label")  # a name, not a setting: `--algo dppo` = its base form
    diff = config_diff(old, new)  # fields added since the run was recorded took their defaults
    if diff:
        shown = ", ".join(f"{k}: recorded {x!r}, now {y!r}" for k, x, y in diff[:3])
        raise ValueError(f"run_dir={str(cfg_path.parent)!r} holds a run with other settings "
                         f"({shown}{', ...' if len(diff) > 3 else ''}); choose another "
                         f"run_dir or delete it")


def train(config: AlgoConfig, run: RunConfig | None = None, progress: bool = True,
          callback: Callable[[dict], bool | None] | None = None,
          policy: ChainPolicy | None = None) -> RunResult:
    """Train `config` (any registered algorithm, either policy kind); the one training loop.

    Args:
        config: an algorithm config, e.g. `PPOConfig(...)` or `algo_config("diffppo", ...)`.
        run: where and how to log. None trains in memory: no files, no evaluations (rows
            have blank `eval_*` columns). With a `RunConfig`, the run directory (`run.run_dir`,
            or `default_run_dir`) gets config.json, progress.csv, checkpoints and policy.pt,
            and a directory holding a checkpoint of the same settings is resumed.
        progress: show a tqdm bar.
        callback: sees each history row; returning True stops after that row is written (and
            checkpointed).
        policy: a policy to train instead of one built from `config.policy` (it must match it).

    Returns a `RunResult`. Raises `ValueError` when the run directory holds a run with other
    settings (naming them) and `FloatingPointError` (naming the loss and iteration) on a
    NaN / inf loss. Deterministic on CPU under `config.seed`, but for the wall-clock columns.
    """
    if not isinstance(config, AlgoConfig):
        raise ValueError(f"config must be an algorithm config (e.g. PPOConfig), got "
                         f"{type(config).__name__}")
    spec = algo_of(config)
    columns = run_fields(config)
    run_dir = created = None
    if run is not None:
        torch.set_num_threads(run.threads)
        run_dir = Path(run.run_dir) if run.run_dir else default_run_dir(config, run)
        created = _make_run_dir(run_dir)
        record = config_record(config, run)
        cfg_path, ckpt_path = run_dir / "config.json", run_dir / "checkpoint.pt"
        progress_path = run_dir / "progress.csv"
    try:  # a start that fails leaves the run directory as it was
        if run_dir is not None and cfg_path.exists():
            _check_same_run(cfg_path, record)
        learner = spec.learner_cls(config, policy)
    except BaseException:
        _remove_if_created(created)
        raise
    elapsed0, start_iter, writer, fresh = 0.0, 0, None, False
    if run_dir is not None:
        try:
            if ckpt_path.exists():
                ckpt = load_checkpoint(ckpt_path)  # on the CPU; the learner moves its parts
                try:
                    learner.load_state_dict(ckpt["learner"])
                except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
                    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
                    raise ValueError(f"{ckpt_path} is not a checkpoint of this run "
                                     f"({type(err).__name__}: {'; '.join(lines[:2])}); "
                                     f"delete it to start the run over") from None
                elapsed0, start_iter = ckpt["elapsed_s"], learner.iteration
            writer = _tensorboard(run_dir, start_iter) if run.tensorboard else None
            fresh = not cfg_path.exists()  # a run that starts here, not a resumed one
            versions = simulator_versions()
            if fresh:
                _write_text(cfg_path, json.dumps({**record, "versions": versions}, indent=2)
                            + "\n")
            elif (was := recorded_versions(run_dir)) is not None and was != versions:
                said = [", ".join(f"{k} {v}" for k, v in d.items()) for d in (was, versions)]
                warnings.warn(f"run_dir={str(run_dir)!r} started under {said[0]} and resumes "
                              f"under {said[1]}: the resumed part may differ from an "
                              f"uninterrupted run", stacklevel=2)
            _rewrite_progress(progress_path, start_iter, columns)
        except BaseException:
            learner.close()
            if fresh:  # nothing of a run that never started is left behind
                for path in (cfg_path, progress_path):
                    path.unlink(missing_ok=True)
            _remove_if_created(created)
            raise
    steps = config.num_iterations * config.env_steps_per_iteration
    if steps != config.total_env_steps:
        warnings.warn(f"total_env_steps={config.total_env_steps} is not a multiple of the "
                      f"{config.env_steps_per_iteration} env steps per iteration: training "
                      f"{config.num_iterations} iterations = {steps} env steps", stacklevel=2)

    def checkpoint(elapsed: float) -> None:
        save_atomic({"format": 1, "elapsed_s": elapsed, "learner": learner.state_dict()},
                    ckpt_path)

    result = RunResult(run_dir, policy=learner.policy, resumed_from=start_iter)
    n_iter = config.num_iterations
    start = time.perf_counter()
    desc = f"{run_label(config, run)} {config.env_id} s{config.seed}"
    bar = tqdm(range(start_iter, n_iter), initial=start_iter, total=n_iter,
               disable=not progress, desc=desc)
    report_progress(start_iter, n_iter)
    if run_dir is not None and start_iter == n_iter and not (run_dir / "policy.pt").exists():
        save_atomic(learner.policy.state_dict(), run_dir / "policy.pt")  # a finished run
    interrupt = StopRequest.install()  # Ctrl-C stops at the end of the iteration in progress
    try:
        for it in bar:
            t0 = time.perf_counter()
            try:
                row = learner.train_iteration()
            except FloatingPointError as err:
                if run_dir is None:
                    raise
                kept = (f"the last good checkpoint ({ckpt_path}, iteration "
                        f"{learner_iteration_on_disk(ckpt_path)}) is kept"
                        if ckpt_path.exists() else "no checkpoint was written yet")
                raise FloatingPointError(f"{err}; run stopped, {kept}") from err
            last = it + 1 == n_iter
            ev_ret = ev_len = ""
            if run is not None and (last or (run.eval_every and (it + 1) % run.eval_every == 0)):
                rets, lens, _ = evaluate_policy(learner.policy, config.env_id,
                                                run.eval_episodes, seed=10_000 + config.seed)
                ev_ret, ev_len = float(np.mean(rets)), float(np.mean(lens))
            now = time.perf_counter()
            row = {**row, "elapsed_s": elapsed0 + now - start, "eval_return": ev_ret,
                   "eval_length": ev_len,
                   "sps": config.env_steps_per_iteration / (now - t0)}
            if run_dir is not None:  # written before the callback sees it: nothing is lost
                with open(progress_path, "a", newline="") as f:
                    csv.DictWriter(f, columns).writerow(row)
            # counted right after the file has it: "stopped at iteration N" after a Ctrl-C
            # names exactly the rows on disk
            result.history.append(row)
            if writer is not None:
                for key in columns[2:]:
                    if row[key] != "" and math.isfinite(row[key]):
                        writer.add_scalar(key, row[key], row["env_steps"])
            stop = callback is not None and bool(callback(row))
            halt = interrupt.requested and not last  # Ctrl-C during this iteration
            if run_dir is not None:
                if last or stop or halt or (it + 1) % run.checkpoint_every == 0:
                    checkpoint(row["elapsed_s"])
                if last:
                    save_atomic(learner.policy.state_dict(), run_dir / "policy.pt")
            bar.set_postfix(ret=f"{row['episode_return']:.4g}", sps=f"{row['sps']:.0f}")
            report_progress(it + 1, n_iter, row)  # e.g. a widget's progress bar
            if halt:
                raise KeyboardInterrupt
            if stop:
                break
    except KeyboardInterrupt:
        done = len(result.history) + start_iter
        kept = (f"checkpoint: iteration {learner_iteration_on_disk(ckpt_path)}"
                if run_dir is not None and ckpt_path.exists() else "no checkpoint yet")
        raise RunInterrupted(f"stopped at iteration {done} ({kept}); run the same command to "
                             f"resume") from None
    finally:
        interrupt.restore()
        learner.close()
        if writer is not None:
            writer.close()
    return result


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during `train`: its message says where the run stopped and how to resume."""


@dataclass
class StopRequest:
    """Ctrl-C (SIGINT) during `train`'s loop: the first one only sets `requested`, and the loop
    stops at the end of the iteration in progress, its row and a checkpoint on disk; a second one
    raises `KeyboardInterrupt` at once. Python's own handler raises wherever the signal lands,
    and one landing in a destructor is dropped ("Exception ignored in ..."), so a run could go on
    after a Ctrl-C. Off the main thread (no signal handlers there) nothing is installed."""

    requested: bool = False
    previous: object = None
    installed: bool = False

    @classmethod
    def install(cls) -> StopRequest:
        req = cls()
        if threading.current_thread() is threading.main_thread():
            req.previous = signal.signal(signal.SIGINT, req._on_sigint)
            req.installed = True
        return req

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        """Put back the handler that was there (Python's default one if it was not Python's)."""
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None
                          else signal.default_int_handler)
            self.installed = False


def _make_run_dir(run_dir: Path) -> Path | None:
    """Create `run_dir` (and its parents); returns the topmost directory it created (None when
    `run_dir` existed). `ValueError` naming the path when it cannot be a run directory."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"run_dir={str(run_dir)!r} is a file; expected a directory")
    missing = [p for p in [run_dir, *run_dir.parents] if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"run_dir={str(run_dir)!r} cannot be created: "
                         f"{err.strerror or err}") from None
    if not os.access(run_dir, os.W_OK):
        raise ValueError(f"run_dir={str(run_dir)!r} is not writable")
    return missing[-1] if missing else None


def _remove_if_created(created: Path | None) -> None:
    """Undo `_make_run_dir` after a failed start: remove what it created, if still empty."""
    if created is None:
        return
    for d in sorted((p for p in [created, *created.rglob("*")] if p.is_dir()),
                    key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            return


def _tensorboard(run_dir: Path, start_iter: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("tensorboard=True needs the tensorboard package "
                         "(pip install tensorboard)") from None
    return SummaryWriter(str(run_dir / "tb"), purge_step=start_iter)


def _write_text(path: Path, text: str) -> None:
    """Write a small file atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path}: {err.strerror or err}") from None


def learner_iteration_on_disk(ckpt_path: Path) -> int:
    """Iterations completed by the checkpoint at `ckpt_path`."""
    return int(load_checkpoint(ckpt_path)["learner"]["iteration"])
