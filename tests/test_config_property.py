"""Property: any value of any type in any config field is either refused with a one-line
`ValueError` naming the field, or gives a config whose learner starts. Never another exception
(TypeError, OverflowError, RuntimeError, MemoryError, KeyError, ...), never a hang.

Every field of every registered algorithm config (`damdp_lite.algos.ALGOS`) and every tunable
policy field (`damdp_lite.policies`) is fed random values through `train.algo_config`, on top of
a tiny run (2 envs x 8 env steps, 16-wide networks). The learner starts with its address space
limited (RLIMIT_AS) to what it had plus 6 GiB and `available_memory()` reporting 4 GiB, so that
the package's memory check sees the memory there is; an allocation that escapes it fails here
as a RuntimeError/MemoryError instead of swapping the machine."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import resource
import signal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from damdp_lite.algos import ALGOS, algo_of, resolve
from damdp_lite.policies import POLICIES, tunable_fields
from damdp_lite.train import algo_config

TURNING = "damdp_lite/TurningDoubleWell-v0"
TINY = dict(env_id=TURNING, total_env_steps=32, num_envs=2, num_env_steps=8, update_epochs=1,
            num_minibatches=2, hidden_sizes=(16,), value_hidden_sizes=(16,),
            critic_hidden_sizes=(16,), kl_samples=2, num_bins=11, num_steps=2, buffer_size=64,
            batch_size=8, learning_starts=16)
"""A run that starts in a fraction of a second; each field that applies is set."""

START_SECONDS = 60
"""A learner that takes longer than this to start counts as a hang."""

nan, inf = math.nan, math.inf
SCALARS = st.one_of(
    st.integers(min_value=-3, max_value=64),
    st.integers(),
    st.sampled_from([0, 1, 2, -1, 16, 4096, 4097, 16384, 2**31 - 1, 2**31, 2**63, 10**9,
                     10**12, 10**30, -10**30]),
    st.floats(),
    st.sampled_from([nan, inf, -inf, 0.0, -0.0, 0.5, 0.999, 1.0, 1.5, 2.5, 1e-9, 1e-300,
                     1e30, 1e308, -1.5]),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["", "cpu", "cuda", "cuda:1", "tpu", "meta", "diffusion", "gaussian",
                     "sync", "async", "linear", "cosine", "constant", "previous", "same",
                     "conditioning", "evaluated", "tanh", "identity", "pathwise",
                     "wasserstein", "nan", "1", "True", TURNING, "CartPole-v1",
                     "Pendulum-v1"]),
    st.none(),
    st.binary(max_size=4),
    st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.lists(SCALARS, max_size=4).map(tuple),
    st.lists(st.integers(min_value=1, max_value=32), min_size=1, max_size=3).map(tuple),
    st.lists(st.floats(min_value=0.01, max_value=2.0), min_size=1, max_size=4).map(tuple),
    st.dictionaries(st.sampled_from(["kind", "num_steps", "hidden_sizes", "init_std", "foo"]),
                    SCALARS, max_size=3),
)


def _cases() -> list[tuple[str, str, str]]:
    """(algorithm, policy kind, field): every algorithm's own fields with either policy kind
    (alternating), every tunable policy field of each kind under the algorithms in turn."""
    out = []
    names = list(ALGOS)
    for algo in names:
        fields = [f.name for f in dataclasses.fields(ALGOS[algo].config_cls)]
        for i, name in enumerate(fields):
            out.append((algo, list(POLICIES)[i % len(POLICIES)], name))
    i = 0
    for kind in POLICIES:
        for name in tunable_fields(kind):
            out.append((names[i % len(names)], kind, name))
            i += 1
    return out


CASES = _cases()


def tiny_fields(algo: str, kind: str, field: str) -> dict:
    spec, _ = resolve(algo)
    names = {f.name for f in dataclasses.fields(spec.config_cls)} | set(tunable_fields(kind))
    base = {k: v for k, v in TINY.items() if k in names and k != field}
    if field != "policy":
        base["policy"] = kind
    else:  # the kind is the value under test: only fields both kinds have
        base = {k: v for k, v in base.items() if k not in tunable_fields("diffusion")
                or k in tunable_fields("gaussian")}
    return base


_BASELINE_VM: int | None = None
"""The address space of this process at its first learner start (RLIMIT_AS is this + 6 GiB)."""


class StartTimeout(Exception):
    pass


@contextlib.contextmanager
def limited(monkeypatch):
    """RLIMIT_AS = now + 6 GiB, `available_memory()` = 4 GiB, and an alarm after
    START_SECONDS (raising StartTimeout), for the duration of one learner start."""
    import damdp_lite.utils as utils

    global _BASELINE_VM
    if _BASELINE_VM is None:  # once per process: memory kept by a failed example is not headroom
        with open("/proc/self/status") as f:
            _BASELINE_VM = next(int(line.split()[1]) * 1024 for line in f
                                if line.startswith("VmSize"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _BASELINE_VM + 6 * 2**30
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    monkeypatch.setattr(utils, "available_memory", lambda: 4 * 2**30, raising=False)

    def on_alarm(signum, frame):
        raise StartTimeout(f"the learner took more than {START_SECONDS} s to start")

    old = signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(START_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)
        monkeypatch.undo()


def check_value_error(err: ValueError, field: str, where: str, value: object) -> None:
    msg = str(err)
    assert len(msg.strip().splitlines()) == 1, f"{where}: {len(msg.splitlines())}-line " \
        f"ValueError for {field}={value!r}: {msg}"
    assert field in msg, f"{where}: ValueError for {field}={value!r} does not name " \
        f"{field}: {msg}"


@pytest.mark.parametrize("algo,kind,field", CASES, ids=[f"{a}-{k}-{f}" for a, k, f in CASES])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=VALUES)
@example(value=(16384, 16384, 16384))  # 8 GiB of critics: refused by the widths' rule (<= 4096)
def test_any_value_is_refused_naming_the_field_or_starts(algo, kind, field, value):
    base = tiny_fields(algo, kind, field)
    try:
        cfg = algo_config(algo, **base, **{field: value})
    except ValueError as err:
        check_value_error(err, field, "config", value)
        return
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"config: {type(err).__name__} for {field}={value!r}: {err}")
    failure = None
    with pytest.MonkeyPatch.context() as mp:
        try:
            with limited(mp):
                learner = algo_of(cfg).learner_cls(cfg)
                learner.close()
                del learner
        except ValueError as err:
            check_value_error(err, field, "learner start", value)
        except BaseException as err:  # noqa: BLE001  (MemoryError, StartTimeout, ...)
            if isinstance(err, KeyboardInterrupt):
                raise
            failure = (f"learner start: {type(err).__name__} for {field}={value!r}: "
                       f"{str(err)[:300]}")
    if failure is not None:  # outside the except: the traceback (and its tensors) is freed
        gc.collect()
        pytest.fail(failure, pytrace=False)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(num_envs=st.integers(1, 3), num_env_steps=st.integers(1, 4),
       iterations=st.integers(1, 4), extra=st.integers(0, 11),
       learning_starts=st.integers(0, 40),
       ratio=st.sampled_from([1e-3, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]))
def test_sac_refuses_exactly_the_runs_without_a_gradient_step(num_envs, num_env_steps,
                                                              iterations, extra,
                                                              learning_starts, ratio):
    """`SACConfig` refuses a run (ValueError naming learning_starts / the ratio) if and only if
    the learner, run to the end, would make no gradient step."""
    from damdp_lite.algos import sac as sac_mod

    per = num_envs * num_env_steps
    fields = dict(env_id=TURNING, num_envs=num_envs, num_env_steps=num_env_steps,
                  total_env_steps=iterations * per + extra % per, hidden_sizes=(8,),
                  critic_hidden_sizes=(8,), buffer_size=256, batch_size=4)
    try:
        algo_config("sac", **fields, learning_starts=learning_starts,
                    gradient_steps_per_env_step=ratio)
        refused = None
    except ValueError as err:
        refused = str(err)
    cfg = algo_config("sac", **fields, learning_starts=0, gradient_steps_per_env_step=1.0)
    cfg.learning_starts, cfg.gradient_steps_per_env_step = learning_starts, ratio  # unchecked
    learner, steps = sac_mod.SAC(cfg), {"n": 0}
    real = learner._update

    def counting(it):
        steps["n"] += 1
        return real(it)

    learner._update = counting
    try:
        for _ in range(cfg.num_iterations):
            learner.train_iteration()
    finally:
        learner.close()
    where = (f"learning_starts={learning_starts}, ratio={ratio}, {cfg.num_iterations} "
             f"iterations x {per} env steps: {steps['n']} gradient steps; refused: {refused}")
    assert (refused is not None) == (steps["n"] == 0), where
    if refused is not None:
        assert "learning_starts" in refused or "gradient_steps_per_env_step" in refused, where
