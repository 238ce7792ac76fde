"""HL-Gauss categorical critic (method.md §5.0): probabilities, read-out, loss, init, training."""

import pytest
import torch

from damdp_lite.critics import AugmentedCritic, HLGaussSupport


def test_hl_gauss_probs_sum_to_one_and_read_back_the_target():
    s = HLGaussSupport(-100.0, 200.0, 151)
    assert s.width == pytest.approx(2.0) and s.sigma == pytest.approx(1.5)
    g = torch.tensor([-99.0, -3.3, 0.0, 17.25, 150.9, 199.0], dtype=torch.float64)
    p = s.probs(g)
    assert p.shape == (6, 151) and torch.allclose(p.sum(-1), torch.ones(6, dtype=p.dtype))
    assert (p >= 0).all()
    back = p @ s.centres.double()
    interior = (g > -95) & (g < 195)
    # interior targets: the binned Gaussian's mean is the target up to 1e-3 of a bin width
    assert torch.allclose(back[interior], g[interior], atol=2e-3)
    # near the edges the renormalised mass is truncated, so the read-out moves inwards
    assert back[0] > g[0] and back[-1] < g[-1]


def test_targets_outside_the_support_are_clipped():
    s = HLGaussSupport(-1.0, 1.0, 21)
    p = s.probs(torch.tensor([5.0, 1.0, -7.0, -1.0]))
    assert torch.allclose(p[0], p[1]) and torch.allclose(p[2], p[3])


def test_cross_entropy_is_minimal_at_the_target_distribution():
    s = HLGaussSupport(-10.0, 10.0, 41)
    g = torch.tensor([0.3, -4.0])
    p = s.probs(g)
    best = s.loss(p.clamp(min=1e-30).log(), g)
    entropy = -(p * p.clamp(min=1e-30).log()).sum(-1)
    assert torch.allclose(best, entropy, atol=1e-5)
    logits = p.clamp(min=1e-30).log().clone().requires_grad_(True)
    s.loss(logits, g).sum().backward()
    assert logits.grad.abs().max() < 1e-6  # softmax(logits) - p = 0
    other = s.loss(torch.zeros_like(p), g)
    assert (other > best).all()


def test_augmented_q_critic_shapes_init_and_training():
    torch.manual_seed(0)
    support = HLGaussSupport(-10.0, 50.0, 61)
    q = AugmentedCritic(obs_dim=5, action_dim=2, hidden_sizes=(32, 32), support=support)
    obs, a_k, act = torch.randn(64, 5), torch.randn(64, 2), torch.randn(64, 2)
    k = torch.randint(1, 5, (64,))
    v0 = q(obs, a_k, k, act)
    assert v0.shape == (64,) and v0.abs().max() < 1.0  # logit bias = log HLGauss(0)
    assert q.logits(obs, a_k, k, act).shape == (64, 61)
    opt = torch.optim.Adam(q.parameters(), lr=3e-3)
    target = 37.3 + 2.0 * act[:, 0]  # depends on the action input
    for _ in range(300):
        opt.zero_grad()
        q.loss(obs, a_k, k, act, target).mean().backward()
        opt.step()
    err = (q(obs, a_k, k, act) - target).abs().mean()
    assert err < 1.0, err


def test_value_critic_and_mse_variant():
    v = AugmentedCritic(3, 1, (16,), with_action=False)
    out = v(torch.randn(4, 3), torch.randn(4, 1), 2)
    assert out.shape == (4,)
    loss = v.loss(torch.randn(4, 3), torch.randn(4, 1), 2, None, torch.ones(4))
    assert loss.shape == (4,) and (loss >= 0).all()


def test_bad_critic_inputs_name_the_field():
    with pytest.raises(ValueError, match="num_bins=1"):
        HLGaussSupport(0.0, 1.0, 1)
    with pytest.raises(ValueError, match="v_min=1.0, v_max=0.0"):
        HLGaussSupport(1.0, 0.0, 11)
    with pytest.raises(ValueError, match="sigma_ratio=0"):
        HLGaussSupport(0.0, 1.0, 11, sigma_ratio=0)
    q = AugmentedCritic(3, 1, (8,))
    with pytest.raises(ValueError, match="action is None"):
        q(torch.randn(2, 3), torch.randn(2, 1), 1)
    with pytest.raises(ValueError, match="needs a categorical critic"):
        q.logits(torch.randn(2, 3), torch.randn(2, 1), 1, torch.randn(2, 1))
