"""DA-MDP PPO (method.md §5.3, I10): losses, one code path for both policies, smoke runs."""

import csv
import math
from dataclasses import fields

import pytest
import torch
from conftest import randomise_control

from damdp_lite import DiffusionConfig, DiffusionPolicy, GaussianConfig, GaussianPolicy
from damdp_lite.algos import (
    PPOConfig,
    ValueNetwork,
    actor_advantage,
    dest_loss,
    policy_loss,
    ppo_loss,
)
from damdp_lite.algos.ppo import CSV_FIELDS
from damdp_lite.config import field_docs
from damdp_lite.damdp import (
    augmented_discounts,
    collect_rollout,
    gae,
    make_vector_env,
    soft_reward_current,
)
from damdp_lite.policies import build_policy
from damdp_lite.train import WALL_CLOCK_FIELDS, RunConfig, run_fields, train

TINY = dict(hidden_sizes=(16, 16), value_hidden_sizes=(16, 16), update_epochs=2,
            num_minibatches=4, lr=3e-4, temperature=0.1)


def learn_batch(policy, value_net, T, env_id="damdp_lite/TurningDoubleWell-v0", L=8, N=3):
    """A rollout turned into the flattened batch that `PPO.train_iteration` feeds to `ppo_loss`."""
    envs = make_vector_env(env_id, N)
    obs, _ = envs.reset(seed=0)
    ro, _ = collect_rollout(envs, policy, value_net, L, obs, torch.Generator().manual_seed(0))
    r_soft = soft_reward_current(ro.reward, ro.ell, T)
    adv, ret = gae(r_soft, ro.value, ro.next_value, ro.terminated, ro.truncated,
                   augmented_discounts(ro.k, 0.99), 0.95)
    batch = dict(obs=ro.obs, a_k=ro.a_k, k=ro.k, a_prev=ro.a_prev, log_prob=ro.log_prob,
                 advantages=adv, returns=ret, r_soft=r_soft, reward=ro.reward)
    return {key: v.reshape(ro.num_transitions, *v.shape[2:]) for key, v in batch.items()}, ro


def diffusion_policy(K=3):
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=2, action_dim=1, num_steps=K,
                                             hidden_sizes=(16,), step_size_schedule="constant"))
    randomise_control(policy, scale=0.3)
    return policy


# ----------------------------------------------------------------------------- I10
def test_i10_ratio_is_one_on_the_first_minibatch():
    policy = diffusion_policy()
    value_net = ValueNetwork(2, 1, (16,))
    batch, _ = learn_batch(policy, value_net, T=0.1)
    idx = torch.randperm(batch["k"].numel(), generator=torch.Generator().manual_seed(1))[:17]
    _, stats = ppo_loss(policy, value_net, {k: v[idx] for k, v in batch.items()}, 0.2, 0.1, 0.5)
    assert stats["ratio_dev"] < 1e-5 and stats["clip_fraction"] == 0


def test_i10_ratio_in_every_learn_phase_of_training():
    cfg = PPOConfig.build(env_id="damdp_lite/TurningDoubleWell-v0", num_steps=2, num_envs=2,
                          num_env_steps=8, total_env_steps=48, **TINY)
    history = train(cfg, progress=False).history
    assert len(history) == 3
    assert all(row["ratio_dev_first_minibatch"] < 1e-5 for row in history)


def test_i10_temperature_zero_is_dppo():
    """T = 0: A_hat = A^GAE centred; T > 0 swaps the rollout's ell for ell_theta."""
    policy = diffusion_policy()
    batch, _ = learn_batch(policy, ValueNetwork(2, 1, (16,)), T=0.0)
    assert torch.equal(batch["r_soft"], batch["reward"])
    ell_new = policy.log_ratio(batch["obs"], batch["a_k"], batch["k"], batch["a_prev"])
    adv = batch["advantages"]
    assert torch.allclose(actor_advantage(adv, batch["r_soft"], batch["reward"], ell_new, 0.0),
                          adv - adv.mean())
    T, shift = 0.3, torch.randn(adv.shape, generator=torch.Generator().manual_seed(2))
    r_soft = batch["reward"] - T * (ell_new + shift)  # the rollout's ell was ell_theta + shift
    a_hat = actor_advantage(adv, r_soft, batch["reward"], ell_new, T)
    expect = adv + T * shift
    assert torch.allclose(a_hat, expect - expect.mean(), atol=1e-5)
    assert not a_hat.requires_grad


