"""Kernel densities, step sizes, initialisation statistics: method.md §3 and I2, I3, I12."""

import math

import pytest
import torch
from conftest import make_policy, randomise_control
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from damdp_lite import DiffusionConfig, DiffusionPolicy, GaussianConfig, GaussianPolicy
from damdp_lite.diffusion import step_size_schedule
from damdp_lite.utils import log_one_minus_tanh_sq

# ---------------------------------------------------------------- densities vs torch.distributions


@settings(max_examples=25, deadline=None)
@given(K=st.integers(1, 6), d=st.integers(1, 3), obs_dim=st.integers(0, 3),
       drift=st.sampled_from(["conditioning", "evaluated"]),
       pairing=st.sampled_from(["previous", "same"]),
       per_dim=st.booleans(), seed=st.integers(0, 10_000), data=st.data())
def test_kernel_log_probs_match_torch_distributions(K, d, obs_dim, drift, pairing, per_dim, seed,
                                                    data):
    k = data.draw(st.integers(1, K))
    p = DiffusionPolicy(DiffusionConfig(obs_dim=obs_dim, action_dim=d, num_steps=K,
                                        noising_drift_at=drift, noising_step_pairing=pairing,
                                        per_dim_step_sizes=per_dim, hidden_sizes=(8,)))
    randomise_control(p, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        p.rho.add_(0.3 * torch.randn(p.rho.shape, generator=g))
    B = 5
    obs, a_k = torch.randn(B, obs_dim, generator=g), 3 * torch.randn(B, d, generator=g)
    a_prev = torch.randn(B, d, generator=g)
    eta = p.step_sizes()  # (K, d)
    mu = p.denoise_mean(obs, a_k, k)
    ref_q = Normal(mu, torch.sqrt(2 * eta[k - 1])).log_prob(a_prev).sum(-1)
    torch.testing.assert_close(p.denoise_log_prob(obs, a_k, k, a_prev), ref_q)
    kn = max(k - 1, 1) if pairing == "previous" else k
    drift_arg = a_prev if drift == "conditioning" else a_k
    ref_pi = Normal(a_prev - eta[kn - 1] * drift_arg / 9.0,
                    torch.sqrt(2 * eta[kn - 1])).log_prob(a_k).sum(-1)
    torch.testing.assert_close(p.noise_log_prob(obs, a_k, k, a_prev), ref_pi)
    # float32 cancellation: the difference is accurate to a few ulps of the terms themselves
    tol = 1e-6 * (1 + ref_q.abs().max().item() + ref_pi.abs().max().item())
    torch.testing.assert_close(p.log_ratio(obs, a_k, k, a_prev), ref_q - ref_pi, atol=tol, rtol=0)
    # a tensor of diffusion indices gives the same per-sample values
    k_t = torch.full((B,), k, dtype=torch.long)
    torch.testing.assert_close(p.log_ratio(obs, a_k, k_t, a_prev), p.log_ratio(obs, a_k, k, a_prev))


def test_denoise_mean_is_langevin_step_plus_control():
    p = make_policy(num_steps=3)
    randomise_control(p)
    a = torch.randn(4, 1)
    obs = torch.zeros(4, 0)
    eta = p.step_sizes()[1]
    f = p.control(obs, a, 2)
    torch.testing.assert_close(p.denoise_mean(obs, a, 2), a + eta * (-a / 9.0 + f))


def test_tanh_jacobian_matches_transformed_distribution():
    g = torch.Generator().manual_seed(0)
    x = 4 * torch.randn(1000, 2, generator=g, dtype=torch.float64)
    # exact reference: 1 - tanh^2 x = 1 / cosh^2 x, log cosh x = |x| + log1p(e^{-2|x|}) - log 2
    exact = -2 * (x.abs() + torch.log1p(torch.exp(-2 * x.abs())) - math.log(2))
    torch.testing.assert_close(log_one_minus_tanh_sq(x), exact)
    small = x.abs() < 3  # where the naive form has no cancellation problem, it agrees too
    torch.testing.assert_close(log_one_minus_tanh_sq(x)[small],
                               torch.log1p(-torch.tanh(x[small]) ** 2))
    big = torch.tensor([-30.0, -12.0, 12.0, 30.0])  # float32: naive form is -inf here
    assert torch.isfinite(log_one_minus_tanh_sq(big)).all()
    # Gaussian policy with Jacobian == torch's tanh-Normal on the squashed action
    pol = GaussianPolicy(GaussianConfig(obs_dim=2, action_dim=2, tanh_jacobian=True))
    obs = torch.randn(6, 2, generator=g)
    a = torch.randn(6, 2, generator=g)
    mean, std = pol.mean_and_std(obs)
    ref = TransformedDistribution(Normal(mean, std), [TanhTransform()]).log_prob(torch.tanh(a))
    torch.testing.assert_close(pol.log_ratio(obs, None, 1, a), ref.sum(-1), rtol=1e-4, atol=1e-4)


def test_diffusion_jacobian_only_on_last_step():
    p = make_policy(num_steps=3, tanh_jacobian=True)
    q = make_policy(num_steps=3, tanh_jacobian=False)
    q.load_state_dict(p.state_dict())
    obs, a_k, a_prev = torch.zeros(5, 0), torch.randn(5, 1), torch.randn(5, 1)
    jac = log_one_minus_tanh_sq(a_prev).sum(-1)
    for k in (1, 2, 3):
        diff = p.denoise_log_prob(obs, a_k, k, a_prev) - q.denoise_log_prob(obs, a_k, k, a_prev)
        torch.testing.assert_close(diff, -jac if k == 1 else torch.zeros(5))
    k_t = torch.tensor([1, 2, 3, 1, 2])
    diff = p.denoise_log_prob(obs, a_k, k_t, a_prev) - q.denoise_log_prob(obs, a_k, k_t, a_prev)
    torch.testing.assert_close(diff, torch.where(k_t == 1, -jac, torch.zeros(5)))


# ---------------------------------------------------------------- step sizes


def test_linear_schedule_table():
    """method.md §3 table for K = 8, min 0.17."""
    sched = step_size_schedule("linear", 8, 0.17).flip(0)  # k = 8 .. 1
    torch.testing.assert_close(sched, torch.tensor(
        [1.000, 0.896, 0.793, 0.689, 0.585, 0.481, 0.378, 0.274]), atol=6e-4, rtol=0)
    eta = make_policy(num_steps=8).step_sizes()[:, 0].detach().flip(0)
    torch.testing.assert_close(eta, torch.tensor(
        [0.500, 0.448, 0.396, 0.344, 0.293, 0.241, 0.189, 0.137]), atol=6e-4, rtol=0)
    torch.testing.assert_close(torch.sqrt(2 * eta), torch.tensor(
        [1.000, 0.947, 0.890, 0.830, 0.765, 0.694, 0.614, 0.523]), atol=6e-4, rtol=0)
    assert abs(eta[-1].item() - 0.136875) < 1e-6


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
@pytest.mark.parametrize("K", [1, 2, 5, 16])
def test_schedules_positive_and_one_at_K(name, K):
    s = step_size_schedule(name, K, 0.17)
    assert s.shape == (K,) and (s > 0).all() and abs(s[-1].item() - 1.0) < 1e-6
    if K > 1 and name != "constant":
        assert (s[1:] > s[:-1]).all()  # step shrinks towards the action end


def test_ppo_constant_schedule_gives_half():
    eta = make_policy(num_steps=5, step_size_schedule="constant").step_sizes()
    torch.testing.assert_close(eta, torch.full((5, 1), 0.5))


def test_init_step_sizes_override_and_per_dim_shape():
    p = make_policy(num_steps=3, action_dim=2, init_step_sizes=(0.1, 0.2, 0.3),
                    per_dim_step_sizes=True)
    assert p.rho.shape == (3, 2) and p.step_sizes().shape == (3, 2)
    torch.testing.assert_close(p.step_sizes()[:, 0], torch.tensor([0.1, 0.2, 0.3]))


# ---------------------------------------------------------------- I2: kernel entropy


@pytest.mark.parametrize("eta,expected", [(0.5, 1.4189), (0.136875, 0.77117)])
def test_I2_kernel_entropy_independent_of_control(eta, expected, gen):
    p = make_policy(num_steps=1, init_step_sizes=(eta,), hidden_sizes=(32,))
    randomise_control(p, scale=1.0)
    n = 200_000
    obs, a_k = torch.zeros(n, 0), 3 * torch.randn(n, 1, generator=gen)
    with torch.no_grad():
        mu = p.denoise_mean(obs, a_k, 1)
        a_prev = mu + math.sqrt(2 * eta) * torch.randn(n, 1, generator=gen)
        neg_logq = -p.denoise_log_prob(obs, a_k, 1, a_prev)
    se = neg_logq.std().item() / math.sqrt(n)
    assert abs(neg_logq.mean().item() - expected) < 4 * se + 1e-4
    assert abs(p.kernel_entropy(1).item() - expected) < 1e-4


def test_I2_log_ratio_differentiable_through_mean_eta_and_sample():
    p = make_policy(num_steps=2, tanh_jacobian=True)
    randomise_control(p)
    s = p.sample(64, reparameterize=True)
    s.log_ratios.sum().backward()
    for name, prm in [("rho", p.rho), ("phi", p.phi)] + list(p.control_net.named_parameters()):
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
    assert p.rho.grad.abs().sum() > 0 and p.phi.grad.abs().sum() > 0


def test_sampling_without_reparameterize_has_no_graph():
    s = make_policy(num_steps=2).sample(8)
    assert not s.latents.requires_grad and not s.log_ratios.requires_grad


# ---------------------------------------------------------------- I3: initialisation


def _variance_recursion(eta: torch.Tensor, v: float = 9.0) -> list[float]:
    out = [v]
    for e in eta.flip(0).tolist():  # k = K .. 1
        v = (1 - e / 9.0) ** 2 * v + 2 * e
        out.append(v)
    return out


def test_I3_variance_along_chain(gen):
    lin = _variance_recursion(make_policy(num_steps=8).step_sizes()[:, 0].detach())
    ppo = _variance_recursion(torch.full((8,), 0.5))
    ref_lin = [9.0000, 9.0278, 9.0474, 9.0608, 9.0694, 9.0744, 9.0770, 9.0777, 9.0775]
    ref_ppo = [9.0000, 9.0278, 9.0526, 9.0747, 9.0944, 9.1120, 9.1276, 9.1416, 9.1541]
    assert max(abs(a - b) for a, b in zip(lin, ref_lin, strict=True)) < 1e-4
    assert max(abs(a - b) for a, b in zip(ppo, ref_ppo, strict=True)) < 1e-4
    n = 200_000
    s = make_policy(num_steps=8).sample(n, generator=gen)
    var = s.latents[:, :, 0].var(dim=1).flip(0)  # k = 8 .. 0
    se = 9.1 * math.sqrt(2 / n)
    assert (var - torch.tensor(ref_lin)).abs().max() < 4 * se
    frac = (torch.tanh(s.a_0).abs() > 0.99).float().mean().item()
    assert abs(frac - 0.380) < 4 * math.sqrt(0.38 * 0.62 / n) + 5e-4


I3_TABLE = {  # H_hat / d = -sum_k E ell_k / d for K = 1, 2, 4, 8, 16 (method.md I3)
    ("evaluated", "linear"): [-0.0556, -0.1789, -0.2528, -0.3608, -0.5965],
    ("conditioning", "linear"): [0.0015, -0.0888, -0.0966, -0.0721, -0.0429],
    ("evaluated", "constant"): [-0.0556, -0.1113, -0.2232, -0.4483, -0.9020],
    ("conditioning", "constant"): [0.0015, 0.0028, 0.0051, 0.0083, 0.0117],
}


@pytest.mark.parametrize("drift,sched", list(I3_TABLE))
def test_I3_entropy_estimate_table(drift, sched, gen):
    n = 100_000
    for K, ref in zip([1, 2, 4, 8, 16], I3_TABLE[(drift, sched)], strict=True):
        p = make_policy(num_steps=K, noising_drift_at=drift, step_size_schedule=sched,
                        hidden_sizes=(4,))
        h = -p.sample(n, generator=gen).log_ratios.sum(0)
        se = h.std().item() / math.sqrt(n)
        assert abs(h.mean().item() - ref) < 4 * se + 1e-4, (drift, sched, K, h.mean().item())


# ---------------------------------------------------------------- I12: score identity


def test_I12_score_identity(gen):
    p = make_policy(num_steps=2, obs_dim=2, action_dim=2, hidden_sizes=(8,))
    randomise_control(p, scale=0.7)
    n_batches, n = 20, 5_000
    obs = torch.tensor([[0.3, -1.0]]).expand(n, 2)
    a_k = torch.tensor([[1.5, -0.5]]).expand(n, 2)
    params = [q for q in p.parameters() if q.requires_grad]
    grads = []
    for _ in range(n_batches):
        with torch.no_grad():
            a_prev, _ = p.step(obs, a_k, 2, generator=gen)
        logq = p.denoise_log_prob(obs, a_k, 2, a_prev).mean()
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(logq, params)]))
    G = torch.stack(grads)  # (n_batches, n_params)
    mean, se = G.mean(0), G.std(0) / math.sqrt(n_batches) + 1e-6
    assert ((mean.abs() / se) < 5).all(), (mean.abs() / se).max()
    # and it is not trivially zero per sample: single-sample gradients are large
    assert G.std(0).max() > 10 * se.min()


