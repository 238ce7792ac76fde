"""Bad input fails early with a ValueError naming the field, the value and what is allowed."""

import pytest
import torch
from conftest import make_policy

from damdp_lite import (
    DiffusionConfig,
    DiffusionPolicy,
    DoubleWell1D,
    FourModes2D,
    GaussianConfig,
    GaussianPolicy,
    best_gaussian_1d,
    bound_loss,
    estimate_bound,
    fit_sampler,
    make_target,
    step_size_schedule,
)


@pytest.mark.parametrize("field,value,allowed", [
    ("num_steps", 0, "in [1, 1000]"), ("num_steps", -3, "in [1, 1000]"),
    ("num_steps", 2.5, "integer"),
    ("prior_std", 0.0, "> 0"), ("prior_std", -1.0, "> 0"), ("prior_std", float("nan"), "> 0"),
    ("dt", 0.0, "> 0"), ("dt", -0.1, "> 0"), ("friction", 0.0, "> 0"),
    ("action_dim", 0, ">= 1"), ("obs_dim", -1, ">= 0"),
    ("action_clip", 0.0, "(0, 1]"), ("action_clip", 1.5, "(0, 1]"),
    ("schedule_min", 0.0, "(0, 1]"), ("schedule_min", 1.2, "(0, 1]"),
    ("step_size_schedule", "exponential", "linear"),
    ("noising_drift_at", "middle", "conditioning"),
    ("noising_step_pairing", "next", "previous"),
    ("squash", "sigmoid", "tanh"),
])
def test_diffusion_config_rejects(field, value, allowed):
    with pytest.raises(ValueError) as err:
        DiffusionConfig(**{field: value})
    msg = str(err.value)
    assert field in msg and repr(value) in msg and allowed in msg, msg


def test_non_positive_or_misshaped_step_sizes():
    with pytest.raises(ValueError, match=r"init_step_sizes\[1\].*-0\.2.*> 0"):
        DiffusionConfig(num_steps=2, init_step_sizes=(0.1, -0.2))
    with pytest.raises(ValueError, match=r"init_step_sizes\[0\].*0\.0.*> 0"):
        DiffusionConfig(num_steps=1, init_step_sizes=(0.0,))
    with pytest.raises(ValueError, match="init_step_sizes has length 3; expected num_steps=2"):
        DiffusionConfig(num_steps=2, init_step_sizes=(0.1, 0.2, 0.3))


def test_schedule_function_rejects_unknown_names_and_bad_sizes():
    with pytest.raises(ValueError, match="step_size_schedule='warp'"):
        step_size_schedule("warp", 4)
    with pytest.raises(ValueError, match="num_steps=0 must be an integer >= 1"):
        step_size_schedule("linear", 0)


def test_gaussian_config_rejects():
    with pytest.raises(ValueError, match=r"init_std=-1\.0 must be a finite number > 0"):
        GaussianConfig(init_std=-1.0)
    with pytest.raises(ValueError, match="squash='relu'"):
        GaussianConfig(squash="relu")
    with pytest.raises(ValueError, match="hidden_sizes"):
        GaussianConfig(hidden_sizes=(64, 0))


def test_wrong_observation_and_latent_shapes():
    p = DiffusionPolicy(DiffusionConfig(obs_dim=3, action_dim=2, num_steps=2, hidden_sizes=(8,)))
    with pytest.raises(ValueError, match=r"obs has shape \(4, 2\); expected \(B, 3\)"):
        p.sample_chain(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"obs has shape \(3,\); expected \(B, 3\)"):
        p.init_latent(torch.zeros(3))
    with pytest.raises(ValueError, match=r"a_k has shape \(4, 3\); expected \(4, 2\)"):
        p.denoise_mean(torch.zeros(4, 3), torch.zeros(4, 3), 1)
    with pytest.raises(ValueError, match=r"a_k has shape \(5, 2\); expected \(4, 2\)"):
        p.step(torch.zeros(4, 3), torch.zeros(5, 2), 1)
    with pytest.raises(ValueError, match=r"a_prev has shape \(4, 1\); expected \(4, 2\)"):
        p.log_ratio(torch.zeros(4, 3), torch.zeros(4, 2), 1, torch.zeros(4, 1))
    g = GaussianPolicy(GaussianConfig(obs_dim=3, action_dim=2))
    with pytest.raises(ValueError, match=r"obs has shape \(4, 5\); expected \(B, 3\)"):
        g.sample_chain(torch.zeros(4, 5))


def test_diffusion_index_out_of_range():
    p = make_policy(num_steps=3)
    obs, a = torch.zeros(2, 0), torch.zeros(2, 1)
    for k in (0, 4, -1):
        with pytest.raises(ValueError, match=rf"k={k}; allowed: an integer in \[1, 3\]"):
            p.step(obs, a, k)
    with pytest.raises(ValueError, match=r"k has values in \[0, 2\]; allowed range is \[1, 3\]"):
        p.log_ratio(obs, a, torch.tensor([0, 2]), a)
    with pytest.raises(ValueError, match="integer tensor"):
        p.log_ratio(obs, a, torch.tensor([1.0, 2.0]), a)
    g = GaussianPolicy(GaussianConfig(obs_dim=0))
    with pytest.raises(ValueError, match=r"k=2; allowed: an integer in \[1, 1\]"):
        g.step(obs, a, 2)


@pytest.mark.parametrize("T", [-0.5, 0.0, float("inf")])
def test_bad_temperature(T):
    t = DoubleWell1D()
    p = make_policy(num_steps=2, squash="identity")
    for call in (lambda: t.log_z(T), lambda: estimate_bound(p, t, T),
                 lambda: bound_loss(p, t, T, 8), lambda: fit_sampler(p, t, T, steps=1),
                 lambda: best_gaussian_1d(t, T)):
        allowed = "(must be a finite number > 0|is not allowed; expected > 0)"
        with pytest.raises(ValueError, match=rf"temperature={T!r} {allowed}"):
            call()


def test_policy_target_mismatch_and_unknown_target():
    with pytest.raises(ValueError, match="'latent' target needs squash='identity'"):
        estimate_bound(make_policy(num_steps=2), DoubleWell1D(), 1.0)
    with pytest.raises(ValueError, match="action_dim=1 but target dim=2"):
        estimate_bound(make_policy(num_steps=2), FourModes2D(), 1.0)
    with pytest.raises(ValueError, match="target='banana' is not known"):
        make_target("banana")
    with pytest.raises(ValueError, match="sigma_r=0.0 must be"):
        FourModes2D(sigma_r=0.0)


def test_bad_action_bounds():
    with pytest.raises(ValueError, match=r"action_low/action_high have shapes \(3,\)/\(2,\)"):
        make_policy(num_steps=1, action_dim=2, action_low=(0, 0, 0), action_high=(1, 1))
    with pytest.raises(ValueError, match="action_high must be > action_low"):
        make_policy(num_steps=1, action_low=(1.0,), action_high=(0.0,))
