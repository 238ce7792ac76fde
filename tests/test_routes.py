"""damdp_lite/routes.py: the four gradient routes of notebook 07 (method.md §5.7).

- (b) pathwise: the autograd gradient of the bound estimate equals central finite differences
  under common random numbers (float64).
- (a) per step: on-policy, its expected gradient equals (b)'s (both unbiased for -grad J_bound at
  T > 0), within a few standard errors; the check has the power to see a factor-K error.
- (c) DPPO is (a) at T = 0, and unbiased for -grad E[r].
- (d) FPO-style: its ratio is exactly 1 at the old parameters; the noising chain it samples is
  the variational posterior of an ELBO <= log q(a^0), with log q exact by 1-D quadrature.
- Memory per update, the shared training loop, and bad input.
"""

from __future__ import annotations

import math

import pytest
import torch

import damdp_lite as dl
from damdp_lite import routes as R


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def make_policy(K: int = 3, hidden=(16, 16), seed: int = 0, scale: float = 0.5, **fields):
    """A 1-D latent sampler with a non-trivial control (random last layer, std `scale`) and
    prior std 1, so that on the double well reward and entropy terms are of one size."""
    fields.setdefault("prior_std", 1.0)
    dl.seed_everything(seed)
    pol = dl.DiffusionPolicy(dl.DiffusionConfig(
        obs_dim=0, action_dim=1, num_steps=K, squash="identity", hidden_sizes=hidden,
        noising_step_pairing="same", **fields))
    with torch.no_grad():
        pol.control_net.net[-1].weight.normal_(0.0, scale, generator=torch.Generator()
                                               .manual_seed(seed + 100))
    return pol


def params_of(pol):
    return [p for p in pol.parameters() if p.requires_grad]


def flat_grad(loss, pol):
    grads = torch.autograd.grad(loss, params_of(pol), allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for p, g in zip(params_of(pol), grads, strict=True)])


def gradients(name, pol, target, cfg, n_batches, seed=0):
    """`(n_batches, P)` per-batch gradients of route `name` at the fixed policy `pol`."""
    cg, ag = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    return torch.stack([R.route_gradient(name, pol, target, cfg, cg, ag)
                        for _ in range(n_batches)])


def directions(pol, n_random=5, seed=0):
    """Unit vectors over the flattened parameters: every rho and phi entry (the step sizes,
    where the appendix-G term acts) and `n_random` random directions."""
    sizes = [p.numel() for p in params_of(pol)]
    names = [n for n, p in pol.named_parameters() if p.requires_grad]
    P, out, start = sum(sizes), [], 0
    for name, size in zip(names, sizes, strict=True):
        if name in ("rho", "phi"):
            for i in range(size):
                e = torch.zeros(P)
                e[start + i] = 1.0
                out.append(e)
        start += size
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_random):
        u = torch.randn(P, generator=g)
        out.append(u / u.norm())
    return torch.stack(out)  # (n_dir, P)


