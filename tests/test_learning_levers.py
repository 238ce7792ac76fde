"""The levers that make the DA-MDP methods learn on MuJoCo/DMC (method.md §10): the KL estimator
choice, the critic's support in reward units and its clipped-target diagnostic, the official
LeCun init, the presets of every algorithm (each fix a documented field), and the diagnostics
every learner writes to progress.csv."""

import copy
import math

import pytest
import torch
from conftest import make_policy, randomise_control

from damdp_lite import GaussianConfig, GaussianPolicy, step_kl
from damdp_lite.algos import ALGOS
from damdp_lite.algos.common import DIFFUSION_MUJOCO, resolve, value_support
from damdp_lite.algos.reppo import REPPOConfig, trust_region_kl
from damdp_lite.chain import saturated_fraction
from damdp_lite.critics import HLGaussSupport
from damdp_lite.diffusion import ControlNet
from damdp_lite.train import train


def _perturbed_gaussians():
    torch.manual_seed(0)
    cfg = GaussianConfig(obs_dim=3, action_dim=2, hidden_sizes=(16,), state_dependent_std=True)
    old = GaussianPolicy(cfg)
    new = copy.deepcopy(old)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return old, new


@pytest.mark.parametrize("kind", ["diffusion", "gaussian"])
def test_exact_and_monte_carlo_kl_agree_in_expectation(kind):
    """The two estimators of the trust region's K * KL differ only by zero-mean noise: the mean
    of many one-sample MC estimates per state is within 4.5 standard errors of the closed form."""
    if kind == "diffusion":
        old = make_policy(num_steps=4, action_dim=2, obs_dim=3)
        new = copy.deepcopy(old)
        randomise_control(new, scale=0.3)
        with torch.no_grad():
            new.rho.add_(0.2 * torch.randn_like(new.rho))
    else:
        old, new = _perturbed_gaussians()
    K = old.num_steps
    B, M = 32, 4000
    obs, a_k = torch.randn(B, 3), 2 * torch.randn(B, 2)
    k = torch.randint(1, K + 1, (B,))
    exact = trust_region_kl(old, new, obs, a_k, k, "exact", 16)
    assert torch.allclose(exact, K * step_kl(old, new, obs, a_k, k))
    gen = torch.Generator().manual_seed(1)
    one = trust_region_kl(old, new, obs.repeat(M, 1), a_k.repeat(M, 1), k.repeat(M), "mc", 1,
                          gen).reshape(M, B)
    mc, se = one.mean(0), one.std(0) / M ** 0.5
    z = ((mc - exact) / se).abs()
    assert z.max() < 4.5, (z.max(), mc[:3], exact[:3])
    # the MC estimate's noise per state is what the closed form removes
    assert one.std(0).mean() > 0.1 * exact.mean()


def test_exact_kl_is_zero_at_a_copy_and_differentiable_in_the_new_policy():
    old, new = _perturbed_gaussians()
    obs = torch.randn(8, 3)
    k = torch.ones(8, dtype=torch.long)
    assert trust_region_kl(old, old, obs, torch.zeros(8, 2), k, "exact", 1).abs().max() < 1e-6
    kl = trust_region_kl(old.requires_grad_(False), new, obs, torch.zeros(8, 2), k, "exact", 1)
    kl.mean().backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in new.parameters())


def test_kl_estimator_is_a_checked_config_field():
    assert REPPOConfig().kl_estimator == "mc"  # official; old config.json files mean this
    assert ALGOS["reppo"].config().kl_estimator == "exact"
    with pytest.raises(ValueError, match=r"kl_estimator='sampled'.*'exact', 'mc'"):
        REPPOConfig(kl_estimator="sampled")


def test_value_support_is_in_reward_units_and_holds_the_tasks_returns():
    lo, hi = value_support("dm_control/cheetah-run-v0", 0.99)
    assert lo < 0 < 100 < hi  # rewards in [0, 1] over a horizon of 100 env steps
    lo, hi = value_support("HalfCheetah-v5", 0.99)
    assert lo <= -100 and hi >= 1200
    assert value_support("damdp_lite/TurningDoubleWell-v0", 0.99) is None
    for name in ("reppo", "wpo"):
        cfg = ALGOS[name].config(env_id="Hopper-v5", policy="diffusion")
        assert not cfg.scale_rewards
        assert (cfg.v_min, cfg.v_max) == value_support("Hopper-v5",
                                                       cfg.gamma ** cfg.policy.num_steps)
    cfg = ALGOS["reppo"].config(v_max=50.0)  # a caller's support is kept
    assert cfg.v_max == 50.0 and cfg.v_min == REPPOConfig.v_min


def test_clipped_fraction_counts_targets_outside_the_support():
    s = HLGaussSupport(-1.0, 1.0, 11)
    assert s.clipped_fraction(torch.tensor([-2.0, -1.0, 0.0, 1.0, 1.5])) == pytest.approx(0.4)


