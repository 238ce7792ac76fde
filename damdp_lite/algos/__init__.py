"""Algorithms, each written once against the chain-policy protocol (design.md).

| module   | algorithm                                   | method.md |
|----------|---------------------------------------------|-----------|
| `ppo.py` | DA-MDP PPO (DiffPPO); MaxEnt PPO (Gaussian) | §5.3      |
| `reppo.py` | DA-MDP REPPO; REPPO (Gaussian)            | §5.1      |
| `wpo.py` | DA-MDP WPO; ME-WPO (Gaussian)               | §5.2      |
| `sac.py` | DiffSAC (reconstruction); SAC (Gaussian)    | §5.4      |
"""

from .common import make_policy
from .ppo import (
    PPOConfig,
    ValueNetwork,
    actor_advantage,
    dest_loss,
    policy_loss,
    ppo_loss,
    train_ppo,
    value_loss,
)

__all__ = [
    "PPOConfig", "ValueNetwork", "actor_advantage", "dest_loss", "make_policy", "policy_loss",
    "ppo_loss", "train_ppo", "value_loss",
]
