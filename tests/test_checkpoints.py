"""Run-directory files (`damdp_lite.checkpoint`) and env snapshots (`envs.make.EnvSnapshot`):
nothing in a checkpoint is ever unpickled, crafted or corrupt files are one-line `ValueError`s
naming the file, failed writes leave no trace, and toy-env snapshots resume bit-identically in
fresh envs, sync and async."""

from __future__ import annotations

import copy
import errno
import io
import os
import pickle
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from damdp_lite import checkpoint as ckpt_mod
from damdp_lite.algos import algo_of
from damdp_lite.checkpoint import load_checkpoint, load_policy_weights, save_atomic
from damdp_lite.envs import TOY_ENV_IDS
from damdp_lite.envs.make import (
    EnvSnapshot,
    load_vector_env_state,
    make_vector_env,
    vector_env_state,
)
from damdp_lite.train import RunConfig, algo_config, load_policy, train

TOY = "damdp_lite/TurningDoubleWell-v0"


def tiny(env_id: str, iterations: int):
    return algo_config("diffppo", env_id=env_id, total_env_steps=16 * iterations, num_envs=2,
                       num_env_steps=8, update_epochs=1, num_minibatches=2, num_steps=2,
                       hidden_sizes=(16,), value_hidden_sizes=(16,))


def run_settings(run_dir: Path) -> RunConfig:
    return RunConfig(run_dir=str(run_dir), checkpoint_every=1, eval_episodes=1)


def stopped_run(tmp_path_factory, env_id: str, name: str) -> tuple[Path, object]:
    """A real run directory whose checkpoint.pt is mid-run (iteration 1 of 3)."""
    run_dir = tmp_path_factory.mktemp(name)
    cfg = tiny(env_id, 3)
    train(cfg, run_settings(run_dir), progress=False, callback=lambda row: True)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["learner"]["iteration"] == 1
    return run_dir, cfg


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    return stopped_run(tmp_path_factory, TOY, "toy_run")


@pytest.fixture(scope="module")
def hopper_run(tmp_path_factory):
    return stopped_run(tmp_path_factory, "Hopper-v5", "hopper_run")


