"""DA-MDP REPPO and DA-MDP WPO, written once against the chain-policy protocol (method.md §4.4,
§4.5, §5.0-§5.2).

With a `DiffusionPolicy` this is DA-MDP REPPO; with a `GaussianPolicy` (K = 1) the *same code* is
REPPO with a tanh-Gaussian. WPO is the same machinery with another actor step
(`actor_update="wasserstein"`, `--algo wpo`): ME-WPO with a Gaussian, DA-MDP WPO with a diffusion
policy. Nothing below branches on the policy type.

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
from typing import ClassVar

import torch
from torch import nn

from ..chain import ChainPolicy, saturated_fraction, step_kl
from ..config import WIDTHS, between, one_of, param, positive, unit_interval
from ..critics import AugmentedCritic, HLGaussSupport
from ..damdp import augmented_discounts, collect_rollout, soft_reward_next, td_lambda_targets
from .common import (
    DIFFUSION_MUJOCO,
    Algo,
    AlgoConfig,
    EpochUpdates,
    LearnedTemperature,
    Learner,
    check_finite,
    check_minibatches,
    episode_stats,
    minibatch_indices,
    register,
    temperature_loss,
    update_normalisers,
    with_value_support,
)

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class REPPOConfig(LearnedTemperature, EpochUpdates, AlgoConfig,
                  defaults=dict(num_envs=16, update_epochs=8)):
    """Hyperparameters of DA-MDP REPPO and DA-MDP WPO (method.md §5.1, §5.2, §6, §10).
    CPU-sized defaults; the shared fields are documented in `common`."""

    lr: float = param(1e-3, positive())
    """Adam learning rate of the actor and of the critic (official 1e-3)."""
    lr_multipliers: float = param(3e-4, positive())
    """Adam learning rate of log T and log lambda_KL (official: REPPO 3e-4, WPO 6e-4)."""
    td_lambda: float = param(0.98, unit_interval(low_open=False))
    """TD(lambda) per augmented step, in [0, 1] (official 0.98)."""
    actor_update: str = param("pathwise", one_of("pathwise", "wasserstein"))
    """Actor step: "pathwise" (REPPO, reparameterised soft Q) or "wasserstein" (WPO, §5.2)."""
    kl_bound: float = param(0.04, positive())
    """epsilon_KL of the trust region on K * KL(q_old || q_theta) (official: REPPO 0.04,
    WPO 0.02)."""
    lagrangian_init: float = param(0.3, positive())
    """Initial KL multiplier lambda_KL (official 0.3); learned in log space."""
    kl_estimator: str = param("mc", one_of("exact", "mc"))
    """How K * KL(q_old || q_theta) is computed per state: "mc" (official: `kl_samples` samples
    y ~ q_old) or "exact" (closed form: every step is a Gaussian, `chain.step_kl`; the MuJoCo
    preset's). Both agree in expectation, but at CPU-sized minibatches (256 rows, not the
    official 8192) the MC noise (sd ~0.02 across states) is the size of the bound and stalls
    the diffusion policy."""
    kl_samples: int = param(16, between(1, 1024))
    """Monte Carlo samples y ~ q_old per state when kl_estimator="mc" (official 16)."""
    num_bins: int = param(101, between(2, 10_000))
    """HL-Gauss bins of the critic (official: REPPO 151, WPO 301; 101 on CPU, method.md §10)."""
    v_min: float = -100.0
    """Lowest bin centre of the critic's support, in reward units (official -100; the MuJoCo
    preset sizes it to the task's returns, `common.value_support`)."""
    v_max: float = 200.0
    """Highest bin centre of the critic's support (official 200 for DMC's rewards in [0, 1]).
    progress.csv logs `clipped_targets`, the fraction of TD targets outside the support."""
    critic_hidden_sizes: tuple[int, ...] = param((256, 256), WIDTHS)
    """Critic widths (Linear -> LayerNorm -> SiLU; official 2 x 512)."""
    mask_entropy_at_terminal: bool = True
    """Zero the entropy term of the soft reward at terminations (D6)."""

    policy_defaults: ClassVar[dict[str, dict]] = {
        "diffusion": dict(num_steps=4, hidden_sizes=(128, 128), step_size_schedule="linear",
                          noising_step_pairing="previous", action_clip=0.999),
        "gaussian": dict(hidden_sizes=(128, 128), init_std=1.0, action_clip=0.999)}
    """The official linear initial step sizes and REPPO's action clip 0.999 (D9)."""

    def check(self) -> None:
        if not self.v_min < self.v_max:
            raise ValueError(f"v_min={self.v_min!r} must be < v_max={self.v_max!r}")
        check_minibatches(self)

    @classmethod
    def mujoco(cls, **fields) -> REPPOConfig:
        """CPU-scale preset for Gymnasium MuJoCo (`damdp-lite train --algo reppo`).

        16 sync envs x 64 env steps, 8 epochs x 8 minibatches, lr 1e-3, gamma_env 0.99 and
        lambda_env 0.95 spread over the K steps (method.md §10), 2 x 256 networks, K = 8 with
        kappa = 2. Rewards stay raw (Q in reward units, as the official code on DMC) and the
        critic's support is sized to the task's returns (`value_support`); the closed-form KL.
        The diffusion policy (`DIFFUSION_MUJOCO`) adds the tanh Jacobian, sigma_0 = 1.5 and the
        official LeCun init, and DA-MDP REPPO holds its temperature fixed
        (`DIFFUSION_REPPO_TEMPERATURE`); the Gaussian base is REPPO's own (`REPPO_GAUSSIAN`).
        """
        shared = dict(env_id="HalfCheetah-v5", num_envs=16, num_env_steps=64,
                      total_env_steps=1_000_000, update_epochs=8, num_minibatches=8,
                      critic_hidden_sizes=(256, 256), scale_rewards=False,
                      diffusion_steps_per_update=2, kl_estimator="exact")
        wpo = fields.get("actor_update") == "wasserstein"
        policy = {"diffusion": dict(num_steps=8, hidden_sizes=(256, 256), **DIFFUSION_MUJOCO,
                                    **(DIFFUSION_WPO if wpo else DIFFUSION_REPPO_TEMPERATURE)),
                  "gaussian": dict(hidden_sizes=(256, 256), **({} if wpo else REPPO_GAUSSIAN))}
        config = cls.preset(fields, shared, policy).with_env_discounts(
            fields, gamma=0.99, td_lambda=0.95)
        return with_value_support(config, fields)


