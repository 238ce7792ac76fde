"""DA-MDP rollout, soft rewards, GAE and TD(lambda) (method.md §4, §5.0, §5.3; I1, I8)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import randomise_control
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from damdp_lite import DiffusionConfig, DiffusionPolicy, GaussianConfig, GaussianPolicy
from damdp_lite.damdp import (
    augmented_discounts,
    collect_rollout,
    gae,
    gae_loop,
    make_vector_env,
    per_augmented_step,
    soft_reward_current,
    soft_reward_next,
    td_lambda_targets,
    td_lambda_targets_loop,
)
from damdp_lite.utils import RunningNorm


class EchoEnv(gym.Env):
    """Observation [t] (env-step counter), reward = the action it receives; records actions."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 3.0, (1,), np.float32)
        self.actions: list[float] = []
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.actions.append(float(action[0]))
        self.t += 1
        return np.array([self.t], np.float32), float(action[0]), False, False, {}


def echo_envs(num_envs: int, horizon: int):
    envs = SyncVectorEnv([lambda: TimeLimit(EchoEnv(), horizon) for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    return RecordEpisodeStatistics(envs)


def diffusion(obs_dim: int, K: int, **kw) -> DiffusionPolicy:
    return DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=1, num_steps=K,
                                           hidden_sizes=(16,), **kw))


def rollout(envs, policy, L, value_fn=None, seed=0, **kw):
    obs, _ = envs.reset(seed=seed)
    return collect_rollout(envs, policy, value_fn, L, obs, torch.Generator().manual_seed(seed),
                           **kw)[0]


# ----------------------------------------------------------------------------- I1 bookkeeping
def test_i1_bookkeeping_on_echo_env():
    K, N, L, H = 3, 2, 6, 4
    envs, policy = echo_envs(N, H), diffusion(1, K, action_low=(-2.0,), action_high=(3.0,))
    randomise_control(policy)
    ro = rollout(envs, policy, L)
    # exactly K transitions per env step, k = K..1; L env steps <-> L K transitions
    assert ro.k.shape == (L * K, N) and ro.num_transitions == L * K * N
    assert torch.equal(ro.k[:, 0], torch.arange(K, 0, -1).repeat(L))
    assert ro.num_transitions // K == L * N
    # reward / terminated / truncated only at k = 1
    not_last = ro.k != 1
    for x in (ro.reward, ro.terminated, ro.truncated):
        assert (x[not_last] == 0).all()
    assert ro.truncated[ro.k == 1].sum() == N  # one time limit per env, at env step H
    # env action = squash(a^0): the echo env returns its action as the reward
    a0 = ro.a_prev[ro.k == 1].reshape(L, N, 1)
    sent = policy.to_action(a0.reshape(-1, 1)).reshape(L, N)
    recorded = torch.tensor([e.unwrapped.actions for e in envs.unwrapped.envs]).T  # (L, N)
    assert torch.allclose(recorded, sent) and torch.allclose(ro.reward[ro.k == 1].reshape(L, N),
                                                             sent)
    assert (sent >= -2).all() and (sent <= 3).all()
    # the chain: a^k of step k-1 is a^{k-1} of step k; a fresh prior sample every env step
    inside = ro.k[:-1] > 1
    assert torch.equal(ro.a_k[1:][inside], ro.a_prev[:-1][inside])
    priors = ro.a_k[ro.k == K]  # (L N, d)
    assert priors.unique().numel() == L * N
    assert not torch.isclose(ro.a_k[K::K], ro.a_prev[K - 1:-1:K]).any()
    # episodes are logged in env steps
    assert ro.episode_lengths == [H] * N
    assert np.allclose(ro.episode_returns, sent[:H].sum(0).numpy(), atol=1e-5)


def test_i1_effective_discount_and_aug_discounts():
    k = torch.arange(8, 0, -1)
    g = augmented_discounts(k, 0.999, env_time_discounting=False)
    assert math.isclose(float(g.prod()), 0.99203, abs_tol=5e-6)
    g_env = augmented_discounts(k, 0.999, env_time_discounting=True)
    assert torch.equal(g_env, torch.tensor([1.0] * 7 + [0.999]))
    assert math.isclose(per_augmented_step(0.99, 8), 0.998744, abs_tol=1e-6)
    assert math.isclose(per_augmented_step(0.95, 8), 0.993609, abs_tol=1e-6)