# ---------------------------------------------------------------- squash, determinism


def test_squash_rescales_to_box_and_identity():
    p = make_policy(num_steps=2, action_dim=2, action_low=(-2.0, 0.0), action_high=(2.0, 10.0))
    a = torch.tensor([[-50.0, 50.0], [0.0, 0.0]])
    act = p.to_action(a)
    torch.testing.assert_close(act, torch.tensor([[-2.0, 10.0], [0.0, 5.0]]))
    p2 = make_policy(num_steps=2, squash="identity")
    x = torch.tensor([[7.0]])
    assert p2.to_action(x).item() == 7.0
    p3 = make_policy(num_steps=1, action_clip=0.999)
    assert p3.to_action(torch.tensor([[40.0]])).item() == pytest.approx(0.999)


def test_seeded_sampling_is_deterministic():
    p = make_policy(num_steps=4)
    a = p.sample(16, generator=torch.Generator().manual_seed(7))
    b = p.sample(16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.latents, b.latents) and torch.equal(a.log_ratios, b.log_ratios)


def test_chain_sample_layout():
    p = make_policy(num_steps=3, obs_dim=2, action_dim=2)
    s = p.sample_chain(torch.randn(5, 2))
    assert s.latents.shape == (4, 5, 2) and s.log_ratios.shape == (3, 5)
    assert s.action.shape == (5, 2) and torch.equal(s.a_0, s.latents[0])
    g = GaussianPolicy(GaussianConfig(obs_dim=2, action_dim=2))
    sg = g.sample_chain(torch.randn(5, 2))
    assert sg.latents.shape == (2, 5, 2) and sg.log_ratios.shape == (1, 5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device_follows_config():
    p = make_policy(num_steps=2, device="cuda")
    s = p.sample(8, generator=torch.Generator(device="cuda").manual_seed(0))
    assert s.latents.is_cuda and s.log_ratios.is_cuda and p.step_sizes().is_cuda
