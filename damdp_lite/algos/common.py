"""What every learner shares: config checks and budget arithmetic, the rollout state of a
checkpoint, episode statistics. Each algorithm file keeps its own fields, losses and update."""

from __future__ import annotations

import math
from dataclasses import asdict, fields

import gymnasium as gym
import numpy as np
import torch

from ..chain import ChainPolicy
from ..damdp import Rollout
from ..diffusion import DiffusionConfig, DiffusionPolicy
from ..envs.make import load_vector_env_state, make_vector_env, vector_env_state
from ..gaussian import GaussianConfig, GaussianPolicy
from ..utils import check_choice, check_int_at_least, check_positive, seed_everything


class LearnerConfig:
    """Mixin of the learners' config dataclasses (`PPOConfig`, `REPPOConfig`, `SACConfig`).

    Expects the fields env_id, num_envs, num_env_steps, total_env_steps, policy, num_steps,
    hidden_sizes, vectorization, seed and device.
    """

    def check_common(self, ints: tuple[str, ...] = (), positives: tuple[str, ...] = (),
                     unit_intervals: tuple[tuple[str, bool], ...] = (),
                     sizes: tuple[str, ...] = ("hidden_sizes",)) -> None:
        """Validate the shared fields and the named ones; each error names field and value.

        `unit_intervals`: (name, lower bound open) pairs that must lie in (0, 1] or [0, 1].
        """
        import damdp_lite.envs

        if not isinstance(self.env_id, str) or self.env_id not in gym.registry:
            raise ValueError(f"env_id={self.env_id!r} is not a registered gymnasium id; e.g. "
                             f"'HalfCheetah-v5' or {damdp_lite.envs.TOY_ENV_IDS}")
        for name in ("num_envs", "num_env_steps", "total_env_steps", "num_steps", *ints):
            check_int_at_least(name, getattr(self, name), 1)
        check_int_at_least("seed", self.seed, 0)
        for name in positives:
            check_positive(name, getattr(self, name))
        for name, lo_open in unit_intervals:
            v = getattr(self, name)
            ok = isinstance(v, int | float) and math.isfinite(v) and v <= 1 and (
                v > 0 if lo_open else v >= 0)
            if not ok:
                raise ValueError(f"{name}={v!r} must be in {'(' if lo_open else '['}0.0, 1.0]")
        check_choice("policy", self.policy, ("diffusion", "gaussian"))
        check_choice("vectorization", self.vectorization, ("sync", "async"))
        for name in sizes:
            widths = tuple(getattr(self, name))
            for i, h in enumerate(widths):
                check_int_at_least(f"{name}[{i}]", h, 1)
            setattr(self, name, widths)
        if self.total_env_steps < self.env_steps_per_iteration:
            raise ValueError(f"total_env_steps={self.total_env_steps!r} must be >= num_envs * "
                             f"num_env_steps = {self.env_steps_per_iteration}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available; use 'cpu'")

    @property
    def chain_length(self) -> int:
        """K of the policy this config builds (1 for the Gaussian)."""
        return self.num_steps if self.policy == "diffusion" else 1

    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_env_steps

    @property
    def num_iterations(self) -> int:
        return self.total_env_steps // self.env_steps_per_iteration

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of `to_dict` (JSON lists back to tuples; unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; allowed: "
                             f"{sorted(names)}")
        return cls(**d)


def make_policy(config: LearnerConfig, obs_dim: int, action_space: gym.spaces.Box,
                init_step_sizes: tuple[float, ...] | None = None) -> ChainPolicy:
    """The chain policy named by `config.policy`, fitted to the env's spaces (every learner).

    A bounded Box gets `squash="tanh"` rescaled to its bounds; an unbounded one (the latent
    bandit, method.md §7.1) `squash="identity"`. A config without `noising_drift_at` (REPPO,
    SAC) gets `DiffusionConfig`'s default. `init_step_sizes` (K values) replaces the
    schedule's initial eta_k of a diffusion policy (the toys' geometric start).
    """
    low, high = np.asarray(action_space.low, float), np.asarray(action_space.high, float)
    bounded = bool(np.isfinite(low).all() and np.isfinite(high).all())
    common = dict(obs_dim=obs_dim, action_dim=int(action_space.shape[0]),
                  hidden_sizes=config.hidden_sizes, tanh_jacobian=config.tanh_jacobian,
                  squash="tanh" if bounded else "identity", action_clip=config.action_clip,
                  action_low=tuple(low) if bounded else None,
                  action_high=tuple(high) if bounded else None, device=config.device)
    if config.policy == "gaussian":
        return GaussianPolicy(GaussianConfig(init_std=config.init_std, **common))
    drift_at = getattr(config, "noising_drift_at", DiffusionConfig.noising_drift_at)
    return DiffusionPolicy(DiffusionConfig(
        num_steps=config.num_steps, step_size_schedule=config.step_size_schedule,
        noising_drift_at=drift_at, noising_step_pairing=config.noising_step_pairing,
        init_step_sizes=init_step_sizes, **common))


