"""Gymnasium vector envs for chain policies: sync or async, reward scaling, rendering, and
exact snapshots of every env's state for bit-identical resume (method.md §5.0, §10).

What lives where (one idea, one place):

- *Observation and latent normalisation* are `RunningNorm`s owned by the networks (policy,
  value), updated by `damdp.collect_rollout` and saved in their `state_dict`s.
- *The tanh squash rescaled to the action bounds* is the policy's `to_action`
  (`policies.build_policy` reads the bounds from the env's Box).
- *`terminated` vs `truncated`*: same-step autoreset puts the true final observation into
  `info["final_obs"]`; `collect_rollout` bootstraps truncations from it.
- Here: building the vector env, optional reward scaling (`ScaleReward`), off-screen rendering
  and `EnvSnapshot`, which makes a run's env state part of its checkpoint.

Off-screen rendering needs an OpenGL backend: `MUJOCO_GL=egl` (set by `set_offscreen_gl` when
unset) works with the NVIDIA/Mesa EGL libraries; `MUJOCO_GL=osmesa` needs Debian's `libosmesa6`.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from ..utils import check_choice, check_int_at_least, check_positive

VECTORIZATION = ("sync", "async")
"""`SyncVectorEnv` (measured 2-3x faster on 2 cores for MuJoCo) or `AsyncVectorEnv`."""


def set_offscreen_gl(backend: str = "egl") -> str:
    """Set `MUJOCO_GL` (before MuJoCo first renders) unless the user set it; returns it."""
    return os.environ.setdefault("MUJOCO_GL", backend)


def _quiet_mujoco_compiler() -> None:
    """Drop MuJoCo 4's deprecation warning about gymnasium's `settotalmass` XML attribute,
    printed once per env created; any other MuJoCo warning is re-raised as a Python warning."""
    try:
        import mujoco
    except ImportError:  # pragma: no cover - mujoco is a dependency
        return

    def on_warning(msg: str) -> None:
        if "settotalmass" not in msg:
            warnings.warn(f"MuJoCo: {msg}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(on_warning)


class EnvSnapshot(gym.Wrapper):
    """Outermost per-env wrapper whose `snapshot` property reads / restores the env's full state.

    Gymnasium MuJoCo envs pickle through `EzPickle` into a *fresh* env, so a pickled env does not
    resume. A MuJoCo snapshot therefore holds the physics (`mj_getState`, integration state), the
    env's NumPy generator and the `TimeLimit` step count; any other env (the toys) is pickled
    whole. Everything is a str, bytes or tensor, so it fits a `torch.load(weights_only=True)`
    checkpoint. Works through `VectorEnv.get_attr` / `set_attr`, hence for async envs too.
    """

    @property
    def snapshot(self) -> dict[str, Any]:
        base = self.env.unwrapped
        if hasattr(base, "model") and hasattr(base, "data"):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            phys = np.empty(mujoco.mj_stateSize(base.model, spec))
            mujoco.mj_getState(base.model, base.data, phys, spec)
            return {"kind": "mujoco", "physics": torch.from_numpy(phys),
                    "np_random": json.dumps(base.np_random.bit_generator.state),
                    "elapsed_steps": _time_limit(self.env)}
        return {"kind": "pickle", "env": pickle.dumps(self.env)}

    @snapshot.setter
    def snapshot(self, state: dict[str, Any]) -> None:
        if state["kind"] == "pickle":
            self.env = pickle.loads(state["env"])
            return
        import mujoco

        base = self.env.unwrapped
        mujoco.mj_setState(base.model, base.data, state["physics"].numpy(),
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(base.model, base.data)
        base.np_random.bit_generator.state = json.loads(state["np_random"])
        _time_limit(self.env, state["elapsed_steps"])


def _time_limit(env: gym.Env, set_to: int | None = None) -> int | None:
    """Read (or set) `_elapsed_steps` of the `TimeLimit` in `env`'s wrapper stack, if any."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            if set_to is not None:
                env._elapsed_steps = set_to
            return env._elapsed_steps
        env = env.env
    return None


