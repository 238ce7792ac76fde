"""DA-MDP PPO (DiffPPO), written once against the chain-policy protocol (method.md §5.3).

With a `DiffusionPolicy` this is DA-MDP PPO (DPPO at temperature 0); with a `GaussianPolicy`
(K = 1, no noising kernel) the *same code* is plain MaxEnt PPO. Nothing below branches on the
policy type; `policies.build_policy` builds the policy that `config.policy` describes.

    rollout (damdp.collect_rollout)  ->  soft rewards r - T ell_k  ->  GAE over augmented steps
    -> update_epochs x num_minibatches Adam steps on
       L = clipped surrogate (per-step ratio) + dest_loss (appendix G) + vf_coef * value MSE

Introduced in notebooks 02-05; `damdp-lite train --algo ppo --policy {diffusion,gaussian}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..chain import ChainPolicy, saturated_fraction
from ..config import WIDTHS, nonnegative, param, positive, unit_interval
from ..critics import AugmentedCritic
from ..damdp import augmented_discounts, collect_rollout, gae, soft_reward_current
from .common import (
    DIFFUSION_MUJOCO,
    Algo,
    AlgoConfig,
    EpochUpdates,
    Learner,
    check_finite,
    check_minibatches,
    episode_stats,
    minibatch_indices,
    register,
)

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class PPOConfig(EpochUpdates, AlgoConfig):
    """Hyperparameters of DA-MDP PPO (method.md §5.3, §6, §10). CPU-sized defaults; the shared
    fields are documented in `common.AlgoConfig` and `common.EpochUpdates`."""

    lr: float = param(1e-4, positive())
    """Adam learning rate of policy and value (official 1e-4; toys 3e-4 to 1e-3)."""
    gae_lambda: float = param(0.98, unit_interval(low_open=False))
    """GAE lambda per augmented step, in [0, 1] (official 0.98)."""
    clip_coef: float = param(0.2, positive())
    """Clip epsilon of the per-step ratio w (0.1-0.3; official 0.2)."""
    temperature: float = param(2e-4, nonnegative())
    """Temperature T >= 0 (0 is DPPO; official 2e-4; toys 0.05-0.25)."""
    vf_coef: float = param(0.5, nonnegative())
    """Weight of the value loss (official 0.5)."""
    env_time_discounting: bool = False
    """gamma and lambda only at k = 1, 1 inside the chain (D5; official False)."""
    value_hidden_sizes: tuple[int, ...] = param((128, 128), WIDTHS)
    """Value network widths (toys 2 x 64-128; MuJoCo 2 x 256)."""

    policy_defaults: ClassVar[dict[str, dict]] = {
        "diffusion": dict(num_steps=4, hidden_sizes=(128, 128), step_size_schedule="constant",
                          noising_drift_at="conditioning", noising_step_pairing="previous",
                          action_clip=1.0),
        "gaussian": dict(hidden_sizes=(128, 128), init_std=1.0, action_clip=1.0)}
    """DiffPPO's constant initial step sizes (eta_k = 0.5) and PPO's action clip 1.0 (D9)."""

    def check(self) -> None:
        check_minibatches(self)

    @classmethod
    def mujoco(cls, **fields) -> PPOConfig:
        """CPU-scale preset for Gymnasium MuJoCo (notebook 05, `damdp-lite train`).

        16 sync envs x 128 env steps (2048 env steps per iteration), 10 epochs x 16 minibatches,
        lr 3e-4, gamma_env 0.99 and lambda_env 0.95 spread over the K steps (method.md §10),
        reward scaling, 2 x 256 networks, T = 2e-4 (official DiffPPO), K = 8 with kappa = 2
        chain steps per env step in each epoch; the diffusion policy as REPPO's on MuJoCo
        (`common.DIFFUSION_MUJOCO`: tanh Jacobian, sigma_0 = 1.5, LeCun init).
        """
        shared = dict(env_id="HalfCheetah-v5", num_envs=16, num_env_steps=128,
                      total_env_steps=1_000_000, update_epochs=10, num_minibatches=16, lr=3e-4,
                      temperature=2e-4, value_hidden_sizes=(256, 256), scale_rewards=True,
                      diffusion_steps_per_update=2)
        policy = {"diffusion": dict(num_steps=8, hidden_sizes=(256, 256), **DIFFUSION_MUJOCO),
                  "gaussian": dict(hidden_sizes=(256, 256))}
        return cls.preset(fields, shared, policy).with_env_discounts(
            fields, gamma=0.99, gae_lambda=0.95)


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


class ValueNetwork(AugmentedCritic):
    """V_psi(s_bar, a_bar^k, temb(k)) -> `(B,)`: an `AugmentedCritic` without the action input.

    An MLP (Linear -> LayerNorm -> SiLU per layer) owning running normalisers `obs_norm`,
    `latent_norm` (updated by `collect_rollout`). Trained with MSE; the official HL-Gauss
    categorical head (151 bins on [-100, 200]) is `AugmentedCritic(support=...)`.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...] = (128, 128),
                 time_embedding_dim: int = 16) -> None:
        super().__init__(obs_dim, action_dim, hidden_sizes, with_action=False,
                         time_embedding_dim=time_embedding_dim)


