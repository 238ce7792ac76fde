"""The bound, the entropy lower bound, targets and exact-KL references: method.md I4-I6, I9, I16."""

import copy
import math

import pytest
import torch
from conftest import AffineControl, make_policy, randomise_control

from damdp_lite import (
    DiffusionConfig,
    DiffusionPolicy,
    DoubleWell1D,
    FourModes2D,
    GaussianConfig,
    GaussianMixture2D,
    GaussianPolicy,
    best_gaussian_1d,
    denoise_kl,
    entropy_lower_bound,
    estimate_bound,
    exact_marginal_kl_1d,
    fit_sampler,
    gaussian_kl,
    histogram_kl,
    marginal_density_1d,
)
from damdp_lite.utils import normal_log_prob

LOG_2PI_E = math.log(2 * math.pi * math.e)

# ---------------------------------------------------------------- targets: exact log Z


def test_double_well_log_z_table():
    t = DoubleWell1D()
    for T, ref in [(1.0, 0.67993), (0.5, 0.34424), (0.25, -0.05357), (0.1, -0.55768)]:
        assert t.log_z(T) == pytest.approx(ref, abs=6e-6)


@pytest.mark.parametrize("sigma_r,refs", [
    (0.05, [5.1724, 1.0053, -0.4804, -0.6891]), (0.1, [6.5540, 2.3456, 0.7468, 0.3614])])
def test_I16_four_mode_log_z(sigma_r, refs):
    t = FourModes2D(sigma_r=sigma_r)
    for T, ref in zip([0.5, 1.0, 2.0, 5.0], refs, strict=True):
        assert t.log_z(T) == pytest.approx(ref, abs=6e-5)


def test_I16_four_mode_masses():
    t = FourModes2D(sigma_r=0.05)
    refs = {0.5: (0.0180, 0.0000, 0.0009, 0.9811), 1.0: (0.1154, 0.0057, 0.0258, 0.8530),
            2.0: (0.2266, 0.0506, 0.1070, 0.6159), 5.0: (0.2644, 0.1451, 0.1959, 0.3945)}
    for T, ref in refs.items():
        torch.testing.assert_close(t.exact_mode_masses(T), torch.tensor(ref, dtype=torch.float64),
                                   atol=6e-5, rtol=0)
        torch.testing.assert_close(t.exact_mode_masses(T), t.softmax_masses(T), atol=2e-5, rtol=0)


def test_mixture_target_is_normalised_at_T1():
    assert abs(GaussianMixture2D().log_z(1.0)) < 1e-6


# ---------------------------------------------------------------- I4: entropy lower bound


@pytest.mark.parametrize("drift,ref", [("conditioning", 2.4454), ("evaluated", 2.1567)])
def test_I4_entropy_lower_bound_at_init(drift, ref, gen):
    p = make_policy(num_steps=8, noising_drift_at=drift)
    est, se = entropy_lower_bound(p, n=200_000, generator=gen)
    assert abs(est - ref) < 4 * se + 1e-4
    h_a0 = 0.5 * (LOG_2PI_E + math.log(9.0775))  # a^0 is Gaussian at init (f = 0)
    assert h_a0 == pytest.approx(2.5218, abs=1e-4)
    assert p.prior_entropy() == pytest.approx(2.5176, abs=1e-4)
    assert est <= h_a0 + 4 * se


def test_I4_bound_below_entropy_for_random_control(gen):
    """Any theta: H(p_0) - E sum ell <= H(a^0); H(a^0) from the exact 1-D marginal."""
    for drift in ("conditioning", "evaluated"):
        p = make_policy(num_steps=3, noising_drift_at=drift, hidden_sizes=(16,))
        randomise_control(p, seed=3, scale=0.3)
        est, se = entropy_lower_bound(p, n=100_000, generator=gen)
        grid = torch.linspace(-25, 25, 4001, dtype=torch.float64)
        dens = marginal_density_1d(p, grid)
        h = float(-(dens * torch.log(dens.clamp_min(1e-300))).sum() * (grid[1] - grid[0]))
        assert est <= h + 4 * se, (drift, est, h)


# ---------------------------------------------------------------- I5: K = 1 with affine control


def _i5_policy(drift: str) -> DiffusionPolicy:
    cfg = DiffusionConfig(obs_dim=0, action_dim=1, num_steps=1, init_step_sizes=(0.5,),
                          noising_drift_at=drift)
    return DiffusionPolicy(cfg, control_net=AffineControl(g=1.4, h=0.0))  # m = eta g = 0.7