def test_i10_dest_loss_moves_only_the_step_sizes():
    policy = diffusion_policy()
    batch, _ = learn_batch(policy, ValueNetwork(2, 1, (16,)), T=0.5)
    args = (batch["obs"], batch["a_k"], batch["k"], batch["a_prev"])
    new_lp = policy.denoise_log_prob(batch["obs"], batch["a_k"], batch["k"], batch["a_prev"])
    g = torch.Generator().manual_seed(3)
    ratio = (new_lp - batch["log_prob"] + 0.3 * torch.randn(new_lp.shape, generator=g)).exp()
    adv_hat = torch.randn(ratio.shape, generator=g)
    _, active = policy_loss(ratio, adv_hat, 0.2)
    assert 0 < active.sum() < active.numel()  # some samples are clipped
    loss = dest_loss(ratio, policy.noise_log_prob(*args), active, 0.5)
    control = list(policy.control_net.parameters())
    grads = torch.autograd.grad(loss, [policy.rho, policy.phi, *control], allow_unused=True)
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0
    assert all(g is None or (g == 0).all() for g in grads[2:])
    # the clipped surrogate, in contrast, moves the control network
    pg, _ = policy_loss(ratio, adv_hat, 0.2)
    g_pg = torch.autograd.grad(pg, control, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in g_pg)


def test_policy_loss_active_mask_counts_ties():
    ratio = torch.tensor([1.0, 1.5, 0.5, 1.5, 0.5])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    loss, active = policy_loss(ratio, adv, 0.2)
    assert active.tolist() == [True, False, True, True, False]
    assert math.isclose(float(loss), -(1.0 + 1.2 + 0.5 - 1.5 - 0.8) / 5, rel_tol=1e-6)


def test_gaussian_policy_same_losses_plain_maxent_ppo():
    """The same ppo_loss on a Gaussian: ell = log pi, no noising kernel, dest_loss = 0."""
    policy = GaussianPolicy(GaussianConfig(obs_dim=2, action_dim=1, hidden_sizes=(16,)))
    value_net = ValueNetwork(2, 1, (16,))
    batch, ro = learn_batch(policy, value_net, T=0.1)
    assert (ro.k == 1).all()
    loss, stats = ppo_loss(policy, value_net, batch, 0.2, 0.1, 0.5)
    assert stats["dest_loss"] == 0 and stats["ratio_dev"] < 1e-5
    loss.backward()
    assert policy.log_std.grad is not None and torch.isfinite(loss)


# ----------------------------------------------------------------------------- smoke runs
@pytest.mark.parametrize("policy", ["diffusion", "gaussian"])
@pytest.mark.parametrize("env_id,num_env_steps,total", [
    ("damdp_lite/DoubleWellBandit-v0", 16, 192),
    ("damdp_lite/TurningDoubleWell-v0", 50, 200),  # episodes truncate at env step 100
])
def test_smoke_train_ppo(tmp_path, policy, env_id, num_env_steps, total):
    kind = {"num_steps": 2} if policy == "diffusion" else {}
    cfg = PPOConfig.build(env_id=env_id, policy=policy, num_envs=2, num_env_steps=num_env_steps,
                          total_env_steps=total, **kind, **TINY)
    res = train(cfg, progress=False)  # in memory: no files
    history = res.history
    assert res.run_dir is None
    assert res.policy.num_steps == (2 if policy == "diffusion" else 1)
    assert len(history) == cfg.num_iterations
    assert tuple(history[0]) == run_fields(cfg) == (*CSV_FIELDS, "eval_return", "eval_length",
                                                    "sps")
    for row in history:
        for key in ("policy_loss", "dest_loss", "value_loss", "approx_kl", "mean_ell"):
            assert math.isfinite(row[key]), key
        assert row["eval_return"] == row["eval_length"] == ""  # no evaluation in memory
    assert history[-1]["env_steps"] == total
    assert math.isfinite(history[-1]["episode_return"])  # an episode finished
    # the same config into a run directory: the CSV log, and the same seed gives the same rows
    path = tmp_path / "log" / "progress.csv"
    again = train(cfg, RunConfig(run_dir=str(path.parent), eval_every=0, eval_episodes=1),
                  progress=False).history
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == cfg.num_iterations and tuple(rows[0]) == run_fields(cfg)

    def drop(h):  # repr: exact floats, and nan == nan; evaluations only ran in the run dir
        return [repr({k: v for k, v in r.items()
                      if k not in (*WALL_CLOCK_FIELDS, "eval_return", "eval_length")}) for r in h]

    assert drop(again) == drop(history)


