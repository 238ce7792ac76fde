"""DA-MDP REPPO, written once against the chain-policy protocol (method.md §4.4, §4.5, §5.0, §5.1).

With a `DiffusionPolicy` this is DA-MDP REPPO; with a `GaussianPolicy` (K = 1) the *same code* is
REPPO with a tanh-Gaussian. Nothing below branches on the policy type.

    rollout (damdp.collect_rollout)  ->  soft rewards r - gamma_e T ell(s~', x')  ->  Q(s~', x')
    -> TD(lambda) targets over augmented steps  ->  update_epochs x num_minibatches, each:
       one critic step (HL-Gauss cross-entropy), then one actor step with the *updated* critic:
       pathwise  sg(T) ell_hat - Q(s~, x_hat)  inside the KL trust region, sg(lambda) KL outside,
       plus the temperature and KL-multiplier losses.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..chain import ChainPolicy
from ..critics import AugmentedCritic, HLGaussSupport
from ..damdp import (
    augmented_discounts,
    collect_rollout,
    per_augmented_step,
    soft_reward_next,
    td_lambda_targets,
)
from ..utils import (
    check_choice,
    check_int_at_least,
    check_nonnegative,
)
from .common import Learner, LearnerConfig, episode_stats
from .ppo import minibatch_indices


@dataclass
class REPPOConfig(LearnerConfig):
    """Hyperparameters of DA-MDP REPPO (method.md §5.1, §6, §10). CPU-sized defaults."""

    env_id: str = "damdp_lite/TurningDoubleWell-v0"
    """Gymnasium id with a 1-D Box action space (toys `damdp_lite/*`, or e.g. `Hopper-v5`)."""
    num_envs: int = 16
    """Parallel envs of the vector env (official 1024)."""
    num_env_steps: int = 64
    """Env steps per env per rollout (official 128 x collection factor 0.5 = 64)."""
    total_env_steps: int = 50_000
    """Env steps over all envs and iterations."""
    update_epochs: int = 8
    """Passes over each rollout (official 8)."""
    num_minibatches: int = 8
    """Minibatches per epoch (official 8 K = 64; fewer on CPU)."""
    lr: float = 1e-3
    """Adam learning rate of the actor and of the critic (official 1e-3)."""
    lr_multipliers: float = 3e-4
    """Adam learning rate of log T and log lambda_KL (official 3e-4)."""
    gamma: float = 0.999
    """Discount per augmented step (official 0.999)."""
    td_lambda: float = 0.98
    """TD(lambda) per augmented step (official 0.98)."""
    temperature_init: float = 0.01
    """Initial temperature T (official ent_start 0.01); learned in log space."""
    entropy_target_mult: float = 5.0
    """m in the entropy target -m d on sum_k ell (official 5 for REPPO, §4.5)."""
    auto_temperature: bool = True
    """Learn T toward the entropy target; False keeps T = temperature_init (a fixed MaxEnt
    objective with a known optimum, as on the toys)."""
    kl_bound: float = 0.04
    """epsilon_KL of the trust region on K * KL(q_old || q_theta) (official 0.04)."""
    lagrangian_init: float = 0.3
    """Initial KL multiplier lambda_KL (official 0.3); learned in log space."""
    kl_samples: int = 16
    """Monte Carlo samples y ~ q_old per state for the KL estimate (official 16)."""
    num_bins: int = 101
    """HL-Gauss bins of the critic (official 151; 101 on CPU, method.md §10)."""
    v_min: float = -100.0
    """Lowest bin centre of the critic's support."""
    v_max: float = 200.0
    """Highest bin centre of the critic's support."""
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    """Critic widths (Linear -> LayerNorm -> SiLU; official 2 x 512)."""
    max_grad_norm: float = 0.5
    """Global-norm clip of each Adam step (official 0.5)."""
    policy: str = "diffusion"
    """"diffusion" (DA-MDP REPPO) or "gaussian" (REPPO, K = 1)."""
    num_steps: int = 4
    """Diffusion steps K >= 1 (4 on CPU, 8 official)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Policy network widths."""
    step_size_schedule: str = "linear"
    """Initial diffusion step sizes ("linear" official for REPPO, "cosine", "constant")."""
    noising_step_pairing: str = "previous"
    """Noising kernel at step k uses eta_{max(k-1,1)} ("previous") or eta_k ("same")."""
    tanh_jacobian: bool = False
    """Action-space entropy: tanh Jacobian in log q at k = 1 (D2; official False)."""
    action_clip: float = 0.999
    """Clip c of tanh(a^0) (REPPO official 0.999), D9."""
    init_std: float = 1.0
    """Initial std of the Gaussian policy (unused by the diffusion policy)."""
    mask_entropy_at_terminal: bool = True
    """Zero the entropy term of the soft reward at terminations (D6)."""
    diffusion_steps_per_update: int = 0
    """kappa: chain steps per env step used in each epoch (0: all K), method.md §4.3, D11."""
    vectorization: str = "sync"
    """"sync" or "async" vector env."""
    scale_rewards: bool = False
    """Divide rewards by the running std of the discounted return."""
    seed: int = 0
    """Seed of torch, NumPy, the env resets and every latent sample."""
    device: str = "cpu"
    """Torch device ("cpu", "cuda")."""

    def __post_init__(self) -> None:
        self.check_common(
            ints=("update_epochs", "num_minibatches", "kl_samples"),
            positives=("lr", "lr_multipliers", "temperature_init", "kl_bound",
                       "lagrangian_init", "max_grad_norm", "init_std"),
            unit_intervals=(("gamma", True), ("td_lambda", False), ("action_clip", True)),
            sizes=("hidden_sizes", "critic_hidden_sizes"))
        check_int_at_least("num_bins", self.num_bins, 2)
        check_int_at_least("diffusion_steps_per_update", self.diffusion_steps_per_update, 0)
        check_nonnegative("entropy_target_mult", self.entropy_target_mult)
        if not self.v_min < self.v_max:
            raise ValueError(f"v_min={self.v_min!r} must be < v_max={self.v_max!r}")
        check_choice("step_size_schedule", self.step_size_schedule,
                     ("linear", "cosine", "constant"))
        check_choice("noising_step_pairing", self.noising_step_pairing, ("previous", "same"))

    @classmethod
    def with_env_discounts(cls, gamma_env: float = 0.99, lambda_env: float = 0.95,
                           **overrides) -> REPPOConfig:
        """gamma, td_lambda per augmented step from env-step values (method.md §10)."""
        K = cls(**overrides).chain_length
        return cls(**{**overrides, "gamma": per_augmented_step(gamma_env, K),
                      "td_lambda": per_augmented_step(lambda_env, K)})

    @classmethod
    def mujoco(cls, policy: str = "diffusion", **overrides) -> REPPOConfig:
        """CPU-scale preset for Gymnasium MuJoCo (`damdp-lite train --algo diffreppo`).

        16 sync envs x 64 env steps, 8 epochs x 8 minibatches, lr 1e-3, gamma_env 0.99 and
        lambda_env 0.95 spread over the K steps (method.md §10), reward scaling (so the returns
        fit the critic's [-100, 200]), 2 x 256 networks, K = 8 with kappa = 2.
        """
        base = dict(env_id="HalfCheetah-v5", num_envs=16, num_env_steps=64,
                    total_env_steps=1_000_000, update_epochs=8, num_minibatches=8,
                    policy=policy, num_steps=8, hidden_sizes=(256, 256),
                    critic_hidden_sizes=(256, 256), scale_rewards=True,
                    diffusion_steps_per_update=2)
        return cls.with_env_discounts(0.99, 0.95, **{**base, **overrides})