DIFFUSION_WPO = dict(per_dim_step_sizes=True, learn_friction=False)
"""DA-MDP WPO's own step-size parametrisation (official): per (step, dimension), friction
frozen."""

DIFFUSION_REPPO_TEMPERATURE = dict(auto_temperature=False)
"""DA-MDP REPPO's temperature in the MuJoCo/DMC preset: held at `temperature_init` (0.01, the
official ent_start) where the official code tunes it toward -5 d. Tuned, it ran away on
HalfCheetah-v5 (the entropy term left the critic's support, which holds the rewards, and the
critic went flat; damdp_lite/shipped/long_runs); fixed, the grid's IQM reached REPPO's CI,
also on seeds trained after the choice (notebook 06 §4e). WPO keeps the official rule
(untested here)."""

REPPO_GAUSSIAN = dict(state_dependent_std=True, tanh_jacobian=True, entropy_target_mult=0.5)
"""REPPO as in its own paper and code (Voelcker et al.): a state-dependent std, action-space
entropy (the tanh Jacobian) and the entropy target -0.5 d."""

WPO_PRESET = dict(actor_update="wasserstein", entropy_target_mult=8.0, kl_bound=0.02,
                  lr_multipliers=6e-4, action_clip=1.0, num_bins=301)
"""What `--algo wpo` sets on `REPPOConfig.mujoco`: WPO's entropy target (m = 8), KL bound 0.02,
multiplier lr 6e-4, action clip 1.0 and 301 critic bins (method.md §6)."""


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
        log_old = old.denoise_log_prob(o, a, kk, y)
    log_new = new.denoise_log_prob(o, a, kk, y)
    return new.num_steps * (log_old - log_new).reshape(B, M).mean(-1)