@pytest.mark.filterwarnings("ignore:.*reward is a NaN")
def test_callback_stops_and_nan_raises():
    cfg = PPOConfig.build(env_id="damdp_lite/DoubleWellBandit-v0", num_steps=2, num_envs=2,
                          num_env_steps=4, total_env_steps=40, **TINY)
    history = train(cfg, progress=False, callback=lambda row: row["iteration"] == 1).history
    assert len(history) == 2
    envs = make_vector_env(cfg.env_id, 1)
    policy = build_policy(cfg.policy, envs.single_observation_space.shape[0],
                          envs.single_action_space)  # unbounded Box: squash="identity"
    envs.close()
    assert isinstance(policy, DiffusionPolicy) and policy.squash_mode == "identity"
    with torch.no_grad():
        policy.rho.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"loss.*iteration 0"):
        train(cfg, policy=policy, progress=False)


# ----------------------------------------------------------------------------- config
def test_config_fields_documented_and_env_discounts():
    docs = field_docs(PPOConfig)
    assert set(docs) == {f.name for f in fields(PPOConfig)}
    cfg = PPOConfig.build(num_steps=8).with_env_discounts(gamma=0.99, gae_lambda=0.95)
    assert math.isclose(cfg.gamma, 0.998744, abs_tol=1e-6)
    assert math.isclose(cfg.gae_lambda, 0.993609, abs_tol=1e-6)
    gauss = PPOConfig(policy="gaussian").with_env_discounts(gamma=0.99, gae_lambda=0.95)
    assert gauss.gamma == 0.99 and gauss.gae_lambda == 0.95  # K = 1
    kept = PPOConfig.build(num_steps=8, gamma=0.9).with_env_discounts(["gamma"], gamma=0.99,
                                                                      gae_lambda=0.95)
    assert kept.gamma == 0.9 and kept.gae_lambda == cfg.gae_lambda  # a chosen value is kept


@pytest.mark.parametrize("field,value,allowed", [
    ("env_id", "NoSuchEnv-v0", "registered"), ("num_steps", 0, "in [1, 1000]"),
    ("temperature", -0.1, ">= 0"), ("gamma", 1.5, "(0, 1]"),
    ("gae_lambda", -0.1, "[0, 1]"), ("lr", 0.0, "> 0"), ("clip_coef", -0.2, "> 0"),
    ("num_envs", 0, "in [1, 4096]"), ("policy", "flow", "diffusion"),
    ("total_env_steps", 10, ">= num_envs"), ("num_minibatches", 10**6, "<="),
    ("hidden_sizes", (16, 0), "in [1, 4096]"), ("noising_drift_at", "middle", "conditioning"),
])
def test_config_rejects(field, value, allowed):
    with pytest.raises(ValueError) as err:
        PPOConfig.build(**{field: value})  # policy fields (num_steps, ...) by name
    msg = str(err.value)
    assert field in msg and allowed in msg, msg


def test_non_box_action_space_rejected():
    cfg = PPOConfig(env_id="CartPole-v1", num_envs=1, num_env_steps=4, total_env_steps=4)
    with pytest.raises(ValueError, match=r"env_id='CartPole-v1'.*Discrete"):
        train(cfg, progress=False)


def test_dest_loss_is_exactly_zero_at_temperature_zero_even_if_a_ratio_overflows():
    """DPPO (T = 0) regression: exp(log w) overflows to inf in float32 for log w > 88.7, and
    inf * T with T = 0 made dest_loss (hence the loss) nan, stopping training."""
    ratio = torch.tensor([1.0, float("inf"), 0.5])
    noise_lp = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    active = torch.tensor([True, True, False])
    d = dest_loss(ratio, noise_lp, active, 0.0)
    assert d.item() == 0.0 and torch.isfinite(d)
    assert dest_loss(ratio[[0, 2]], noise_lp[[0, 2]], active[[0, 2]], 0.5).item() == 0.5


def test_ppo_loss_gradient_stays_finite_when_a_ratio_overflows():
    """Regression: one sample with log w > 88.7 (exp overflows float32) on the clipped branch has
    PPO gradient 0, but exp(log w) = inf made autograd produce nan for every parameter."""
    policy = diffusion_policy()
    value_net = ValueNetwork(2, 1, (16,))
    batch, _ = learn_batch(policy, value_net, T=0.0)
    with torch.no_grad():
        new_lp = policy.denoise_log_prob(batch["obs"], batch["a_k"], batch["k"], batch["a_prev"])
    i = int(batch["advantages"].argmax())  # A_hat > 0 there: the clipped branch is selected
    batch["log_prob"] = new_lp.clone()
    batch["log_prob"][i] -= 120.0  # log w = 120 at sample i
    for T in (0.0, 0.1):
        policy.zero_grad()
        loss, stats = ppo_loss(policy, value_net, batch, 0.2, T, 0.5)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(stats["approx_kl"])
        assert all(torch.isfinite(p.grad).all() for p in policy.parameters() if p.grad is not None)
