"""The diffusion-augmented MDP on top of a Gymnasium vector env: rollout, soft rewards, GAE and
TD(lambda) over augmented steps (method.md §4, §5.0, §5.3).

The chain runs *inside the agent* (method.md §10): per env step the collector draws a fresh prior
sample, runs the K denoising steps batched over envs, squashes `a^0`, steps the env once and
writes K augmented transitions with k = K, ..., 1. Nothing here branches on the policy type: a
`GaussianPolicy` (K = 1) gives plain MaxEnt RL transitions, a `DiffusionPolicy` DA-MDP ones.
Introduced in notebook 02 (one env step as K augmented transitions) and used from notebook 03 on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from .chain import ChainPolicy
from .envs.make import make_vector_env  # noqa: F401  (the rollout's env factory)
from .utils import check_int_at_least, update_normalisers

ValueFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""`value_fn(obs (B, obs_dim), a_k (B, d), k (B,) long) -> (B,)`, e.g. V(s_bar, a_bar^k, k)."""


def per_augmented_step(x_env: float, num_steps: int) -> float:
    """Per-augmented-step discount (or lambda) with the env-step value x_env = x_aug^K:
    x_aug = x_env^(1/K), e.g. 0.99^(1/8) = 0.998744 (method.md §10)."""
    check_int_at_least("num_steps", num_steps, 1)
    return float(x_env) ** (1.0 / num_steps)


@dataclass
class Rollout:
    """Augmented transitions in rollout order (method.md §4.1, §5.0).

    S = num_env_steps * K rows, N = num_envs columns; row `t*K + (K - k)` holds step k of env
    step t. Transition `(s~, a^{k-1}) -> s~'` with s~ = (obs, a_k, k) and
    s~' = (next_obs, next_a_k, next_k).
    """

    obs: torch.Tensor
    """Env observation s, `(S, N, obs_dim)` (frozen along the chain)."""
    a_k: torch.Tensor
    """Latent before the step a^k, `(S, N, d)` (a^K: the fresh prior sample)."""
    k: torch.Tensor
    """Diffusion index, `(S, N)` long, K..1 within each env step."""
    a_prev: torch.Tensor
    """Augmented action a^{k-1} (raw latent), `(S, N, d)`."""
    log_prob: torch.Tensor
    """log q_old(a^{k-1} | s~), `(S, N)`, under the policy as it is when the rollout ends."""
    ell: torch.Tensor
    """Per-step log-ratio ell_k of the executed step, `(S, N)`."""
    reward: torch.Tensor
    """R~: env reward on k = 1 transitions, 0 otherwise, `(S, N)`."""
    terminated: torch.Tensor
    """Env `terminated` (float 0/1), non-zero only on k = 1, `(S, N)`."""
    truncated: torch.Tensor
    """Env `truncated` (float 0/1), non-zero only on k = 1, `(S, N)`."""
    value: torch.Tensor
    """value_fn(s~), `(S, N)` (zeros without a value_fn)."""
    next_value: torch.Tensor
    """value_fn(s~'), `(S, N)`; at k = 1, s~' = (s', fresh a'^K, K), s' the true final
    observation at a termination or truncation."""
    next_obs: torch.Tensor
    """Env observation of s~', `(S, N, obs_dim)`."""
    next_a_k: torch.Tensor
    """Latent of s~', `(S, N, d)`: a^{k-1} for k > 1, the next prior sample a'^K for k = 1."""
    next_k: torch.Tensor
    """Diffusion index of s~', `(S, N)` long: k - 1, or K for k = 1."""
    next_a_prev: torch.Tensor
    """Successor action x' ~ q(. | s~'), `(S, N, d)`: the executed one when the successor is the
    next row; an extra, never executed sample after a done and after the last row (§4.4)."""
    next_ell: torch.Tensor
    """ell(s~', x'), `(S, N)`: the entropy term of Q-based soft rewards (`soft_reward_next`)."""
    episode_returns: list[float] = field(default_factory=list)
    """Env-step returns of the episodes that finished during this rollout."""
    episode_lengths: list[int] = field(default_factory=list)
    """Env-step lengths of those episodes."""

    @property
    def num_transitions(self) -> int:
        """S * N augmented transitions; env steps = num_transitions / K (I1)."""
        return self.k.numel()