def z_scores(g_a: torch.Tensor, g_b: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """(mean_a - mean_b) / se of the difference, projected on each direction, `(n_dir,)`."""
    pa, pb = g_a.double() @ dirs.double().T, g_b.double() @ dirs.double().T  # (n, n_dir)
    se = (pa.var(0) / len(pa) + pb.var(0) / len(pb)).sqrt()
    return (pa.mean(0) - pb.mean(0)) / se


# ----------------------------------------------------------------------------- (b) pathwise
def test_pathwise_gradient_matches_finite_differences_under_common_random_numbers():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        pol = make_policy(K=3, hidden=(8, 8)).double()
        target, T = dl.DoubleWell1D(), 0.5

        def loss():
            return R.pathwise_bound_loss(pol, target, T, 64,
                                         generator=torch.Generator().manual_seed(3))

        grad = flat_grad(loss(), pol)
        h, checked = 1e-6, 0
        flat_params = [(p, i) for p in params_of(pol) for i in range(p.numel())]
        picks = [0, 1, 2, 3] + list(range(9, len(flat_params), 97))  # rho, phi, network weights
        for j in picks:
            p, i = flat_params[j]
            with torch.no_grad():
                p.view(-1)[i] += h
                up = loss().item()
                p.view(-1)[i] -= 2 * h
                down = loss().item()
                p.view(-1)[i] += h
            fd = (up - down) / (2 * h)
            assert math.isclose(grad[j].item(), fd, rel_tol=1e-5, abs_tol=1e-8), (j, grad[j], fd)
            checked += abs(fd) > 1e-4
        assert checked >= 4  # the comparison is not between zeros
    finally:
        torch.set_default_dtype(old)


# ----------------------------------------------------------------------------- (a) vs (b)
def test_per_step_expected_gradient_equals_the_pathwise_one():
    pol, target = make_policy(K=3), dl.DoubleWell1D()
    cfg = R.RouteConfig(temperature=0.5, batch_size=1024)
    g_a = gradients("per_step", pol, target, cfg, 300, seed=0)
    g_b = gradients("pathwise", pol, target, cfg, 300, seed=10)
    dirs = directions(pol)
    z = z_scores(g_a, g_b, dirs)
    assert z.abs().max() < 4.0, z
    # power: along the mean pathwise gradient the signal is many standard errors, so an
    # estimator off by a factor (e.g. without the K of one chain's K transitions) would fail
    v = g_b.mean(0) / g_b.mean(0).norm()
    pa = g_a.double() @ v.double()
    assert pa.mean() / (pa.std() / math.sqrt(len(pa))) > 20
    assert z_scores(g_a / pol.num_steps, g_b, v[None]).abs().item() > 8


def test_augmented_transitions_hold_the_soft_return_to_go():
    pol, target, T = make_policy(K=4), dl.DoubleWell1D(), 0.3
    s = pol.sample(5, generator=torch.Generator().manual_seed(0))
    r = target.reward(s.action)
    t = R.augmented_transitions(pol, s, r, T)
    K, B = 4, 5
    for i, k in enumerate(range(K, 0, -1)):
        want = r - T * s.log_ratios[:k].sum(0)  # r(a^0) - T sum_{j <= k} ell_j
        assert torch.allclose(t["advantages"][i * B:(i + 1) * B], want, atol=1e-5)
        assert (t["k"][i * B:(i + 1) * B] == k).all()
        assert torch.equal(t["a_k"][i * B:(i + 1) * B], s.latents[k])
    assert torch.allclose(R.chain_advantages(t, K), (r - T * s.log_ratios.sum(0))
                          - (r - T * s.log_ratios.sum(0)).mean(), atol=1e-5)
    logq = pol.denoise_log_prob(t["obs"], t["a_k"], t["k"], t["a_prev"])
    assert torch.equal(logq, t["log_prob"])  # on-policy: every per-step ratio is exactly 1


# ----------------------------------------------------------------------------- (c) DPPO
def test_dppo_is_per_step_at_temperature_zero():
    pol, target = make_policy(K=3), dl.DoubleWell1D()
    s = pol.sample(64, generator=torch.Generator().manual_seed(1))
    t0 = R.augmented_transitions(pol, s, target.reward(s.action), 0.0)
    a = R.dppo_surrogate(pol, t0, 0.2)
    b = R.per_step_surrogate(pol, t0, 0.0, 0.2)
    assert torch.equal(a, b)
    assert torch.equal(flat_grad(a, pol), flat_grad(b, pol))


def test_dppo_is_unbiased_for_the_gradient_of_the_mean_reward():
    pol, target = make_policy(K=3), dl.DoubleWell1D()
    cfg = R.RouteConfig(temperature=0.5, batch_size=1024)
    g_c = gradients("dppo", pol, target, cfg, 300, seed=0)
    gen = torch.Generator().manual_seed(10)
    g_r = torch.stack([flat_grad(-target.reward(pol.sample(1024, generator=gen,
                                                           reparameterize=True).action).mean(),
                                 pol) for _ in range(300)])
    z = z_scores(g_c, g_r, directions(pol))
    assert z.abs().max() < 4.0, z
    # and it is not the gradient of the bound, which at a high temperature differs from it
    hot = R.RouteConfig(temperature=5.0, batch_size=1024)
    g_b = gradients("pathwise", pol, target, hot, 300, seed=20)
    assert z_scores(g_c, g_b, directions(pol)).abs().max() > 6


# ----------------------------------------------------------------------------- (d) FPO-style
def test_fpo_ratio_is_one_at_the_old_parameters_and_its_gradient_is_the_elbo_one():
    pol, target = make_policy(K=4), dl.DoubleWell1D()
    cfg = R.RouteConfig(temperature=0.5, batch_size=32, elbo_draws=6)
    batch = R.draw_batch(R.get_route("fpo_style"), pol, target, cfg,
                         torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    prep = batch.prepared
    ell_new = R.elbo_terms(pol, prep["draws"])
    ratio = R.fpo_ratio(prep["draws"].log_prior, ell_new, prep["ell_old"], pol.num_steps)
    assert torch.equal(ratio, torch.ones(32))
    # at ratio 1 the clip is inactive: the surrogate's gradient is -mean A grad ELBO_hat
    loss = R.fpo_surrogate(pol, prep["draws"], prep["ell_old"], prep["advantages"], 0.2)
    elbo = R.elbo_estimate(prep["draws"].log_prior, R.elbo_terms(pol, prep["draws"]), 4)
    want = -(prep["advantages"] * elbo).mean()
    assert torch.allclose(flat_grad(loss, pol), flat_grad(want, pol), atol=1e-6)


@pytest.fixture(scope="module")
def elbo_setup():
    """A K = 2 sampler, a few final latents on a fine grid and their exact log q(a^0)."""
    torch.set_num_threads(1)
    pol = make_policy(K=2, hidden=(16, 16), scale=0.8)
    grid = torch.linspace(-15.0, 15.0, 3001, dtype=torch.float64)  # 15 prior std
    density = dl.marginal_density_1d(pol, grid)
    idx = torch.tensor([1400, 1500, 1570, 1650])  # a^0 = -1.0, 0.0, 0.7, 1.5
    a_0 = grid[idx].float()[:, None]
    log_q = torch.log(density[idx])
    M = 20_000
    lat = R.sample_noising_chain(pol, a_0, M, torch.Generator().manual_seed(0))  # (K+1, M, B, 1)
    obs = torch.zeros(M * len(idx), 0)
    ell = torch.stack([pol.log_ratio(obs, lat[k].reshape(-1, 1), k, lat[k - 1].reshape(-1, 1))
                       .reshape(M, -1) for k in (1, 2)])  # (K, M, B)
    v0 = pol.prior_std**2
    log_prior = (-0.5 * (math.log(2 * math.pi * v0) + lat[2] ** 2 / v0)).sum(-1)  # (M, B)
    return pol, a_0, log_q, log_prior.double(), ell.double()


def test_the_elbo_is_at_most_log_q(elbo_setup):
    _, _, log_q, log_prior, ell = elbo_setup
    w = log_prior + ell.sum(0)  # (M, B): log p_0(a^K) + sum_k ell_k
    se = w.std(0) / math.sqrt(w.shape[0])
    assert (w.mean(0) <= log_q + 3 * se).all(), (w.mean(0), log_q)
    # the noising chain is the sampling distribution of an unbiased importance estimate of
    # q(a^0): log mean exp(w) recovers log q (a wrong sampler would not)
    is_est = torch.logsumexp(w, 0) - math.log(w.shape[0])
    assert torch.allclose(is_est, log_q, atol=0.02), (is_est, log_q)
    assert (log_q - w.mean(0) > 0.01).all()  # a real gap: the ELBO is not log q here


def test_one_random_step_estimates_the_same_elbo(elbo_setup):
    """elbo_estimate's K ell_k at a uniform k has the full sum's mean."""
    pol, a_0, _, log_prior, ell = elbo_setup
    full = (log_prior + ell.sum(0)).mean(0)
    draws = R.elbo_draws(pol, a_0, 20_000, torch.Generator().manual_seed(1))
    terms = (draws.log_prior + pol.num_steps * R.elbo_terms(pol, draws)).double()  # (M, B)
    se = (terms.var(0) / terms.shape[0] + (log_prior + ell.sum(0)).var(0) / ell.shape[1]).sqrt()
    assert ((terms.mean(0) - full).abs() < 4 * se).all()
    assert torch.allclose(R.elbo_estimate(draws.log_prior, R.elbo_terms(pol, draws), 2).double(),
                          terms.mean(0), atol=1e-4)


# ----------------------------------------------------------------------------- costs and loop
def update_bytes(name, K, kappa=0, draws=4):
    pol, target = make_policy(K=K), dl.DoubleWell1D()
    cfg = R.RouteConfig(temperature=0.5, batch_size=32, elbo_draws=draws,
                        diffusion_steps_per_update=kappa)
    route = R.get_route(name)
    cg, ag = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    batch = R.draw_batch(route, pol, target, cfg, cg, ag)
    return R.saved_tensor_bytes(lambda: R.route_loss(route, pol, target, batch, cfg, ag),
                                exclude=params_of(pol))


def test_memory_per_update_grows_with_K_only_through_the_chain():
    """The whole chain's graph (pathwise; per step with all K B rows) grows with K; one chain
    step per chain (kappa = 1) or M ELBO draws per action do not, apart from the (K, d)
    step-size table itself."""
    def about_equal(a, b):
        return 0 < a and abs(a - b) < 0.01 * a

    assert update_bytes("pathwise", 8) > 3 * update_bytes("pathwise", 2) > 0
    assert update_bytes("per_step", 8) > 3 * update_bytes("per_step", 2)  # all K B rows
    assert about_equal(update_bytes("per_step", 2, kappa=1), update_bytes("per_step", 8, kappa=1))
    assert about_equal(update_bytes("fpo_style", 2), update_bytes("fpo_style", 8))
    assert update_bytes("fpo_style", 2, draws=8) > 3 * update_bytes("fpo_style", 2, draws=2)


def test_train_route_gives_every_route_the_same_first_batch_and_is_reproducible():
    target = dl.DoubleWell1D()
    cfg = R.RouteConfig(temperature=0.5, iterations=3, batch_size=64, update_epochs=2)
    first = {}
    for name in R.ROUTES:
        pol = make_policy(K=3)
        hist = R.train_route(name, pol, target, cfg)
        assert len(hist.j_bound) == 3 and all(math.isfinite(j) for j in hist.j_bound)
        first[name] = hist.j_bound[0]
        again = R.train_route(name, make_policy(K=3), target, cfg)
        assert again.j_bound == hist.j_bound
        assert any(not torch.equal(p, q) for p, q in zip(pol.parameters(),
                                                         make_policy(K=3).parameters(),
                                                         strict=True))
    assert len(set(first.values())) == 1, first


def test_registry_names_and_labels():
    assert list(R.ROUTES) == ["per_step", "pathwise", "dppo", "fpo_style"]
    assert R.ROUTE_LABELS == {n: r.label for n, r in R.ROUTES.items()}
    assert R.pathwise_bound_loss is dl.bound_loss


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda p, t: R.get_route("fpo"), r"route='fpo' is not allowed; expected one of"),
    (lambda p, t: R.augmented_transitions(p, p.sample(4), t.reward(p.sample(4).action), -1.0),
     r"temperature=-1.0 must be a finite number >= 0"),
    (lambda p, t: R.per_step_surrogate(p, R.augmented_transitions(
        p, p.sample(4), torch.zeros(4), 0.5), 0.5, 0.0), r"clip_coef=0.0 must be"),
    (lambda p, t: R.dppo_surrogate(p, R.augmented_transitions(
        p, p.sample(4), torch.zeros(4), 0.5), 0.2), r"DPPO needs them built"),
    (lambda p, t: R.sample_noising_chain(p, torch.zeros(4, 1), 0), r"elbo_draws=0 must be"),
    (lambda p, t: R.sample_noising_chain(
        dl.GaussianPolicy(dl.GaussianConfig(obs_dim=0, action_dim=1, squash="identity")),
        torch.zeros(4, 1), 2), r"needs a policy with a prior and a noising kernel"),
    (lambda p, t: R.sample_noising_chain(make_policy(noising_drift_at="evaluated"),
                                         torch.zeros(4, 1), 2), r"noising_drift_at='evaluated'"),
    (lambda p, t: R.RouteConfig(update_epochs=0), r"update_epochs"),
    (lambda p, t: R.train_route("pathwise", p, dl.FourModes2D(), R.RouteConfig()),
     r"action_dim=1 but target dim=2"),
])
def test_bad_input_is_one_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(make_policy(K=2), dl.DoubleWell1D())