def one_line(excinfo, *parts: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, (part, msg)
    return msg


# --- crafted checkpoints never run code -------------------------------------------------------


class Payload:
    """Unpickling this opens (creates) `marker`: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_copy(run, tmp_path: Path, craft) -> Path:
    """A copy of the run directory whose checkpoint.pt went through `craft(ckpt) -> ckpt`."""
    src, _ = run
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    ckpt = torch.load(dst / "checkpoint.pt", weights_only=True)
    torch.save(craft(ckpt), dst / "checkpoint.pt")
    return dst


def attempts(run_dir: Path, cfg, state_for_envs, learner: bool = True
             ) -> list[tuple[str, BaseException | None]]:
    """Every way a run resumes from `run_dir`, each tried whatever the previous did: env state
    into fresh sync and async envs, a fresh learner's `load_state_dict`, `load_checkpoint`,
    and `train` resuming the directory."""
    out = []

    def attempt(name, fn):
        try:
            fn()
            out.append((name, None))
        except Exception as err:  # noqa: BLE001 - collected, asserted by the caller
            out.append((name, err))

    for vec in ("sync", "async"):
        def into_fresh_envs(vec=vec):
            envs = make_vector_env(cfg.env_id, cfg.num_envs, vec)
            try:
                envs.reset(seed=1)
                load_vector_env_state(envs, state_for_envs())
            finally:
                envs.close()
        attempt(f"load_vector_env_state ({vec})", into_fresh_envs)

    def into_learner():
        learner = algo_of(cfg).learner_cls(cfg)
        try:
            learner.load_state_dict(torch.load(run_dir / "checkpoint.pt",
                                               weights_only=True)["learner"])
        finally:
            learner.close()

    if learner:
        attempt("learner.load_state_dict", into_learner)
    attempt("load_checkpoint", lambda: load_checkpoint(run_dir / "checkpoint.pt"))
    attempt("train (resume)", lambda: train(cfg, run_settings(run_dir), progress=False))
    return out


def assert_refused(results, marker: Path, file: Path) -> None:
    assert not marker.exists(), f"code from the checkpoint ran: {marker} was created"
    for name, err in results:
        assert isinstance(err, ValueError), (name, err)
        msg = str(err)
        assert "\n" not in msg, (name, msg)
        if name in ("load_checkpoint", "train (resume)"):
            assert str(file) in msg, (name, msg)


@pytest.mark.parametrize("which", ["toy", "hopper"])
def test_pickled_env_state_in_a_checkpoint_never_runs(which, request, tmp_path):
    run = request.getfixturevalue(f"{which}_run")
    marker = tmp_path / "marker"

    def craft(ckpt):
        for i, snap in enumerate(ckpt["learner"]["envs"]["envs"]):
            # the toy: the old layout; Hopper: its physics snapshot with the kind switched
            ckpt["learner"]["envs"]["envs"][i] = {**(snap if which == "hopper" else {}),
                                                  "kind": "pickle",
                                                  "env": pickle.dumps(Payload(marker))}
        return ckpt

    run_dir = crafted_copy(run, tmp_path, craft)
    path = run_dir / "checkpoint.pt"
    results = attempts(run_dir, run[1], lambda: torch.load(path, weights_only=True)["learner"]
                       ["envs"])
    assert_refused(results, marker, path)
    assert "kind 'pickle' is not accepted" in str(results[0][1])


@pytest.mark.parametrize("which", ["toy", "hopper"])
def test_object_with_reduce_in_a_checkpoint_never_runs(which, request, tmp_path):
    run = request.getfixturevalue(f"{which}_run")
    marker = tmp_path / "marker"

    def craft(ckpt):
        ckpt["learner"]["envs"]["envs"][0] = Payload(marker)
        return ckpt

    run_dir = crafted_copy(run, tmp_path, craft)
    path = run_dir / "checkpoint.pt"
    with pytest.raises(pickle.UnpicklingError):  # torch refuses it: the file never loads
        torch.load(path, weights_only=True)

    def in_memory_state():  # the object itself handed to the envs (async would pickle it)
        state = vector_env_state_of(run)
        state["envs"][0] = Payload(marker)
        return state

    results = attempts(run_dir, run[1], in_memory_state, learner=False)
    assert_refused(results, marker, path)
    msg = dict(results)["load_checkpoint"].args[0]
    assert "holds objects other than tensors, numbers and strings" in msg
    assert "was not loaded" in msg


def vector_env_state_of(run) -> dict:
    return torch.load(run[0] / "checkpoint.pt", weights_only=True)["learner"]["envs"]


def test_a_real_checkpoint_loads_and_resumes(toy_run, tmp_path):
    ckpt = load_checkpoint(toy_run[0] / "checkpoint.pt")
    assert ckpt["format"] == 1 and ckpt["learner"]["iteration"] == 1
    run_dir = tmp_path / "run"
    shutil.copytree(toy_run[0], run_dir)
    assert train(toy_run[1], run_settings(run_dir), progress=False).resumed_from == 1


# --- env snapshots: structure checked before anything is restored ------------------------------


MUJOCO_BAD = {
    "unknown kind": (lambda s: {**s, "kind": "nope"}, "kind 'nope' is not accepted"),
    "pickle kind": (lambda s: {**s, "kind": "pickle"}, "kind 'pickle' is not accepted"),
    "missing key": (lambda s: {k: v for k, v in s.items() if k != "np_random"},
                    "missing key(s) 'np_random'"),
    "extra key": (lambda s: {**s, "env": b"x"}, "unexpected key(s) 'env'"),
    "bytes for physics": (lambda s: {**s, "physics": b"\x00" * 8},
                          "'physics' must be a torch.float64 tensor"),
    "physics shape": (lambda s: {**s, "physics": s["physics"][:-1]}, "of shape ("),
    "physics dtype": (lambda s: {**s, "physics": s["physics"].float()}, "torch.float32 tensor"),
    "not a dict": (lambda s: [s], "must be a dict, got list"),
    "np_random not json": (lambda s: {**s, "np_random": "{"}, "'np_random' is not valid JSON"),
    "np_random bad state": (lambda s: {**s, "np_random": '{"bit_generator": "PCG64"}'},
                            "'np_random' is not a valid PCG64 state"),
    "elapsed_steps str": (lambda s: {**s, "elapsed_steps": "3"}, "'elapsed_steps' must be"),
}

TOY_BAD = {
    "bytes for position": (lambda s: {**s, "attrs": {**s["attrs"], "position": b"ab"}},
                           "attrs['position'] must be a torch.float64 tensor of shape (2,)"),
    "missing attr": (lambda s: {**s, "attrs": {k: v for k, v in s["attrs"].items()
                                               if k != "t"}}, "missing key(s) 't'"),
    "extra attr": (lambda s: {**s, "attrs": {**s["attrs"], "evil": 1}},
                   "unexpected key(s) 'evil'"),
    "int as float": (lambda s: {**s, "attrs": {**s["attrs"], "t": 3.0}},
                     "attrs['t'] must be a int, got float"),
    "other env": (lambda s: {**s, "env": "MultiGoalEnv"}, "snapshot of a 'MultiGoalEnv' env"),
    "mujoco kind": (lambda s: {**s, "kind": "mujoco"}, "does not fit this env"),
}


def _restore_and_expect(env_id, mutate, expected, vectorization="sync"):
    envs = make_vector_env(env_id, 2, vectorization)
    try:
        envs.reset(seed=0)
        for _ in range(3):
            envs.step(envs.action_space.sample())
        state = vector_env_state(envs)
        bad = copy.copy(state)
        bad["envs"] = [mutate(state["envs"][0]), state["envs"][1]]
        before = vector_env_state(envs)
        with pytest.raises(ValueError) as err:
            load_vector_env_state(envs, bad)
        one_line(err, "envs[0]", expected)
        after = vector_env_state(envs)  # nothing was restored
        assert after["envs"][1]["np_random"] == before["envs"][1]["np_random"]
        assert after["envs"][0]["np_random"] == before["envs"][0]["np_random"]
    finally:
        envs.close()


@pytest.mark.parametrize("case", MUJOCO_BAD)
def test_bad_mujoco_snapshot_is_refused(case):
    mutate, expected = MUJOCO_BAD[case]
    _restore_and_expect("Hopper-v5", mutate, expected)


@pytest.mark.parametrize("case", TOY_BAD)
def test_bad_toy_snapshot_is_refused(case):
    mutate, expected = TOY_BAD[case]
    _restore_and_expect(TOY, mutate, expected)


def test_bad_snapshot_is_refused_before_async_workers_see_it():
    _restore_and_expect(TOY, TOY_BAD["bytes for position"][0], "attrs['position']", "async")


def test_bad_vector_state_is_refused():
    envs = make_vector_env(TOY, 2, scale_rewards=True)
    try:
        envs.reset(seed=0)
        state = vector_env_state(envs)
        cases = [({**state, "envs": state["envs"][:1]}, "the checkpoint has 1 envs"),
                 ({**state, "extra": 1}, "unexpected key(s) 'extra'"),
                 ({**state, "episode_count": "3"}, "'episode_count' must be an int"),
                 ({**state, "episode_stats": {**state["episode_stats"],
                                              "episode_returns": torch.zeros(3)}},
                  "episode_stats['episode_returns'] must be"),
                 ({**state, "reward_scale": {**state["reward_scale"], "mean": b"0"}},
                  "reward_scale['mean'] must be a number"),
                 ({**state, "envs": b"\x80\x04"}, "'envs' must be a list")]
        for bad, expected in cases:
            with pytest.raises(ValueError) as err:
                load_vector_env_state(envs, bad)
            one_line(err, expected)
    finally:
        envs.close()


class NoStateAttrs(gym.Env):
    """A non-MuJoCo env that does not declare its dynamic state."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_env_without_state_attrs_cannot_be_snapshotted():
    env_id = "damdp_lite_test/NoStateAttrs-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=NoStateAttrs, max_episode_steps=5)
    envs = make_vector_env(env_id, 1)
    try:
        envs.reset(seed=0)
        with pytest.raises(ValueError) as err:
            vector_env_state(envs)
        one_line(err, env_id, "NoStateAttrs", "must declare", "STATE_ATTRS")
    finally:
        envs.close()
    with pytest.raises(ValueError, match="must declare"):
        _ = EnvSnapshot(NoStateAttrs()).snapshot


def test_every_toy_env_declares_its_state():
    import damdp_lite.envs as toy

    for cls in (toy.TurningDoubleWellEnv, toy.TurningMultiWellEnv, toy.TurningGMMEnv,
                toy.DoubleWellBanditEnv, toy.FourModeBanditEnv, toy.MultiGoalEnv):
        assert isinstance(cls.STATE_ATTRS, tuple)
    assert toy.DoubleWellBanditEnv.STATE_ATTRS == toy.FourModeBanditEnv.STATE_ATTRS == ()
    assert toy.TurningGMMEnv.STATE_ATTRS == ("heading_deg", "position", "t")
    assert toy.MultiGoalEnv.STATE_ATTRS == ("position",)


# --- toy snapshots continue bit-identically in fresh envs ---------------------------------------


def _steps(envs, actions):
    out = []
    for a in actions:
        obs, rew, term, trunc, info = envs.step(a)
        final = [None if not flag else np.array(o) for flag, o in
                 zip(info.get("_final_obs", [False] * len(obs)),
                     info.get("final_obs", [None] * len(obs)), strict=True)]
        ep = (np.array(info["episode"]["r"]), np.array(info["episode"]["l"])) \
            if "episode" in info else None
        out.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), final, ep))
    return out


