"""DiffSAC: SAC on the diffusion-augmented MDP, written once for any chain policy (method.md §5.4).

*A reconstruction, not the authors' code*: the papers report DiffSAC, but the official code has
no DA-MDP SAC (its `d_sac.py` back-propagates through the whole chain, DIME-style). This is the
version consistent with the DA-MDP derivation (method.md §4, §5.4). With a `GaussianPolicy`
(K = 1) the same code is SAC with a tanh-Gaussian.

    env steps (chain inside the agent) -> replay buffer of augmented transitions, k mixed
    -> per env step one gradient step on a batch of them:
       twin critics to y = R~ + gamma_e (1 - term) [min_i Q_target_i(s~', x') - T ell(s~', x')],
       actor  sg(T) ell_hat - min_i Q_i(s~, x_hat)  (reparameterised), temperature (§4.5),
       Polyak-averaged target critics.
Our choices (CleanRL SAC defaults, labelled as ours): batch 256, critic lr 1e-3, actor lr 3e-4,
tau 0.005, one gradient step per env step, gamma_aug = gamma_env^(1/K).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..chain import ChainPolicy, saturated_fraction, step_kl
from ..config import WIDTHS, between, one_of, param, positive, unit_interval
from ..critics import AugmentedCritic
from ..damdp import augmented_discounts, collect_rollout
from .common import (
    DIFFUSION_MUJOCO,
    Algo,
    AlgoConfig,
    LearnedTemperature,
    Learner,
    check_finite,
    check_memory,
    episode_stats,
    register,
    temperature_loss,
    update_normalisers,
)

CSV_FIELDS = ("iteration", "env_steps", "episode_return", "episode_length", "critic_loss",
              "actor_loss", "q_hat", "mean_ell", "entropy_estimate", "temperature",
              "buffer_size", "kl", "saturated", "dq_dx", "elapsed_s")
"""Besides the losses, the diagnostics every learner logs (`reppo.CSV_FIELDS`): `kl` is
K * KL(q before || q after) of the iteration's gradient steps on the last batch (SAC has no
trust region), `saturated` the fraction of executed action coordinates with |tanh a^0| > 0.99,
`dq_dx` the mean |dQ/dx| at the actor's sample."""

