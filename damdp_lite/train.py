"""The training runner shared by the CLI (`damdp-lite train`) and the notebooks.

    RunConfig + algorithm config  ->  run directory
        config.json      both configs, as written when the run started
        progress.csv     one row per iteration, appended as the run goes (flushed)
        checkpoint.pt    atomic (write, fsync, rename), `torch.load(weights_only=True)`
        policy.pt        the policy's weights at the end (for `evaluate`, videos)
        tb/              TensorBoard events when `tensorboard=True`

Running the same command again on the same `run_dir` resumes from `checkpoint.pt`: rows after
the checkpoint are dropped from `progress.csv` and recomputed, so on CPU an interrupted and
resumed run writes the same file as an uninterrupted one (every column but the wall-clock ones,
`elapsed_s` and `sps`). A NaN / inf loss stops the run with a message naming the loss and the
iteration; the last good checkpoint is kept. Introduced in notebook 04.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .algos import ppo, reppo, sac, wpo
from .algos.common import make_policy
from .algos.ppo import CSV_FIELDS
from .chain import ChainPolicy
from .envs.make import make_vector_env
from .utils import check_choice, check_int_at_least


@dataclass(frozen=True)
class AlgoSpec:
    """How the runner builds one CLI algorithm from its module."""

    config_cls: type
    """The algorithm's config dataclass, with a `mujoco(**overrides)` preset."""
    learner_cls: type
    """Learner with `train_iteration`, `state_dict`, `load_state_dict`, `close`, `policy`."""
    csv_fields: tuple[str, ...]
    """The learner's history columns."""
    overrides: dict
    """Fields set by this algorithm name on top of the preset."""
    description: str
    """One line for --help."""


ALGOS: dict[str, AlgoSpec] = {
    "ppo": AlgoSpec(ppo.PPOConfig, ppo.PPO, ppo.CSV_FIELDS,
                    {"policy": "gaussian"}, "Gaussian MaxEnt PPO"),
    "diffppo": AlgoSpec(ppo.PPOConfig, ppo.PPO, ppo.CSV_FIELDS,
                        {"policy": "diffusion"}, "DA-MDP PPO (DiffPPO)"),
    "dppo": AlgoSpec(ppo.PPOConfig, ppo.PPO, ppo.CSV_FIELDS,
                     {"policy": "diffusion", "temperature": 0.0}, "DA-MDP PPO at T = 0 (DPPO)"),
    "reppo": AlgoSpec(reppo.REPPOConfig, reppo.REPPO, reppo.CSV_FIELDS,
                      {"policy": "gaussian"}, "REPPO (tanh-Gaussian)"),
    "diffreppo": AlgoSpec(reppo.REPPOConfig, reppo.REPPO, reppo.CSV_FIELDS,
                          {"policy": "diffusion"}, "DA-MDP REPPO"),
    "wpo": AlgoSpec(wpo.WPOConfig, wpo.WPO, reppo.CSV_FIELDS,
                    {"policy": "gaussian"}, "ME-WPO (tanh-Gaussian)"),
    "diffwpo": AlgoSpec(wpo.WPOConfig, wpo.WPO, reppo.CSV_FIELDS,
                        {"policy": "diffusion"}, "DA-MDP WPO"),
    "sac": AlgoSpec(sac.SACConfig, sac.SAC, sac.CSV_FIELDS,
                    {"policy": "gaussian"}, "SAC (tanh-Gaussian)"),
    "diffsac": AlgoSpec(sac.SACConfig, sac.SAC, sac.CSV_FIELDS,
                        {"policy": "diffusion"},
                        "DiffSAC, a reconstruction from the paper's derivation (method.md §5.4)"),
}
"""CLI algorithm name -> its config, learner and the preset overrides it implies."""


def run_fields(algo: str) -> tuple[str, ...]:
    """Columns of progress.csv for `algo`: the learner's row, the periodic evaluation (blank
    when none ran at that iteration) and env steps per second of the iteration."""
    return (*ALGOS[algo].csv_fields, "eval_return", "eval_length", "sps")

RESULTS_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "results" / "mujoco"
"""The shipped runs (config.json + progress.csv each), re-run by `damdp-lite reproduce`."""

RUN_FIELDS = (*CSV_FIELDS, "eval_return", "eval_length", "sps")
"""Columns of progress.csv of the PPO algorithms (`run_fields("ppo")`)."""

WALL_CLOCK_FIELDS = ("elapsed_s", "sps")
"""Columns that depend on the machine's speed, not on the seed."""


