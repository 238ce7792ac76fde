"""DeepMind Control suite tasks as Gymnasium envs: `dm_control/<domain>-<task>-v0`.

The tasks of the DA-MDP paper's benchmark (Tassa et al., *DeepMind Control Suite*, 2018,
arXiv 1801.00690) come from `dm-control`; `shimmy` wraps them as Gymnasium envs and registers
their ids (`dm_control/cartpole-swingup-v0`, `dm_control/cheetah-run-v0`, ...) when it is
imported, which `register_dmc_envs` does on `import damdp_lite.envs`. So a DMC id works wherever
an `env_id` is accepted (`AlgoConfig.env_id`, `damdp-lite train --env`, sweeps, reports).

What `envs.make.make_vector_env` adds for such an id:

- `FlatObservation`: the observation dict as one float32 vector (the keys in the order of
  shimmy's `Dict` space, i.e. sorted by name; scalars count as one entry);
- the episode: 1000 control steps, ended by dm-control's time limit as a *truncation*
  (`truncated=True`, discount 1); no suite task used here terminates;
- actions: shimmy's `Box` from the task's action spec ([-1, 1] per actuator for the suite's
  locomotion and swing-up tasks), which `policies.build_policy` reads as the bounds;
- exact snapshots for checkpoints (`EnvSnapshot`, kind "dmc"): MuJoCo's integration state,
  the model fields tasks rewrite when an episode starts (`MODEL_FIELDS`, e.g. reacher's target),
  the task's numeric attributes, its `RandomState` (with the cached Gaussian), and the
  environment's step counter.

dm-control 1.0.50 needs `mujoco==3.17.0` (with mujoco 4.0 it fails: `MjModel` has no
`flex_vertedge`), hence the suite's MuJoCo pin. Only `dm_control.suite` tasks are supported;
shimmy's other ids (the composer-based locomotion and manipulation envs) are refused with one
line.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from .render import check_offscreen_gl

NAMESPACE = "dm_control"
"""Gymnasium namespace of shimmy's dm-control ids."""

EPISODE_STEPS = 1000
"""Control steps of a suite episode (every suite task: 1000 x its control timestep)."""

MODEL_FIELDS = ("dof_damping", "geom_pos", "geom_size", "geom_rgba", "light_pos", "site_pos",
                "site_size", "site_rgba", "wrap_prm", "hfield_data")
"""MuJoCo model arrays that dm-control 1.0.50's suite tasks rewrite in `initialize_episode`
(reacher, fish and swimmer targets, finger's target site and damping, point_mass's wrap
parameters, quadruped-escape's terrain, visual-only colours), so part of an env's state."""