@pytest.mark.parametrize("drift,gap", [("conditioning", 0.2186), ("evaluated", 0.3021)])
def test_I5_gap_of_prior_ula_kernels(drift, gap, gen):
    p = _i5_policy(drift)
    s = p.sample(400_000, generator=gen)
    v1 = (1 - 0.5 / 9) ** 2 * 9 + 1.0
    assert v1 == pytest.approx(9.0278, abs=1e-4)
    assert s.a_0.mean().item() == pytest.approx(0.7, abs=4 * math.sqrt(v1 / 4e5))
    h = -(p.prior_log_prob(s.latents[1]) + s.log_ratios[0]).double()
    se = h.std().item() / math.sqrt(len(h))
    assert abs(h.mean().item() - (2.51909 - gap)) < 4 * se + 1e-4


def test_I5_exact_posterior_makes_the_bound_tight(gen):
    """With the exact posterior as noising kernel, -E[log p0 + ell] = H(a^0) = 2.51909."""
    p = _i5_policy("conditioning")
    s = p.sample(400_000, generator=gen)
    a1, a0 = s.latents[1].double(), s.a_0.double()
    eta, m, c = 0.5, 0.7, 1 - 0.5 / 9
    v_post = 1 / (1 / 9 + c**2 / (2 * eta))
    assert v_post == pytest.approx(0.99692, abs=1e-5)
    mu_post = v_post * c * (a0 - m) / (2 * eta)
    log_pi_post = normal_log_prob(a1, mu_post, torch.tensor(v_post)).sum(-1)
    logq = p.denoise_log_prob(torch.zeros(len(a0), 0), s.latents[1], 1, s.a_0).double()
    h = -(p.prior_log_prob(a1) + logq - log_pi_post)
    se = h.std().item() / math.sqrt(len(h))
    assert abs(h.mean().item() - 2.51909) < 4 * se + 1e-4


# ---------------------------------------------------------------- I6: bandit optimum and ceiling

I6_GAUSS = {1.0: (0.32236, 0.0, 0.500, 0.3576), 0.5: (-0.19622, 0.0, 0.430, 0.3683),
            0.25: (-0.19697, 0.946, 0.035, 0.1836), 0.1: (-0.12623, 0.980, 0.013, 0.0705)}


@pytest.mark.parametrize("T", list(I6_GAUSS))
def test_I6_best_gaussian(T):
    j, m, v, tkl = I6_GAUSS[T]
    best = best_gaussian_1d(DoubleWell1D(), T)
    assert best["j"] == pytest.approx(j, abs=2e-5)
    assert abs(best["mean"]) == pytest.approx(m, abs=1e-3)
    assert best["var"] == pytest.approx(v, abs=1e-3)
    assert best["t_kl"] == pytest.approx(tkl, abs=1e-4)


def test_I6_bound_below_marginal_below_t_log_z_and_rises_with_training(gen):
    t, T = DoubleWell1D(), 0.25
    p = make_policy(num_steps=4, squash="identity", hidden_sizes=(32, 32))
    before = estimate_bound(p, t, T, n=20_000, generator=gen)
    hist = fit_sampler(p, t, T, steps=150, batch_size=256, lr=3e-3, seed=0)
    after = estimate_bound(p, t, T, n=50_000, generator=gen)
    assert sum(hist.j_bound[-20:]) / 20 > sum(hist.j_bound[:20]) / 20  # J_bound rises
    assert after.j_bound > before.j_bound + 1.0
    for est, pol_state in [(after, p)]:
        marg = exact_marginal_kl_1d(pol_state, t, T)
        assert est.j_bound <= marg["j_marginal"] + 4 * est.j_bound_se  # bound <= true objective
        assert marg["j_marginal"] <= est.t_log_z + 1e-6  # never above T log Z
        assert est.kl_upper >= marg["kl"] - 4 * est.j_bound_se / T  # bound above the true KL
    assert before.j_bound <= before.t_log_z


def test_marginal_density_matches_gaussians():
    grid = torch.linspace(-15, 15, 3001, dtype=torch.float64)
    h = float(grid[1] - grid[0])
    dens = marginal_density_1d(make_policy(num_steps=8), grid)  # f = 0: a^0 ~ N(0, 9.0775)
    assert float((dens * grid**2).sum() * h) == pytest.approx(9.0775, abs=2e-3)
    g = GaussianPolicy(GaussianConfig(obs_dim=0, action_dim=1, squash="identity"))
    with torch.no_grad():
        g.mean_head.weight.zero_()  # mean = bias exactly (the state-free body still has weights)
        g.mean_head.bias.fill_(0.946)
        g.log_std.fill_(0.5 * math.log(0.035))
    dens = marginal_density_1d(g, grid)
    ref = torch.exp(normal_log_prob(grid, torch.tensor(0.946), torch.tensor(0.035)))
    assert (dens - ref).abs().max() < 1e-3 * ref.max()
    # the exact KL of the best Gaussian equals the closed-form reference (I6 table)
    marg = exact_marginal_kl_1d(g, DoubleWell1D(), 0.25, grid=grid)
    assert 0.25 * marg["kl"] == pytest.approx(0.1836, abs=2e-3)
    assert marg["j_marginal"] == pytest.approx(-0.19697, abs=2e-3)