@torch.no_grad()
def collect_rollout(
    envs: VectorEnv,
    policy: ChainPolicy,
    value_fn: ValueFn | None,
    num_env_steps: int,
    obs: np.ndarray | torch.Tensor,
    generator: torch.Generator | None = None,
    update_normalizers: bool = True,
) -> tuple[Rollout, np.ndarray]:
    """Run `num_env_steps` env steps, writing K augmented transitions per env step (I1).

    Per env step (method.md §5.6 `env_step`): a^K = init_latent(s) (fresh every env step), K
    batched `policy.step` calls, env action = `policy.to_action(a^0)`, one `envs.step`.

    Args:
        envs: vector env in `AutoresetMode.SAME_STEP` (see `make_vector_env`); episode
            statistics are read from `info["episode"]` when `RecordEpisodeStatistics` wraps it.
        policy: any chain policy.
        value_fn: V(obs, a_k, k) -> `(B,)`, or None (values are then zeros).
        num_env_steps: env steps per env (the rollout has S = num_env_steps * K rows).
        obs: current observations `(N, obs_dim)`.
        generator: torch generator for every latent sample (reproducible rollouts).
        update_normalizers: update `obs_norm` (once per env step) and `latent_norm` (every
            augmented step, with a^k) of the policy and of `value_fn`, where they exist.
            `log_prob`, `value` and `next_value` are computed after the loop with the final
            statistics, so that PPO's ratio is exactly 1 before its first update (I10).

    Returns:
        The `Rollout` and the observations `(N, obs_dim)` to start the next rollout from.
    """
    check_int_at_least("num_env_steps", num_env_steps, 1)
    if envs.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
        raise ValueError("envs must use autoreset_mode=AutoresetMode.SAME_STEP (the true final "
                         "observation is needed at truncations, method.md §5.0); "
                         "use damdp_lite.damdp.make_vector_env")
    K, N, dev = policy.num_steps, envs.num_envs, policy.device
    S, d = num_env_steps * K, policy.action_dim
    norm_owners = (policy, value_fn) if update_normalizers else ()

    def as_t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=dev).reshape(N, -1)

    obs_t = as_t(obs)
    O = obs_t.shape[1]
    b_obs, b_next_obs = torch.zeros(S, N, O, device=dev), torch.zeros(S, N, O, device=dev)
    b_a_k, b_a_prev = torch.zeros(S, N, d, device=dev), torch.zeros(S, N, d, device=dev)
    b_k = torch.arange(K, 0, -1, device=dev).repeat(num_env_steps)[:, None].expand(S, N).clone()
    b_ell, b_reward = torch.zeros(S, N, device=dev), torch.zeros(S, N, device=dev)
    b_term, b_trunc = torch.zeros(S, N, device=dev), torch.zeros(S, N, device=dev)
    ep_returns, ep_lengths = [], []

    for t in range(num_env_steps):
        update_normalisers(norm_owners, obs=obs_t)
        a = policy.init_latent(obs_t, generator=generator)  # fresh a^K every env step
        for k in range(K, 0, -1):
            i = t * K + (K - k)
            update_normalisers(norm_owners, latent=a)
            a_prev, ell = policy.step(obs_t, a, k, generator=generator)
            b_obs[i], b_a_k[i], b_a_prev[i], b_ell[i] = obs_t, a, a_prev, ell
            b_next_obs[i] = obs_t  # k > 1: env state frozen; k = 1 overwritten below
            a = a_prev
        action = policy.to_action(a).cpu().numpy()  # squash(a^0), (N, d)
        next_obs, reward, term, trunc, info = envs.step(action)
        i1 = t * K + K - 1  # the k = 1 row
        b_reward[i1], b_term[i1], b_trunc[i1] = (as_t(x)[:, 0] for x in (reward, term, trunc))
        final = np.array(next_obs, dtype=np.float32, copy=True)
        for e in np.flatnonzero(info.get("_final_obs", np.zeros(N, bool))):
            final[e] = info["final_obs"][e]  # true s' of a finished episode
        b_next_obs[i1] = as_t(final)
        if "episode" in info:
            done_e = np.flatnonzero(info["_episode"])
            ep_returns += [float(x) for x in info["episode"]["r"][done_e]]
            ep_lengths += [int(x) for x in info["episode"]["l"][done_e]]
        obs_t = as_t(next_obs)

    # ---- successor states s~' and actions x' (method.md §4.4, §5.0) -----------------------
    # The successor of row i is row i + 1 (same env), except after a done and after the last
    # row: there s~' = (s', fresh a'^K, K) and x' is an extra sample that is never executed.
    done = (b_term + b_trunc) > 0
    fresh = done.clone()
    fresh[-1] = True
    b_next_k = torch.where(b_k > 1, b_k - 1, torch.full_like(b_k, K))
    b_next_a_k = b_a_prev.clone()  # k > 1: the chain continues from a^{k-1}
    b_next_a_prev, b_next_ell = torch.zeros_like(b_a_prev), torch.zeros_like(b_ell)
    b_next_a_k[:-1][b_k[:-1] == 1] = b_a_k[1:][b_k[:-1] == 1]
    b_next_a_prev[:-1], b_next_ell[:-1] = b_a_prev[1:], b_ell[1:]
    if fresh.any():
        f_obs = b_next_obs[fresh]  # (F, obs_dim)
        f_a = policy.init_latent(f_obs, generator=generator)
        f_x, f_ell = policy.step(f_obs, f_a, K, generator=generator)
        b_next_a_k[fresh], b_next_a_prev[fresh], b_next_ell[fresh] = f_a, f_x, f_ell

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(S * N, *x.shape[2:])  # (S, N, ...) -> (S*N, ...)

    log_prob = policy.denoise_log_prob(flat(b_obs), flat(b_a_k), flat(b_k), flat(b_a_prev))
    if value_fn is None:
        value, next_value = torch.zeros(S, N, device=dev), torch.zeros(S, N, device=dev)
    else:
        value = value_fn(flat(b_obs), flat(b_a_k), flat(b_k)).reshape(S, N)
        next_value = value_fn(flat(b_next_obs), flat(b_next_a_k), flat(b_next_k)).reshape(S, N)
    rollout = Rollout(
        obs=b_obs, a_k=b_a_k, k=b_k, a_prev=b_a_prev, log_prob=log_prob.reshape(S, N),
        ell=b_ell, reward=b_reward, terminated=b_term, truncated=b_trunc, value=value,
        next_value=next_value, next_obs=b_next_obs, next_a_k=b_next_a_k, next_k=b_next_k,
        next_a_prev=b_next_a_prev, next_ell=b_next_ell, episode_returns=ep_returns,
        episode_lengths=ep_lengths)
    return rollout, np.asarray(next_obs)


