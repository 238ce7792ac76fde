"""The multi-goal point environment of Soft Q-Learning (method.md §7.6).

Haarnoja et al. 2017 (arXiv 1702.08165), `haarnoja/softqlearning`,
`softqlearning/environments/multigoal.py`. There is no closed-form MaxEnt optimum, so unlike the
other toy envs this one has no `optimal_log_density`; its metric is how many distinct goals a
policy reaches (`goal_index` of final positions).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..utils import check_int_at_least, check_nonnegative, check_positive
from .bandits import ArrayLike, as_float64


class MultiGoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """2-D point mass with four goals (method.md §7.6).

    State = observation = position s in `Box(-7, 7, (2,))`; reset s ~ N(0, init_sigma^2 I),
    clipped. Action = velocity in `Box(-1, 1, (2,))`, clipped; s' = clip(s + a, -7, 7), no noise.
    Goals (5, 0), (-5, 0), (0, 5), (0, -5);
        r = -action_cost_coeff ||a||^2 - distance_cost_coeff min_g ||s' - g||^2,
    plus `goal_reward` and `terminated=True` when min_g ||s' - g|| < `goal_threshold`.
    Horizon 30 via `max_episode_steps` at registration (-> `truncated`). No reward scale is
    applied (scale 0.1 at temperature T equals the unscaled reward at 10 T).

    Args:
        goal_threshold: distance below which a goal counts as reached, > 0 (1.0).
        action_cost_coeff: weight of ||a||^2, >= 0 (30).
        distance_cost_coeff: weight of the squared goal distance, >= 0 (1).
        goal_reward: bonus on reaching a goal, >= 0 (10).
        init_sigma: standard deviation of the initial position, >= 0 (0.1).
    """

    metadata = {"render_modes": []}
    STATE_ATTRS: tuple[str, ...] = ("position",)
    """The dynamic state, what `EnvSnapshot` saves and restores (the rest is set at init)."""
    bound = 7.0
    goals = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])  # (4, 2)

    def __init__(self, goal_threshold: float = 1.0, action_cost_coeff: float = 30.0,
                 distance_cost_coeff: float = 1.0, goal_reward: float = 10.0,
                 init_sigma: float = 0.1) -> None:
        check_positive("goal_threshold", goal_threshold)
        check_nonnegative("action_cost_coeff", action_cost_coeff)
        check_nonnegative("distance_cost_coeff", distance_cost_coeff)
        check_nonnegative("goal_reward", goal_reward)
        check_nonnegative("init_sigma", init_sigma)
        self.goal_threshold = float(goal_threshold)
        self.action_cost_coeff = float(action_cost_coeff)
        self.distance_cost_coeff = float(distance_cost_coeff)
        self.goal_reward = float(goal_reward)
        self.init_sigma = float(init_sigma)
        self.observation_space = spaces.Box(-self.bound, self.bound, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.position = np.zeros(2)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """s ~ N(0, init_sigma^2 I) clipped to the box; `options={"position": (x, y)}` fixes it."""
        super().reset(seed=seed)
        if options is not None and "position" in options:
            s = as_float64(options["position"]).reshape(2)
        else:
            s = self.init_sigma * self.np_random.standard_normal(2)
        self.position = np.clip(s, -self.bound, self.bound)
        return self.position.astype(np.float32), {"position": self.position.copy()}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """`action` `(2,)`; returns (obs `(2,)`, reward, terminated, False, info)."""
        a = as_float64(action)
        if a.shape != (2,):
            raise ValueError(f"action has shape {a.shape}; expected (2,)")
        a = np.clip(a, -1.0, 1.0)
        self.position = np.clip(self.position + a, -self.bound, self.bound)
        d2 = ((self.position - self.goals) ** 2).sum(-1)  # (4,)
        reward = -self.action_cost_coeff * float(a @ a) - self.distance_cost_coeff * float(d2.min())
        terminated = bool(np.sqrt(d2.min()) < self.goal_threshold)
        if terminated:
            reward += self.goal_reward
        info = {"position": self.position.copy(), "goal_index": int(self.goal_index(self.position))}
        return self.position.astype(np.float32), float(reward), terminated, False, info

    def goal_index(self, obs: ArrayLike, threshold: float | None = None) -> np.ndarray:
        """Index into `goals` of the goal within `threshold` (default `goal_threshold`) of each
        position `(B, 2)` or `(2,)`, -1 where none; returns `(B,)` or `()` int64."""
        s = as_float64(obs)
        thr = self.goal_threshold if threshold is None else float(threshold)
        d = np.sqrt(((s[..., None, :] - self.goals) ** 2).sum(-1))  # (B, 4)
        return np.where(d.min(-1) < thr, d.argmin(-1), -1).astype(np.int64)

    def rollout_paths(self, act: Callable[[np.ndarray], np.ndarray], num_episodes: int,
                      num_steps: int = 30, start: ArrayLike = (0.0, 0.0)
                      ) -> dict[str, np.ndarray]:
        """Run `num_episodes` episodes from the fixed position `start`, all in lockstep.

        Uses copies of this env (same parameters; `self` is not stepped) and the ordinary
        `reset(options={"position": start})` / `step`, so the dynamics are exactly the env's.
        An episode ends at a goal (`terminated`) or after `num_steps` steps (the registered
        horizon is 30); after its end its position is repeated and its actions and rewards are 0.

        Args:
            act: policy, observations `(E, 2)` float32 -> actions `(E, 2)`.
            num_episodes: E, integer >= 1.
            num_steps: steps per episode at most, integer >= 1.
            start: the initial position `(2,)` (the origin: the symmetric start state).

        Returns:
            `positions` `(E, num_steps + 1, 2)` (row 0 is `start`), `actions` and `rewards`
            `(E, num_steps[, 2])`, `lengths` `(E,)` int64 and `goal` `(E,)` int64: the index into
            `goals` of the goal that ended the episode, -1 if none did.
        """
        check_int_at_least("num_episodes", num_episodes, 1)
        check_int_at_least("num_steps", num_steps, 1)
        envs = [copy.deepcopy(self) for _ in range(num_episodes)]
        obs = np.stack([e.reset(options={"position": start})[0] for e in envs])  # (E, 2)
        E = num_episodes
        pos = np.zeros((E, num_steps + 1, 2))
        pos[:, 0] = obs
        acts, rews = np.zeros((E, num_steps, 2)), np.zeros((E, num_steps))
        lengths, goal = np.full(E, num_steps, np.int64), np.full(E, -1, np.int64)
        alive = np.ones(E, bool)
        for t in range(num_steps):
            a = np.asarray(act(obs.astype(np.float32)), dtype=np.float64).reshape(E, 2)
            for i in np.flatnonzero(alive):
                obs[i], rews[i, t], terminated, _, info = envs[i].step(a[i])
                acts[i, t] = a[i]
                if terminated:
                    alive[i], lengths[i], goal[i] = False, t + 1, info["goal_index"]
            pos[:, t + 1] = obs
            if not alive.any():
                pos[:, t + 2:] = obs[:, None]
                break
        return {"positions": pos, "actions": acts, "rewards": rews, "lengths": lengths,
                "goal": goal}