@dataclass
class RunConfig:
    """What a run is and where it goes; the learner's hyperparameters are in the algo config."""

    algo: str = "diffppo"
    """Algorithm: ppo, diffppo, dppo, reppo, diffreppo, wpo, diffwpo, sac, diffsac (ALGOS)."""
    env_id: str = "HalfCheetah-v5"
    """Gymnasium id with a 1-D Box action space (MuJoCo v5 or a `damdp_lite/*` toy)."""
    total_env_steps: int = 1_000_000
    """Env steps over all envs and iterations."""
    seed: int = 0
    """Seed of everything (nets, envs, latents, minibatches, evaluations)."""
    device: str = "cpu"
    """Torch device, "cpu" or "cuda"."""
    run_dir: str = ""
    """Run directory ("" = runs/{env_id}_{algo}_s{seed}); an existing one is resumed."""
    eval_every: int = 50
    """Evaluate every this many iterations and at the end (0 = only at the end)."""
    eval_episodes: int = 5
    """Episodes per evaluation (one env each, stochastic policy, frozen normalisers)."""
    checkpoint_every: int = 10
    """Checkpoint every this many iterations and at the end."""
    threads: int = 1
    """torch.set_num_threads (1 measured fastest for 2 x 256 MLPs on a 2-core CPU)."""
    tensorboard: bool = False
    """Also write TensorBoard events to run_dir/tb (needs `pip install tensorboard`)."""

    def __post_init__(self) -> None:
        check_choice("algo", self.algo, tuple(ALGOS))
        check_int_at_least("total_env_steps", self.total_env_steps, 1)
        check_int_at_least("seed", self.seed, 0)
        check_int_at_least("eval_every", self.eval_every, 0)
        for name in ("checkpoint_every", "eval_episodes", "threads"):
            check_int_at_least(name, getattr(self, name), 1)
        if not self.run_dir:
            self.run_dir = str(Path("runs") / f"{self.env_id.replace('/', '_')}_{self.algo}"
                                              f"_s{self.seed}")


def algo_config(run: RunConfig, **overrides):
    """The learner's config for `run`: the algorithm's `mujoco` preset with its overrides,
    the run's env, budget, seed and device, then `overrides` (e.g. from the CLI)."""
    spec = ALGOS[run.algo]
    return spec.config_cls.mujoco(**{**spec.overrides, "env_id": run.env_id,
                                     "total_env_steps": run.total_env_steps, "seed": run.seed,
                                     "device": run.device, **overrides})


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
                frames.append(envs.unwrapped.envs[0].render())
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


def save_atomic(obj: object, path: Path) -> None:
    """`torch.save` to a temporary file, fsync, then rename: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_progress(path: str | Path) -> list[dict]:
    """Rows of a progress.csv as dicts of floats (blank cells -> nan)."""
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


def _rewrite_progress(path: Path, keep_below: int, columns: tuple[str, ...]) -> None:
    """Keep the header and the rows of iterations < keep_below (resume), atomically."""
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["iteration"]) < keep_below]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def load_run(run_dir: str | Path) -> tuple[RunConfig, object]:
    """The two configs of a run directory (or a shipped result directory)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"run_dir={str(run_dir)!r} has no config.json; expected a directory "
                         f"written by `damdp-lite train`")
    cfg = json.loads(path.read_text())
    run = RunConfig(**cfg["run"])
    return run, ALGOS[run.algo].config_cls.from_dict(cfg["algo_config"])


def load_policy(run_dir: str | Path, device: str = "cpu") -> ChainPolicy:
    """The policy of a run: `policy.pt` if the run finished, else the last checkpoint's."""
    run, cfg = load_run(run_dir)
    cfg.device = device
    envs = make_vector_env(cfg.env_id, 1)
    policy = make_policy(cfg, envs.single_observation_space.shape[0], envs.single_action_space)
    envs.close()
    run_dir = Path(run_dir)
    if (run_dir / "policy.pt").exists():
        state = torch.load(run_dir / "policy.pt", map_location=device, weights_only=True)
    elif (run_dir / "checkpoint.pt").exists():
        state = torch.load(run_dir / "checkpoint.pt", map_location=device,
                           weights_only=True)["learner"]["policy"]
    else:
        raise ValueError(f"run_dir={str(run_dir)!r} has neither policy.pt nor checkpoint.pt")
    policy.load_state_dict(state)
    return policy.to(device).eval()


# ---------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What `train` returns: the run directory, its rows and the trained policy."""

    run_dir: Path
    history: list[dict] = field(default_factory=list)
    policy: ChainPolicy | None = None
    resumed_from: int = 0
    """Iteration the run resumed at (0: started fresh)."""


