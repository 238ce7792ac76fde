"""Gymnasium vector envs for chain policies: sync or async, reward scaling, rendering, and
exact snapshots of every env's state for bit-identical resume (method.md §5.0, §10).

What lives where (one idea, one place):

- *Observation and latent normalisation* are `RunningNorm`s owned by the networks (policy,
  value), updated by `damdp.collect_rollout` and saved in their `state_dict`s.
- *The tanh squash rescaled to the action bounds* is the policy's `to_action`
  (`policies.build_policy` reads the bounds from the env's Box).
- *`terminated` vs `truncated`*: same-step autoreset puts the true final observation into
  `info["final_obs"]`; `collect_rollout` bootstraps truncations from it.
- Here: building the vector env, optional reward scaling (`ScaleReward`), off-screen rendering
  and `EnvSnapshot`, which makes a run's env state part of its checkpoint. DeepMind Control
  suite tasks (`dm_control/<domain>-<task>-v0`) get flat float32 observations (`envs/dmc.py`).

Off-screen rendering needs an OpenGL backend: `MUJOCO_GL=egl` (set by `set_offscreen_gl` when
unset) works with the NVIDIA/Mesa EGL libraries; `MUJOCO_GL=osmesa` needs Debian's `libosmesa6`.
Where the chosen backend cannot load, `render.check_offscreen_gl` (run before every env is made)
falls back to the other one or to no rendering, so envs still work (`envs/render.py`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from ..utils import check_choice, check_int_at_least, check_positive
from . import dmc
from .render import RenderingUnavailable, check_offscreen_gl, rendering_off_reason

VECTORIZATION = ("sync", "async")
"""`SyncVectorEnv` (measured 2-3x faster on 2 cores for MuJoCo) or `AsyncVectorEnv`."""


def set_offscreen_gl(backend: str = "egl") -> str:
    """Set `MUJOCO_GL` (before MuJoCo first renders) unless the user set it, and check that it
    loads (`render.check_offscreen_gl`: else osmesa/egl or `disable`, one warning); returns the
    value in force."""
    os.environ.setdefault("MUJOCO_GL", backend)
    return check_offscreen_gl()


def _quiet_mujoco_compiler() -> None:
    """Drop MuJoCo's (3.17 and later) deprecation warning about the `settotalmass` XML attribute
    of gymnasium's and dm-control's models, printed once per env created; any other MuJoCo
    warning is re-raised as a Python warning (this also replaces dm-control's logging one)."""
    try:
        import mujoco
    except ImportError:  # pragma: no cover - mujoco is a dependency
        return

    def on_warning(msg: str) -> None:
        if "settotalmass" not in msg:
            warnings.warn(f"MuJoCo: {msg}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(on_warning)


SIMULATORS = ("mujoco", "dm_control")
"""The simulator packages whose versions every run records (`simulator_versions`)."""


def simulator_versions() -> dict[str, str | None]:
    """The installed version of each of `SIMULATORS` (None: not installed), e.g.
    `{"mujoco": "3.17.0", "dm_control": "1.0.50"}`: MuJoCo's arithmetic changes between
    versions, so runs of one env under two of them are not comparable bit for bit."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in SIMULATORS:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


SNAPSHOT_KINDS = ("mujoco", "attrs", "dmc")
"""Env snapshot layouts: MuJoCo physics, the attributes an env declares in `STATE_ATTRS`, or a
DeepMind Control suite task."""

_SNAPSHOT_KEYS = {"mujoco": ("kind", "physics", "np_random", "elapsed_steps"),
                  "attrs": ("kind", "env", "attrs", "np_random", "elapsed_steps"),
                  "dmc": ("kind", "physics", "model", "task", "attrs", "step_count",
                          "reset_next_step", "np_random", "elapsed_steps")}

_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "MT19937": np.random.MT19937, "Philox": np.random.Philox,
                   "SFC64": np.random.SFC64}


class EnvSnapshot(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Outermost per-env wrapper whose `snapshot` property reads / restores the env's full state.

    Gymnasium MuJoCo envs pickle through `EzPickle` into a *fresh* env, and unpickling a state
    would run whatever code a crafted checkpoint holds, so nothing here is pickled. A snapshot
    is a dict of tensors, numbers and strings only (it fits `torch.load(weights_only=True)`):

    - `{"kind": "mujoco", "physics": float64 tensor (mj_stateSize,), "np_random": str,
      "elapsed_steps": int | None}`: the integration state (`mj_getState`), the env's NumPy
      bit-generator state as JSON and the `TimeLimit` step count (None: none / not reset);
    - `{"kind": "attrs", "env": class name, "attrs": {name: value}, "np_random": str,
      "elapsed_steps": int | None}` for any other env, which lists its dynamic state in a class
      attribute `STATE_ATTRS` (NumPy arrays are stored as tensors, bool / int / float as
      numbers; `()` for a stateless env). An env that declares nothing cannot be snapshotted.
    - `{"kind": "dmc", "physics": float64 tensor, "model": {field: tensor}, "task": class name,
      "attrs": {name: value}, "step_count": int, "reset_next_step": bool, "np_random": str,
      "elapsed_steps": None}` for a DeepMind Control suite task (`envs/dmc.py`): MuJoCo's
      integration state, the model fields tasks rewrite per episode (`dmc.MODEL_FIELDS`), the
      task's numeric attributes, dm-control's step counter (its 1000-step time limit) and
      reset flag, and the task's `RandomState` as JSON (with its cached Gaussian).

    Restoring checks the snapshot against this env's `snapshot_layout` first (`ValueError`
    naming what is wrong; the env is left untouched). Works through `VectorEnv.get_attr` /
    `set_attr`, hence for async envs too.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)  # `env.spec.make()` rebuilds the stack
        gym.Wrapper.__init__(self, env)

    def _state_attrs(self) -> tuple[str, ...]:
        base = self.env.unwrapped
        names = getattr(type(base), "STATE_ATTRS", None)
        if names is None:
            who = self.env.spec.id if self.env.spec is not None else "this env"
            raise ValueError(f"{who} ({type(base).__module__}.{type(base).__qualname__}) "
                             f"cannot be snapshotted: it is not a MuJoCo env, so it must "
                             f"declare its dynamic state as a class attribute STATE_ATTRS = "
                             f"('name', ...) (() when it has none)")
        return tuple(names)

    def _is_mujoco(self) -> bool:
        base = self.env.unwrapped
        return hasattr(base, "model") and hasattr(base, "data")

    @property
    def snapshot_layout(self) -> dict[str, Any]:
        """What a snapshot of this env must look like (checked before restoring one)."""
        base = self.env.unwrapped
        layout = {"time_limit": _find_wrapper(self.env, gym.wrappers.TimeLimit) is not None,
                  "bit_generator": _bit_generator_name(base.np_random)}
        if dmc.is_dmc_env(base):
            import mujoco

            env = dmc.suite_environment(base)
            model = env.physics.model.ptr
            size = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION)
            fields = {name: _attr_spec(torch.from_numpy(getattr(model, name)))
                      for name in dmc.MODEL_FIELDS}
            attrs = {name: _attr_spec(_encode_attr(env.task, name))
                     for name in dmc.task_state_attrs(env.task)}
            return {"kind": "dmc", "physics_size": int(size), "model": fields,
                    "task": type(env.task).__name__, "attrs": attrs,
                    "step_limit": float(env._step_limit), **layout}
        if self._is_mujoco():
            import mujoco

            size = mujoco.mj_stateSize(base.model, mujoco.mjtState.mjSTATE_INTEGRATION)
            return {"kind": "mujoco", "physics_size": int(size), **layout}
        attrs = {name: _attr_spec(_encode_attr(base, name)) for name in self._state_attrs()}
        return {"kind": "attrs", "env": type(base).__name__, "attrs": attrs, **layout}

    @property
    def snapshot(self) -> dict[str, Any]:
        base = self.env.unwrapped
        common = {"np_random": _rng_state_json(base.np_random),
                  "elapsed_steps": _time_limit(self.env)}
        if dmc.is_dmc_env(base):
            import mujoco

            env = dmc.suite_environment(base)
            model, data = env.physics.model.ptr, env.physics.data.ptr
            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            phys = np.empty(mujoco.mj_stateSize(model, spec))
            mujoco.mj_getState(model, data, phys, spec)
            return {"kind": "dmc", "physics": torch.from_numpy(phys),
                    "model": {name: torch.from_numpy(getattr(model, name).copy())
                              for name in dmc.MODEL_FIELDS},
                    "task": type(env.task).__name__,
                    "attrs": {name: _encode_attr(env.task, name)
                              for name in dmc.task_state_attrs(env.task)},
                    "step_count": int(env._step_count),
                    "reset_next_step": bool(env._reset_next_step), **common}
        if self._is_mujoco():
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            phys = np.empty(mujoco.mj_stateSize(base.model, spec))
            mujoco.mj_getState(base.model, base.data, phys, spec)
            return {"kind": "mujoco", "physics": torch.from_numpy(phys), **common}
        return {"kind": "attrs", "env": type(base).__name__,
                "attrs": {name: _encode_attr(base, name) for name in self._state_attrs()},
                **common}

    @snapshot.setter
    def snapshot(self, state: dict[str, Any]) -> None:
        check_env_snapshot(state, self.snapshot_layout)
        base = self.env.unwrapped
        if state["kind"] == "dmc":
            import mujoco

            env = dmc.suite_environment(base)
            model, data = env.physics.model.ptr, env.physics.data.ptr
            for name, value in state["model"].items():  # before the state: mj_forward uses them
                getattr(model, name)[...] = value.detach().cpu().numpy()
            phys = np.ascontiguousarray(state["physics"].detach().cpu().numpy())
            mujoco.mj_setState(model, data, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
            mujoco.mj_forward(model, data)
            for name, value in state["attrs"].items():
                setattr(env.task, name, value.detach().cpu().numpy().copy()
                        if isinstance(value, torch.Tensor) else value)
            env._step_count, env._reset_next_step = state["step_count"], state["reset_next_step"]
        elif state["kind"] == "mujoco":
            import mujoco

            phys = np.ascontiguousarray(state["physics"].detach().cpu().numpy())
            mujoco.mj_setState(base.model, base.data, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
            mujoco.mj_forward(base.model, base.data)
        else:
            for name, value in state["attrs"].items():
                setattr(base, name, value.detach().cpu().numpy().copy()
                        if isinstance(value, torch.Tensor) else value)
        _set_rng_state(base.np_random, json.loads(state["np_random"]))
        limit = _find_wrapper(self.env, gym.wrappers.TimeLimit)
        if limit is not None:
            limit._elapsed_steps = state["elapsed_steps"]
        order = _find_wrapper(self.env, gym.wrappers.OrderEnforcing)
        if order is not None:  # a restored env is mid-episode: it may step without a reset
            order._has_reset = True


def _bit_generator_name(rng: np.random.Generator | np.random.RandomState) -> str:
    """"PCG64", "MT19937", ... of a Generator or (dm-control's) legacy RandomState."""
    if isinstance(rng, np.random.RandomState):
        return rng.get_state(legacy=False)["bit_generator"]
    return type(rng.bit_generator).__name__


def _rng_state_json(rng: np.random.Generator | np.random.RandomState) -> str:
    """The full state of a Generator, or of a RandomState with its cached Gaussian
    (`has_gauss`, `gauss`: `randn` draws normals in pairs), as JSON."""
    if isinstance(rng, np.random.RandomState):
        state = rng.get_state(legacy=False)
        inner = state["state"]
        state["state"] = {"key": inner["key"].tolist(), "pos": int(inner["pos"])}
        return json.dumps(state)
    return json.dumps(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator | np.random.RandomState, state: dict) -> None:
    if isinstance(rng, np.random.RandomState):
        rng.set_state(state)
    else:
        rng.bit_generator.state = state


def _attr_spec(value: torch.Tensor | bool | int | float) -> tuple:
    """What a snapshot must hold for this value: ("array", shape, dtype) or (type name,)."""
    if isinstance(value, torch.Tensor):
        return ("array", tuple(value.shape), value.dtype)
    return (type(value).__name__,)


def _encode_attr(base: Any, name: str) -> torch.Tensor | bool | int | float:
    """A declared state attribute as a tensor (NumPy array) or a plain bool / int / float."""
    who = f"{type(base).__name__}.STATE_ATTRS"
    if not isinstance(name, str) or not hasattr(base, name):
        raise ValueError(f"{who} names {name!r}, which is not an attribute of the env")
    value = getattr(base, name)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(value.copy())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    raise ValueError(f"{who} names {name!r} of type {type(value).__name__}; a state attribute "
                     f"must be a numeric NumPy array, a bool, an int or a float")


def _kind_of(value: Any) -> str:
    """A short, safe description of a value's type for messages (never calls its repr)."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


def _show(value: Any) -> str:
    """`_kind_of`, but str (shortened), numbers and None are shown as values."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if value is None or type(value) in (bool, int, float):
        return repr(value)
    return _kind_of(value)


def _optional_dict(where: str, state: dict, key: str, keys) -> dict | None:
    """`state[key]`: None, or a dict with exactly `keys` (else one-line `ValueError`)."""
    value = state[key]
    if value is not None:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: {key!r} must be a dict or None, got {_kind_of(value)}")
        _check_keys(f"{where}: {key!r}", value, keys)
    return value


def _check_keys(where: str, state: dict, expected: tuple[str, ...]) -> None:
    missing = [k for k in expected if k not in state]
    extra = [_show(k) for k in state if k not in expected]
    if missing or extra:
        parts = ([f"missing key(s) {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"unexpected key(s) {', '.join(extra)}"] if extra else [])
        raise ValueError(f"{where}: {'; '.join(parts)} (expected exactly "
                         f"{', '.join(map(repr, expected))})")


def _check_tensor(where: str, value: Any, shape: tuple[int, ...] | None = None,
                  dtype: torch.dtype | None = None, ndim: int | None = None) -> None:
    ok = (isinstance(value, torch.Tensor) and value.layout == torch.strided
          and not value.is_quantized and not value.requires_grad
          and (dtype is None or value.dtype == dtype)
          and (shape is None or tuple(value.shape) == tuple(shape))
          and (ndim is None or value.ndim == ndim))
    if not ok:
        want = (f"a {dtype or 'dense'} tensor"
                + (f" of shape {tuple(shape)}" if shape is not None else "")
                + (f" with {ndim} dim(s)" if ndim is not None and shape is None else ""))
        raise ValueError(f"{where} must be {want}, got {_kind_of(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_env_snapshot(state: Any, layout: dict[str, Any] | None = None,
                       where: str = "env snapshot") -> None:
    """`ValueError` (one line, naming `where` and what is wrong) unless `state` is a snapshot of
    the form `EnvSnapshot.snapshot` writes: known kind, exactly its keys, plain values of the
    right types. With `layout` (`EnvSnapshot.snapshot_layout`), it must also fit that env: its
    class and declared attributes, the physics size, the bit generator, the time limit."""
    if not isinstance(state, dict):
        raise ValueError(f"{where} must be a dict, got {_kind_of(state)}")
    kind = state.get("kind")
    if not isinstance(kind, str) or kind not in SNAPSHOT_KINDS:
        hint = (" (pickled env states are refused: unpickling one could run arbitrary code; "
                "resume from a checkpoint written by this version)" if kind == "pickle" else "")
        raise ValueError(f"{where}: kind {_show(kind)} is not accepted; expected one of "
                         f"{', '.join(map(repr, SNAPSHOT_KINDS))}{hint}")
    if layout is not None and kind != layout["kind"]:
        raise ValueError(f"{where}: kind {kind!r} does not fit this env, whose snapshots are "
                         f"{layout['kind']!r}")
    _check_keys(where, state, _SNAPSHOT_KEYS[kind])
    if kind in ("mujoco", "dmc"):
        shape = None if layout is None else (layout["physics_size"],)
        _check_tensor(f"{where}: 'physics'", state["physics"], shape, torch.float64, ndim=1)
    if kind == "dmc":
        _check_dmc(where, state, layout)
    elif kind == "attrs":
        _check_attrs(where, state["env"], state["attrs"], layout)
    _check_np_random(where, state["np_random"], layout, legacy=kind == "dmc")
    steps = state["elapsed_steps"]
    if not (steps is None or (_is_int(steps) and steps >= 0)):
        raise ValueError(f"{where}: 'elapsed_steps' must be an int >= 0 or None, got "
                         f"{_show(steps)}")
    if layout is not None and not layout["time_limit"] and steps is not None:
        raise ValueError(f"{where}: 'elapsed_steps' is {steps} but this env has no TimeLimit "
                         f"(expected None)")


def _check_dmc(where: str, state: dict, layout: dict[str, Any] | None) -> None:
    """The parts of a "dmc" snapshot besides its physics and random state."""
    model = state["model"]
    if not isinstance(model, dict):
        raise ValueError(f"{where}: 'model' must be a dict, got {_kind_of(model)}")
    _check_keys(f"{where}: 'model'", model, dmc.MODEL_FIELDS)
    for name in dmc.MODEL_FIELDS:
        spec = None if layout is None else layout["model"][name]
        _check_tensor(f"{where}: model[{name!r}]", model[name],
                      None if spec is None else spec[1], None if spec is None else spec[2])
    _check_attrs(where, state["task"], state["attrs"],
                 None if layout is None else {"env": layout["task"], "attrs": layout["attrs"]})
    steps, limit = state["step_count"], (math.inf if layout is None else layout["step_limit"])
    if not (_is_int(steps) and 0 <= steps <= limit):
        raise ValueError(f"{where}: 'step_count' must be an int in [0, {limit:g}], got "
                         f"{_show(steps)}")
    if not isinstance(state["reset_next_step"], bool):
        raise ValueError(f"{where}: 'reset_next_step' must be a bool, got "
                         f"{_show(state['reset_next_step'])}")


def _check_attrs(where: str, env: Any, attrs: Any, layout: dict[str, Any] | None) -> None:
    if not isinstance(env, str):
        raise ValueError(f"{where}: 'env' must be a str (the env's class name), got "
                         f"{_kind_of(env)}")
    if layout is not None and env != layout["env"]:
        raise ValueError(f"{where}: snapshot of a {_show(env)} env; this env is a "
                         f"{layout['env']!r}")
    if not isinstance(attrs, dict):
        raise ValueError(f"{where}: 'attrs' must be a dict, got {_kind_of(attrs)}")
    if layout is not None:
        _check_keys(f"{where}: 'attrs'", attrs, tuple(layout["attrs"]))
    for name, value in attrs.items():
        at = f"{where}: attrs[{_show(name)}]"
        if not isinstance(name, str):
            raise ValueError(f"{at}: attribute names must be str")
        spec = None if layout is None else layout["attrs"][name]
        if spec is None:
            if not (isinstance(value, torch.Tensor | bool) or _is_number(value)):
                raise ValueError(f"{at} must be a tensor, a bool, an int or a float, got "
                                 f"{_kind_of(value)}")
            if isinstance(value, torch.Tensor):
                _check_tensor(at, value)
        elif spec[0] == "array":
            _check_tensor(at, value, spec[1], spec[2])
        elif spec[0] == "bool" and not isinstance(value, bool) \
                or spec[0] == "int" and not _is_int(value) \
                or spec[0] == "float" and not isinstance(value, float):
            raise ValueError(f"{at} must be a {spec[0]}, got {_kind_of(value)}")


def _check_np_random(where: str, text: Any, layout: dict[str, Any] | None,
                     legacy: bool = False) -> None:
    """`legacy`: the state of a `RandomState`, which also holds `has_gauss` and `gauss`."""
    at = f"{where}: 'np_random'"
    if not isinstance(text, str):
        raise ValueError(f"{at} must be a str (JSON of a NumPy bit-generator state), got "
                         f"{_kind_of(text)}")
    try:
        state = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{at} is not valid JSON ({type(err).__name__})") from None
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(name, str) or name not in _BIT_GENERATORS:
        raise ValueError(f"{at} is not the state of a NumPy bit generator (bit_generator "
                         f"{_show(name)}; expected one of {', '.join(_BIT_GENERATORS)})")
    if layout is not None and name != layout["bit_generator"]:
        raise ValueError(f"{at} is a {name} state; this env uses {layout['bit_generator']}")
    try:  # a throwaway generator takes the state first: the env's own is only set if it fits
        _BIT_GENERATORS[name]().state = state
    except Exception as err:  # noqa: BLE001 - NumPy raises TypeError, ValueError, KeyError, ...
        raise ValueError(f"{at} is not a valid {name} state ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:120]})") from None
    if legacy and not (state.get("has_gauss") in (0, 1) and type(state["has_gauss"]) is int
                       and _is_number(state.get("gauss"))):
        raise ValueError(f"{at} is not a RandomState state (expected 'has_gauss' 0 or 1 and a "
                         f"number 'gauss')")


def _find_wrapper(env: gym.Env, cls: type) -> gym.Wrapper | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, cls):
            return env
        env = env.env
    return None


def _time_limit(env: gym.Env) -> int | None:
    """`_elapsed_steps` of the `TimeLimit` in `env`'s wrapper stack (None: none, or not reset)."""
    limit = _find_wrapper(env, gym.wrappers.TimeLimit)
    return None if limit is None else limit._elapsed_steps


class ScaleReward(gym.vector.VectorWrapper):
    """Divide rewards by the running std of the discounted return (CleanRL/SB3 `NormalizeReward`).

    G <- gamma (1 - done) G + r per env; r / sqrt(Var[G] + eps). Wrap it *outside*
    `RecordEpisodeStatistics`, so logged returns stay unscaled. `state_dict` / `load_state_dict`
    make it part of the checkpoint.
    """

    def __init__(self, env: VectorEnv, gamma: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(env)
        self.gamma, self.eps = gamma, eps
        self.ret = np.zeros(self.num_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 0

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(actions)
        self.ret = self.ret * self.gamma + rew
        n, b_mean, b_var = self.num_envs, float(self.ret.mean()), float(self.ret.var())
        tot = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / tot
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / tot) / tot
        self.count = tot
        self.ret[np.logical_or(term, trunc)] = 0.0
        return obs, rew / np.sqrt(self.var + self.eps), term, trunc, info

    def state_dict(self) -> dict[str, Any]:
        return {"ret": torch.from_numpy(self.ret.copy()), "mean": self.mean, "var": self.var,
                "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ret = state["ret"].detach().cpu().numpy().copy()
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


def _make_one(env_id: str, render_mode: str | None, env_kwargs: dict[str, Any]) -> gym.Env:
    import damdp_lite.envs  # noqa: F401  (registers the toy envs, also in async workers)

    check_offscreen_gl()  # before MuJoCo is imported: a MUJOCO_GL that cannot load would fail it
    _quiet_mujoco_compiler()
    if render_mode is not None:  # the toys take no render_mode
        env_kwargs = {**env_kwargs, "render_mode": render_mode}
    env = gym.make(env_id, **env_kwargs)
    if dmc.is_dmc_id(env_id):
        env = dmc.FlatObservation(env)
    return EnvSnapshot(env)


def make_vector_env(env_id: str, num_envs: int, vectorization: str = "sync",
                    scale_rewards: bool = False, gamma: float = 0.99,
                    render_mode: str | None = None,
                    env_kwargs: dict[str, Any] | None = None) -> VectorEnv:
    """A vector env of `env_id` in same-step autoreset mode, with episode statistics.

    Args:
        env_id: registered Gymnasium id (`damdp_lite/*` toys, `HalfCheetah-v5`, ...) or a
            DeepMind Control suite task (`dm_control/cartpole-swingup-v0`, `envs/dmc.py`: flat
            float32 observations, 1000-step episodes ended by truncation).
        num_envs: parallel envs.
        vectorization: "sync" (`SyncVectorEnv`) or "async" (`AsyncVectorEnv`, one process each).
        scale_rewards: divide rewards by the running std of the `gamma`-discounted return.
        gamma: env-step discount of that return.
        render_mode: e.g. "rgb_array" (MuJoCo needs `MUJOCO_GL`, see `set_offscreen_gl`;
            `RenderingUnavailable` when no off-screen backend loads here).
        env_kwargs: keyword arguments of `gym.make`.

    Same-step autoreset puts the true final observation of a finished episode into
    `info["final_obs"]` and returns the reset observation in its place (method.md §5.0, D6).
    Raises `ValueError` naming the field for an unknown id, a bad count or mode, or an action
    space that is not a 1-D `Box` (the latent chain lives in R^d).
    """
    import damdp_lite.envs

    if dmc.is_dmc_id(env_id):
        dmc.check_dmc_id(env_id)
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise ValueError(f"env_id={env_id!r} is not a registered gymnasium id; e.g. "
                         f"'HalfCheetah-v5', 'Hopper-v5', 'dm_control/cheetah-run-v0' or "
                         f"{damdp_lite.envs.TOY_ENV_IDS}")
    check_int_at_least("num_envs", num_envs, 1)
    check_choice("vectorization", vectorization, VECTORIZATION)
    check_positive("gamma", gamma)
    if render_mode is not None and render_mode.startswith("rgb"):
        set_offscreen_gl()
        why = rendering_off_reason()
        if why is not None:
            raise RenderingUnavailable(why)
    else:
        check_offscreen_gl()
    kwargs = dict(env_kwargs or {})
    fns = [lambda: _make_one(env_id, render_mode, kwargs) for _ in range(num_envs)]
    cls = SyncVectorEnv if vectorization == "sync" else AsyncVectorEnv
    envs = cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        envs.close()
        raise ValueError(f"env_id={env_id!r} has action space {space}; a chain policy needs a "
                         f"1-D continuous gymnasium.spaces.Box")
    envs = RecordEpisodeStatistics(envs)
    return ScaleReward(envs, gamma) if scale_rewards else envs


_EPISODE_STATS = ("episode_returns", "episode_lengths", "prev_dones")
_VECTOR_KEYS = ("envs", "episode_stats", "episode_count", "reward_scale")
_SCALER_KEYS = ("ret", "mean", "var", "count")


def _find(envs: VectorEnv, cls: type) -> Any:
    while True:
        if isinstance(envs, cls):
            return envs
        if not hasattr(envs, "env"):
            return None
        envs = envs.env


def vector_env_state(envs: VectorEnv) -> dict[str, Any]:
    """Everything needed to continue `envs` exactly: each env's `EnvSnapshot`, the running
    episode statistics and the reward scaler (tensors, numbers and str only, no pickle)."""
    stats = _find(envs, RecordEpisodeStatistics)
    scaler = _find(envs, ScaleReward)
    return {"envs": list(envs.unwrapped.get_attr("snapshot")),
            "episode_stats": {name: torch.from_numpy(np.array(getattr(stats, name)))
                              for name in _EPISODE_STATS} if stats else None,
            "episode_count": int(stats.episode_count) if stats else 0,
            "reward_scale": scaler.state_dict() if scaler else None}


def check_vector_env_state(state: Any, num_envs: int | None = None,
                           layouts: list[dict[str, Any]] | None = None,
                           where: str = "env state") -> None:
    """`ValueError` (one line, naming `where` and what is wrong) unless `state` has the form
    `vector_env_state` writes, with `num_envs` envs and (given `layouts`, from the envs'
    `snapshot_layout`) each env's snapshot fitting that env. Nothing in `state` is executed."""
    if not isinstance(state, dict):
        raise ValueError(f"{where} must be a dict, got {_kind_of(state)}")
    _check_keys(where, state, _VECTOR_KEYS)
    snaps = state["envs"]
    if not isinstance(snaps, list | tuple):
        raise ValueError(f"{where}: 'envs' must be a list of env snapshots, got "
                         f"{_kind_of(snaps)}")
    if num_envs is not None and len(snaps) != num_envs:
        raise ValueError(f"{where}: the checkpoint has {len(snaps)} envs; this run has "
                         f"num_envs={num_envs}")
    n = len(snaps)
    for i, snap in enumerate(snaps):
        check_env_snapshot(snap, None if layouts is None else layouts[i], f"{where}: envs[{i}]")
    stats = _optional_dict(where, state, "episode_stats", _EPISODE_STATS)
    if stats is not None:
        for name in _EPISODE_STATS:
            _check_tensor(f"{where}: episode_stats[{name!r}]", stats[name], (n,))
    count = state["episode_count"]
    if not (_is_int(count) and count >= 0):
        raise ValueError(f"{where}: 'episode_count' must be an int >= 0, got {_show(count)}")
    scale = _optional_dict(where, state, "reward_scale", _SCALER_KEYS)
    if scale is not None:
        _check_tensor(f"{where}: reward_scale['ret']", scale["ret"], (n,), torch.float64)
        for name in ("mean", "var"):
            if not _is_number(scale[name]):
                raise ValueError(f"{where}: reward_scale[{name!r}] must be a number, got "
                                 f"{_show(scale[name])}")
        if not (_is_int(scale["count"]) and scale["count"] >= 0):
            raise ValueError(f"{where}: reward_scale['count'] must be an int >= 0, got "
                             f"{_show(scale['count'])}")


def load_vector_env_state(envs: VectorEnv, state: dict[str, Any]) -> None:
    """Restore a `vector_env_state` into envs built with the same arguments (and reset once).

    The whole state is checked against these envs first (`check_vector_env_state`), in this
    process, so a malformed or crafted state raises a one-line `ValueError` before anything is
    restored or sent to an async worker."""
    layouts = list(envs.unwrapped.get_attr("snapshot_layout"))
    check_vector_env_state(state, envs.num_envs, layouts)
    envs.unwrapped.set_attr("snapshot", list(state["envs"]))
    stats = _find(envs, RecordEpisodeStatistics)
    if stats is not None and state["episode_stats"] is not None:
        for name, value in state["episode_stats"].items():
            setattr(stats, name, value.detach().cpu().numpy().copy())
        stats.episode_count = state["episode_count"]
    scaler = _find(envs, ScaleReward)
    if scaler is not None and state["reward_scale"] is not None:
        scaler.load_state_dict(state["reward_scale"])
