"""Toy environments (method.md §7) and their exact MaxEnt optima (I6, I7, I16)."""

from __future__ import annotations

import importlib
import math
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from scipy import stats

import damdp_lite.envs as envs
from damdp_lite.envs import (
    TOY_ENV_IDS,
    DoubleWellBanditEnv,
    FourModeBanditEnv,
    MultiGoalEnv,
    TurningDoubleWellEnv,
    TurningGMMEnv,
    TurningMultiWellEnv,
)

HORIZONS = {
    "damdp_lite/DoubleWellBandit-v0": None,
    "damdp_lite/FourModeBandit-v0": None,
    "damdp_lite/TurningDoubleWell-v0": 100,
    "damdp_lite/TurningMultiWell-v0": 100,
    "damdp_lite/TurningGMM-v0": 100,
    "damdp_lite/MultiGoal-v0": 30,
}
TURNING_IDS = [i for i in TOY_ENV_IDS if "Turning" in i]


def trapezoid_1d(log_density, n: int = 20001) -> float:
    """int_{-1}^{1} exp(log_density(a)) da on a fine grid (independent of the quad in the env)."""
    a = np.linspace(-1.0, 1.0, n)
    return float(np.trapezoid(np.exp(log_density(a)), a))


# --- registration and the Gymnasium API --------------------------------------------------------


def test_registration_ids_and_horizons():
    assert set(TOY_ENV_IDS) == set(HORIZONS)
    for env_id, horizon in HORIZONS.items():
        assert gymnasium.registry[env_id].max_episode_steps == horizon
    importlib.reload(envs)  # re-registration is guarded: no error, same ids
    assert set(envs.TOY_ENV_IDS) == set(HORIZONS)


def test_unknown_id_raises_gymnasium_error():
    # Documented behaviour: an unregistered id in our namespace raises NameNotFound, a subclass
    # of gymnasium.error.Error (Gymnasium also suggests close names in the message).
    with pytest.raises(gymnasium.error.Error):
        gymnasium.make("damdp_lite/NoSuchEnv-v0")


