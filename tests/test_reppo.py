"""DA-MDP REPPO (method.md §4.5, §5.1): temperature sign, KL estimate vs closed form (I9),
pathwise gradient by finite differences, trust-region switch, tiny smoke runs."""

import copy

import pytest
import torch
from conftest import make_policy, randomise_control

from damdp_lite.algos.reppo import (
    REPPO,
    REPPOConfig,
    kl_estimate,
    lagrangian_loss,
    reppo_actor_loss,
    temperature_loss,
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


def assert_resumes_exactly(learner_cls, cfg, iterations: int = 4) -> list[dict]:
    """Run `iterations` straight, and again with a save/load into a fresh learner halfway:
    the rows must be identical (nan == nan). Returns the straight run's rows."""
    a = learner_cls(cfg)
    rows_a = [a.train_iteration() for _ in range(iterations)]
    a.close()
    b = learner_cls(cfg)
    rows_b = [b.train_iteration() for _ in range(iterations // 2)]
    state = b.state_dict()
    b.close()
    c = learner_cls(cfg)
    c.load_state_dict(state)
    rows_b += [c.train_iteration() for _ in range(iterations - iterations // 2)]
    c.close()
    same = lambda x, y: x == y or (x != x and y != y)  # noqa: E731
    assert all(same(ra[key], rb[key]) for ra, rb in zip(rows_a, rows_b, strict=True)
               for key in ra)
    return rows_a


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_reppo_runs_and_resumes_exactly(policy):
    cfg = REPPOConfig(policy=policy, num_envs=4, num_env_steps=8, total_env_steps=4 * 8 * 4,
                      update_epochs=2, num_minibatches=2, num_steps=2, hidden_sizes=(16,),
                      critic_hidden_sizes=(16,), kl_samples=4)
    rows_a = assert_resumes_exactly(REPPO, cfg)
    assert all(r["temperature"] > 0 and r["lagrangian"] > 0 for r in rows_a)


def test_fixed_temperature_stays_put_while_the_policy_learns():
    cfg = REPPOConfig(num_envs=4, num_env_steps=8, total_env_steps=4 * 8 * 3, update_epochs=2,
                      num_minibatches=2, num_steps=2, hidden_sizes=(16,),
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


# ---- WPO (method.md §5.2) --------------------------------------------------------------------


def test_wpo_surrogate_gradient_is_a_wasserstein_step_on_q_minus_t_ell():
    """grad_theta L_WPO = (grad_theta g_ell)^T (T g_ell - g_Q), checked by finite differences
    of theta -> sum_b c_b . g_ell_b(theta) with c = T g_ell - g_Q frozen at theta_0."""
    from damdp_lite.algos.wpo import action_gradients, wpo_surrogate
    from damdp_lite.critics import AugmentedCritic

    torch.manual_seed(0)
    p = make_policy(num_steps=3, action_dim=2, obs_dim=2).double()
    randomise_control(p, scale=0.5)
    q = AugmentedCritic(2, 2, (8,)).double()
    obs, a_k, k = torch.randn(6, 2).double(), torch.randn(6, 2).double(), torch.full((6,), 2)
    act = torch.randn(6, 2).double()
    t = torch.tensor(0.3).double()
    g_ell, g_q, _ = action_gradients(p, q, obs, a_k, k, act)
    wpo_surrogate(g_ell, g_q, t).sum().backward()
    w = p.control_net.net[0].weight
    grad = w.grad[1, :2].clone()
    c = (t * g_ell - g_q).detach()

    def phi() -> float:
        g, _, _ = action_gradients(p, q, obs, a_k, k, act)
        return (c * g).sum().item()

    for j in range(2):
        h = 1e-6
        with torch.no_grad():
            w[1, j] += h
        up = phi()
        with torch.no_grad():
            w[1, j] -= 2 * h
        down = phi()
        with torch.no_grad():
            w[1, j] += h
        assert (up - down) / (2 * h) == pytest.approx(grad[j].item(), rel=1e-5, abs=1e-8)


def test_wpo_surrogate_is_zero_at_the_soft_optimum_direction():
    """If T grad ell = grad Q the Wasserstein flow is at rest: no gradient."""
    from damdp_lite.algos.wpo import wpo_surrogate

    g = torch.randn(5, 3, requires_grad=True)
    t = torch.tensor(0.5)
    wpo_surrogate(g, (t * g).detach(), t).sum().backward()
    assert g.grad.abs().max() == 0


def test_wpo_gradient_is_sample_independent_for_a_linear_critic_at_zero_temperature():
    """I11: with fixed eta, T = 0 and Q(a) = u . a, grad_theta g_ell = grad_theta mu / (2 eta)
    does not depend on the sample, so every sample at one augmented state gives the same
    gradient -(d mu / d theta)^T (u / (2 eta))."""
    from damdp_lite.algos.wpo import action_gradients, wpo_surrogate

    torch.manual_seed(0)
    p = make_policy(num_steps=3, action_dim=2, obs_dim=2, learn_step_sizes=False,
                    learn_friction=False).double()
    randomise_control(p, scale=0.5)
    u = torch.tensor([0.7, -1.3], dtype=torch.float64)

    class LinearCritic(torch.nn.Module):
        def forward(self, obs, a_k, k, action):
            return action @ u

    n, k = 5, 2
    obs = torch.randn(1, 2, dtype=torch.float64).expand(n, -1)
    a_k = torch.randn(1, 2, dtype=torch.float64).expand(n, -1)
    ks = torch.full((n,), k)
    act = torch.randn(n, 2, dtype=torch.float64)  # five different samples at one state
    params = list(p.control_net.parameters())
    g_ell, g_q, _ = action_gradients(p, LinearCritic(), obs, a_k, ks, act)
    surrogate = wpo_surrogate(g_ell, g_q, torch.tensor(0.0, dtype=torch.float64))
    per_sample = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(surrogate[b], params,
                                                                        retain_graph=True)])
                  for b in range(n)]
    eta = p.step_sizes()[k - 1]  # eta_k, (d,)
    mu = p.denoise_mean(obs[:1], a_k[:1], k)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        -(mu * (u / (2 * eta))).sum(), params)])
    assert expected.abs().max() > 1e-3  # a non-trivial gradient
    for g in per_sample:
        torch.testing.assert_close(g, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_wpo_runs(policy):
    from damdp_lite.algos.wpo import WPO, WPOConfig

    cfg = WPOConfig.mujoco(policy, env_id="Hopper-v5", num_envs=2, num_env_steps=8,
                           total_env_steps=32, update_epochs=1, num_minibatches=2, num_steps=2,
                           hidden_sizes=(16,), critic_hidden_sizes=(16,), kl_samples=4)
    assert cfg.entropy_target_mult == 8.0 and cfg.kl_bound == 0.02
    learner = WPO(cfg)
    rows = [learner.train_iteration() for _ in range(2)]
    learner.close()
    assert all(torch.isfinite(torch.tensor(r["actor_loss"])) for r in rows)


# ---- DiffSAC (method.md §5.4, a reconstruction) --------------------------------------------


def test_sac_target_formula():
    from damdp_lite.algos.sac import sac_target

    y = sac_target(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 1.0]),
                   torch.tensor([0.9, 0.9, 0.9]), torch.tensor([10.0, 5.0, 7.0]),
                   torch.tensor([2.0, -1.0, 3.0]), 0.5)
    assert torch.allclose(y, torch.tensor([1 + 0.9 * (10 - 1.0), 0.9 * (5 + 0.5), 2.0]))


@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
def test_tiny_sac_runs_and_resumes_exactly(policy):
    from damdp_lite.algos.sac import SAC, SACConfig

    cfg = SACConfig(policy=policy, num_envs=2, num_env_steps=4, total_env_steps=32,
                    learning_starts=16, batch_size=16, num_steps=2, hidden_sizes=(16,),
                    critic_hidden_sizes=(16,), gradient_steps_per_env_step=0.5)
    rows_a = assert_resumes_exactly(SAC, cfg)
    assert rows_a[-1]["buffer_size"] == 4 * 2 * 4 * cfg.chain_length
    assert rows_a[0]["critic_loss"] != rows_a[0]["critic_loss"]  # nan before learning_starts
    assert rows_a[-1]["critic_loss"] == rows_a[-1]["critic_loss"]