DEBT_TOLERANCE = 1e-9
"""Gradient steps owed are summed in floating point; a sum that should be 1 may be 1 - 1e-16."""

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class SACConfig(LearnedTemperature, AlgoConfig,
                defaults=dict(num_envs=4, num_env_steps=16, gamma=0.99)):
    """Hyperparameters of DiffSAC / SAC (method.md §5.4; our CleanRL-based choices). Each
    iteration collects num_envs x num_env_steps env steps, then makes its gradient steps; the
    shared fields are documented in `common`."""

    learning_starts: int = param(5_000, between(0, 10**12))
    """Env steps collected before the first gradient step."""
    buffer_size: int = param(1_000_000, between(1, 10**9))
    """Replay capacity in augmented transitions (K per env step)."""
    batch_size: int = param(256, between(1, 10**6))
    """Augmented transitions per gradient step."""
    gradient_steps_per_env_step: float = param(1.0, positive())
    """Gradient steps per env step (each env step adds K transitions)."""
    actor_lr: float = param(3e-4, positive())
    """Adam learning rate of the policy and of log T."""
    critic_lr: float = param(1e-3, positive())
    """Adam learning rate of the twin critics."""
    tau: float = param(0.005, unit_interval())
    """Polyak factor of the target critics, in (0, 1]."""
    critic_hidden_sizes: tuple[int, ...] = param((256, 256), WIDTHS)
    """Critic widths."""
    critic_target: str = param("step", one_of("step", "chain"))
    """"step" (method.md §5.4): bootstrap from the critic one augmented step on; "chain" (ours, in
    neither paper nor code): sample a fresh chain from s~' down to the action and bootstrap from
    the critic at its last step (k = 1), so value crosses the K chain steps in one backup.
    Identical for a Gaussian (K = 1)."""

    policy_defaults: ClassVar[dict[str, dict]] = {
        "diffusion": dict(num_steps=4, hidden_sizes=(256, 256), step_size_schedule="linear",
                          noising_step_pairing="previous", action_clip=0.999),
        "gaussian": dict(hidden_sizes=(256, 256), init_std=1.0, action_clip=0.999)}
    """REPPO's diffusion settings and action clip (0.999)."""

    def check(self) -> None:
        """A run must make at least one gradient step (else its summary would look normal):
        the iterations that end at or after `learning_starts` env steps add
        gradient_steps_per_env_step x env steps per iteration to the steps owed."""
        per = self.env_steps_per_iteration
        first = max(1, -(-self.learning_starts // per))  # first iteration (1-based) that learns
        owed = self.gradient_steps_per_env_step * per * max(0, self.num_iterations - first + 1)
        if owed < 1 - DEBT_TOLERANCE:
            raise ValueError(
                f"no gradient step would happen: learning_starts={self.learning_starts!r}, "
                f"gradient_steps_per_env_step={self.gradient_steps_per_env_step!r} and "
                f"{self.num_iterations * per} env steps (total_env_steps="
                f"{self.total_env_steps!r} in iterations of num_envs={self.num_envs!r} x "
                f"num_env_steps={self.num_env_steps!r}); allowed: at least one gradient step "
                f"after learning_starts")

    @classmethod
    def mujoco(cls, **fields) -> SACConfig:
        """CPU-scale MuJoCo preset: 4 envs, K = 8, CleanRL SAC defaults (ours, §5.4), and one
        gradient step per *vector* step of the 4 envs (SB3's `train_freq=1, gradient_steps=1`
        convention), i.e. 0.25 per env step: one per env step (method.md §5.4) costs 22 ms
        of a 2 x 256 update per env step on one CPU core (45 env steps/s); pass
        `gradient_steps_per_env_step=1.0` where a GPU makes that affordable."""
        shared = dict(env_id="HalfCheetah-v5", total_env_steps=1_000_000, learning_starts=5_000,
                      gradient_steps_per_env_step=0.25)
        policy = {"diffusion": dict(num_steps=8, **DIFFUSION_MUJOCO), "gaussian": SAC_GAUSSIAN}
        return cls.preset(fields, shared, policy).with_env_discounts(fields, gamma=0.99)


SAC_GAUSSIAN = dict(state_dependent_std=True, tanh_jacobian=True, entropy_target_mult=1.0)
"""SAC as in its own paper (Haarnoja et al. 2018): a state-dependent std, action-space entropy
(the tanh Jacobian) and the entropy target -d."""


# ---------------------------------------------------------------------------------------------
# Replay of augmented transitions, and the critic target (method.md §5.4)
# ---------------------------------------------------------------------------------------------


class ReplayBuffer:
    """Ring buffer of augmented transitions (s~, a^{k-1}, R~, term, s~'), tensors on `device`.

    At a truncation s~' holds the true final observation (method.md §5.0), so no truncation flag
    is stored; a termination stops the bootstrap.
    """

    KEYS = ("obs", "a_k", "k", "a_prev", "reward", "terminated", "next_obs", "next_a_k",
            "next_k")

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device
                 ) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        shapes = {"obs": (obs_dim,), "next_obs": (obs_dim,), "a_k": (action_dim,),
                  "a_prev": (action_dim,), "next_a_k": (action_dim,)}
        self.data = {key: torch.zeros(capacity, *shapes.get(key, ()), device=device,
                                      dtype=torch.long if key in ("k", "next_k")
                                      else torch.float32) for key in self.KEYS}

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        n = batch["k"].shape[0]
        idx = (self.pos + torch.arange(n)) % self.capacity
        for key in self.KEYS:
            self.data[key][idx.to(self.data[key].device)] = batch[key].to(self.data[key].dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return {key: v[idx.to(v.device)] for key, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos,
                **{key: v[: self.size].clone() for key, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for key in self.KEYS:
            self.data[key][: self.size] = state[key]


def sac_target(reward: torch.Tensor, terminated: torch.Tensor, gamma_e: torch.Tensor,
               q_next_min: torch.Tensor, ell_next: torch.Tensor, temperature: float
               ) -> torch.Tensor:
    """y = R~ + gamma_e (1 - term) [min_i Q_target_i(s~', x') - T ell(s~', x')], `(B,)` (§5.4)."""
    return soft_bellman_target(reward, terminated, gamma_e, q_next_min - temperature * ell_next)


def soft_bellman_target(reward: torch.Tensor, terminated: torch.Tensor, gamma_e: torch.Tensor,
                        v_next: torch.Tensor) -> torch.Tensor:
    """y = R~ + gamma_e (1 - term) V(s~'), `(B,)`: the one-step bracket of `sac_target` or
    `chain_soft_value` as V."""
    return reward + gamma_e * (1 - terminated) * v_next


@torch.no_grad()
def chain_soft_value(policy: ChainPolicy, targets: nn.ModuleList, obs: torch.Tensor,
                     a_k: torch.Tensor, k: torch.Tensor, temperature: float, gamma: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """V(s~) over a fresh chain from s~ = (s, a^k, k) down to the action, `(B,)` (ours).

    Inside the chain the reward is 0 and nothing terminates, so the soft Bellman equation
    (method.md §4.2) unrolled from step k to step 1 gives
        V(s~) = sum_{i=0}^{k-1} gamma^i (-T ell_{k-i}) + gamma^{k-1} min_j Q_target_j(s~_1, a^0),
    with a^{k-1}, ..., a^0 ~ q_theta. With k = 1 it is the bracket of `sac_target`.
    """
    value = torch.zeros(k.shape, device=k.device)
    discount = torch.ones(k.shape, device=k.device)
    last_latent, action = a_k.clone(), a_k.clone()
    for _ in range(int(k.max())):
        live = k >= 1
        x, ell = policy.step(obs, a_k, k.clamp(min=1), generator=generator)
        value = value - torch.where(live, discount * temperature * ell, 0.0)
        at_last = (k == 1)[:, None]
        last_latent = torch.where(at_last, a_k, last_latent)
        action = torch.where(at_last, x, action)
        discount = torch.where(k > 1, discount * gamma, discount)
        a_k, k = torch.where(live[:, None], x, a_k), k - live.long()
    ones = torch.ones_like(k)
    q = torch.min(*(t(obs, last_latent, ones, action) for t in targets))
    return value + discount * q


# ---------------------------------------------------------------------------------------------
# The learner
# ---------------------------------------------------------------------------------------------


class SAC(Learner):
    """One DiffSAC (or SAC) run in memory (`common.Learner`)."""

    def __init__(self, config: SACConfig, policy: ChainPolicy | None = None) -> None:
        obs_dim, action_dim = self.start(config, policy)
        self.critics = nn.ModuleList([AugmentedCritic(obs_dim, action_dim,
                                                      config.critic_hidden_sizes)
                                      for _ in range(2)]).to(self.device)
        self.targets = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(config.temperature_init),
                                                         device=self.device))
        self.actor_opt = torch.optim.Adam([p for p in self.policy.parameters()
                                           if p.requires_grad], lr=config.actor_lr,
                                          foreach=True)
        self.temp_opt = torch.optim.Adam([self.log_temperature], lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=config.critic_lr,
                                           foreach=True)
        try:  # before the buffer is allocated
            check_memory(f"buffer_size={config.buffer_size}",
                         config.buffer_size * (2 * obs_dim + 3 * action_dim + 6) * 4)
        except ValueError:
            self.envs.close()
            raise
        self.buffer = ReplayBuffer(config.buffer_size, obs_dim, action_dim, self.device)
        self.gen = torch.Generator(self.device).manual_seed(config.seed)
        self.sample_gen = torch.Generator().manual_seed(config.seed + 1)
        self.obs, _ = self.envs.reset(seed=config.seed)
        self.iteration, self.grad_debt = 0, 0.0

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def train_iteration(self) -> dict:
        cfg, it = self.config, self.iteration
        ro, self.obs = collect_rollout(self.envs, self.policy, None, cfg.num_env_steps,
                                       self.obs, self.gen)
        S, N = ro.k.shape
        flat = lambda x: x.reshape(S * N, *x.shape[2:])  # noqa: E731
        update_normalisers([*self.critics, *self.targets], obs=flat(ro.obs),
                           latent=flat(ro.a_k))
        self.buffer.add({"obs": flat(ro.obs), "a_k": flat(ro.a_k), "k": flat(ro.k),
                         "a_prev": flat(ro.a_prev), "reward": flat(ro.reward),
                         "terminated": flat(ro.terminated), "next_obs": flat(ro.next_obs),
                         "next_a_k": flat(ro.next_a_k), "next_k": flat(ro.next_k)})
        self.iteration += 1
        env_steps = self.iteration * cfg.env_steps_per_iteration
        sums: dict[str, float] = {}
        n, kl = 0, float("nan")
        if env_steps >= cfg.learning_starts:
            old = copy.deepcopy(self.policy).requires_grad_(False)
            self.grad_debt += cfg.gradient_steps_per_env_step * cfg.env_steps_per_iteration
            while self.grad_debt >= 1 - DEBT_TOLERANCE:
                for key, val in self._update(it).items():
                    sums[key] = sums.get(key, 0.0) + val
                n += 1
                self.grad_debt -= 1
            if n:
                with torch.no_grad():
                    b = self.last_batch
                    kl = self.policy.num_steps * step_kl(old, self.policy, b["obs"], b["a_k"],
                                                         b["k"]).mean().item()
        nan = float("nan")
        return {"iteration": it, "env_steps": env_steps, **episode_stats(ro),
                **{key: (sums[key] / n if n else nan) for key in
                   ("critic_loss", "actor_loss", "q_hat", "mean_ell", "entropy_estimate",
                    "dq_dx")},
                "temperature": self.temperature.item(), "buffer_size": self.buffer.size,
                "kl": kl, "saturated": saturated_fraction(ro.a_prev[ro.k == 1])}

    def _update(self, it: int) -> dict[str, float]:
        """One gradient step: twin critics, actor, temperature, Polyak targets."""
        cfg, K = self.config, self.policy.num_steps
        b = self.buffer.sample(cfg.batch_size, self.sample_gen)
        temperature = self.temperature.detach()
        with torch.no_grad():
            gamma_e = augmented_discounts(b["k"], cfg.gamma)
            if cfg.critic_target == "chain":
                v_next = chain_soft_value(self.policy, self.targets, b["next_obs"],
                                          b["next_a_k"], b["next_k"], temperature.item(),
                                          cfg.gamma, generator=self.gen)
                y = soft_bellman_target(b["reward"], b["terminated"], gamma_e, v_next)
            else:
                x_next, ell_next = self.policy.step(b["next_obs"], b["next_a_k"],
                                                    b["next_k"], generator=self.gen)
                q_next = torch.min(*(t(b["next_obs"], b["next_a_k"], b["next_k"], x_next)
                                     for t in self.targets))
                y = sac_target(b["reward"], b["terminated"], gamma_e, q_next, ell_next,
                               temperature.item())
        critic_loss = sum(c.loss(b["obs"], b["a_k"], b["k"], b["a_prev"], y).mean()
                          for c in self.critics)
        check_finite("critic_loss", critic_loss, it)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        x_hat, ell_hat = self.policy.step(b["obs"], b["a_k"], b["k"], generator=self.gen,
                                          reparameterize=True)
        q_hat = torch.min(*(c(b["obs"], b["a_k"], b["k"], x_hat) for c in self.critics))
        grad_q = torch.autograd.grad(q_hat.sum(), x_hat, retain_graph=True)[0]
        actor_loss = (temperature * ell_hat - q_hat).mean()
        check_finite("actor_loss", actor_loss, it)
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        self.critics.zero_grad(set_to_none=True)
        if cfg.auto_temperature:
            t_loss = temperature_loss(self.temperature, ell_hat.detach(), K,
                                      cfg.entropy_target_mult, self.policy.action_dim)
            self.temp_opt.zero_grad()
            t_loss.backward()
            self.temp_opt.step()
        with torch.no_grad():
            for c, t in zip(self.critics, self.targets, strict=True):
                for p, tp in zip(c.parameters(), t.parameters(), strict=True):
                    tp.lerp_(p, cfg.tau)
        self.last_batch = b
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                "q_hat": q_hat.mean().item(), "mean_ell": ell_hat.mean().item(),
                "entropy_estimate": -K * ell_hat.mean().item(),
                "dq_dx": grad_q.abs().mean().item()}

    STATE = ("grad_debt", "policy", "critics", "targets", "log_temperature", "actor_opt",
             "temp_opt", "critic_opt", "buffer", "sample_gen")
    """What a checkpoint holds besides the rollout state (`common.Learner.state_dict`)."""
    CSV_FIELDS = CSV_FIELDS


register(Algo("sac", SACConfig, SAC, "DiffSAC (a reconstruction from the paper's derivation, "
              "method.md §5.4) / SAC with a tanh-Gaussian",
              labels={"diffusion": "diffsac", "gaussian": "sac"}),
         aliases={"diffsac": {"policy": "diffusion"}})