def test_gaussian_policy_bound_is_exact_objective(gen):
    """A Gaussian has no latent gap: J_bound = E r + T H exactly."""
    g = GaussianPolicy(GaussianConfig(obs_dim=0, action_dim=1, squash="identity"))
    with torch.no_grad():
        g.log_std.fill_(0.5 * math.log(0.5))
    est = estimate_bound(g, DoubleWell1D(), 1.0, n=200_000, generator=gen)
    assert est.j_bound == pytest.approx(0.32236, abs=4 * est.j_bound_se)


def test_histogram_kl_small_for_target_samples_and_large_for_one_mode(gen):
    t, T = DoubleWell1D(), 0.25
    grid = torch.linspace(-4, 4, 20_001, dtype=torch.float64)
    cdf = torch.cumsum(torch.softmax(t.reward(grid[:, None]) / T, 0), 0)
    x = grid[torch.searchsorted(cdf, torch.rand(200_000, generator=gen, dtype=torch.float64))]
    kl_qp, kl_pq = histogram_kl(x[:, None], t, T)
    assert kl_qp < 0.01 and kl_pq < 0.01
    one_mode = x.abs()[:, None]  # all mass on x > 0
    kl_qp, kl_pq = histogram_kl(one_mode, t, T)
    assert kl_qp == pytest.approx(math.log(2), abs=0.02) and kl_pq > 1.0


def test_box_target_bound_needs_jacobian_and_stays_below_t_log_z(gen):
    t = FourModes2D(mode_rewards=(0, 0, 0, 0), sigma_r=0.1)
    base = dict(obs_dim=0, action_dim=2, num_steps=3, hidden_sizes=(16,))
    with pytest.raises(ValueError, match="tanh_jacobian"):
        estimate_bound(DiffusionPolicy(DiffusionConfig(**base)), t, 1.0)
    p = DiffusionPolicy(DiffusionConfig(**base, tanh_jacobian=True))
    randomise_control(p, scale=0.2)
    est = estimate_bound(p, t, 1.0, n=50_000, generator=gen)
    assert est.j_bound <= est.t_log_z + 4 * est.j_bound_se


# ---------------------------------------------------------------- I9: KL of denoising kernels


def test_I9_equal_variance_kl_closed_form_and_monte_carlo(gen):
    old = make_policy(num_steps=3, obs_dim=2, action_dim=2, hidden_sizes=(8,))
    randomise_control(old, seed=1, scale=0.3)
    new = copy.deepcopy(old)
    randomise_control(new, seed=2, scale=0.3)
    n = 4000
    obs, a_k = torch.randn(n, 2, generator=gen), 3 * torch.randn(n, 2, generator=gen)
    with torch.no_grad():
        kl = denoise_kl(old, new, obs, a_k, 2)
        eta = old.step_sizes()[1]
        mu_old, mu_new = old.denoise_mean(obs, a_k, 2), new.denoise_mean(obs, a_k, 2)
        torch.testing.assert_close(kl, ((mu_old - mu_new) ** 2 / (4 * eta)).sum(-1))
        # 16-sample MC estimate per state agrees in expectation
        y = mu_old[None] + torch.sqrt(2 * eta) * torch.randn(16, n, 2, generator=gen)
        mc = torch.stack([old.denoise_log_prob(obs, a_k, 2, y[m])
                          - new.denoise_log_prob(obs, a_k, 2, y[m]) for m in range(16)]).mean(0)
    diff = mc - kl
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(n)
    # right after copying the old policy the KL is exactly zero
    assert denoise_kl(old, copy.deepcopy(old), obs, a_k, 1).abs().max() == 0


def test_I9_general_gaussian_kl(gen):
    mp, mq = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    vp, vq = torch.rand(3, 4, generator=gen) + 0.1, torch.rand(3, 4, generator=gen) + 0.1
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mp, vp.sqrt()), torch.distributions.Normal(mq, vq.sqrt()))
    torch.testing.assert_close(gaussian_kl(mp, vp, mq, vq), ref.sum(-1))