@pytest.mark.parametrize("vectorization", ["sync", "async"])
@pytest.mark.parametrize("env_id", TOY_ENV_IDS)
def test_toy_snapshot_continues_bit_identically_in_fresh_envs(env_id, vectorization):
    envs = make_vector_env(env_id, 2, vectorization)
    shape = envs.action_space.shape
    acts = np.random.default_rng(0).uniform(-1, 1, (120, *shape)).astype(np.float32)
    envs.reset(seed=3)
    _steps(envs, acts[:80])  # past the turning envs' 100-step horizon after the snapshot
    buf = io.BytesIO()
    torch.save(vector_env_state(envs), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    after = _steps(envs, acts[80:])
    envs.close()
    fresh = make_vector_env(env_id, 2, vectorization)
    fresh.reset(seed=99)  # another episode, then overwritten
    load_vector_env_state(fresh, state)
    again = _steps(fresh, acts[80:])
    fresh.close()
    assert len(after) == len(again) == 40
    resets = 0
    for a, b in zip(after, again, strict=True):
        for x, y in zip(a[:4], b[:4], strict=True):
            assert np.array_equal(x, y)
        for fa, fb in zip(a[4], b[4], strict=True):
            assert (fa is None and fb is None) or np.array_equal(fa, fb)
            resets += fa is not None
        assert (a[5] is None) == (b[5] is None)
        if a[5] is not None:
            assert np.array_equal(a[5][0], b[5][0]) and np.array_equal(a[5][1], b[5][1])
    assert resets > 0  # an autoreset (the env's np_random) happened after the snapshot


# --- corrupt files ----------------------------------------------------------------------------


def _zero(p, good):
    p.write_bytes(b"")


def _half(p, good):
    p.write_bytes(good[: len(good) // 2])


def _random(p, good):
    p.write_bytes(np.random.default_rng(0).bytes(4096))


def _save(obj):
    return lambda p, good: torch.save(obj, p)


CORRUPT = {
    "zero bytes": (_zero, "is empty (0 bytes)"),
    "truncated": (_half, "is truncated or corrupt ("),
    "tail cut": (lambda p, good: p.write_bytes(good[:-100]),
                 "is truncated or corrupt (PytorchStreamReader failed reading zip archive"),
    "random bytes": (_random, "(unreadable data:"),
    "plain pickle": (lambda p, good: p.write_bytes(pickle.dumps({"a": 1})),
                     "(unreadable data:"),
    "learner is 3": (_save({"learner": 3}), "missing key(s) 'format', 'elapsed_s'"),
    "a tensor": (_save(torch.zeros(3)), "it holds a torch.float32 tensor"),
    "format 2": (_save({"format": 2, "elapsed_s": 1.0, "learner": {}}), "'format' is 2"),
    "elapsed nan": (_save({"format": 1, "elapsed_s": float("nan"), "learner": {}}),
                    "'elapsed_s' must be a finite number"),
    "learner lacks keys": (_save({"format": 1, "elapsed_s": 1.0, "learner": {"iteration": 1}}),
                           "'learner' lacks 'gen', 'torch_rng'"),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_corrupt_checkpoint_is_one_line_naming_the_file(case, toy_run, tmp_path):
    good = (toy_run[0] / "checkpoint.pt").read_bytes()
    path = tmp_path / "checkpoint.pt"
    write, expected = CORRUPT[case]
    write(path, good)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    one_line(err, str(path), expected)


def test_missing_checkpoint_and_bad_learner_parts(toy_run, tmp_path):
    with pytest.raises(ValueError) as err:
        load_checkpoint(tmp_path / "nope.pt")
    one_line(err, str(tmp_path / "nope.pt"), "could not be read: No such file")
    good = torch.load(toy_run[0] / "checkpoint.pt", weights_only=True)
    path = tmp_path / "checkpoint.pt"
    for mutate, expected in [
        (lambda c: c["learner"].update(iteration="1"), "'iteration' must be an int"),
        (lambda c: c["learner"].update(gen=b"\x00"), "learner 'gen' must be a torch.uint8"),
        (lambda c: c["learner"]["envs"].update(envs=[{"kind": "pickle", "env": b"."}] * 2),
         "learner 'envs': envs[0]: kind 'pickle' is not accepted"),
        (lambda c: c["learner"]["policy"].update(bad=3), "is not a policy's weights"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad)
        torch.save(bad, path)
        with pytest.raises(ValueError) as err:
            load_checkpoint(path)
        one_line(err, str(path), expected)


# --- save_atomic ------------------------------------------------------------------------------


def _full_disk(monkeypatch, where):
    def no_space(*args, **kwargs):
        if where == "torch.save":  # half a file written, then the disk is full
            args[1].write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    target = {"torch.save": (torch, "save"), "fsync": (os, "fsync"),
              "rename": (os, "replace")}[where]
    monkeypatch.setattr(*target, no_space)


@pytest.mark.parametrize("where", ["torch.save", "fsync", "rename"])
def test_save_atomic_on_a_full_disk_leaves_the_previous_file(where, tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    _full_disk(monkeypatch, where)
    with pytest.raises(OSError) as err:
        save_atomic({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert str(err.value) == f"could not write {path}: No space left on device"
    assert err.value.errno == errno.ENOSPC and err.value.__cause__ is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no .tmp left
    assert path.read_bytes() == before


def test_save_atomic_into_a_read_only_directory(tmp_path, monkeypatch):
    d = tmp_path / "ro"
    d.mkdir()
    path = d / "policy.pt"
    save_atomic({"w": torch.ones(3)}, path)
    before = path.read_bytes()
    d.chmod(0o500)
    try:
        probe = d / "probe"
        try:
            probe.write_bytes(b"")  # root ignores the mode: simulate what it would do
            probe.unlink()

            def denied(file, *args, **kwargs):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))

            monkeypatch.setattr(ckpt_mod, "open", denied, raising=False)
        except PermissionError:
            pass
        with pytest.raises(OSError) as err:
            save_atomic({"w": torch.zeros(3)}, path)
    finally:
        monkeypatch.undo()
        d.chmod(0o700)
    assert str(err.value) == f"could not write {path}: Permission denied"
    assert sorted(p.name for p in d.iterdir()) == ["policy.pt"]
    assert path.read_bytes() == before


# --- policy weights ---------------------------------------------------------------------------


@pytest.fixture
def policy_file(toy_run, tmp_path):
    weights = load_checkpoint(toy_run[0] / "checkpoint.pt")["learner"]["policy"]
    path = tmp_path / "policy.pt"
    save_atomic(weights, path)
    return path, weights


def test_policy_weights_load(policy_file):
    path, weights = policy_file
    loaded = load_policy_weights(path)
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_policy_weights_are_refused(policy_file, value):
    path, weights = policy_file
    bad = {k: v.clone() for k, v in weights.items()}
    key = next(k for k, v in bad.items() if v.is_floating_point() and v.numel() > 1)
    bad[key].view(-1)[1] = value
    torch.save(bad, path)
    with pytest.raises(ValueError) as err:
        load_policy_weights(path)
    one_line(err, str(path), "non-finite weights", key)


@pytest.mark.parametrize("obj,expected", [
    ([torch.zeros(2)], "holds list"), ({}, "holds an empty dict"),
    ({"w": 3}, "maps 'w' to int"), ({"format": 1, "elapsed_s": 0.0, "learner": {}},
                                    "maps 'format' to int"),
    (torch.zeros(2), "holds a torch.float32 tensor"),
])
def test_policy_weights_of_the_wrong_structure_are_refused(tmp_path, obj, expected):
    path = tmp_path / "policy.pt"
    torch.save(obj, path)
    with pytest.raises(ValueError) as err:
        load_policy_weights(path)
    one_line(err, str(path), "is not a policy's weights", expected)


def test_load_policy_refuses_nan_policy_pt(toy_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_run[0], run_dir)
    weights = load_checkpoint(run_dir / "checkpoint.pt")["learner"]["policy"]
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                for k, v in weights.items()}, run_dir / "policy.pt")
    with pytest.raises(ValueError) as err:
        load_policy(run_dir)
    one_line(err, str(run_dir / "policy.pt"), "non-finite weights")
