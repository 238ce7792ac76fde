"""DeepMind Control suite tasks through our env maker (`damdp_lite/envs/dmc.py`): a real
1000-step dm-control episode, Gymnasium's `check_env`, exact snapshots (MuJoCo state, per-episode
model fields, the task's RandomState, dm-control's step counter), one-line errors for bad ids, a
small training run that resumes bit-identically, and the simulator versions every run records."""

import csv
import dataclasses
import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from damdp_lite.envs import dmc
from damdp_lite.envs.make import (
    load_vector_env_state,
    make_vector_env,
    simulator_versions,
    vector_env_state,
)
from damdp_lite.report import collect_runs
from damdp_lite.train import WALL_CLOCK_FIELDS, RunConfig, algo_config, train

pytest.importorskip("dm_control")
pytest.importorskip("shimmy")

CARTPOLE = "dm_control/cartpole-swingup-v0"
REACHER = "dm_control/reacher-hard-v0"  # its target is a model field rewritten every episode


def test_a_real_episode_is_1000_steps_truncated_with_flat_float32_observations():
    envs = make_vector_env(CARTPOLE, 1)
    space = envs.single_action_space
    assert isinstance(space, gym.spaces.Box) and space.shape == (1,)
    assert np.array_equal(space.low, [-1.0]) and np.array_equal(space.high, [1.0])
    assert envs.single_observation_space == gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards, ends = [], []
    for t in range(1000):
        obs, reward, terminated, truncated, info = envs.step(rng.uniform(-1, 1, (1, 1)))
        assert obs.dtype == np.float32 and obs.shape == (1, 5) and np.isfinite(obs).all()
        assert not terminated[0]
        rewards.append(float(reward[0]))
        if truncated[0]:
            ends.append(t)
    envs.close()
    assert ends == [999]  # the 1000th step ends the episode as a truncation
    assert info["final_obs"][0].dtype == np.float32 and info["final_obs"][0].shape == (5,)
    assert info["episode"]["l"][0] == 1000
    assert info["episode"]["r"][0] == pytest.approx(sum(rewards), rel=1e-6)
    assert all(0.0 <= r <= 1.0 for r in rewards)  # suite rewards lie in [0, 1]


def test_gymnasium_check_env_passes_on_the_wrapped_env():
    envs = make_vector_env(CARTPOLE, 1)
    env = envs.unwrapped.envs[0]  # EnvSnapshot(FlatObservation(shimmy's env))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    envs.close()
    expected = ("is different from the unwrapped version",  # check_env's note on wrappers
                "observation space minimum value is -infinity",  # dm-control's specs: unbounded
                "observation space maximum value is infinity")
    unexpected = [str(w.message) for w in caught
                  if not any(e in str(w.message) for e in expected)]
    assert not unexpected, unexpected


def _steps(envs, actions) -> list[tuple]:
    return [tuple(np.copy(x) for x in envs.step(a)[:4]) for a in actions]


def test_snapshot_restores_physics_model_fields_random_state_and_step_counter():
    """A snapshot taken 5 steps before the end of an episode, restored into envs that ran other
    episodes: the next 30 steps (through the truncation and the reset that draws a new target
    from the restored RandomState) are bit-identical."""
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (1025, 2, 2))
    target = lambda e: np.copy(  # noqa: E731  (env 0's target position, a model field)
        e.unwrapped.envs[0].unwrapped._env.physics.named.model.geom_pos["target"])
    envs = make_vector_env(REACHER, 2)
    envs.reset(seed=0)
    _steps(envs, acts[:995])
    state, where = vector_env_state(envs), target(envs)
    after = _steps(envs, acts[995:])
    envs.close()
    fresh = make_vector_env(REACHER, 2)
    fresh.reset(seed=7)
    assert not np.array_equal(target(fresh), where)  # another episode: another target
    load_vector_env_state(fresh, state)
    assert np.array_equal(target(fresh), where)
    again = _steps(fresh, acts[995:])
    fresh.close()
    assert [t[3].any() for t in after].index(True) == 4  # the episode ends inside the window
    for a, b in zip(after, again, strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
    snap = state["envs"][0]
    assert snap["kind"] == "dmc" and snap["step_count"] == 995 and snap["elapsed_steps"] is None
    assert set(snap["model"]) == set(dmc.MODEL_FIELDS) and "_target_size" in snap["attrs"]


def test_a_bad_snapshot_is_refused_in_one_line():
    envs = make_vector_env(CARTPOLE, 1)
    envs.reset(seed=0)
    state = vector_env_state(envs)
    snap = state["envs"][0]
    bad = {"step_count": ({**snap, "step_count": 1001}, "'step_count' must be an int in [0, 1000]"),
           "model": ({**snap, "model": {**snap["model"], "geom_pos": torch.zeros(2, 3,
                                                                            dtype=torch.float64)}},
                     "model['geom_pos'] must be a torch.float64 tensor of shape (5, 3)"),
           "gauss": ({**snap, "np_random": json.dumps({**json.loads(snap["np_random"]),
                                                       "has_gauss": 2})},
                     "is not a RandomState state")}
    for mutated, expected in bad.values():
        with pytest.raises(ValueError) as err:
            load_vector_env_state(envs, {**state, "envs": [mutated]})
        assert expected in str(err.value) and "\n" not in str(err.value)
    envs.close()


@pytest.mark.parametrize("env_id,needles", [
    ("dm_control/cartpole-swingupp-v0", ["is not a DeepMind Control suite task",
                                         "did you mean 'dm_control/cartpole-swingup-v0'"]),
    ("dm_control/CmuHumanoidRunWalls-v0", ["is a dm-control composer env"]),
])
def test_a_bad_dmc_id_is_one_line_naming_the_field_and_what_is_allowed(env_id, needles):
    with pytest.raises(ValueError) as err:
        make_vector_env(env_id, 1)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"env_id={env_id!r} ")
    assert all(n in msg for n in needles), msg
    assert "'dm_control/<domain>-<task>-v0'" in msg and "cheetah-run" in msg, msg