def trust_region_kl(old: ChainPolicy, new: ChainPolicy, obs: torch.Tensor, a_k: torch.Tensor,
                    k: torch.Tensor, estimator: str, num_samples: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """K * KL(q_old(. | s~) || q_theta(. | s~)), `(B,)`: the closed form (`chain.step_kl`,
    estimator "exact") or the Monte Carlo `kl_estimate` (estimator "mc", official)."""
    if estimator == "exact":
        return new.num_steps * step_kl(old, new, obs, a_k, k)
    return kl_estimate(old, new, obs, a_k, k, num_samples, generator)


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


def lagrangian_loss(lagrangian: torch.Tensor, kl: torch.Tensor, kl_bound: float) -> torch.Tensor:
    """L_lambda = -lambda mean sg(KL - eps): lambda grows while the KL exceeds the bound."""
    return -lagrangian * (kl.detach() - kl_bound).mean()


def wpo_surrogate(grad_ell: torch.Tensor, grad_q: torch.Tensor, temperature: torch.Tensor
                  ) -> torch.Tensor:
    """L_WPO per state, `(B,)`: sum_i sg(T g_ell - g_Q)_i g_ell_i; inputs `(B, d)` (§5.2).

    With a = sg(x_hat), g_Q = grad_a Q(s~, a) (stop-gradient) and g_ell(theta) = grad_a
    ell_theta(s~, a), its gradient (grad_theta g_ell)^T (T g_ell - g_Q) follows the
    Wasserstein gradient of E[T ell - Q] without WPO's inverse-Fisher preconditioner (as the
    official code, D10): a WPO-inspired surrogate, not a Wasserstein gradient-flow step. It
    uses grad_a Q without reparameterising through the sample.
    """
    return ((temperature.detach() * grad_ell - grad_q).detach() * grad_ell).sum(-1)


def action_gradients(policy: ChainPolicy, critic: nn.Module, obs: torch.Tensor,
                     a_k: torch.Tensor, k: torch.Tensor, action: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g_ell(theta) with graph, g_Q without, Q) at a = sg(action), each `(B, d)` / `(B,)`.

    Sample b's ell and Q depend on a_b only, so one `autograd.grad` of the sums gives every
    per-sample gradient.
    """
    a = action.detach().requires_grad_(True)
    q = critic(obs, a_k, k, a)
    grad_q = torch.autograd.grad(q.sum(), a)[0].detach()
    ell = policy.log_ratio(obs, a_k, k, a)
    grad_ell = torch.autograd.grad(ell.sum(), a, create_graph=True)[0]
    return grad_ell, grad_q, q.detach()


# ---------------------------------------------------------------------------------------------
# The learner
# ---------------------------------------------------------------------------------------------

CSV_FIELDS = ("iteration", "env_steps", "episode_return", "episode_length", "critic_loss",
              "actor_loss", "q_hat", "mean_ell", "entropy_estimate", "kl", "kl_violation",
              "temperature", "lagrangian", "saturated", "dq_dx", "clipped_targets", "elapsed_s")
"""The diagnostics that found the stall of the diffusion policy (method.md §10): `kl` is
K * KL per update, `kl_violation` the fraction of states at or beyond the trust-region bound,
`saturated` the fraction of executed action coordinates with |tanh a^0| > 0.99, `dq_dx` the
mean |dQ/dx| at the actor's sample, `clipped_targets` the fraction of TD targets outside the
critic's support (keep it under 1 %)."""


class REPPO(Learner):
    """One DA-MDP REPPO (or WPO) run in memory: `train_iteration`, `state_dict`,
    `load_state_dict`, `close` (`common.Learner`)."""

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
            update_normalisers([self.critic], obs=flat(ro.obs), latent=flat(ro.a_k))
            gamma_e = augmented_discounts(ro.k, cfg.gamma)
            lambda_e = augmented_discounts(ro.k, cfg.td_lambda)
            temperature = self.temperature.item()
            r_soft = soft_reward_next(ro.reward, ro.next_ell, temperature, gamma_e,
                                      ro.terminated if cfg.mask_entropy_at_terminal else None)
            v = self.critic(flat(ro.next_obs), flat(ro.next_a_k), flat(ro.next_k),
                            flat(ro.next_a_prev)).reshape(S, N)
            targets = td_lambda_targets(r_soft, v, ro.terminated, ro.truncated, gamma_e,
                                        lambda_e)
            executed = ro.a_prev[ro.k == 1]  # a^0 of every env step, (num_env_steps N, d)
        diagnostics = {"saturated": saturated_fraction(executed),
                       "clipped_targets": self.critic.support.clipped_fraction(targets)}
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
                "lagrangian": self.log_lagrangian.exp().item(), **diagnostics}

    def actor_loss(self, mb: dict[str, torch.Tensor], x_hat: torch.Tensor,
                   ell_hat: torch.Tensor, kl: torch.Tensor, temperature: torch.Tensor,
                   lagrangian: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The actor loss, Q(s~, x_hat) and dQ/dx there `(B, d)` (a diagnostic, no graph):
        REPPO's pathwise loss, or WPO's surrogate inside the same trust region
        (`actor_update`); the one place the two algorithms differ."""
        if self.config.actor_update == "pathwise":
            q_hat = self.critic(mb["obs"], mb["a_k"], mb["k"], x_hat)
            grad_q = torch.autograd.grad(q_hat.sum(), x_hat, retain_graph=True)[0]
            return reppo_actor_loss(ell_hat, q_hat, kl, temperature, lagrangian,
                                    self.config.kl_bound), q_hat, grad_q
        grad_ell, grad_q, q_hat = action_gradients(self.policy, self.critic, mb["obs"],
                                                   mb["a_k"], mb["k"], x_hat)
        inside = kl.detach() < self.config.kl_bound
        loss = torch.where(inside, wpo_surrogate(grad_ell, grad_q, temperature),
                           lagrangian.detach() * kl).mean()
        return loss, q_hat, grad_q

    def _update(self, mb: dict[str, torch.Tensor], old: ChainPolicy) -> dict[str, float]:
        """One critic step, then one actor step with the updated critic (method.md §5.0)."""
        cfg = self.config
        critic_loss = self.critic.loss(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"],
                                       mb["target"]).mean()
        check_finite("critic_loss", critic_loss, self.iteration, hint=HINT)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()

        x_hat, ell_hat = self.policy.step(mb["obs"], mb["a_k"], mb["k"], generator=self.gen,
                                          reparameterize=True)
        kl = trust_region_kl(old, self.policy, mb["obs"], mb["a_k"], mb["k"], cfg.kl_estimator,
                             cfg.kl_samples, self.gen)
        temperature, lagrangian = self.temperature, self.log_lagrangian.exp()
        actor, q_hat, grad_q = self.actor_loss(mb, x_hat, ell_hat, kl, temperature, lagrangian)
        t_loss = temperature_loss(temperature, ell_hat, self.policy.num_steps,
                                  cfg.entropy_target_mult, self.policy.action_dim)
        loss = (actor + (t_loss if cfg.auto_temperature else 0.0)
                + lagrangian_loss(lagrangian, kl, cfg.kl_bound))
        check_finite("actor_loss", loss, self.iteration, hint=HINT)
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
                    "kl_violation": (kl >= cfg.kl_bound).float().mean().item(),
                    "dq_dx": grad_q.abs().mean().item()}

    STATE = ("policy", "critic", "log_temperature", "log_lagrangian", "actor_opt",
             "critic_opt", "perm_gen")
    """What a checkpoint holds besides the rollout state (`common.Learner.state_dict`)."""
    CSV_FIELDS = CSV_FIELDS


HINT = "try a smaller lr or a tighter kl_bound"
"""What the NaN guard suggests."""

register(Algo("reppo", REPPOConfig, REPPO, "DA-MDP REPPO / REPPO with a tanh-Gaussian",
              labels={"diffusion": "diffreppo", "gaussian": "reppo"},
              marker={"actor_update": "pathwise"}),
         aliases={"diffreppo": {"policy": "diffusion"}})
register(Algo("wpo", REPPOConfig, REPPO, "DA-MDP WPO / ME-WPO with a tanh-Gaussian",
              labels={"diffusion": "diffwpo", "gaussian": "wpo"}, preset=WPO_PRESET,
              marker={"actor_update": "wasserstein"}),
         aliases={"diffwpo": {"policy": "diffusion"}})
