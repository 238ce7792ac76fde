"""DA-MDP WPO / ME-WPO (method.md §5.2): REPPO's machinery with the Wasserstein-flow actor step
(`REPPOConfig(actor_update="wasserstein")`, `--algo wpo`): the surrogate's gradient by finite
differences, its rest point, sample independence (I11), tiny runs of the preset."""

import pytest
import torch
from conftest import make_policy, randomise_control

from damdp_lite.algos import ALGOS, algo_of
from damdp_lite.algos.reppo import REPPO, REPPOConfig, action_gradients, wpo_surrogate
from damdp_lite.critics import AugmentedCritic


def test_wpo_surrogate_gradient_is_a_wasserstein_step_on_q_minus_t_ell():
    """grad_theta L_WPO = (grad_theta g_ell)^T (T g_ell - g_Q), checked by finite differences
    of theta -> sum_b c_b . g_ell_b(theta) with c = T g_ell - g_Q frozen at theta_0."""
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
    g = torch.randn(5, 3, requires_grad=True)
    t = torch.tensor(0.5)
    wpo_surrogate(g, (t * g).detach(), t).sum().backward()
    assert g.grad.abs().max() == 0


def test_wpo_gradient_is_sample_independent_for_a_linear_critic_at_zero_temperature():
    """I11: with fixed eta, T = 0 and Q(a) = u . a, grad_theta g_ell = grad_theta mu / (2 eta)
    does not depend on the sample, so every sample at one augmented state gives the same
    gradient -(d mu / d theta)^T (u / (2 eta))."""
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
    kind = {"num_steps": 2} if policy == "diffusion" else {}
    cfg = ALGOS["wpo"].config(policy=policy, env_id="Hopper-v5", num_envs=2, num_env_steps=8,
                              total_env_steps=32, update_epochs=1, num_minibatches=2,
                              hidden_sizes=(16,), critic_hidden_sizes=(16,), kl_samples=4, **kind)
    assert cfg.entropy_target_mult == 8.0 and cfg.kl_bound == 0.02
    assert type(cfg) is REPPOConfig and cfg.actor_update == "wasserstein"  # WPO = REPPO's machinery
    assert algo_of(cfg) is ALGOS["wpo"] and ALGOS["wpo"].learner_cls is REPPO
    learner = REPPO(cfg)
    rows = [learner.train_iteration() for _ in range(2)]
    learner.close()
    assert all(torch.isfinite(torch.tensor(r["actor_loss"])) for r in rows)
