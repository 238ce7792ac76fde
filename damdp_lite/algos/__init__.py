"""Algorithms, each one file written once against the chain-policy protocol (design.md).

| module     | `--algo` | with `--policy diffusion` / `gaussian`          | method.md |
|------------|----------|-------------------------------------------------|-----------|
| `ppo.py`   | ppo      | DA-MDP PPO (DiffPPO; DPPO at T = 0) / MaxEnt PPO | §5.3      |
| `reppo.py` | reppo    | DA-MDP REPPO / REPPO                             | §5.1      |
| `reppo.py` | wpo      | DA-MDP WPO / ME-WPO (REPPO's machinery, §5.2)    | §5.2      |
| `sac.py`   | sac      | DiffSAC (reconstruction) / SAC                   | §5.4      |

Each file ends with a `common.register(...)` call; importing this package registers them all.
A new algorithm is one more such file (see `tests/vpg_algo.py`).
"""

from . import ppo, reppo, sac  # noqa: F401  (each registers itself)
from .common import ALGOS, ALIASES, Algo, AlgoConfig, Learner, algo_of, register, resolve
from .ppo import (
    PPO,
    PPOConfig,
    ValueNetwork,
    actor_advantage,
    dest_loss,
    policy_loss,
    ppo_loss,
    value_loss,
)
from .reppo import REPPO, REPPOConfig
from .sac import SAC, SACConfig

__all__ = [
    "ALGOS", "ALIASES", "Algo", "AlgoConfig", "Learner", "PPO", "PPOConfig", "REPPO",
    "REPPOConfig", "SAC", "SACConfig", "ValueNetwork", "actor_advantage", "algo_of",
    "dest_loss", "policy_loss", "ppo_loss", "register", "resolve", "value_loss",
]