class Learner:
    """Base of the learners (`PPO`, `REPPO`, `SAC`): checkpointing and closing, in one place.

    A subclass sets `envs`, `obs`, `gen`, `iteration` and lists in `STATE` the attributes a
    checkpoint holds: modules, optimisers and buffers (their `state_dict`), generators (their
    state), learnable scalars (`nn.Parameter`, copied) or plain numbers.
    """

    STATE: tuple[str, ...] = ()

    def start(self, config: LearnerConfig, policy: ChainPolicy | None) -> tuple[int, int]:
        """Seed everything, build the vector env and the policy (or check the given one);
        returns (obs_dim, action_dim). Raises `ValueError` naming the env or the policy."""
        seed_everything(config.seed)
        self.config = config
        self.device = torch.device(config.device)
        self.envs = make_vector_env(config.env_id, config.num_envs, config.vectorization,
                                    config.scale_rewards,
                                    gamma=config.gamma ** config.chain_length)
        obs_space = self.envs.single_observation_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            self.envs.close()
            raise ValueError(f"env_id={config.env_id!r} has observation space {obs_space}; "
                             f"expected a 1-D Box")
        obs_dim, action_dim = obs_space.shape[0], self.envs.single_action_space.shape[0]
        if policy is None:
            policy = make_policy(config, obs_dim, self.envs.single_action_space)
        dims = (policy.obs_dim, policy.action_dim)
        if dims != (obs_dim, action_dim):
            self.envs.close()
            raise ValueError(f"policy has (obs_dim, action_dim) = {dims}; env_id="
                             f"{config.env_id!r} needs {(obs_dim, action_dim)}")
        self.policy = policy.to(self.device)
        return obs_dim, action_dim

    def state_dict(self) -> dict:
        """Everything to continue exactly; loadable with `torch.load(weights_only=True)`."""
        out = rollout_state(self)
        for name in self.STATE:
            obj = getattr(self, name)
            if isinstance(obj, torch.Generator):
                out[name] = obj.get_state()
            elif isinstance(obj, torch.Tensor):
                out[name] = obj.detach().clone()
            elif hasattr(obj, "state_dict"):
                out[name] = obj.state_dict()
            else:
                out[name] = obj
        return out

    def load_state_dict(self, state: dict) -> None:
        for name in self.STATE:
            obj = getattr(self, name)
            if isinstance(obj, torch.Generator):
                obj.set_state(state[name])
            elif isinstance(obj, torch.Tensor):
                with torch.no_grad():
                    obj.copy_(state[name])
            elif hasattr(obj, "load_state_dict"):
                obj.load_state_dict(state[name])
            else:
                setattr(self, name, state[name])
        load_rollout_state(self, state)

    def close(self) -> None:
        self.envs.close()


def rollout_state(learner) -> dict:
    """The part of a checkpoint every learner has: iteration, latent generator, global torch
    RNG, current observations and each env's snapshot."""
    return {"iteration": learner.iteration, "gen": learner.gen.get_state(),
            "torch_rng": torch.get_rng_state(), "obs": torch.as_tensor(np.asarray(learner.obs)),
            "envs": vector_env_state(learner.envs)}


def load_rollout_state(learner, state: dict) -> None:
    """Inverse of `rollout_state`."""
    learner.iteration = state["iteration"]
    learner.gen.set_state(state["gen"])
    torch.set_rng_state(state["torch_rng"])
    learner.obs = state["obs"].numpy().copy()
    load_vector_env_state(learner.envs, state["envs"])


def episode_stats(ro: Rollout) -> dict[str, float]:
    """Mean return and length of the episodes that finished in the rollout (nan if none)."""
    nan = float("nan")
    return {"episode_return": float(np.mean(ro.episode_returns)) if ro.episode_returns else nan,
            "episode_length": float(np.mean(ro.episode_lengths)) if ro.episode_lengths else nan}