def test_successor_states_and_next_ell():
    K, N, L = 3, 2, 5
    envs, policy = echo_envs(N, 2), diffusion(1, K)
    ro = rollout(envs, policy, L, value_fn=lambda o, a, k: o[:, 0] + a[:, 0] + k)
    inside = ro.k > 1
    assert torch.equal(ro.next_k[inside], ro.k[inside] - 1)
    assert (ro.next_k[~inside] == K).all()
    assert torch.equal(ro.next_a_k[inside], ro.a_prev[inside])
    # a successor that is the next row uses the executed action and its log-ratio
    cont = (ro.terminated[:-1] + ro.truncated[:-1]) == 0
    assert torch.equal(ro.next_ell[:-1][cont], ro.ell[1:][cont])
    assert torch.equal(ro.next_a_prev[:-1][cont], ro.a_prev[1:][cont])
    assert torch.allclose(ro.next_value[:-1][cont], ro.value[1:][cont])
    # k = 1 rows step the env: the successor obs is s' (here [t + 1]; final obs at the limit)
    s_next = ro.next_obs[ro.k == 1][..., 0].reshape(L, N)
    assert torch.equal(s_next, torch.tensor([1.0, 2.0] * 3)[:L, None].expand(L, N))


def test_rollout_is_deterministic_and_rejects_next_step_envs():
    K, N, L = 2, 3, 4
    policy = diffusion(1, K)
    a = rollout(echo_envs(N, 3), policy, L, update_normalizers=False)
    b = rollout(echo_envs(N, 3), policy, L, update_normalizers=False)
    for name in ("a_k", "a_prev", "ell", "reward", "log_prob", "next_ell"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    envs = SyncVectorEnv([lambda: EchoEnv()])  # default NEXT_STEP autoreset
    with pytest.raises(ValueError, match="SAME_STEP"):
        collect_rollout(envs, policy, None, 1, envs.reset(seed=0)[0])


class ValueWithNorm(torch.nn.Module):
    """A value function that owns only an observation normaliser."""

    def __init__(self) -> None:
        super().__init__()
        self.obs_norm = RunningNorm(1)

    def forward(self, obs, a_k, k):
        return self.obs_norm(obs)[:, 0]


def test_normalizers_updated_and_log_prob_is_current():
    K, N, L = 2, 3, 4
    policy = diffusion(1, K)
    value_fn = ValueWithNorm()
    ro = rollout(echo_envs(N, 10), policy, L, value_fn=value_fn)
    assert policy.obs_norm.count.item() == L * N
    assert policy.latent_norm.count.item() == L * K * N
    assert value_fn.obs_norm.count.item() == L * N  # any owner of a normaliser is updated
    flat = [x.reshape(L * K * N, *x.shape[2:]) for x in (ro.obs, ro.a_k, ro.k, ro.a_prev)]
    assert torch.allclose(ro.log_prob.reshape(-1), policy.denoise_log_prob(*flat), atol=1e-6)
    frozen = diffusion(1, K)
    rollout(echo_envs(N, 10), frozen, L, update_normalizers=False)
    assert frozen.obs_norm.count.item() == 0 and frozen.latent_norm.count.item() == 0


# ----------------------------------------------------------------------------- truncation
def test_truncation_bootstraps_from_the_true_final_observation():
    """TurningDoubleWell (100 steps): V(s~') at truncated k = 1 rows uses the final obs."""
    K, N, L = 2, 4, 101
    envs, policy = make_vector_env("damdp_lite/TurningDoubleWell-v0", N), diffusion(2, K)

    def value_fn(obs, a_k, k):
        return obs[:, 0] + 2 * obs[:, 1] + 0.0 * k

    ro = rollout(envs, policy, L, value_fn=value_fn, seed=3)
    rows = ro.truncated.nonzero()
    assert rows.shape[0] == N and (rows[:, 0] == 100 * K - 1).all()
    assert ro.terminated.sum() == 0
    i = 100 * K - 1
    # independent dynamics: the final heading is the pre-step heading turned by +-45 degrees
    turn = torch.where(policy.to_action(ro.a_prev[i])[:, 0] >= 0, 45.0, -45.0)
    head = torch.atan2(ro.obs[i, :, 1], ro.obs[i, :, 0]) + torch.deg2rad(turn)
    final = torch.stack([torch.cos(head), torch.sin(head)], dim=-1)
    assert torch.allclose(ro.next_obs[i], final, atol=1e-5)
    assert torch.allclose(ro.next_value[i], value_fn(final, None, 0), atol=1e-5)
    reset_obs = ro.obs[i + 1]  # what a NEXT_STEP-style bootstrap would (wrongly) use
    assert not torch.allclose(ro.next_obs[i], reset_obs)
    # GAE: delta uses V(final obs), nothing propagates across the boundary
    g = augmented_discounts(ro.k, 0.99)
    r = soft_reward_current(ro.reward, ro.ell, 0.1)
    adv, ret = gae_loop(r, ro.value, ro.next_value, ro.terminated, ro.truncated, g, 0.95)
    assert torch.allclose(adv[i], r[i] + 0.99 * value_fn(final, None, 0) - ro.value[i],
                          atol=1e-5)
    assert torch.allclose(ret, adv + ro.value)
    # episode statistics (env steps)
    assert ro.episode_lengths == [100] * N
    env_r = ro.reward[ro.k == 1].reshape(L, N)[:100].sum(0)
    assert np.allclose(sorted(ro.episode_returns), sorted(env_r.tolist()), atol=1e-4)


# ----------------------------------------------------------------------------- I8
@pytest.fixture(scope="module")
def bandit_rollout():
    """DoubleWellBandit (one-step terminal episodes), K = 4, every rollout row incl. the last."""
    torch.manual_seed(0)
    policy = diffusion(1, 4, squash="identity")
    randomise_control(policy, scale=0.3)
    envs = make_vector_env("damdp_lite/DoubleWellBandit-v0", 3)
    return rollout(envs, policy, 5, value_fn=lambda o, a, k: 7.0 + a[:, 0]), 4


@pytest.mark.parametrize("lam", [1.0, 0.5])
def test_i8_temperature_zero(bandit_rollout, lam):
    ro, K = bandit_rollout
    gamma = 0.9
    for etd in (False, True):
        g = augmented_discounts(ro.k, gamma, etd)
        r_soft = soft_reward_next(ro.reward, ro.next_ell, 0.0, g, ro.terminated)
        G = td_lambda_targets_loop(r_soft, ro.next_value, ro.terminated, ro.truncated, g,
                                   augmented_discounts(ro.k, lam, etd))
        k1 = ro.k == 1
        assert torch.equal(G[k1], ro.reward[k1])  # exactly r, the last rollout row included
        assert torch.equal(G[-1], ro.reward[-1])
        if lam == 1.0:
            r = ro.reward[K - 1::K].repeat_interleave(K, 0)  # (S, N), r of each chain
            expect = r if etd else gamma ** (ro.k - 1).float() * r
            assert torch.allclose(G, expect, rtol=1e-5, atol=1e-5)


def test_i8_positive_temperature(bandit_rollout):
    """G_k = gamma^{k-1} r - T sum_{n=1}^{k} gamma^n ell'_(n), ell'_(k) = 0 (masked terminal)."""
    ro, K = bandit_rollout
    gamma, T = 0.9, 0.3
    g = augmented_discounts(ro.k, gamma)
    r_soft = soft_reward_next(ro.reward, ro.next_ell, T, g, ro.terminated)
    G = td_lambda_targets_loop(r_soft, ro.next_value, ro.terminated, ro.truncated, g, 1.0)
    S, N = G.shape
    for i in range(S):
        k = int(ro.k[i, 0])
        first = i - (K - k)  # row of k = K in this env step
        r = ro.reward[first + K - 1]
        ent = torch.zeros(N)
        for n in range(1, k + 1):
            row = i + n - 1  # the transition whose successor is n augmented steps later
            ell_n = ro.next_ell[row] * (1 - ro.terminated[row])
            ent += gamma**n * ell_n
        assert torch.allclose(G[i], gamma ** (k - 1) * r - T * ent, rtol=1e-5, atol=1e-5)
    # the successor terms inside the chain are the executed steps' log-ratios
    assert torch.equal(ro.next_ell[:-1][ro.k[:-1] > 1], ro.ell[1:][ro.k[:-1] > 1])


def test_gae_at_temperature_zero_on_bandit(bandit_rollout):
    ro, _ = bandit_rollout
    g = augmented_discounts(ro.k, 0.9)
    adv, ret = gae_loop(soft_reward_current(ro.reward, ro.ell, 0.0), ro.value, ro.next_value,
                        ro.terminated, ro.truncated, g, 1.0)
    k1 = ro.k == 1
    assert torch.equal(adv[k1], ro.reward[k1] - ro.value[k1])  # terminal: A = r - V exactly
    assert torch.allclose(ret[k1], ro.reward[k1]) and torch.allclose(ret[-1], ro.reward[-1])


# ----------------------------------------------------------------------------- vectorised
@pytest.mark.parametrize("seed", range(4))
def test_vectorised_equals_loop(seed):
    g = torch.Generator().manual_seed(seed)
    S, N = 37, 5
    r, v, nv, bs = (torch.randn(S, N, generator=g) for _ in range(4))
    term = (torch.rand(S, N, generator=g) < 0.1).float()
    trunc = (torch.rand(S, N, generator=g) < 0.1).float() * (1 - term)
    ge = 0.9 + 0.1 * torch.rand(S, N, generator=g)
    le = torch.rand(S, N, generator=g)
    a1, r1 = gae_loop(r, v, nv, term, trunc, ge, le)
    a2, r2 = gae(r, v, nv, term, trunc, ge, le)
    assert torch.allclose(a1, a2, atol=1e-5) and torch.allclose(r1, r2, atol=1e-5)
    G1 = td_lambda_targets_loop(r, bs, term, trunc, ge, le)
    G2 = td_lambda_targets(r, bs, term, trunc, ge, le)
    assert torch.allclose(G1, G2, atol=1e-5)
    # scalar discounts broadcast
    assert torch.allclose(gae_loop(r, v, nv, term, trunc, 0.99, 0.95)[0],
                          gae(r, v, nv, term, trunc, 0.99, 0.95)[0], atol=1e-5)


def test_gae_truncation_stops_propagation():
    S = 4
    r = torch.ones(S, 1)
    v, nv = torch.zeros(S, 1), torch.full((S, 1), 2.0)
    trunc = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    adv, _ = gae_loop(r, v, nv, torch.zeros(S, 1), trunc, 0.5, 1.0)
    delta = 1 + 0.5 * 2.0
    assert torch.allclose(adv[:, 0], torch.tensor([delta + 0.5 * delta, delta,
                                                   delta + 0.5 * delta, delta]))


def test_soft_rewards():
    r, ell = torch.tensor([1.0, 0.0]), torch.tensor([2.0, -1.0], requires_grad=True)
    out = soft_reward_current(r, ell, 0.5)
    assert torch.allclose(out, torch.tensor([0.0, 0.5])) and not out.requires_grad
    out = soft_reward_next(r, ell, 0.5, 0.9, terminated=torch.tensor([1.0, 0.0]))
    assert torch.allclose(out, torch.tensor([1.0, 0.45]))


def test_gaussian_policy_gives_plain_transitions():
    """The same collector with a Gaussian policy: K = 1, ell = log pi(a | s)."""
    policy = GaussianPolicy(GaussianConfig(obs_dim=1, action_dim=1, hidden_sizes=(8,),
                                           squash="identity"))
    ro = rollout(echo_envs(2, 3), policy, 4, update_normalizers=False)
    assert (ro.k == 1).all() and ro.k.shape == (4, 2)
    assert torch.allclose(ro.ell, ro.log_prob)  # frozen normalisers: same policy throughout