def dmc_installed() -> bool:
    """Whether dm-control and shimmy can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("dm_control", "shimmy"))


_unavailable: str | None = None  # why the ids could not be registered (None: not tried / ok)


def register_dmc_envs() -> bool:
    """Import shimmy, which registers the `dm_control/...` ids with Gymnasium; False (and one
    warning line if the import failed) when dm-control or shimmy is not available. Without a
    display and with `MUJOCO_GL` unset, sets `MUJOCO_GL=egl` first (`render.check_offscreen_gl`
    falls back from there): dm-control picks its rendering backend when imported, and its
    default, GLFW, needs a display."""
    global _unavailable
    if "shimmy" in sys.modules and _unavailable is None:
        return True
    if _unavailable is not None:
        return False
    if not dmc_installed():
        _unavailable = "dm-control and shimmy are not installed"
        return False
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
        check_offscreen_gl()
    try:
        import shimmy  # noqa: F401  (registers the ids)
    except Exception as err:  # noqa: BLE001 - an optional family must not break the package
        first = (str(err).strip().splitlines() or [""])[0][:160]
        _unavailable = f"importing shimmy / dm-control failed ({type(err).__name__}: {first})"
        warnings.warn(f"DeepMind Control envs are unavailable: {_unavailable}", RuntimeWarning,
                      stacklevel=2)
        return False
    return True


def is_dmc_id(env_id: Any) -> bool:
    """Whether `env_id` names an id in the `dm_control/` namespace (registered or not)."""
    return isinstance(env_id, str) and env_id.startswith(f"{NAMESPACE}/")


def suite_env_ids() -> tuple[str, ...]:
    """The registered ids of `dm_control.suite.ALL_TASKS` (the ones `make_vector_env` takes)."""
    if not register_dmc_envs():
        return ()
    from dm_control import suite

    ids = (f"{NAMESPACE}/{domain}-{task}-v0" for domain, task in suite.ALL_TASKS)
    return tuple(i for i in ids if i in gym.registry)


def check_dmc_id(env_id: str) -> None:
    """`ValueError` (one line: the field, the value, what is allowed) unless `env_id` is a
    DeepMind Control suite task that can be made here."""
    if not register_dmc_envs():
        raise ValueError(f"env_id={env_id!r} needs dm-control and shimmy: {_unavailable} "
                         f"(pip install dm-control==1.0.50 shimmy==2.0.1 mujoco==3.17.0)")
    ids = suite_env_ids()
    if env_id in ids:
        return
    what = ("a dm-control composer env (locomotion or manipulation), which is not supported"
            if env_id in gym.registry else "not a DeepMind Control suite task")
    near = difflib.get_close_matches(env_id, ids, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    tasks = ", ".join(i[len(NAMESPACE) + 1:-3] for i in ids)
    raise ValueError(f"env_id={env_id!r} is {what}{hint}; expected "
                     f"'{NAMESPACE}/<domain>-<task>-v0' with <domain>-<task> one of: {tasks}")


class FlatObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A dm-control env's observation dict as one float32 vector `(obs_dim,)`.

    The entries are concatenated in the order of the env's `Dict` observation space
    (`gymnasium.spaces.flatten`). Shimmy's per-step `info` (the dm_env step type and discount,
    already told by `terminated` / `truncated`) is dropped, so vector envs carry no per-step
    dict of objects.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict):
            raise ValueError(f"FlatObservation wraps a dict observation space, got {space}")
        flat = gym.spaces.flatten_space(space)
        self._dict_space = space
        self.observation_space = gym.spaces.Box(flat.low.astype(np.float32),
                                                flat.high.astype(np.float32),
                                                dtype=np.float32)

    def _flat(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return gym.spaces.flatten(self._dict_space, obs).astype(np.float32)

    def reset(self, **kwargs) -> tuple[np.ndarray, dict]:
        obs, _ = self.env.reset(**kwargs)
        return self._flat(obs), {}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        return self._flat(obs), float(reward), terminated, truncated, {}


def is_dmc_env(base: gym.Env) -> bool:
    """Whether `base` (an unwrapped env) is shimmy's wrapper of a dm-control suite task."""
    if "shimmy" not in sys.modules:
        return False
    from dm_control.rl import control
    from shimmy.dm_control_compatibility import DmControlCompatibilityV0

    return isinstance(base, DmControlCompatibilityV0) and isinstance(base._env,
                                                                     control.Environment)


def suite_environment(base: gym.Env) -> Any:
    """The `dm_control.rl.control.Environment` inside shimmy's wrapper `base`: its `physics`
    (`.model.ptr` / `.data.ptr` are the `mujoco.MjModel` / `MjData`), `task` (with `_random`,
    the task's `np.random.RandomState`), `_step_count`, `_step_limit` and `_reset_next_step`."""
    return base._env


def task_state_attrs(task: Any) -> tuple[str, ...]:
    """The task's instance attributes that hold numbers (bool, int, float, numeric arrays),
    sorted: e.g. reacher's `_target_size`, cheetah's `_timeout_progress`. Its random state is
    saved on its own."""
    names = []
    for name, value in vars(task).items():
        if name == "_random":
            continue
        if isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating) or (
                isinstance(value, np.ndarray) and value.dtype.kind in "biuf"):
            names.append(name)
    return tuple(sorted(names))