@pytest.mark.parametrize("env_id", TOY_ENV_IDS)
def test_check_env(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    messages = [str(w.message) for w in caught]
    if env_id == "damdp_lite/DoubleWellBandit-v0":
        # §7.1 prescribes Box(-inf, inf) spaces; Gymnasium warns about those, nothing else.
        messages = [m for m in messages if "infinity" not in m and "normalized space" not in m]
    assert messages == []


@pytest.mark.parametrize("env_id", TOY_ENV_IDS)
def test_determinism_under_seed(env_id):
    def rollout():
        env = gymnasium.make(env_id)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=3)
        out = [obs]
        for _ in range(5):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            out += [obs, np.array([r, term, trunc])]
            if term or trunc:
                obs, _ = env.reset()
                out.append(obs)
        return out

    for x, y in zip(rollout(), rollout(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("env_id", TURNING_IDS)
def test_turning_envs_truncate_at_horizon_and_never_terminate(env_id):
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    for t in range(1, 101):
        _, _, term, trunc, _ = env.step(np.array([0.3], dtype=np.float32))
        assert term is False
        assert trunc is (t == 100)


def test_multigoal_truncates_at_30():
    env = gymnasium.make("damdp_lite/MultiGoal-v0")
    env.reset(seed=0)
    for t in range(1, 31):
        _, _, term, trunc, _ = env.step(np.zeros(2, dtype=np.float32))
        assert term is False and trunc is (t == 30)


@pytest.mark.parametrize("env_id", ["damdp_lite/DoubleWellBandit-v0",
                                    "damdp_lite/FourModeBandit-v0"])
def test_bandits_terminate_after_one_step(env_id):
    env = gymnasium.make(env_id)
    obs, _ = env.reset(seed=0)
    assert np.all(obs == 0)
    _, _, term, trunc, _ = env.step(env.action_space.sample())
    assert term is True and trunc is False


# --- bandits (§7.1, §7.2, I6, I16) ------------------------------------------------------------


def test_double_well_bandit_reward_raw_and_optimum():
    env = DoubleWellBanditEnv()
    env.reset(seed=0)
    _, r, _, _, _ = env.step(np.array([2.0], dtype=np.float32))  # raw action: no clip
    assert r == -9.0
    np.testing.assert_allclose(env.reward_of_action(np.array([[0.0], [1.0], [-1.0]])),
                               [-1.0, 0.0, 0.0])
    assert env.log_z(1.0) == pytest.approx(0.67993, abs=1e-5)  # I6
    assert env.log_z(0.1) == pytest.approx(-0.55768, abs=1e-5)
    x = np.linspace(-4, 4, 40001)
    mass = np.trapezoid(np.exp(env.optimal_log_density(x[:, None], 0.25)), x)
    assert mass == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose(env.optimal_mode_masses(0.25), [0.5, 0.5], atol=1e-10)


def test_four_mode_bandit_reward_masses_and_density():
    env = FourModeBanditEnv()
    r = env.reward_of_action(np.array([[0.8, -0.8], [-0.8, 0.8], [1.0, -1.0], [3.0, -3.0]]))
    np.testing.assert_allclose(r[:2], [5.0, 3.0], atol=1e-6)
    assert r[2] == pytest.approx(-11.0, abs=1e-6)  # r(1, -1) = 5 - 16 (§7.2)
    assert r[3] == r[2]  # actions are clipped to the box
    masses = env.optimal_mode_masses(1.0)
    np.testing.assert_allclose(masses, [0.1154, 0.0057, 0.0258, 0.8530], atol=1e-4)  # I16
    np.testing.assert_allclose(masses, env.target.softmax_masses(1.0).numpy(), atol=2e-5)
    assert env.log_z(1.0) == pytest.approx(1.0053, abs=1e-4)
    ax = np.linspace(-1, 1, 801)
    g = np.stack(np.meshgrid(ax, ax, indexing="ij"), -1).reshape(-1, 2)
    dens = np.exp(env.optimal_log_density(g, 1.0)).reshape(801, 801)
    assert np.trapezoid(np.trapezoid(dens, ax), ax) == pytest.approx(1.0, abs=1e-6)
    assert env.optimal_log_density(np.array([[1.5, 0.0]]), 1.0)[0] == -np.inf
    eq = FourModeBanditEnv.equal_modes()
    assert eq.target.mode_rewards == (0.0, 0.0, 0.0, 0.0)
    made = gymnasium.make("damdp_lite/FourModeBandit-v0", mode_rewards=(0, 0, 0, 0), sigma_r=0.1)
    assert made.unwrapped.target.sigma_r == 0.1


# --- turning double-well (§7.3, I7) -----------------------------------------------------------


def test_turning_double_well_rewards():
    env = TurningDoubleWellEnv()
    r = env.reward_of_action(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0]))
    np.testing.assert_allclose(r, [0.85, 1.0, 1.0, 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(env.reward_of_action(np.array([[0.3], [-0.3]])),
                               env.reward_of_action(np.array([0.3, -0.3])))


@pytest.mark.parametrize("temperature,log_z", [(0.05, 19.4765), (0.1, 9.8515), (1.0, 1.5353)])
def test_turning_double_well_optimum_i7(temperature, log_z):
    env = TurningDoubleWellEnv()
    assert env.log_z(temperature) == pytest.approx(log_z, abs=5e-5)
    lp = env.optimal_log_density(np.array([[0.0], [0.5], [-0.5]]), temperature)
    assert math.exp(lp[0] - lp[1]) == pytest.approx(math.exp(-0.15 / temperature), rel=1e-9)
    assert lp[1] == pytest.approx(lp[2])
    assert trapezoid_1d(lambda a: env.optimal_log_density(a, temperature)) == pytest.approx(
        1.0, abs=1e-6)
    np.testing.assert_allclose(env.optimal_mode_masses(temperature), [0.5, 0.5], atol=1e-10)


def test_turning_double_well_snapping_and_dynamics():
    env = TurningDoubleWellEnv()
    env.reset(seed=0, options={"heading_deg": 0.0})
    obs, r, _, _, info = env.step(np.array([0.0], dtype=np.float32))  # a = 0 turns +45
    assert info["heading_deg"] == 45.0 and r == pytest.approx(0.85)
    np.testing.assert_allclose(obs, [math.sqrt(0.5)] * 2, atol=1e-7)
    np.testing.assert_allclose(info["position"], [math.sqrt(0.5)] * 2)
    _, r, _, _, info = env.step(np.array([-0.01], dtype=np.float32))  # a < 0 turns -45
    assert info["heading_deg"] == 0.0 and info["transition_turn_deg"] == -45.0
    _, r, _, _, info = env.step(np.array([-1.0], dtype=np.float32))
    assert info["heading_deg"] == 315.0 and r == 0.0
    headings = {TurningDoubleWellEnv().reset(seed=s)[1]["heading_deg"] for s in range(200)}
    assert headings == {45.0 * k for k in range(8)}


def test_optimal_log_density_torch_in_torch_out():
    env = TurningDoubleWellEnv()
    a = torch.linspace(-1, 1, 5, dtype=torch.float32)[:, None]
    lp = env.optimal_log_density(a, 0.1)
    assert isinstance(lp, torch.Tensor) and lp.shape == (5,) and lp.dtype == torch.float32
    np.testing.assert_allclose(lp.numpy(), env.optimal_log_density(a.double().numpy(), 0.1),
                               rtol=1e-6)
    assert env.optimal_log_density(np.array([1.5]), 0.1)[0] == -np.inf


# --- turning multi-well (§7.4) ----------------------------------------------------------------


def test_turning_multi_well_rewards_and_snapping():
    env = TurningMultiWellEnv()
    np.testing.assert_array_equal(env.preferred_turns_deg, [-67.5, -22.5, 22.5, 67.5])
    wells = np.array([-67.5, -22.5, 22.5, 67.5]) / 90
    mids = np.array([-45.0, 0.0, 45.0]) / 90
    np.testing.assert_allclose(env.reward_of_action(wells), 1.0, atol=1e-12)
    np.testing.assert_allclose(env.reward_of_action(mids), 0.85, atol=1e-12)
    np.testing.assert_allclose(env.reward_of_action(np.array([-1.0, 1.0])), 0.0, atol=1e-12)
    # left tail ((D + 90) / (theta_min + 90))^2 at D = -78.75: (11.25 / 22.5)^2
    assert env.reward_of_action(np.array([-78.75 / 90]))[0] == pytest.approx(0.25)
    # ties (exactly half-way) go to the lower angle
    np.testing.assert_array_equal(env.snap_turn_deg(np.array([0.0, 45.0, -45.0, 10.0, -90.0])),
                                  [-22.5, 22.5, -67.5, 22.5, -67.5])
    env.reset(seed=0, options={"heading_deg": 0.0})
    _, r, _, _, info = env.step(np.array([0.0], dtype=np.float32))
    assert info["heading_deg"] == 337.5 and r == pytest.approx(0.85)
    headings = {TurningMultiWellEnv().reset(seed=s)[1]["heading_deg"] for s in range(300)}
    assert headings == {22.5 + 45.0 * k for k in range(8)}  # {theta_i} u {theta_i + 180}


def test_turning_multi_well_optimum():
    env = TurningMultiWellEnv()
    for temperature in (0.1, 1.0):
        assert trapezoid_1d(lambda a, t=temperature: env.optimal_log_density(a, t)) == (
            pytest.approx(1.0, abs=1e-6))
        m = env.optimal_mode_masses(temperature)
        assert m.shape == (4,) and m.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(m, m[::-1], atol=1e-10)  # r is even in a
    a = np.linspace(-1, 1, 200001)
    p = np.exp(env.optimal_log_density(a, 0.1))
    inner = np.abs(a) <= 0.5
    assert np.trapezoid(p * inner, a) == pytest.approx(env.optimal_mode_masses(0.1)[1:3].sum(),
                                                       abs=1e-5)


# --- turning GMM (§7.5) -----------------------------------------------------------------------


def test_turning_gmm_means_and_unit_mass_at_t1():
    env = TurningGMMEnv()
    ref = np.random.default_rng(0).uniform(-0.75, 0.75, size=(8, 5)).astype(np.float32)
    np.testing.assert_array_equal(env.gmm_means, ref)
    for b in range(8):
        assert abs(math.exp(env.log_z(1.0, b)) - 1.0) < 4e-8  # §7.5: int e^r da ~ 1
        assert trapezoid_1d(lambda a, b=b: env.optimal_log_density(a, 0.5, heading_bin=b)) == (
            pytest.approx(1.0, abs=1e-6))
        # At T = 1, pi* = p_GMM: cell masses from the normal CDF (independent of the quadrature).
        mu = env.gmm_means[b].astype(np.float64)
        s = np.sort(mu)
        edges = np.concatenate([[-1.0], (s[1:] + s[:-1]) / 2, [1.0]])
        cdf = stats.norm.cdf((edges[:, None] - mu) / 0.05).mean(-1)  # (cells + 1,)
        expected = np.empty(5)
        expected[np.argsort(mu)] = np.diff(cdf)
        np.testing.assert_allclose(env.optimal_mode_masses(1.0, heading_bin=b), expected,
                                   atol=1e-7)


def test_turning_gmm_reward_uses_pre_turn_bin():
    env = TurningGMMEnv()
    obs, info = env.reset(seed=0, options={"heading_deg": 10.0})
    assert info["heading_bin"] == 0
    a = float(env.gmm_means[0, 0])
    _, r, _, _, info = env.step(np.array([a], dtype=np.float32))
    assert info["heading_deg"] == pytest.approx(10.0 + 120.0 * a, abs=1e-4)
    assert r == pytest.approx(float(env.reward_of_action(np.float32(a), 0)))
    np.testing.assert_allclose(env.optimal_log_density(np.array([a]), 1.0, obs=obs),
                               env.optimal_log_density(np.array([a]), 1.0, heading_bin=0))
    # the floor log 1e-12 and the clip to +-(1 - 1e-6)
    assert env.reward_of_action(np.array([1.0, 5.0]), 3).tolist() == [math.log(1e-12)] * 2
    with pytest.raises(ValueError, match="heading_bin"):
        env.optimal_log_density(np.array([0.0]), 1.0)
    headings = [TurningGMMEnv().reset(seed=s)[1]["heading_deg"] for s in range(50)]
    assert len(set(headings)) == 50 and all(0 <= h < 360 for h in headings)


# --- multi-goal (§7.6) ------------------------------------------------------------------------


def test_multigoal_reward_and_termination():
    env = MultiGoalEnv()
    obs, _ = env.reset(seed=0)
    assert np.all(np.abs(obs) < 0.5)
    env.reset(options={"position": (4.5, 0.0)})
    obs, r, term, trunc, info = env.step(np.array([0.5, 0.0], dtype=np.float32))
    assert r == pytest.approx(-30 * 0.25 + 10.0) and term is True and trunc is False
    assert info["goal_index"] == 0
    env.reset(options={"position": (0.0, 0.0)})
    obs, r, term, _, info = env.step(np.array([3.0, 0.0], dtype=np.float32))  # clipped to 1
    np.testing.assert_array_equal(obs, [1.0, 0.0])
    assert r == pytest.approx(-30.0 - 16.0) and term is False and info["goal_index"] == -1
    env.reset(options={"position": (6.5, 0.0)})
    obs, r, term, _, _ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    np.testing.assert_array_equal(obs, [7.0, 0.0])  # s' clipped to the box
    assert r == pytest.approx(-30.0 - 4.0) and term is False
    np.testing.assert_array_equal(
        env.goal_index(np.array([[0.0, 4.5], [-4.2, 0.0], [0.0, -5.0], [2.0, 2.0]])),
        [2, 1, 3, -1])


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls,kwargs,field", [
    (TurningDoubleWellEnv, {"well_height": 1.0}, "well_height"),
    (TurningDoubleWellEnv, {"well_height": 0.0}, "well_height"),
    (TurningDoubleWellEnv, {"step_size": -1.0}, "step_size"),
    (TurningMultiWellEnv, {"num_minima": 1}, "num_minima"),
    (TurningMultiWellEnv, {"num_minima": 2.5}, "num_minima"),
    (TurningMultiWellEnv, {"well_height": 1.5}, "well_height"),
    (TurningGMMEnv, {"gmm_std": 0.0}, "gmm_std"),
    (TurningGMMEnv, {"gmm_std": 0.2}, "gmm_std"),
    (TurningGMMEnv, {"num_bins": 0}, "num_bins"),
    (TurningGMMEnv, {"num_components": 0}, "num_components"),
    (FourModeBanditEnv, {"sigma_r": 0.0}, "sigma_r"),
    (FourModeBanditEnv, {"mode_rewards": (1.0, 2.0, 3.0)}, "mode_rewards"),
    (MultiGoalEnv, {"goal_threshold": 0.0}, "goal_threshold"),
    (MultiGoalEnv, {"init_sigma": -0.1}, "init_sigma"),
])
def test_bad_constructor_arguments(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_bad_arguments_through_make_and_temperature():
    with pytest.raises(ValueError, match="num_minima"):
        gymnasium.make("damdp_lite/TurningMultiWell-v0", num_minima=1)
    with pytest.raises(ValueError, match="temperature"):
        TurningDoubleWellEnv().optimal_log_density(np.zeros(1), 0.0)
    with pytest.raises(ValueError, match="action has shape"):
        TurningDoubleWellEnv().step(np.zeros(2))


# --- notebook 04 helpers: the 8 states and x-y paths ----------------------------------------


def test_turning_double_well_all_observations_and_rollout_paths():
    obs = TurningDoubleWellEnv.all_observations()
    assert obs.shape == (8, 2) and obs.dtype == np.float32
    env = TurningDoubleWellEnv()
    for row, h in zip(obs, TurningDoubleWellEnv.headings_deg, strict=True):
        np.testing.assert_array_equal(env.reset(options={"heading_deg": h})[0], row)
    # a constant turn a = +0.5 (DPPO's collapse): reward 1 per step, a closed octagon
    ep = env.rollout_paths(lambda o: np.full((len(o), 1), 0.5), [0.0, 90.0], 8)
    assert ep["positions"].shape == (2, 9, 2) and ep["rewards"].shape == (2, 8)
    np.testing.assert_allclose(ep["rewards"], 1.0)
    np.testing.assert_allclose(ep["positions"][:, -1], 0.0, atol=1e-12)
    np.testing.assert_array_equal(ep["headings_deg"][0], [(45.0 * t) % 360 for t in range(9)])
    # alternating sides by state zig-zags along one direction; every observation is one of the 8
    seen = []

    def zigzag(o):
        seen.append(o.copy())
        return np.where(o[:, 1:] > 0.1, -0.5, 0.5)

    ep = env.rollout_paths(zigzag, [0.0], 4)
    np.testing.assert_allclose(ep["positions"][0, -1], [2 + math.sqrt(2), math.sqrt(2)])
    visited = np.concatenate(seen)  # (4, 2)
    assert (np.abs(visited[:, None] - obs).max(-1) == 0).any(-1).all()
    assert env.t == 0  # the env itself was not stepped (copies were)