def test_the_config_accepts_dmc_ids_and_refuses_unknown_ones():
    assert algo_config("ppo", env_id=CARTPOLE).env_id == CARTPOLE
    with pytest.raises(ValueError, match=r"env_id='dm_control/nope-v0'"):
        algo_config("ppo", env_id="dm_control/nope-v0")


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cartpole_runs(tmp_path_factory):
    """One uninterrupted PPO run on cartpole-swingup (1 env x 256 steps, 4 iterations: the
    1000-step episode ends in iteration 3) and one stopped after iteration 3 (checkpoint at 2)
    and resumed, so that the resumed part crosses the time limit."""
    tmp = tmp_path_factory.mktemp("dmc")
    cfg = algo_config("ppo", env_id=CARTPOLE, num_envs=1, num_env_steps=256, update_epochs=1,
                      num_minibatches=2, hidden_sizes=(16,), value_hidden_sizes=(16,),
                      total_env_steps=256 * 4)
    full = RunConfig(run_dir=str(tmp / "a"), eval_every=0, eval_episodes=1, checkpoint_every=2)
    train(cfg, full, progress=False)
    part = dataclasses.replace(full, run_dir=str(tmp / "b"))

    class Stop(Exception):
        pass

    def stop_after_iteration_3(row):
        if row["iteration"] == 3:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, part, progress=False, callback=stop_after_iteration_3)
    resumed = train(cfg, part, progress=False)
    return tmp, cfg, resumed


def test_a_small_training_run_writes_progress_and_resumes_bit_identically(cartpole_runs):
    tmp, cfg, resumed = cartpole_runs
    assert resumed.resumed_from == 2
    a, b = (_rows(tmp / d / "progress.csv") for d in "ab")
    assert len(a) == 4 and [r["iteration"] for r in a] == ["0", "1", "2", "3"]
    returns = [float(r["episode_return"]) for r in a if r["episode_return"] not in ("", "nan")]
    assert returns and all(0.0 <= x <= 1000.0 for x in returns)  # the episodes end in iteration 3
    assert np.isfinite(float(a[-1]["eval_return"]))
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if k not in WALL_CLOCK_FIELDS} == \
            {k: v for k, v in rb.items() if k not in WALL_CLOCK_FIELDS}
    pa, pb = (torch.load(tmp / d / "policy.pt", weights_only=True) for d in "ab")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_every_run_records_the_simulator_versions(cartpole_runs):
    tmp, _, _ = cartpole_runs
    record = json.loads((tmp / "a" / "config.json").read_text())
    assert record["versions"] == simulator_versions()
    assert record["versions"]["mujoco"] is not None and record["versions"]["dm_control"]


def test_mixed_mujoco_versions_are_one_warning_in_reports_and_on_resume(cartpole_runs):
    tmp, cfg, _ = cartpole_runs
    other = tmp / "other"
    shutil.copytree(tmp / "a", other)
    record = json.loads((other / "config.json").read_text())
    record["run"]["eval_episodes"] = 1
    record["versions"] = {"mujoco": "4.0.0", "dm_control": None}
    record["label"] = "ppo_old"
    (other / "config.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning) as caught:
        collect_runs([str(tmp / "a"), str(other)])
    said = [str(w.message) for w in caught if "MuJoCo versions" in str(w.message)]
    assert len(said) == 1 and "\n" not in said[0]
    assert "mujoco 4.0.0: 1 runs" in said[0] and f"mujoco {simulator_versions()['mujoco']}" \
        in said[0]
    run = RunConfig(run_dir=str(other), eval_every=0, eval_episodes=1, checkpoint_every=2)
    with pytest.warns(UserWarning, match=r"started under mujoco 4\.0\.0, dm_control None and "
                                         r"resumes under mujoco "):
        train(cfg, dataclasses.replace(run, label="ppo_old"), progress=False)


def test_the_throughput_benchmark_times_every_task():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "dmc_throughput.py"
    spec = importlib.util.spec_from_file_location("dmc_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert len(bench.TASKS) == 5 and all(t in dmc.suite_env_ids() for t in bench.TASKS)
    sps = bench.measure(bench.TASKS[:2], num_envs=2, steps=4, slice_steps=2)
    assert list(sps) == list(bench.TASKS[:2]) and all(v > 0 for v in sps.values())