# ---------------------------------------------------------------------------------------------
# Losses (method.md §4.5, §5.1), one function per equation
# ---------------------------------------------------------------------------------------------


def kl_estimate(old: ChainPolicy, new: ChainPolicy, obs: torch.Tensor, a_k: torch.Tensor,
                k: torch.Tensor, num_samples: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """K * KL(q_old(. | s~) || q_theta(. | s~)) by Monte Carlo, `(B,)` (method.md §5.1 step 3).

    (1/M) sum_m [log q_old(y_m) - log q_theta(y_m)], y_m ~ q_old, times the chain length K, so
    the bound applies to the whole chain. Differentiable in `new` only.
    """
    B, M = obs.shape[0], num_samples
    rep = lambda x: x.repeat_interleave(M, dim=0)  # noqa: E731  (B*M rows, sample-major)
    o, a, kk = rep(obs), rep(a_k), rep(k)
    with torch.no_grad():
        y, _ = old.step(o, a, kk, generator=generator)
        log_old = old.denoise_log_prob(y, a, o, kk)
    log_new = new.denoise_log_prob(y, a, o, kk)
    return new.num_steps * (log_old - log_new).reshape(B, M).mean(-1)


def reppo_actor_loss(ell_hat: torch.Tensor, q_hat: torch.Tensor, kl: torch.Tensor,
                     temperature: torch.Tensor, lagrangian: torch.Tensor, kl_bound: float
                     ) -> torch.Tensor:
    """mean[KL < eps ? sg(T) ell_hat - Q(s~, x_hat) : sg(lambda) KL] (method.md §5.1 step 4).

    Inside the trust region the pathwise soft-Q objective; outside it only the KL is pushed down.
    Inputs `(B,)`; returns `()`.
    """
    inside = kl.detach() < kl_bound
    return torch.where(inside, temperature.detach() * ell_hat - q_hat,
                       lagrangian.detach() * kl).mean()


def temperature_loss(temperature: torch.Tensor, ell_hat: torch.Tensor, num_steps: int,
                     target_mult: float, action_dim: int) -> torch.Tensor:
    """L_T = T sg(m d + H_hat), H_hat = -K mean ell_hat (method.md §4.5). T falls while the
    entropy estimate is above the target -m d."""
    entropy = -num_steps * ell_hat.mean()
    return temperature * (target_mult * action_dim + entropy).detach()


def lagrangian_loss(lagrangian: torch.Tensor, kl: torch.Tensor, kl_bound: float) -> torch.Tensor:
    """L_lambda = -lambda mean sg(KL - eps): lambda grows while the KL exceeds the bound."""
    return -lagrangian * (kl.detach() - kl_bound).mean()


# ---------------------------------------------------------------------------------------------
# The learner
# ---------------------------------------------------------------------------------------------

CSV_FIELDS = ("iteration", "env_steps", "episode_return", "episode_length", "critic_loss",
              "actor_loss", "q_hat", "mean_ell", "entropy_estimate", "kl", "kl_violation",
              "temperature", "lagrangian", "elapsed_s")


class REPPO(Learner):
    """One DA-MDP REPPO run in memory (same interface as `ppo.PPO`: `train_iteration`,
    `state_dict`, `load_state_dict`, `close`)."""

    def __init__(self, config: REPPOConfig, policy: ChainPolicy | None = None) -> None:
        obs_dim, action_dim = self.start(config, policy)
        self.critic = AugmentedCritic(
            obs_dim, action_dim, config.critic_hidden_sizes, with_action=True,
            support=HLGaussSupport(config.v_min, config.v_max, config.num_bins)).to(self.device)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(config.temperature_init),
                                                         device=self.device))
        self.log_lagrangian = nn.Parameter(torch.tensor(math.log(config.lagrangian_init),
                                                        device=self.device))
        self.actor_params = [p for p in self.policy.parameters() if p.requires_grad]
        self.actor_opt = torch.optim.Adam([
            {"params": self.actor_params, "lr": config.lr},
            {"params": [self.log_temperature, self.log_lagrangian],
             "lr": config.lr_multipliers}], foreach=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr, foreach=True)
        self.gen = torch.Generator(self.device).manual_seed(config.seed)
        self.perm_gen = torch.Generator().manual_seed(config.seed + 1)
        self.obs, _ = self.envs.reset(seed=config.seed)
        self.iteration = 0

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def train_iteration(self) -> dict:
        """Rollout, TD(lambda) targets, update; the history row (`CSV_FIELDS` but `elapsed_s`)."""
        cfg, it, K = self.config, self.iteration, self.policy.num_steps
        ro, self.obs = collect_rollout(self.envs, self.policy, None, cfg.num_env_steps,
                                       self.obs, self.gen)
        S, N = ro.k.shape
        flat = lambda x: x.reshape(S * N, *x.shape[2:])  # noqa: E731
        with torch.no_grad():
            self.critic.obs_norm.update(flat(ro.obs))
            self.critic.latent_norm.update(flat(ro.a_k))
            gamma_e = augmented_discounts(ro.k, cfg.gamma)
            lambda_e = augmented_discounts(ro.k, cfg.td_lambda)
            temperature = self.temperature.item()
            r_soft = soft_reward_next(ro.reward, ro.next_ell, temperature, gamma_e,
                                      ro.terminated if cfg.mask_entropy_at_terminal else None)
            v = self.critic(flat(ro.next_obs), flat(ro.next_a_k), flat(ro.next_k),
                            flat(ro.next_a_prev)).reshape(S, N)
            targets = td_lambda_targets(r_soft, v, ro.terminated, ro.truncated, gamma_e,
                                        lambda_e)
        batch = {"obs": ro.obs, "a_k": ro.a_k, "k": ro.k, "a_prev": ro.a_prev,
                 "target": targets}
        batch = {key: flat(v_) for key, v_ in batch.items()}
        old = copy.deepcopy(self.policy).requires_grad_(False)

        sums: dict[str, float] = {}
        n = 0
        for _ in range(cfg.update_epochs):
            for mb_inds in minibatch_indices(cfg.num_env_steps, K, cfg.num_envs,
                                             cfg.diffusion_steps_per_update,
                                             cfg.num_minibatches, self.perm_gen):
                mb = {key: v_[mb_inds.to(self.device)] for key, v_ in batch.items()}
                stats = self._update(mb, old)
                for name, val in stats.items():
                    sums[name] = sums.get(name, 0.0) + val
                n += 1
        self.iteration += 1
        return {"iteration": it, "env_steps": self.iteration * cfg.env_steps_per_iteration,
                **episode_stats(ro),
                **{name: val / n for name, val in sums.items()},
                "temperature": self.temperature.item(),
                "lagrangian": self.log_lagrangian.exp().item()}

    def actor_loss(self, mb: dict[str, torch.Tensor], x_hat: torch.Tensor,
                   ell_hat: torch.Tensor, kl: torch.Tensor, temperature: torch.Tensor,
                   lagrangian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """REPPO's pathwise actor loss and Q(s~, x_hat) (the one place WPO differs)."""
        q_hat = self.critic(mb["obs"], mb["a_k"], mb["k"], x_hat)
        return reppo_actor_loss(ell_hat, q_hat, kl, temperature, lagrangian,
                                self.config.kl_bound), q_hat

    def _update(self, mb: dict[str, torch.Tensor], old: ChainPolicy) -> dict[str, float]:
        """One critic step, then one actor step with the updated critic (method.md §5.0)."""
        cfg = self.config
        critic_loss = self.critic.loss(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"],
                                       mb["target"]).mean()
        _check_finite("critic_loss", critic_loss, self.iteration)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()

        x_hat, ell_hat = self.policy.step(mb["obs"], mb["a_k"], mb["k"], generator=self.gen,
                                          reparameterize=True)
        kl = kl_estimate(old, self.policy, mb["obs"], mb["a_k"], mb["k"], cfg.kl_samples,
                         self.gen)
        temperature, lagrangian = self.temperature, self.log_lagrangian.exp()
        actor, q_hat = self.actor_loss(mb, x_hat, ell_hat, kl, temperature, lagrangian)
        t_loss = temperature_loss(temperature, ell_hat, self.policy.num_steps,
                                  cfg.entropy_target_mult, self.policy.action_dim)
        loss = (actor + (t_loss if cfg.auto_temperature else 0.0)
                + lagrangian_loss(lagrangian, kl, cfg.kl_bound))
        _check_finite("actor_loss", loss, self.iteration)
        self.actor_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_([*self.actor_params, self.log_temperature,
                                  self.log_lagrangian], cfg.max_grad_norm)
        self.actor_opt.step()
        self.critic.zero_grad(set_to_none=True)  # the actor loss reached the critic too
        with torch.no_grad():
            return {"critic_loss": critic_loss.item(), "actor_loss": actor.item(),
                    "q_hat": q_hat.mean().item(), "mean_ell": ell_hat.mean().item(),
                    "entropy_estimate": -self.policy.num_steps * ell_hat.mean().item(),
                    "kl": kl.mean().item(),
                    "kl_violation": (kl >= cfg.kl_bound).float().mean().item()}

    STATE = ("policy", "critic", "log_temperature", "log_lagrangian", "actor_opt",
             "critic_opt", "perm_gen")
    """What a checkpoint holds besides the rollout state (`common.Learner.state_dict`)."""


def _check_finite(name: str, value: torch.Tensor, iteration: int) -> None:
    if not torch.isfinite(value):
        raise FloatingPointError(f"{name}={value.item()} at iteration {iteration}; try a "
                                 f"smaller lr or a tighter kl_bound")
