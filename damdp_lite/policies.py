"""The policy factory: the one place that knows which chain policies exist.

Every algorithm config holds a nested policy config (`DiffusionConfig` or `GaussianConfig`) in
its `policy` field; `build_policy` fits it to an env. Nothing else in the package branches on
the policy kind: the learners only call the `ChainPolicy` protocol.

    kind         config            policy             K      ell
    "diffusion"  DiffusionConfig   DiffusionPolicy    >= 1   log q - log pi   (DA-MDP)
    "gaussian"   GaussianConfig    GaussianPolicy     1      log pi           (MaxEnt RL)
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from .chain import ChainPolicy
from .diffusion import DiffusionConfig, DiffusionPolicy
from .gaussian import GaussianConfig, GaussianPolicy

PolicyConfig = DiffusionConfig | GaussianConfig

POLICIES: dict[str, tuple[type, type]] = {
    "diffusion": (DiffusionConfig, DiffusionPolicy),
    "gaussian": (GaussianConfig, GaussianPolicy),
}
"""Policy kind -> (config class, policy class)."""

PAIR = ("diffusion", "gaussian")
"""(the DA-MDP version, its MaxEnt base): the kinds `damdp-lite report` compares per algorithm."""

ENV_FIELDS = ("obs_dim", "action_dim", "squash", "action_low", "action_high", "device")
"""Policy-config fields set from the env and the run by `build_policy`, not by the user."""


def policy_kind(config: PolicyConfig) -> str:
    """"diffusion" or "gaussian" for a policy config (or a built policy's `config`)."""
    for kind, (cfg_cls, _) in POLICIES.items():
        if type(config) is cfg_cls:
            return kind
    raise ValueError(f"policy={config!r} is not a policy config; expected one of "
                     f"{[c.__name__ for c, _ in POLICIES.values()]}")


def tunable_fields(kind: str) -> tuple[str, ...]:
    """The fields of a policy kind a user sets (all but `ENV_FIELDS`), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(POLICIES[kind][0])
                 if f.name not in ENV_FIELDS)


def all_tunable_fields() -> dict[str, str]:
    """Every tunable policy field -> the first kind that has it (diffusion first)."""
    out: dict[str, str] = {}
    for kind in POLICIES:
        for name in tunable_fields(kind):
            out.setdefault(name, kind)
    return out


def policy_config(kind: str | PolicyConfig | dict, **fields) -> PolicyConfig:
    """A policy config of `kind` ("diffusion" / "gaussian") with `fields`, or `kind` itself
    when it already is one (then `fields` replace its values), or one read from a dict of
    `policy_to_dict`. A field the kind does not have is an error naming it and the kind."""
    if isinstance(kind, dict):
        d = dict(kind)
        return policy_config(d.pop("kind", "diffusion"), **{**d, **fields})
    if dataclasses.is_dataclass(kind):
        current = {f.name: getattr(kind, f.name) for f in dataclasses.fields(kind)}
        return policy_config(policy_kind(kind), **{**current, **fields})
    if not isinstance(kind, str) or kind not in POLICIES:
        raise ValueError(f"policy={kind!r} is not allowed; expected one of {tuple(POLICIES)}")
    cls = POLICIES[kind][0]
    names = {f.name for f in dataclasses.fields(cls)}
    foreign = sorted(set(fields) - names)
    if foreign:
        raise ValueError(f"{', '.join(foreign)} does not apply to policy={kind!r}; its fields: "
                         f"{', '.join(tunable_fields(kind))}")
    return cls(**fields)


def policy_to_dict(config: PolicyConfig) -> dict:
    """`{"kind": ..., **tunable fields}`: what config.json stores of a nested policy config."""
    d = dataclasses.asdict(config)
    return {"kind": policy_kind(config), **{k: v for k, v in d.items() if k not in ENV_FIELDS}}


def build_policy(config: PolicyConfig, obs_dim: int, action_space: gym.spaces.Box,
                 device: str = "cpu") -> ChainPolicy:
    """The chain policy of `config`, fitted to the env's spaces and put on `device`.

    A bounded Box gets `squash="tanh"` rescaled to its bounds; an unbounded one (the latent
    bandit, method.md §7.1) `squash="identity"`.
    """
    low, high = np.asarray(action_space.low, float), np.asarray(action_space.high, float)
    bounded = bool(np.isfinite(low).all() and np.isfinite(high).all())
    fitted = dataclasses.replace(
        config, obs_dim=int(obs_dim), action_dim=int(action_space.shape[0]),
        squash="tanh" if bounded else "identity",
        action_low=tuple(float(x) for x in low) if bounded else None,
        action_high=tuple(float(x) for x in high) if bounded else None, device=device)
    return POLICIES[policy_kind(config)][1](fitted)

