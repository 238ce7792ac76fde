"""DA-MDP REPPO (method.md §4.5, §5.1): temperature sign, KL estimate vs closed form (I9),
pathwise gradient by finite differences, trust-region switch, tiny smoke runs. WPO (REPPO's
machinery with another actor step) is in test_wpo.py, DiffSAC in test_sac.py."""

import copy

import pytest
import torch
from conftest import assert_resumes_exactly, make_policy, randomise_control

from damdp_lite.algos import ALGOS, algo_of
from damdp_lite.algos.common import temperature_loss
from damdp_lite.algos.reppo import (
    REPPO,
    REPPOConfig,
    kl_estimate,
    lagrangian_loss,
    reppo_actor_loss,
)
from damdp_lite.diffusion import denoise_kl


def test_temperature_falls_while_entropy_is_above_target_and_rises_below():
    for ell_mean, sign in ((-0.1, +1), (10.0, -1)):  # H_hat = -K mean ell; target -m d = -5
        log_t = torch.tensor(-4.6, requires_grad=True)
        loss = temperature_loss(log_t.exp(), torch.full((32,), ell_mean), num_steps=4,
                                target_mult=5.0, action_dim=1)
        loss.backward()
        assert torch.sign(log_t.grad) == sign  # gradient descent moves log T by -grad


def test_lagrangian_grows_only_while_kl_exceeds_the_bound():
    for kl, sign in ((0.1, -1), (0.01, +1)):
        log_l = torch.tensor(0.0, requires_grad=True)
        lagrangian_loss(log_l.exp(), torch.full((8,), kl), kl_bound=0.04).backward()
        assert torch.sign(log_l.grad) == sign


def test_kl_monte_carlo_matches_closed_form():
    torch.manual_seed(0)
    old = make_policy(num_steps=4, action_dim=2, obs_dim=3)
    new = copy.deepcopy(old)
    randomise_control(new, scale=0.3)
    with torch.no_grad():
        new.rho.add_(0.2 * torch.randn_like(new.rho))
    obs, a_k = torch.randn(64, 3), 2 * torch.randn(64, 2)
    k = torch.randint(1, 5, (64,))
    exact = 4 * denoise_kl(old, new, obs, a_k, k)
    gen = torch.Generator().manual_seed(1)
    # M one-sample estimates per state (kl_estimate on the batch repeated M times): their mean
    # and standard error give a z-test per state, so the check is as tight as the noise allows
    M = 4000
    one = kl_estimate(old, new, obs.repeat(M, 1), a_k.repeat(M, 1), k.repeat(M), 1, gen)
    one = one.reshape(M, 64)
    mc, se = one.mean(0), one.std(0) / M ** 0.5
    z = ((mc - exact) / se).abs()
    assert z.max() < 4.5, (z.max(), mc[:4], exact[:4])  # 64 states: P(any |z| > 4.5) < 5e-4
    assert kl_estimate(old, old, obs, a_k, k, 16, gen).abs().max() < 1e-5  # KL = 0 at a copy


def test_pathwise_gradient_matches_finite_differences():
    """d/dtheta of mean ell(s~, x_hat) with x_hat = mu_theta + sqrt(2 eta) eps, eps fixed."""
    torch.manual_seed(0)
    p = make_policy(num_steps=3, action_dim=2, obs_dim=2).double()
    randomise_control(p, scale=0.5)
    obs, a_k, k = torch.randn(16, 2).double(), torch.randn(16, 2).double(), 2

    def objective() -> torch.Tensor:
        gen = torch.Generator().manual_seed(7)
        x_hat, ell = p.step(obs, a_k, k, generator=gen, reparameterize=True)
        return (ell + (x_hat ** 2).sum(-1)).mean()  # a smooth stand-in for sg(T) ell - Q

    objective().backward()
    # control-net weights (the (d mu / d theta)^T grad_x term) and the learnable step sizes
    # rho (which also move x_hat through sqrt(2 eta) eps), I15
    w, rho = p.control_net.net[0].weight.view(-1), p.rho.view(-1)
    assert p.rho.requires_grad and p.rho.grad.abs().max() > 0
    for param, grad, idx in ((w, p.control_net.net[0].weight.grad.view(-1), range(3)),
                             (rho, p.rho.grad.view(-1), range(rho.numel()))):
        for j in idx:
            h = 1e-6
            with torch.no_grad():
                param[j] += h
                up = objective().item()
                param[j] -= 2 * h
                down = objective().item()
                param[j] += h
            assert (up - down) / (2 * h) == pytest.approx(grad[j].item(), rel=1e-5, abs=1e-8)


def test_actor_loss_switches_to_kl_outside_the_trust_region():
    ell, q = torch.tensor([0.5, 0.5]), torch.tensor([2.0, 2.0])
    kl = torch.tensor([0.01, 0.5])
    t, lam = torch.tensor(0.1), torch.tensor(0.3)
    loss = reppo_actor_loss(ell, q, kl, t, lam, kl_bound=0.04)
    assert loss.item() == pytest.approx(((0.1 * 0.5 - 2.0) + 0.3 * 0.5) / 2)


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_reppo_runs_and_resumes_exactly(policy):
    kind = {"num_steps": 2} if policy == "diffusion" else {}
    cfg = REPPOConfig.build(policy=policy, num_envs=4, num_env_steps=8,
                            total_env_steps=4 * 8 * 4, update_epochs=2, num_minibatches=2,
                            hidden_sizes=(16,), critic_hidden_sizes=(16,), kl_samples=4, **kind)
    assert algo_of(cfg) is ALGOS["reppo"] and cfg.actor_update == "pathwise"
    rows_a = assert_resumes_exactly(REPPO, cfg)
    assert all(r["temperature"] > 0 and r["lagrangian"] > 0 for r in rows_a)


def test_fixed_temperature_stays_put_while_the_policy_learns():
    cfg = REPPOConfig.build(num_envs=4, num_env_steps=8, total_env_steps=4 * 8 * 3,
                            update_epochs=2, num_minibatches=2, num_steps=2, hidden_sizes=(16,),
                            critic_hidden_sizes=(16,), kl_samples=4, temperature_init=0.05,
                            auto_temperature=False)
    learner = REPPO(cfg)
    before = copy.deepcopy(learner.policy.state_dict())
    rows = [learner.train_iteration() for _ in range(3)]
    learner.close()
    assert all(r["temperature"] == pytest.approx(0.05, rel=1e-7) for r in rows)
    assert any(not torch.equal(before[k], v) for k, v in learner.policy.state_dict().items())
    auto = REPPO(REPPOConfig(**{**cfg.to_dict(), "auto_temperature": True}))
    auto.train_iteration()
    auto.close()
    assert auto.temperature.item() != pytest.approx(0.05, rel=1e-7)
