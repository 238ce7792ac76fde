"""DiffSAC / SAC (method.md §5.4, a reconstruction): the critic targets (one step and
chain-spanning), tiny runs that resume exactly, with either policy."""

import pytest
import torch
from conftest import assert_resumes_exactly
from torch import nn

from damdp_lite.algos.sac import SAC, SACConfig, chain_soft_value, sac_target
from damdp_lite.critics import AugmentedCritic
from damdp_lite.diffusion import DiffusionConfig, DiffusionPolicy
from damdp_lite.gaussian import GaussianConfig, GaussianPolicy


def test_sac_target_formula():
    y = sac_target(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 1.0]),
                   torch.tensor([0.9, 0.9, 0.9]), torch.tensor([10.0, 5.0, 7.0]),
                   torch.tensor([2.0, -1.0, 3.0]), 0.5)
    assert torch.allclose(y, torch.tensor([1 + 0.9 * (10 - 1.0), 0.9 * (5 + 0.5), 2.0]))


class Shifted(nn.Module):
    """A critic plus a constant, so that a wrong discount on it shows."""

    def __init__(self, critic: nn.Module, shift: float) -> None:
        super().__init__()
        self.critic, self.shift = critic, shift

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.critic(*args) + self.shift


def chain_setup(policy_kind: str, obs_dim: int = 3, action_dim: int = 2, shift: float = 0.0):
    torch.manual_seed(0)
    if policy_kind == "diffusion":
        policy = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=action_dim,
                                                 num_steps=4, hidden_sizes=(16,)))
    else:
        policy = GaussianPolicy(GaussianConfig(obs_dim=obs_dim, action_dim=action_dim,
                                               hidden_sizes=(16,)))
    targets = nn.ModuleList([Shifted(AugmentedCritic(obs_dim, action_dim, (16,)), shift)
                             for _ in range(2)])
    return policy, targets.requires_grad_(False)


def one_step_bracket(policy, targets, obs, a_k, k, temperature, seed):
    """min_i Q_target_i(s~', x') - T ell(s~', x'), as `SAC._update` computes it for "step"."""
    with torch.no_grad():
        x, ell = policy.step(obs, a_k, k, generator=torch.Generator().manual_seed(seed))
        return torch.min(*(t(obs, a_k, k, x) for t in targets)) - temperature * ell


@pytest.mark.parametrize("policy_kind", ["diffusion", "gaussian"])
def test_chain_value_is_the_one_step_bracket_at_the_last_chain_step(policy_kind):
    """At k = 1 (every row of a Gaussian, K = 1) nothing is left to span: the chain target is
    the one-step target, draw for draw."""
    policy, targets = chain_setup(policy_kind)
    B = 64
    obs, a_k = torch.randn(B, 3), torch.randn(B, 2)
    k = torch.randint(1, policy.num_steps + 1, (B,))
    v = chain_soft_value(policy, targets, obs, a_k, k, 0.3, 0.97,
                         generator=torch.Generator().manual_seed(5))
    ref = one_step_bracket(policy, targets, obs, a_k, k, 0.3, seed=5)
    last = k == 1
    assert last.any() and v.shape == (B,)
    assert torch.allclose(v[last], ref[last], atol=1e-6)
    if policy_kind == "diffusion":
        assert not torch.allclose(v[~last], ref[~last])


def test_chain_value_solves_the_soft_bellman_equation_inside_the_chain():
    """V(s, a^k, k) = E[-T ell_k + gamma V(s, a^{k-1}, k-1)] for k > 1 (zero reward, no
    termination inside the chain), checked in expectation over many fresh chains."""
    policy, targets = chain_setup("diffusion", shift=5.0)
    T, gamma, N = 0.5, 0.9, 40_000
    obs, a_k = torch.randn(1, 3).expand(N, 3), torch.randn(1, 2).expand(N, 2)
    k = torch.full((N,), 3)
    gen = torch.Generator().manual_seed(1)
    lhs = chain_soft_value(policy, targets, obs, a_k, k, T, gamma, generator=gen)
    with torch.no_grad():
        x, ell = policy.step(obs, a_k, k, generator=gen)
    rhs = -T * ell + gamma * chain_soft_value(policy, targets, obs, x, k - 1, T, gamma,
                                              generator=gen)
    se = (lhs.var() / N + rhs.var() / N).sqrt()
    assert (lhs.mean() - rhs.mean()).abs() < 4 * se, (lhs.mean(), rhs.mean(), se)
    # and the two sides are not trivially equal: a wrong discount moves the mean by > 4 se
    wrong = -T * ell + chain_soft_value(policy, targets, obs, x, k - 1, T, gamma,
                                        generator=gen)
    assert (lhs.mean() - wrong.mean()).abs() > 4 * se


def test_chain_target_trains_and_resumes_exactly():
    cfg = SACConfig.build(policy="diffusion", num_steps=3, num_envs=2, num_env_steps=4,
                          total_env_steps=32, learning_starts=16, batch_size=16,
                          hidden_sizes=(16,), critic_hidden_sizes=(16,),
                          gradient_steps_per_env_step=0.5, critic_target="chain")
    rows = assert_resumes_exactly(SAC, cfg)
    assert rows[-1]["critic_loss"] == rows[-1]["critic_loss"]


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_sac_runs_and_resumes_exactly(policy):
    kind = {"num_steps": 2} if policy == "diffusion" else {}
    cfg = SACConfig.build(policy=policy, num_envs=2, num_env_steps=4, total_env_steps=32,
                          learning_starts=16, batch_size=16, hidden_sizes=(16,),
                          critic_hidden_sizes=(16,), gradient_steps_per_env_step=0.5, **kind)
    K = cfg.policy.num_steps
    assert K == (2 if policy == "diffusion" else 1)
    rows_a = assert_resumes_exactly(SAC, cfg)
    assert rows_a[-1]["buffer_size"] == 4 * 2 * 4 * K
    assert rows_a[0]["critic_loss"] != rows_a[0]["critic_loss"]  # nan before learning_starts
    assert rows_a[-1]["critic_loss"] == rows_a[-1]["critic_loss"]
