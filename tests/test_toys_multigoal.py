"""benchmarks/toys_multigoal.py at a tiny budget (the JSON schema notebook 08 reads), the
multi-goal and turning multi-well / GMM presets, `MultiGoalEnv.rollout_paths`, and SAC's fixed
temperature."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from damdp_lite.algos import REPPOConfig, SACConfig
from damdp_lite.algos.sac import SAC
from damdp_lite.envs import MultiGoalEnv, TurningGMMEnv, TurningMultiWellEnv
from damdp_lite.presets import (
    MULTIGOAL_GAMMA_ENV,
    MULTIGOAL_LABELS,
    MULTIGOAL_LAMBDA_ENV,
    MULTIGOAL_METHODS,
    MULTIGOAL_SMOKE,
    MULTIGOAL_TEMPERATURE,
    TURNING_MULTI_ENVS,
    multigoal_config,
    turning_multi_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import toys_multigoal as tm  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(MULTIGOAL_METHODS))
def test_multigoal_presets_are_valid_fixed_temperature_configs(method):
    cfg = multigoal_config(method, seed=3)
    cls, algo, policy = MULTIGOAL_METHODS[method]
    assert type(cfg) is cls and cfg.seed == 3 and cfg.env_id == "damdp_lite/MultiGoal-v0"
    assert cfg.auto_temperature is False and cfg.temperature_init == MULTIGOAL_TEMPERATURE
    assert cfg.policy.tanh_jacobian is True
    diffusion = method.startswith("diff")
    K = cfg.policy.num_steps
    assert K == (policy["num_steps"] if diffusion else 1)
    assert cfg.gamma == pytest.approx(MULTIGOAL_GAMMA_ENV ** (1 / K), rel=1e-12)
    assert cfg.gamma ** K == pytest.approx(MULTIGOAL_GAMMA_ENV, rel=1e-12)
    if cls is REPPOConfig:
        assert cfg.td_lambda ** K == pytest.approx(MULTIGOAL_LAMBDA_ENV, rel=1e-12)
        assert cfg.v_min < -1_000 < 0 < cfg.v_max  # holds returns of -60 a step and the bonus
    assert cfg.total_env_steps == algo["total_env_steps"] and cfg.num_iterations >= 100
    assert method in MULTIGOAL_LABELS


def test_multigoal_overrides_recompute_the_discount_for_k():
    cfg = multigoal_config("diffsac", num_steps=8)
    assert cfg.policy.num_steps == 8 and cfg.gamma == pytest.approx(0.99 ** (1 / 8), rel=1e-12)
    assert multigoal_config("diffsac", gamma=0.9).gamma == 0.9  # a chosen gamma is kept
    assert multigoal_config("sac", temperature_init=10.0).temperature_init == 10.0


@pytest.mark.parametrize("method", list(MULTIGOAL_METHODS))
def test_multigoal_smoke_budgets_learn_at_least_once(method):
    cfg = multigoal_config(method, smoke=True)
    assert cfg.total_env_steps == MULTIGOAL_SMOKE[type(cfg)]["total_env_steps"]
    if isinstance(cfg, SACConfig):  # SACConfig.check refuses a run without a gradient step
        assert cfg.learning_starts < cfg.total_env_steps


def test_preset_functions_refuse_unknown_names():
    with pytest.raises(ValueError, match="method='ppo' is not allowed"):
        multigoal_config("ppo")
    with pytest.raises(ValueError, match="env='double_well' is not allowed"):
        turning_multi_config("double_well", "diffppo")
    with pytest.raises(ValueError, match="method='diffsac' is not allowed"):
        turning_multi_config("gmm", "diffsac")


@pytest.mark.parametrize("env", list(TURNING_MULTI_ENVS))
def test_turning_multi_presets(env):
    for method in tm.TURNING_METHODS:
        cfg = turning_multi_config(env, method, seed=1)
        assert cfg.env_id == TURNING_MULTI_ENVS[env]["env_id"] and cfg.seed == 1
        assert cfg.temperature == TURNING_MULTI_ENVS[env]["temperature"]
        assert cfg.policy.tanh_jacobian is True  # the optima are in action space
    assert turning_multi_config("gmm", "diffppo").temperature == 1.0  # the GMM is pi* at T = 1


def test_gmm_optimum_is_the_mixture_at_t1_in_every_evaluation_state():
    """At T = 1 the per-state bin masses of pi* are the GMM's (its normaliser is 1, §7.5)."""
    edges = np.linspace(-1, 1, 201)
    pi = tm.exact_state_bin_masses("gmm", 1.0, edges)
    env = TurningGMMEnv()
    x = 0.5 * (edges[1:] + edges[:-1])
    for s, h in enumerate(tm.state_headings("gmm")):
        gmm = np.exp(env.gmm_log_prob(x, int(env.heading_bin(h)))) * 0.01
        assert np.abs(pi[s] - gmm / gmm.sum()).max() < 2e-3
    edges_, exact = tm.mode_edges_and_exact("gmm", 1.0)
    assert exact.shape == (8, 5) and np.allclose(exact.sum(1), 1.0, atol=1e-6)
    assert all(np.all(np.diff(e) > 0) and e[0] == -1 and e[-1] == 1 for e in edges_)