def train(run: RunConfig, config=None, progress: bool = True,
          callback: Callable[[dict], bool | None] | None = None) -> RunResult:
    """Train `config` (default `algo_config(run)`) in `run.run_dir`, resuming if it holds a
    checkpoint of the same configs.

    `callback(row)` sees each progress row; returning True stops after that row is written
    (and checkpointed). Raises `ValueError` when `run_dir` holds a run with other configs and
    `FloatingPointError` (naming the loss and iteration) on a NaN / inf loss.
    """
    config = config or algo_config(run)
    torch.set_num_threads(run.threads)
    run_dir = Path(run.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_json = {"run": asdict(run), "algo_config": config.to_dict()}
    cfg_path, ckpt_path = run_dir / "config.json", run_dir / "checkpoint.pt"
    progress_path = run_dir / "progress.csv"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        try:  # fields added since the run was recorded take their defaults
            old = {"run": asdict(RunConfig(**old["run"])), "algo_config": ALGOS[
                old["run"]["algo"]].config_cls.from_dict(old["algo_config"]).to_dict()}
        except (KeyError, TypeError, ValueError):
            pass  # not a config of this version: the comparison below fails
        if json.loads(json.dumps(config_json)) != json.loads(json.dumps(old)):
            raise ValueError(f"run_dir={str(run_dir)!r} holds a run with different configs; "
                             f"choose another run_dir or delete it")
    else:
        cfg_path.write_text(json.dumps(config_json, indent=2) + "\n")

    spec = ALGOS[run.algo]
    if not isinstance(config, spec.config_cls):
        raise ValueError(f"algo={run.algo!r} needs a {spec.config_cls.__name__}, got "
                         f"{type(config).__name__}")
    columns = run_fields(run.algo)
    learner = spec.learner_cls(config)
    elapsed0, start_iter = 0.0, 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=config.device, weights_only=True)
        learner.load_state_dict(ckpt["learner"])
        elapsed0, start_iter = ckpt["elapsed_s"], learner.iteration
    _rewrite_progress(progress_path, start_iter, columns)
    writer = None
    if run.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            learner.close()
            raise ValueError("tensorboard=True needs the tensorboard package "
                             "(pip install tensorboard)") from err
        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_iter)

    def checkpoint(elapsed: float) -> None:
        save_atomic({"format": 1, "elapsed_s": elapsed, "learner": learner.state_dict()},
                    ckpt_path)

    result = RunResult(run_dir, policy=learner.policy, resumed_from=start_iter)
    n_iter = config.num_iterations
    start = time.perf_counter()
    bar = tqdm(range(start_iter, n_iter), initial=start_iter, total=n_iter,
               disable=not progress, desc=f"{run.algo} {run.env_id} s{run.seed}")
    try:
        for it in bar:
            t0 = time.perf_counter()
            try:
                row = learner.train_iteration()
            except FloatingPointError as err:
                kept = (f"the last good checkpoint ({ckpt_path}, iteration "
                        f"{learner_iteration_on_disk(ckpt_path)}) is kept"
                        if ckpt_path.exists() else "no checkpoint was written yet")
                raise FloatingPointError(f"{err}; run stopped, {kept}") from err
            last = it + 1 == n_iter
            ev_ret = ev_len = ""
            if last or (run.eval_every and (it + 1) % run.eval_every == 0):
                rets, lens, _ = evaluate_policy(learner.policy, config.env_id,
                                                run.eval_episodes, seed=10_000 + run.seed)
                ev_ret, ev_len = float(np.mean(rets)), float(np.mean(lens))
            now = time.perf_counter()
            row = {**row, "elapsed_s": elapsed0 + now - start, "eval_return": ev_ret,
                   "eval_length": ev_len,
                   "sps": config.env_steps_per_iteration / (now - t0)}
            with open(progress_path, "a", newline="") as f:
                csv.DictWriter(f, columns).writerow(row)
            result.history.append(row)
            if writer is not None:
                for key in columns[2:]:
                    if row[key] != "" and math.isfinite(row[key]):
                        writer.add_scalar(key, row[key], row["env_steps"])
            bar.set_postfix(ret=f"{row['episode_return']:.4g}", sps=f"{row['sps']:.0f}")
            stop = callback is not None and bool(callback(row))
            if last or stop or (it + 1) % run.checkpoint_every == 0:
                checkpoint(row["elapsed_s"])
            if last:
                save_atomic(learner.policy.state_dict(), run_dir / "policy.pt")
            if stop:
                break
    finally:
        learner.close()
        if writer is not None:
            writer.close()
    return result


def learner_iteration_on_disk(ckpt_path: Path) -> int:
    """Iterations completed by the checkpoint at `ckpt_path`."""
    return int(torch.load(ckpt_path, weights_only=True)["learner"]["iteration"])