# ---------------------------------------------------------------------------------------------
# Soft rewards and discounts (method.md §4.1, §4.4)
# ---------------------------------------------------------------------------------------------


def soft_reward_current(reward: torch.Tensor, ell: torch.Tensor, temperature: float,
                        coef: float = 1.0) -> torch.Tensor:
    """V-based (PPO) soft reward r_soft = R~ - c_ell T ell_k(a^{k-1}), `(S, N)` (method.md §4.4).

    `ell` is the current step's log-ratio (stop-gradient); c_ell = 1 in the teaching preset.
    """
    return reward - coef * temperature * ell.detach()


def soft_reward_next(reward: torch.Tensor, ell_next: torch.Tensor, temperature: float,
                     gamma_e: torch.Tensor | float,
                     terminated: torch.Tensor | None = None) -> torch.Tensor:
    """Q-based soft reward r_soft = R~ - gamma_e(k) T ell(s~', x'), `(S, N)` (method.md §4.4).

    Pass `terminated` to zero the entropy term at terminations (`mask_entropy_at_terminal`, D6).
    """
    ent = temperature * ell_next.detach()
    if terminated is not None:
        ent = ent * (1.0 - terminated)
    return reward - gamma_e * ent


def augmented_discounts(k: torch.Tensor, gamma: float, env_time_discounting: bool = False
                        ) -> torch.Tensor:
    """gamma_e(k) per transition, same shape as `k` (method.md §4.1, D5).

    `env_time_discounting=False` (official): gamma on every augmented step, so gamma^K per env
    step. True: gamma at k = 1 and 1 inside the chain. Use the same function for lambda.
    """
    g = torch.full(k.shape, float(gamma), device=k.device)
    return torch.where(k == 1, g, torch.ones_like(g)) if env_time_discounting else g


# ---------------------------------------------------------------------------------------------
# GAE and TD(lambda) over augmented steps, gymnasium rule (method.md §5.0, §5.3)
# ---------------------------------------------------------------------------------------------


def _like(x: torch.Tensor | float, ref: torch.Tensor) -> torch.Tensor:
    """`x` (a number or a broadcastable tensor) expanded to the shape of `ref`."""
    return torch.as_tensor(x, dtype=ref.dtype, device=ref.device).expand(ref.shape)


def _last_row(x: torch.Tensor) -> torch.Tensor:
    """1 on the last rollout row, 0 elsewhere, shape of `x`."""
    last = torch.zeros_like(x)
    last[-1] = 1.0
    return last