def test_multi_well_reference_is_the_same_symmetric_four_modes_in_every_state():
    _, exact = tm.mode_edges_and_exact("multi_well", 0.05)
    assert exact.shape == (8, 4) and np.allclose(exact, exact[0])  # the reward ignores s
    assert np.allclose(exact[0], exact[0][::-1]) and exact[0].sum() == pytest.approx(1.0)
    assert exact[0].min() > 0.1  # every well carries mass (the outer ones less: r -> 0 at +-1)
    assert np.allclose(tm.state_headings("multi_well"), TurningMultiWellEnv().initial_headings_deg)


# ---------------------------------------------------------------------------------------------
# Env rollouts, first-action statistics, SAC's fixed temperature
# ---------------------------------------------------------------------------------------------


def test_rollout_paths_freezes_finished_episodes():
    env = MultiGoalEnv()
    speeds = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]])  # reaches (5, 0) after 5 steps

    out = env.rollout_paths(lambda obs: speeds, 3, num_steps=12)
    assert out["positions"].shape == (3, 13, 2) and out["rewards"].shape == (3, 12)
    assert out["lengths"].tolist() == [5, 9, 12] and out["goal"].tolist() == [0, 2, -1]
    assert np.allclose(out["positions"][0, 5:], [5.0, 0.0])  # repeated after the end
    assert np.all(out["rewards"][0, 5:] == 0)
    assert out["rewards"][0, 4] == pytest.approx(-30.0 + 10.0)  # action cost, at the goal, bonus
    assert np.allclose(out["positions"][2], 0.0)
    with pytest.raises(ValueError, match="num_episodes=0"):
        env.rollout_paths(lambda obs: speeds, 0)


def test_first_action_stats():
    acts = np.array([[1.0, 0.1], [-0.9, 0.0], [0.05, 0.8], [0.1, -0.7], [0.0, 0.1]])
    st = tm.first_action_stats(acts)
    assert st["first_dir_fractions"] == [0.2, 0.2, 0.4, 0.2]  # (0, 0.1) points to (0, 5)
    assert st["first_centre_fraction"] == pytest.approx(0.2)


def test_sac_fixed_temperature_stays_put():
    base = multigoal_config("sac", smoke=True, total_env_steps=128, learning_starts=64)
    fixed = SAC(base)
    for _ in range(base.num_iterations):
        row = fixed.train_iteration()
    assert math.isfinite(row["critic_loss"]) and row["temperature"] == pytest.approx(
        MULTIGOAL_TEMPERATURE, rel=1e-6)
    fixed.envs.close()
    learned = SAC(SACConfig(**{**base.to_dict(), "auto_temperature": True}))
    for _ in range(base.num_iterations):
        row = learned.train_iteration()
    assert row["temperature"] != pytest.approx(MULTIGOAL_TEMPERATURE, rel=1e-6)
    learned.envs.close()


# ---------------------------------------------------------------------------------------------
# The script at a tiny budget: the schema of the JSON
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_payload(tmp_path_factory):
    out = tmp_path_factory.mktemp("multigoal") / "08.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "toys_multigoal.py"),
                    "--smoke", "--seeds", "0", "--out", str(out)], check=True, env=env,
                   cwd=ROOT, capture_output=True, timeout=600)
    return json.loads(out.read_text())