class ScaleReward(gym.vector.VectorWrapper):
    """Divide rewards by the running std of the discounted return (CleanRL/SB3 `NormalizeReward`).

    G <- gamma (1 - done) G + r per env; r / sqrt(Var[G] + eps). Wrap it *outside*
    `RecordEpisodeStatistics`, so logged returns stay unscaled. `state_dict` / `load_state_dict`
    make it part of the checkpoint.
    """

    def __init__(self, env: VectorEnv, gamma: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(env)
        self.gamma, self.eps = gamma, eps
        self.ret = np.zeros(self.num_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 0

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(actions)
        self.ret = self.ret * self.gamma + rew
        n, b_mean, b_var = self.num_envs, float(self.ret.mean()), float(self.ret.var())
        tot = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / tot
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / tot) / tot
        self.count = tot
        self.ret[np.logical_or(term, trunc)] = 0.0
        return obs, rew / np.sqrt(self.var + self.eps), term, trunc, info

    def state_dict(self) -> dict[str, Any]:
        return {"ret": torch.from_numpy(self.ret.copy()), "mean": self.mean, "var": self.var,
                "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ret = state["ret"].numpy().copy()
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


def _make_one(env_id: str, render_mode: str | None, env_kwargs: dict[str, Any]) -> gym.Env:
    import damdp_lite.envs  # noqa: F401  (registers the toy envs, also in async workers)

    _quiet_mujoco_compiler()
    if render_mode is not None:  # the toys take no render_mode
        env_kwargs = {**env_kwargs, "render_mode": render_mode}
    return EnvSnapshot(gym.make(env_id, **env_kwargs))


def make_vector_env(env_id: str, num_envs: int, vectorization: str = "sync",
                    scale_rewards: bool = False, gamma: float = 0.99,
                    render_mode: str | None = None,
                    env_kwargs: dict[str, Any] | None = None) -> VectorEnv:
    """A vector env of `env_id` in same-step autoreset mode, with episode statistics.

    Args:
        env_id: registered Gymnasium id (`damdp_lite/*` toys, `HalfCheetah-v5`, ...).
        num_envs: parallel envs.
        vectorization: "sync" (`SyncVectorEnv`) or "async" (`AsyncVectorEnv`, one process each).
        scale_rewards: divide rewards by the running std of the `gamma`-discounted return.
        gamma: env-step discount of that return.
        render_mode: e.g. "rgb_array" (MuJoCo needs `MUJOCO_GL`, see `set_offscreen_gl`).
        env_kwargs: keyword arguments of `gym.make`.

    Same-step autoreset puts the true final observation of a finished episode into
    `info["final_obs"]` and returns the reset observation in its place (method.md §5.0, D6).
    Raises `ValueError` naming the field for an unknown id, a bad count or mode, or an action
    space that is not a 1-D `Box` (the latent chain lives in R^d).
    """
    import damdp_lite.envs

    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise ValueError(f"env_id={env_id!r} is not a registered gymnasium id; e.g. "
                         f"'HalfCheetah-v5', 'Hopper-v5' or {damdp_lite.envs.TOY_ENV_IDS}")
    check_int_at_least("num_envs", num_envs, 1)
    check_choice("vectorization", vectorization, VECTORIZATION)
    check_positive("gamma", gamma)
    if render_mode is not None and render_mode.startswith("rgb"):
        set_offscreen_gl()
    kwargs = dict(env_kwargs or {})
    fns = [lambda: _make_one(env_id, render_mode, kwargs) for _ in range(num_envs)]
    cls = SyncVectorEnv if vectorization == "sync" else AsyncVectorEnv
    envs = cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        envs.close()
        raise ValueError(f"env_id={env_id!r} has action space {space}; a chain policy needs a "
                         f"1-D continuous gymnasium.spaces.Box")
    envs = RecordEpisodeStatistics(envs)
    return ScaleReward(envs, gamma) if scale_rewards else envs


_EPISODE_STATS = ("episode_returns", "episode_lengths", "prev_dones")


def _find(envs: VectorEnv, cls: type) -> Any:
    while True:
        if isinstance(envs, cls):
            return envs
        if not hasattr(envs, "env"):
            return None
        envs = envs.env


def vector_env_state(envs: VectorEnv) -> dict[str, Any]:
    """Everything needed to continue `envs` exactly: each env's `EnvSnapshot`, the running
    episode statistics and the reward scaler (tensors, numbers, str, bytes only)."""
    stats = _find(envs, RecordEpisodeStatistics)
    scaler = _find(envs, ScaleReward)
    return {"envs": list(envs.unwrapped.get_attr("snapshot")),
            "episode_stats": {name: torch.from_numpy(np.array(getattr(stats, name)))
                              for name in _EPISODE_STATS} if stats else None,
            "episode_count": int(stats.episode_count) if stats else 0,
            "reward_scale": scaler.state_dict() if scaler else None}


def load_vector_env_state(envs: VectorEnv, state: dict[str, Any]) -> None:
    """Restore a `vector_env_state` into envs built with the same arguments (and reset once)."""
    if len(state["envs"]) != envs.num_envs:
        raise ValueError(f"checkpoint has {len(state['envs'])} envs; this run has "
                         f"num_envs={envs.num_envs}")
    envs.unwrapped.set_attr("snapshot", state["envs"])
    stats = _find(envs, RecordEpisodeStatistics)
    if stats is not None and state["episode_stats"] is not None:
        for name, value in state["episode_stats"].items():
            setattr(stats, name, value.numpy().copy())
        stats.episode_count = state["episode_count"]
    scaler = _find(envs, ScaleReward)
    if scaler is not None and state["reward_scale"] is not None:
        scaler.load_state_dict(state["reward_scale"])
