"""Toy environments of the suite (method.md §7), registered with Gymnasium on import.

    import damdp_lite.envs
    env = gymnasium.make("damdp_lite/TurningDoubleWell-v0")   # truncated after 100 steps

| id                                | class                  | method.md | horizon            |
|-----------------------------------|------------------------|-----------|--------------------|
| `damdp_lite/DoubleWellBandit-v0`  | `DoubleWellBanditEnv`  | §7.1      | 1 (terminated)     |
| `damdp_lite/FourModeBandit-v0`    | `FourModeBanditEnv`    | §7.2      | 1 (terminated)     |
| `damdp_lite/TurningDoubleWell-v0` | `TurningDoubleWellEnv` | §7.3      | 100 (truncated)    |
| `damdp_lite/TurningMultiWell-v0`  | `TurningMultiWellEnv`  | §7.4      | 100 (truncated)    |
| `damdp_lite/TurningGMM-v0`        | `TurningGMMEnv`        | §7.5      | 100 (truncated)    |
| `damdp_lite/MultiGoal-v0`         | `MultiGoalEnv`         | §7.6      | 30 (goal: term.)   |

Constructor arguments pass through `gymnasium.make(id, **kwargs)`, e.g.
`gymnasium.make("damdp_lite/FourModeBandit-v0", mode_rewards=(0, 0, 0, 0), sigma_r=0.1)`.
An id that is not registered raises a `gymnasium.error.Error` subclass (`NameNotFound`).

DeepMind Control suite tasks (`dm_control/<domain>-<task>-v0`, e.g. `dm_control/cheetah-run-v0`)
are registered by shimmy, imported here when dm-control and shimmy are installed
(`dmc.register_dmc_envs`); `make.make_vector_env` flattens their observations (`envs/dmc.py`).

Each env class lists its dynamic state in `STATE_ATTRS` (`()` for the bandits): exactly what
`envs.make.EnvSnapshot` saves in a checkpoint, as tensors and numbers (an env of another kind
that declares nothing cannot be checkpointed).
"""

from __future__ import annotations

import gymnasium

from .bandits import DoubleWellBanditEnv, FourModeBanditEnv
from .dmc import register_dmc_envs
from .multigoal import MultiGoalEnv
from .render import check_offscreen_gl
from .turning import TurningDoubleWellEnv, TurningGMMEnv, TurningMultiWellEnv

_REGISTRY: dict[str, tuple[str, int | None]] = {
    "damdp_lite/DoubleWellBandit-v0": ("damdp_lite.envs.bandits:DoubleWellBanditEnv", None),
    "damdp_lite/FourModeBandit-v0": ("damdp_lite.envs.bandits:FourModeBanditEnv", None),
    "damdp_lite/TurningDoubleWell-v0": ("damdp_lite.envs.turning:TurningDoubleWellEnv", 100),
    "damdp_lite/TurningMultiWell-v0": ("damdp_lite.envs.turning:TurningMultiWellEnv", 100),
    "damdp_lite/TurningGMM-v0": ("damdp_lite.envs.turning:TurningGMMEnv", 100),
    "damdp_lite/MultiGoal-v0": ("damdp_lite.envs.multigoal:MultiGoalEnv", 30),
}

TOY_ENV_IDS: tuple[str, ...] = tuple(_REGISTRY)
"""Every Gymnasium id registered by this package."""


def register_envs() -> None:
    """Register `TOY_ENV_IDS` with Gymnasium; ids already registered are left alone, so
    re-importing (or reloading) this module never raises."""
    for env_id, (entry_point, max_steps) in _REGISTRY.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


register_envs()
check_offscreen_gl()  # MUJOCO_GL=egl without libEGL would make `import mujoco` fail: fall back
register_dmc_envs()  # after the check: importing dm-control imports mujoco

__all__ = [
    "TOY_ENV_IDS",
    "DoubleWellBanditEnv",
    "FourModeBanditEnv",
    "MultiGoalEnv",
    "TurningDoubleWellEnv",
    "TurningGMMEnv",
    "TurningMultiWellEnv",
    "register_dmc_envs",
    "register_envs",
]