def test_smoke_json_multigoal_schema(smoke_payload):
    mg = smoke_payload["multigoal"]
    assert mg["goals"] == MultiGoalEnv.goals.tolist() and mg["start"] == [0.0, 0.0]
    assert set(mg["results"]) == set(MULTIGOAL_METHODS)
    for method, r in mg["results"].items():
        assert r["label"] == MULTIGOAL_LABELS[method] and r["temperature"] == 2.0
        assert r["config"]["auto_temperature"] is False and "seed" not in r["config"]
        run = r["seeds"]["0"]
        assert "error" not in run, run
        frac = np.array(run["goal_fractions"])
        assert frac.shape == (4,) and np.all(frac >= 0)
        assert frac.sum() + run["none_fraction"] == pytest.approx(1.0, abs=1e-4)
        assert run["goals_reached"] == int((frac > 0).sum())
        assert run["goals_reached_5pct"] <= run["goals_reached"] <= 4
        goals = np.array(run["goal_of_episode"])
        assert len(goals) == run["n_episodes"] == tm.N_EPISODES_SMOKE
        assert np.allclose(np.bincount(goals[goals >= 0], minlength=4) / len(goals), frac,
                           atol=1e-4)
        assert len(run["paths"]) == tm.N_PATHS_SMOKE
        assert all(np.array(p).shape[1] == 2 and np.allclose(p[0], 0.0) for p in run["paths"])
        first = np.array(run["first_actions"])
        assert first.shape == (tm.N_FIRST_SMOKE, 2) and np.abs(first).max() <= 1.0
        assert sum(run["first_dir_fractions"]) == pytest.approx(1.0, abs=1e-4)
        assert run["train_seconds"] > 0 and math.isfinite(run["eval_return"])
        assert run["env_steps"] == MULTIGOAL_SMOKE[MULTIGOAL_METHODS[method][0]][
            "total_env_steps"]
        assert set(r["summary"]["goals_reached"]) == {"0"}


def test_smoke_json_turning_schema(smoke_payload):
    tu = smoke_payload["turning"]
    assert set(tu) == set(TURNING_MULTI_ENVS)
    for name, part in tu.items():
        assert part["temperature"] == TURNING_MULTI_ENVS[name]["temperature"]
        ref = np.array(part["reference"]["bin_masses"])
        assert ref.shape == (8, tm.HIST_BINS) and np.allclose(ref.sum(1), 1.0, atol=1e-4)
        assert len(part["state_headings_deg"]) == 8
        for method in tm.TURNING_METHODS:
            run = part["results"][method]["seeds"]["0"]
            assert "error" not in run, run
            counts = np.array(run["hist_counts"])
            assert counts.shape == (8, tm.HIST_BINS)
            assert counts.sum(1).tolist() == [tm.N_HIST_SMOKE] * 8
            for p in run["per_state"]:
                assert p["kl_q_pi"] >= -1e-9 and p["kl_pi_q"] >= -1e-9 and 0 <= p["mode_tv"] <= 1
            assert run["mean_kl_q_pi"] == pytest.approx(
                np.mean([p["kl_q_pi"] for p in run["per_state"]]), rel=1e-3)
    assert smoke_payload["_meta"]["smoke"] is True and smoke_payload["_meta"]["seeds"] == [0]


def test_unknown_part_is_refused():
    with pytest.raises(SystemExit):
        tm.main(["--only", "mujoco"])



def test_state_histograms_draw_a_per_state_optimum():
    """`plot_state_histograms` draws row s of an `(S, G)` optimum on column s (the GMM case)."""
    from damdp_lite import plotting

    grid = np.linspace(-1, 1, 5)
    dens = np.arange(15.0).reshape(3, 5)
    fig = plotting.plot_state_histograms({"DiffPPO": np.ones((3, 10))}, np.linspace(-1, 1, 11),
                                         target=(grid, dens))
    for s, ax in enumerate(fig.axes[:3]):
        assert np.allclose(ax.get_lines()[-1].get_ydata(), dens[s])
    plotting.plt.close(fig)