# ---------------------------------------------------------------------------------------------
# Losses (method.md §5.3), one function per equation
# ---------------------------------------------------------------------------------------------


def actor_advantage(advantages: torch.Tensor, r_soft: torch.Tensor, reward: torch.Tensor,
                    ell_new: torch.Tensor, temperature: float) -> torch.Tensor:
    """A_hat = sg(A^GAE - (r_soft - R~) - T ell_theta(s~, a^{k-1})) - batch mean, `(B,)`.

    Swaps the rollout's entropy term for the current parameters' one; centred, not scaled.
    At T = 0 it is A^GAE centred (DPPO, I10). method.md §5.3.
    """
    adv = (advantages - (r_soft - reward) - temperature * ell_new).detach()
    return adv - adv.mean()


def policy_loss(ratio: torch.Tensor, adv_hat: torch.Tensor, clip_coef: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped surrogate -mean[min(w A_hat, clip(w, 1 +- eps) A_hat)] (method.md §5.3).

    `ratio` w and `adv_hat`: `(B,)`. Returns the loss and the mask `active`, `(B,)` bool, of
    samples whose unclipped branch is selected (w A_hat <= clip(w) A_hat; ties active).
    """
    pg_unclipped = ratio * adv_hat
    pg_clipped = torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef) * adv_hat
    active = pg_unclipped <= pg_clipped
    return -torch.min(pg_unclipped, pg_clipped).mean(), active


def dest_loss(ratio: torch.Tensor, noise_log_prob: torch.Tensor, active: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """Appendix-G correction -mean_active[sg(w) T log pi_theta(a^k | a^{k-1}, s)] (§4.3, §5.3).

    Only the noising kernel's step sizes (rho, phi) receive gradient: f_theta is not in it
    (I10). Zero for a `GaussianPolicy`, whose `noise_log_prob` is 0, and at T = 0 (DPPO), where
    it is returned as an exact 0: a ratio that overflowed to inf would otherwise give inf * 0 = nan.
    Inputs `(B,)`.
    """
    if temperature == 0:
        return torch.zeros((), dtype=noise_log_prob.dtype, device=noise_log_prob.device)
    weight = ratio.detach() * active
    return -(weight * temperature * noise_log_prob).sum() / active.sum().clamp(min=1)


MAX_LOG_RATIO = 20.0
"""Cap on log w in `ppo_loss` (w <= 4.9e8): keeps the ratio and its gradient finite."""


def value_loss(value: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """L_V = mean (V(s~) - (A + V_old))^2, `()`; weighted by vf_coef = 0.5 (MSE for now)."""
    return ((value - returns) ** 2).mean()


def ppo_loss(policy: ChainPolicy, value_net: nn.Module, mb: dict[str, torch.Tensor],
             clip_coef: float, temperature: float, vf_coef: float
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = policy_loss + dest_loss + vf_coef * value_loss on a minibatch (method.md §5.3).

    `mb` holds flattened augmented transitions: obs `(B, obs_dim)`, a_k, a_prev `(B, d)`, k
    `(B,)`, and `(B,)` tensors log_prob (q_old), advantages, returns, r_soft, reward.
    Returns the loss and detached diagnostics.
    """
    new_log_prob = policy.denoise_log_prob(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"])
    noise_log_prob = policy.noise_log_prob(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"])
    ell_new = new_log_prob - noise_log_prob  # = policy.log_ratio(...), without a second pass
    log_w = new_log_prob - mb["log_prob"]
    # exp(log w) overflows float32 above 88.7; an inf ratio on the clipped branch (gradient 0)
    # still makes autograd compute 0 * inf = nan for every parameter. Capping log w changes
    # nothing unless w > e^MAX_LOG_RATIO, where that sample would dominate the batch anyway.
    ratio = log_w.clamp(max=MAX_LOG_RATIO).exp()  # per-step w_theta
    adv_hat = actor_advantage(mb["advantages"], mb["r_soft"], mb["reward"], ell_new,
                              temperature)
    pg_loss, active = policy_loss(ratio, adv_hat, clip_coef)
    d_loss = dest_loss(ratio, noise_log_prob, active, temperature)
    v_loss = value_loss(value_net(mb["obs"], mb["a_k"], mb["k"]), mb["returns"])
    loss = pg_loss + d_loss + vf_coef * v_loss
    with torch.no_grad():
        stats = dict(loss=loss, policy_loss=pg_loss, dest_loss=d_loss, value_loss=v_loss,
                     approx_kl=((ratio - 1) - log_w).mean(),
                     clip_fraction=((ratio - 1).abs() > clip_coef).float().mean(),
                     ratio_dev=(ratio - 1).abs().max(), mean_ell=ell_new.mean())
    return loss, {k: v.detach() for k, v in stats.items()}


# ---------------------------------------------------------------------------------------------
# The learner
# ---------------------------------------------------------------------------------------------

LOSS_KEYS = ("loss", "policy_loss", "dest_loss", "value_loss")
CSV_FIELDS = ("iteration", "env_steps", "episode_return", "episode_length", "policy_loss",
              "dest_loss", "value_loss", "mean_ell", "approx_kl", "clip_fraction",
              "ratio_dev_first_minibatch", "temperature", "kl", "saturated", "elapsed_s")
"""Besides the losses, the diagnostics every learner logs (`reppo.CSV_FIELDS`): `kl` is
K * approx_kl (the per-step KL estimate over the K steps of the chain), `clip_fraction` the
fraction of transitions at the clip (PPO's trust-region bound), `saturated` the fraction of
executed action coordinates with |tanh a^0| > 0.99."""


class PPO(Learner):
    """One DA-MDP PPO run in memory: envs, policy, value network, optimiser and generators.

    `train_iteration()` collects one rollout and runs one learn phase; `state_dict()` holds all
    a resumed run needs to continue *bit-identically* on CPU (networks with their running
    normalisers, Adam, every generator, each env's snapshot, the current observations).
    Run by `damdp_lite.train.train` (in memory, or in a run directory with checkpoints).
    """

    def __init__(self, config: PPOConfig, policy: ChainPolicy | None = None) -> None:
        obs_dim, action_dim = self.start(config, policy)
        self.value_net = ValueNetwork(obs_dim, action_dim, config.value_hidden_sizes
                                      ).to(self.device)
        self.params = [p for p in [*self.policy.parameters(), *self.value_net.parameters()]
                       if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr, eps=1e-5, foreach=True)
        self.gen = torch.Generator(self.device).manual_seed(config.seed)  # every latent sample
        self.perm_gen = torch.Generator().manual_seed(config.seed + 1)  # minibatches
        self.obs, _ = self.envs.reset(seed=config.seed)
        self.iteration = 0

    def train_iteration(self) -> dict:
        """Rollout, GAE, update; returns the history row (`CSV_FIELDS` except `elapsed_s`).

        Raises `FloatingPointError` naming the loss and the iteration on a NaN / inf loss,
        before that minibatch's optimiser step.
        """
        cfg, it = self.config, self.iteration
        # ---- rollout and advantages (method.md §5.0, §5.3) ---------------------------------
        ro, self.obs = collect_rollout(self.envs, self.policy, self.value_net,
                                       cfg.num_env_steps, self.obs, self.gen)
        gamma_e = augmented_discounts(ro.k, cfg.gamma, cfg.env_time_discounting)
        lambda_e = augmented_discounts(ro.k, cfg.gae_lambda, cfg.env_time_discounting)
        r_soft = soft_reward_current(ro.reward, ro.ell, cfg.temperature)
        advantages, returns = gae(r_soft, ro.value, ro.next_value, ro.terminated, ro.truncated,
                                  gamma_e, lambda_e)
        batch = {"obs": ro.obs, "a_k": ro.a_k, "k": ro.k, "a_prev": ro.a_prev,
                 "log_prob": ro.log_prob, "advantages": advantages, "returns": returns,
                 "r_soft": r_soft, "reward": ro.reward}
        batch = {key: v.reshape(ro.num_transitions, *v.shape[2:]) for key, v in batch.items()}

        # ---- learn: epochs x minibatches over augmented transitions, k mixed ----------------
        sums: dict[str, float] = {}
        n_updates, ratio_dev_first = 0, float("nan")
        for epoch in range(cfg.update_epochs):
            minibatches = minibatch_indices(cfg.num_env_steps, self.policy.num_steps,
                                            cfg.num_envs, cfg.diffusion_steps_per_update,
                                            cfg.num_minibatches, self.perm_gen)
            for mb_idx, mb_inds in enumerate(minibatches):
                mb = {key: v[mb_inds.to(self.device)] for key, v in batch.items()}
                loss, stats = ppo_loss(self.policy, self.value_net, mb, cfg.clip_coef,
                                       cfg.temperature, cfg.vf_coef)
                for name in LOSS_KEYS:
                    check_finite(name, stats[name], it, f"epoch {epoch}, minibatch {mb_idx}",
                                 "try a smaller lr or temperature")
                if epoch == 0 and mb_idx == 0:
                    ratio_dev_first = stats["ratio_dev"].item()
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                for name, v in stats.items():
                    sums[name] = sums.get(name, 0.0) + v.item()
                n_updates += 1

        self.iteration += 1
        return {"iteration": it, "env_steps": self.iteration * cfg.env_steps_per_iteration,
                **episode_stats(ro),
                **{name: sums[name] / n_updates for name in
                   ("policy_loss", "dest_loss", "value_loss", "mean_ell", "approx_kl",
                    "clip_fraction")},
                "ratio_dev_first_minibatch": ratio_dev_first, "temperature": cfg.temperature,
                "kl": self.policy.num_steps * sums["approx_kl"] / n_updates,
                "saturated": saturated_fraction(ro.a_prev[ro.k == 1])}

    STATE = ("policy", "value_net", "optimizer", "perm_gen")
    """What a checkpoint holds besides the rollout state (`common.Learner.state_dict`)."""
    CSV_FIELDS = CSV_FIELDS


register(Algo("ppo", PPOConfig, PPO, "DA-MDP PPO (DiffPPO) / MaxEnt PPO with a Gaussian",
              labels={"diffusion": "diffppo", "gaussian": "ppo"}),
         aliases={"diffppo": {"policy": "diffusion"},
                  "dppo": {"policy": "diffusion", "temperature": 0.0}})
