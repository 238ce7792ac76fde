"""The training runner (`damdp_lite.train.train`, in a run directory) and the MuJoCo env layer:
exact resume, atomic weights-only checkpoints, NaN stop keeping the last good checkpoint, env
snapshots, reward scaling, evaluation, video, and the code-drift guard on the shipped runs."""

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from damdp_lite.algos import ppo as ppo_mod
from damdp_lite.algos import resolve
from damdp_lite.envs.make import load_vector_env_state, make_vector_env, vector_env_state
from damdp_lite.policies import tunable_fields
from damdp_lite.train import (
    WALL_CLOCK_FIELDS,
    RunConfig,
    algo_config,
    evaluate_policy,
    load_policy,
    run_fields,
    train,
)

TURNING = "damdp_lite/TurningDoubleWell-v0"


def tiny(algo: str, **overrides):
    """A few-second config of a CLI algorithm name or alias: 2 envs x 8 env steps, K = 2 for the
    diffusion policy, small nets. A base name without `policy=` is the Gaussian version, as on
    the command line (`ppo` = Gaussian PPO)."""
    spec, implied = resolve(algo)
    kind = implied.get("policy", overrides.get("policy", "gaussian"))
    base = dict(num_envs=2, num_env_steps=8, update_epochs=2, num_minibatches=2, num_steps=2,
                hidden_sizes=(16,), diffusion_steps_per_update=1, value_hidden_sizes=(16,),
                critic_hidden_sizes=(16,), kl_samples=4)
    names = {f.name for f in dataclasses.fields(spec.config_cls)} | set(tunable_fields(kind))
    base = {k: v for k, v in base.items() if k in names}
    if "policy" not in implied:
        base["policy"] = kind
    return algo_config(algo, **{**base, **overrides})


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_but_wall_clock(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) and len(a) > 0 and list(a[0]) == list(b[0])
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if key not in WALL_CLOCK_FIELDS:
                assert ra[key] == rb[key], (key, ra["iteration"], ra[key], rb[key])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("env_id,algo", [("Hopper-v5", "diffppo"), ("HalfCheetah-v5", "ppo"),
                                         (TURNING, "diffppo"), ("Hopper-v5", "diffreppo")])