def gae_loop(r_soft: torch.Tensor, value: torch.Tensor, next_value: torch.Tensor,
             terminated: torch.Tensor, truncated: torch.Tensor, gamma_e: torch.Tensor,
             lambda_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over augmented steps, readable reverse loop (method.md §5.3, gymnasium rule).

        delta_t = r_soft_t + gamma_e (1 - term_t) V(s~'_t) - V(s~_t)
        A_t     = delta_t + gamma_e lambda_e (1 - term_t)(1 - trunc_t) A_{t+1},  A = delta last

    All inputs `(S, N)` (or broadcastable: gamma_e, lambda_e); returns (advantages, returns =
    advantages + value), each `(S, N)`. At a truncation V(s~') is the value of the true final
    observation (`Rollout.next_value`); nothing propagates across the episode boundary.
    """
    gamma_e, lambda_e = _like(gamma_e, value), _like(lambda_e, value)
    delta = r_soft + gamma_e * (1 - terminated) * next_value - value
    adv = torch.zeros_like(value)
    last = torch.zeros_like(value[0])
    for t in reversed(range(value.shape[0])):
        if t == value.shape[0] - 1:
            last = delta[t]
        else:
            cont = gamma_e[t] * lambda_e[t] * (1 - terminated[t]) * (1 - truncated[t])
            last = delta[t] + cont * last
        adv[t] = last
    return adv, adv + value


def reverse_linear_scan(b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Solve x_t = b_t + c_t x_{t+1} (x_S = 0) over axis 0 in O(log S) vectorised steps.

    Hillis-Steele doubling: after the round with shift s, b_t holds the sum of the next 2s terms
    and c_t their product of coefficients; rows past the end contribute b = 0, c = 0.
    """
    b, c = b.clone(), c.clone()
    S, shift = b.shape[0], 1
    while shift < S:
        b[:-shift] = b[:-shift] + c[:-shift] * b[shift:]
        c[:-shift] = c[:-shift] * c[shift:]
        c[-shift:] = 0.0
        shift *= 2
    return b


def gae(r_soft: torch.Tensor, value: torch.Tensor, next_value: torch.Tensor,
        terminated: torch.Tensor, truncated: torch.Tensor, gamma_e: torch.Tensor,
        lambda_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectorised `gae_loop` (same arguments, same result up to float rounding; tested)."""
    gamma_e, lambda_e = _like(gamma_e, value), _like(lambda_e, value)
    delta = r_soft + gamma_e * (1 - terminated) * next_value - value
    cont = gamma_e * lambda_e * (1 - terminated) * (1 - truncated) * (1 - _last_row(value))
    adv = reverse_linear_scan(delta, cont)
    return adv, adv + value


def td_lambda_targets_loop(r_soft: torch.Tensor, bootstrap: torch.Tensor,
                           terminated: torch.Tensor, truncated: torch.Tensor,
                           gamma_e: torch.Tensor, lambda_e: torch.Tensor) -> torch.Tensor:
    """TD(lambda) targets of Q-based methods, readable reverse loop (method.md §5.0, I8).

        G_t = r_soft_t + gamma_e (1 - term_t) * { v_t                          if trunc_t or last
                                                { (1 - lambda_e) v_t + lambda_e G_{t+1}  otherwise

    `bootstrap` v_t = Q(s~'_t, x'_t) (at a truncation evaluated at the true final observation).
    Inputs `(S, N)` (gamma_e, lambda_e broadcastable); returns G `(S, N)`.
    """
    gamma_e, lambda_e = _like(gamma_e, r_soft), _like(lambda_e, r_soft)
    G = torch.zeros_like(r_soft)
    for t in reversed(range(r_soft.shape[0])):
        if t == r_soft.shape[0] - 1:
            tail = bootstrap[t]
        else:
            lam = lambda_e[t] * (1 - truncated[t])  # a truncation bootstraps from v_t only
            tail = (1 - lam) * bootstrap[t] + lam * G[t + 1]
        G[t] = r_soft[t] + gamma_e[t] * (1 - terminated[t]) * tail
    return G


def td_lambda_targets(r_soft: torch.Tensor, bootstrap: torch.Tensor, terminated: torch.Tensor,
                      truncated: torch.Tensor, gamma_e: torch.Tensor, lambda_e: torch.Tensor
                      ) -> torch.Tensor:
    """Vectorised `td_lambda_targets_loop` (same arguments and result up to rounding; tested)."""
    gamma_e, lambda_e = _like(gamma_e, r_soft), _like(lambda_e, r_soft)
    lam = lambda_e * (1 - truncated) * (1 - _last_row(r_soft))
    disc = gamma_e * (1 - terminated)
    return reverse_linear_scan(r_soft + disc * (1 - lam) * bootstrap, disc * lam)
