"""Vanilla policy gradient on the diffusion-augmented MDP, as a new algorithm in one file.

Nothing outside this file is edited: importing it registers `--algo vpg`, and the CLI, the
widgets and `damdp_lite.train.train` run it with either policy (tests/test_new_algorithm.py).

    rollout -> soft rewards r - T ell_k -> discounted returns over augmented steps (GAE, lambda = 1,
    no baseline) -> one Adam step on  -mean[log q_theta(a^{k-1} | a^k, s) * normalised return]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from damdp_lite.algos.common import Algo, AlgoConfig, Learner, check_finite, episode_stats, register
from damdp_lite.config import nonnegative, param, positive
from damdp_lite.damdp import augmented_discounts, collect_rollout, gae, soft_reward_current


@dataclass
class VPGConfig(AlgoConfig, defaults=dict(num_envs=4, num_env_steps=16)):
    """Vanilla policy gradient (REINFORCE) on augmented transitions."""

    lr: float = param(1e-3, positive())
    """Adam learning rate of the policy."""
    temperature: float = param(0.05, nonnegative())
    """Temperature T of the soft reward."""


def vpg_loss(log_prob: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """-mean[log q(a^{k-1} | a^k, s) * (G - mean G) / std G], inputs `(B,)`."""
    adv = (returns - returns.mean()) / (returns.std() + 1e-8)
    return -(log_prob * adv.detach()).mean()


class VPG(Learner):
    STATE = ("policy", "optimizer")
    CSV_FIELDS = ("iteration", "env_steps", "episode_return", "episode_length", "loss",
                  "elapsed_s")

    def __init__(self, config: VPGConfig, policy=None) -> None:
        self.start(config, policy)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.obs, _ = self.envs.reset(seed=config.seed)
        self.iteration = 0

    def train_iteration(self) -> dict:
        cfg, it = self.config, self.iteration
        ro, self.obs = collect_rollout(self.envs, self.policy, None, cfg.num_env_steps,
                                       self.obs, self.gen)
        r_soft = soft_reward_current(ro.reward, ro.ell, cfg.temperature)
        ones = torch.ones_like(r_soft)
        _, returns = gae(r_soft, 0 * r_soft, 0 * r_soft, ro.terminated, ro.truncated,
                         augmented_discounts(ro.k, cfg.gamma), ones)
        log_prob = self.policy.denoise_log_prob(*(x.flatten(0, 1) for x in (
            ro.obs, ro.a_k, ro.k, ro.a_prev)))
        loss = vpg_loss(log_prob, returns.flatten())
        check_finite("loss", loss, it)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        return {"iteration": it, "env_steps": self.iteration * cfg.env_steps_per_iteration,
                **episode_stats(ro), "loss": loss.item()}


register(Algo("vpg", VPGConfig, VPG, "vanilla policy gradient (a test of the registry)",
              labels={"diffusion": "diffvpg", "gaussian": "vpg"}))