def test_interrupted_and_resumed_run_writes_the_same_progress_csv(tmp_path, env_id, algo):
    steps = 2 * 8 * 6  # 6 iterations
    cfg = tiny(algo, env_id=env_id, total_env_steps=steps)
    assert cfg.num_iterations == 6
    full = RunConfig(run_dir=str(tmp_path / "a"), eval_every=2, eval_episodes=2,
                     checkpoint_every=2)
    train(cfg, full, progress=False)

    part = dataclasses.replace(full, run_dir=str(tmp_path / "b"))

    def crash_after_iteration_3(row):  # row 3 is written, the checkpoint is at iteration 2
        if row["iteration"] == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, part, progress=False, callback=crash_after_iteration_3)
    assert len(rows(tmp_path / "b" / "progress.csv")) == 4
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert ckpt["learner"]["iteration"] == 2
    res = train(tiny(algo, env_id=env_id, total_env_steps=steps), part, progress=False)
    assert res.resumed_from == 2
    same_but_wall_clock(rows(tmp_path / "a" / "progress.csv"),
                        rows(tmp_path / "b" / "progress.csv"))
    a, b = (torch.load(tmp_path / d / "policy.pt", weights_only=True) for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run given again is not re-run
    assert train(cfg, part, progress=False).history == []


def test_progress_csv_is_appended_every_iteration(tmp_path):
    cfg = tiny("ppo", env_id=TURNING, total_env_steps=48)
    run = RunConfig(run_dir=str(tmp_path), eval_every=0, eval_episodes=1)
    seen = []
    train(cfg, run, progress=False,
          callback=lambda row: seen.append(len(rows(tmp_path / "progress.csv"))))
    assert seen == [1, 2, 3]
    r = rows(tmp_path / "progress.csv")
    assert [x["eval_return"] != "" for x in r] == [False, False, True]  # only at the end
    assert list(r[0]) == list(run_fields(cfg)) == [*ppo_mod.CSV_FIELDS, "eval_return",
                                                   "eval_length", "sps"]


def test_other_config_in_same_run_dir_is_refused(tmp_path):
    run = RunConfig(run_dir=str(tmp_path), eval_episodes=1)
    train(tiny("ppo", env_id=TURNING, total_env_steps=32), run, progress=False)
    with pytest.raises(ValueError, match=r"holds a run with other settings \(config\.lr: "
                                         r"recorded 0\.0003, now 0\.001\)"):
        train(tiny("ppo", env_id=TURNING, total_env_steps=32, lr=1e-3), run, progress=False)


def test_run_recorded_before_a_field_existed_resumes_at_its_default(tmp_path):
    run = RunConfig(run_dir=str(tmp_path), eval_episodes=1)
    cfg = tiny("reppo", env_id=TURNING, total_env_steps=32)
    train(cfg, run, progress=False)
    path = tmp_path / "config.json"
    recorded = json.loads(path.read_text())
    assert recorded["format"] == 2 and recorded["algo"] == "reppo"
    del recorded["config"]["auto_temperature"]  # as written before the field was added
    path.write_text(json.dumps(recorded))
    assert train(cfg, run, progress=False).resumed_from == 2  # finished: nothing to do
    with pytest.raises(ValueError, match="holds a run with other settings"):  # not its default
        train(tiny("reppo", env_id=TURNING, total_env_steps=32, auto_temperature=False), run,
              progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny("diffppo", env_id=TURNING, total_env_steps=16 * 6)
    run = RunConfig(run_dir=str(tmp_path), checkpoint_every=2, eval_episodes=1)
    real, calls = ppo_mod.ppo_loss, {"n": 0}
    per_iteration = 2 * 2  # epochs x minibatches

    def poisoned(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 3 * per_iteration:  # iteration 3 goes bad
            stats["value_loss"] = torch.tensor(float("nan"))
        return loss, stats

    monkeypatch.setattr(ppo_mod, "ppo_loss", poisoned)
    good = None
    with pytest.raises(FloatingPointError, match=r"value_loss=nan at iteration 3") as err:
        train(cfg, run, progress=False)
    assert "last good checkpoint" in str(err.value) and "iteration 2" in str(err.value)
    good = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert good["learner"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in good["learner"]["policy"].values())
    assert len(rows(tmp_path / "progress.csv")) == 3


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_env_snapshot_restores_mujoco_exactly(vectorization):
    envs = make_vector_env("Hopper-v5", 2, vectorization, scale_rewards=True)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (60, 2, 3)).astype(np.float32)
    envs.reset(seed=3)
    for a in acts[:20]:
        envs.step(a)
    state = vector_env_state(envs)
    after = [envs.step(a) for a in acts[20:]]
    envs.close()
    fresh = make_vector_env("Hopper-v5", 2, vectorization, scale_rewards=True)
    fresh.reset(seed=99)  # a different episode, then overwritten
    load_vector_env_state(fresh, state)
    again = [fresh.step(a) for a in acts[20:]]
    fresh.close()
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(after, again, strict=True):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
        assert np.array_equal(te1, te2) and np.array_equal(tr1, tr2)
        if "episode" in i1:
            assert np.array_equal(i1["episode"]["r"], i2["episode"]["r"])


def test_reward_scaling_leaves_logged_returns_unscaled():
    acts = np.random.default_rng(1).uniform(-1, 1, (1000, 1, 6)).astype(np.float32)
    out = {}
    for scale in (False, True):
        envs = make_vector_env("HalfCheetah-v5", 1, scale_rewards=scale)
        envs.reset(seed=0)
        rewards, ep = [], None
        for a in acts:
            _, r, _, _, info = envs.step(a)
            rewards.append(r[0])
            if "episode" in info and info["_episode"][0]:
                ep = info["episode"]["r"][0]
        envs.close()
        out[scale] = (np.array(rewards), ep)
    raw, scaled = out[False][0], out[True][0]
    assert out[False][1] == pytest.approx(raw.sum(), rel=1e-5)  # 1000-step truncation
    assert out[True][1] == out[False][1]  # statistics see the raw reward
    ratio = raw[100:] / scaled[100:]
    assert np.all(ratio > 0) and not np.allclose(ratio, 1.0)


def test_bad_env_inputs_name_the_field():
    with pytest.raises(ValueError, match="env_id='Nope-v0'"):
        make_vector_env("Nope-v0", 2)
    with pytest.raises(ValueError, match="vectorization='threads'"):
        make_vector_env("Hopper-v5", 2, "threads")
    with pytest.raises(ValueError, match="num_envs=0"):
        make_vector_env("Hopper-v5", 0)
    with pytest.raises(ValueError, match="algo='banana'"):
        algo_config("banana")
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        RunConfig(checkpoint_every=0)
    with pytest.raises(ValueError, match="diffusion_steps_per_update=-1"):
        ppo_mod.PPOConfig(diffusion_steps_per_update=-1)


def test_evaluate_policy_and_video(tmp_path):
    run = RunConfig(run_dir=str(tmp_path), eval_episodes=1)
    train(tiny("diffppo", env_id="Hopper-v5", total_env_steps=16), run, progress=False)
    policy = load_policy(tmp_path)
    rets, lens, frames = evaluate_policy(policy, "Hopper-v5", episodes=2, seed=5, render=True,
                                         max_frames=7)
    rets2, lens2, _ = evaluate_policy(policy, "Hopper-v5", episodes=2, seed=5)
    assert rets == rets2 and lens == lens2  # seeded, and rendering changes nothing
    assert all(math.isfinite(r) for r in rets) and all(1 <= n <= 1000 for n in lens)
    assert len(frames) == 7 and frames[0].ndim == 3 and frames[0].dtype == np.uint8

    from damdp_lite.plotting import write_video

    path = write_video(frames, str(tmp_path / "v.mp4"))
    assert (tmp_path / "v.mp4").stat().st_size > 1000 and path.endswith(".mp4")
    with pytest.raises(ValueError, match="video="):
        write_video(frames, str(tmp_path / "v.avi"))


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboard is installed here")
    run = RunConfig(run_dir=str(tmp_path), tensorboard=True, eval_episodes=1)
    with pytest.raises(ValueError, match="tensorboard=True needs the tensorboard package"):
        train(tiny("ppo", env_id=TURNING, total_env_steps=16), run, progress=False)


def test_ctrl_c_stops_at_the_end_of_the_iteration_with_its_checkpoint(tmp_path):
    """A SIGINT during iteration 2 (sent by the callback, as a terminal's Ctrl-C would be):
    the loop finishes that iteration, checkpoints it and stops, naming it; the handler that was
    installed before is back afterwards."""
    import os
    import signal

    from damdp_lite.train import RunInterrupted, StopRequest

    before = signal.getsignal(signal.SIGINT)
    cfg = tiny("ppo", env_id=TURNING, total_env_steps=16 * 8)
    run = RunConfig(run_dir=str(tmp_path / "r"), checkpoint_every=100, eval_episodes=1)
    sent = []

    def ctrl_c(row):
        if row["iteration"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
            sent.append(row["iteration"])

    with pytest.raises(RunInterrupted, match=r"stopped at iteration 3 \(checkpoint: iteration 3\)"):
        train(cfg, run, progress=False, callback=ctrl_c)
    assert sent == [2] and len(rows(tmp_path / "r" / "progress.csv")) == 3
    assert signal.getsignal(signal.SIGINT) is before

    req = StopRequest.install()  # a second Ctrl-C stops at once
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert req.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs between bytecodes
                pass
    finally:
        req.restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_config_diff_names_each_differing_leaf_by_dotted_name():
    from damdp_lite.train import algo_config, config_diff

    a = algo_config("reppo", policy="diffusion", env_id="HalfCheetah-v5").to_dict()
    assert config_diff(a, a) == []
    b = json.loads(json.dumps(a))
    b["policy"]["prior_std"], b["gamma"] = 1.0, 0.9
    del b["policy"]["hidden_init"]
    assert config_diff(a, b) == [
        ("gamma", a["gamma"], 0.9),
        ("policy.hidden_init", a["policy"]["hidden_init"], None),
        ("policy.prior_std", a["policy"]["prior_std"], 1.0)]