def test_saturated_fraction():
    a0 = torch.tensor([[0.0, 3.0], [-2.0, -5.0]])  # tanh: 0, 0.995, -0.964, -0.9999
    assert saturated_fraction(a0) == pytest.approx(0.5)


def test_lecun_init_gives_official_feature_scale_and_a_near_zero_output():
    torch.manual_seed(0)
    x = torch.randn(2048, 2 * 6 + 17 + 16)
    rms = {}
    for init in ("torch", "lecun_normal"):
        net = ControlNet(17, 6, (256, 256), hidden_init=init)
        rms[init] = net.net[:-1](x).pow(2).mean().sqrt().item()
        assert net.net[-1].weight.abs().max() < 1e-6
        if init == "lecun_normal":
            w = net.net[0].weight
            fan_in = w.shape[1]
            assert w.std().item() == pytest.approx(math.sqrt(1 / fan_in), rel=0.05)
            assert w.abs().max() <= 2 / 0.8796 * math.sqrt(1 / fan_in) + 1e-6
            assert net.net[0].bias.abs().max() == 0
    assert rms["lecun_normal"] > 2.5 * rms["torch"]


def test_mujoco_presets_set_each_lever_as_a_documented_field():
    diff = ALGOS["reppo"].config(policy="diffusion")
    for field, value in DIFFUSION_MUJOCO.items():
        assert getattr(diff.policy, field) == value
    assert diff.kl_estimator == "exact" and diff.num_bins == 101
    assert diff.auto_temperature is False and diff.temperature_init == 0.01  # DA-MDP REPPO's T
    assert ALGOS["reppo"].config(policy="gaussian").auto_temperature  # REPPO's own rule
    wpo = ALGOS["wpo"].config(policy="diffusion")
    assert wpo.num_bins == 301 and wpo.policy.per_dim_step_sizes
    assert not wpo.policy.learn_friction and wpo.kl_bound == 0.02 and wpo.auto_temperature
    reppo = ALGOS["reppo"].config(policy="gaussian")  # REPPO's own configuration
    assert reppo.policy.state_dependent_std and reppo.policy.tanh_jacobian
    assert reppo.entropy_target_mult == 0.5
    sac = ALGOS["sac"].config(policy="gaussian")
    assert sac.policy.state_dependent_std and sac.policy.tanh_jacobian
    assert sac.entropy_target_mult == 1.0
    diffppo, _ = resolve("diffppo")
    assert diffppo.config(policy="diffusion").policy.prior_std == DIFFUSION_MUJOCO["prior_std"]
    # every lever names its official value in its docstring
    from damdp_lite.config import field_docs
    from damdp_lite.diffusion import DiffusionConfig
    docs = {**field_docs(DiffusionConfig), **field_docs(REPPOConfig)}
    for name in ("kl_estimator", "v_min", "v_max", "num_bins", "prior_std", "tanh_jacobian",
                 "hidden_init", "per_dim_step_sizes", "learn_friction"):
        assert "official" in docs[name].lower(), name


@pytest.mark.parametrize("algo,extra", [
    ("reppo", {}), ("wpo", {}), ("ppo", {}),
    ("sac", {"learning_starts": 32, "batch_size": 32})])
def test_every_learner_logs_the_diagnostics(algo, extra):
    """saturated, kl (and kl_violation / dq_dx / clipped_targets / clip_fraction where the
    algorithm has them) are finite numbers in progress.csv after two iterations."""
    a = ALGOS[algo]
    fields = dict(env_id="damdp_lite/TurningDoubleWell-v0", policy="diffusion", num_steps=2,
                  hidden_sizes=(16,), num_envs=4, num_env_steps=8, total_env_steps=64,
                  seed=0, **extra)
    if algo != "sac":
        fields.update(update_epochs=1, num_minibatches=2)
        fields["critic_hidden_sizes" if algo != "ppo" else "value_hidden_sizes"] = (16,)
    else:
        fields["critic_hidden_sizes"] = (16,)
    cfg = a.config_cls.build(**{**a.preset, **fields})
    rows = train(cfg, progress=False).history
    assert set(a.learner_cls.CSV_FIELDS) >= set(rows[-1]) - {"eval_return", "eval_length", "sps"}
    want = {"reppo": ("kl", "kl_violation", "saturated", "dq_dx", "clipped_targets"),
            "wpo": ("kl", "kl_violation", "saturated", "dq_dx", "clipped_targets"),
            "ppo": ("kl", "clip_fraction", "saturated"),
            "sac": ("kl", "saturated", "dq_dx")}[algo]
    for name in want:
        v = float(rows[-1][name])
        assert math.isfinite(v) and (v >= 0 or name == "kl"), (name, v)  # an MC KL may be < 0
    assert 0 <= float(rows[-1]["saturated"]) <= 1
