"""The paper's turning environments (method.md §7.3-§7.5), after the official JAX code.

A point agent has a heading theta (degrees) and a position (x, y). It observes only
(cos theta, sin theta); its action a in [-1, 1] is a relative turn. The reward depends only on the
turn (and, for the GMM env, on the heading bin before the turn), so the MaxEnt optimum is
pi*(a | s) = exp(r(a)/T) / Z on [-1, 1] in every state, for any discount (action-space entropy,
i.e. with the tanh Jacobian; method.md I7). Episodes never terminate: register with
`max_episode_steps` (100 in the paper's configs) to get `truncated`.

Angles: turn Delta = 90 a (120 a for the GMM env), headings kept in [0, 360).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..utils import check_int_at_least, check_positive
from .bandits import (
    ArrayLike,
    as_float64,
    interval_masses,
    like_input,
    log_quad_exp,
    scalar_actions,
)


def wrap_deg(angle: np.ndarray) -> np.ndarray:
    """Wrap angles (degrees) to [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def _check_open_unit(field: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 < value < 1.0):
        raise ValueError(f"{field}={value!r} must be a number in the open interval (0, 1)")


class _TurningEnv(gym.Env[np.ndarray, np.ndarray]):
    """Shared dynamics: clip the action to [-1, 1], reward from the pre-turn state, turn by
    `_transition_turn_deg(a)`, then one step of length `step_size` along the new heading."""

    metadata = {"render_modes": []}
    STATE_ATTRS: tuple[str, ...] = ("heading_deg", "position", "t")
    """The dynamic state, what `EnvSnapshot` saves and restores (the rest is set at init)."""
    max_turn_deg: float = 90.0
    """Turn for a = 1, degrees."""

    def __init__(self, step_size: float = 1.0) -> None:
        check_positive("step_size", step_size)
        self.step_size = float(step_size)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.heading_deg = 0.0
        self.position = np.zeros(2)
        self.t = 0
        self._log_z: dict[tuple[float, int], float] = {}

    # --- to be defined by each env -----------------------------------------------------------
    def _sample_heading(self) -> float:
        raise NotImplementedError

    def _transition_turn_deg(self, a: float) -> float:
        raise NotImplementedError

    def _reward(self, a: np.ndarray, heading_bin: int) -> np.ndarray:
        """r(a) for clipped `a` `(N,)` in the given heading bin (ignored by the wells)."""
        raise NotImplementedError

    def _breakpoints(self, heading_bin: int) -> list[float]:
        """Kinks and peaks of r on [-1, 1] for quadrature."""
        raise NotImplementedError

    def _mode_edges(self, heading_bin: int) -> np.ndarray:
        """Edges of the mode regions on [-1, 1], `(M + 1,)`, from -1 to 1."""
        raise NotImplementedError

    def _bins_of_obs(self, obs: ArrayLike | None) -> np.ndarray:
        """Heading bin per observation; the wells have a single bin 0."""
        return np.zeros((), dtype=np.int64)

    def _bins(self, obs: ArrayLike | None, heading_bin: ArrayLike | int | None) -> np.ndarray:
        if heading_bin is not None:
            return np.asarray(heading_bin, dtype=np.int64)
        return self._bins_of_obs(obs)

    # --- Gymnasium API -------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        th = math.radians(self.heading_deg)
        return np.array([math.cos(th), math.sin(th)], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"heading_deg": self.heading_deg, "position": self.position.copy(), "t": self.t}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at the origin with a heading from the env's reset support (`self.np_random`);
        `options={"heading_deg": h}` fixes the initial heading instead."""
        super().reset(seed=seed)
        if options is not None and "heading_deg" in options:
            self.heading_deg = float(options["heading_deg"]) % 360.0
        else:
            self.heading_deg = self._sample_heading()
        self.position = np.zeros(2)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """`action` `(1,)`; returns (obs `(2,)`, reward, False, False, info). Never terminates."""
        a_arr = as_float64(action).reshape(-1)
        if a_arr.shape != (1,):
            raise ValueError(f"action has shape {np.shape(action)}; expected (1,)")
        a = float(np.clip(a_arr[0], -1.0, 1.0))
        reward = float(self._reward(np.array([a]), self._heading_bin())[0])
        turn = self._transition_turn_deg(a)
        self.heading_deg = (self.heading_deg + turn) % 360.0
        th = math.radians(self.heading_deg)
        self.position = self.position + self.step_size * np.array([math.cos(th), math.sin(th)])
        self.t += 1
        info = self._info()
        info["turn_deg"] = self.max_turn_deg * a
        info["transition_turn_deg"] = turn
        return self._obs(), reward, False, False, info

    def _heading_bin(self) -> int:
        return 0

    def rollout_paths(self, act: Callable[[np.ndarray], np.ndarray],
                      headings_deg: ArrayLike, num_steps: int) -> dict[str, np.ndarray]:
        """Run one episode from each initial heading, all in lockstep, and record the path.

        Uses copies of this env (same parameters; `self` is not stepped) and the ordinary
        `reset(options={"heading_deg": h})` / `step`, so the dynamics are exactly the env's.

        Args:
            act: policy, observations `(B, 2)` float32 -> actions `(B, 1)` (or `(B,)`).
            headings_deg: initial headings, `(B,)` (e.g. `np.repeat(headings, n)`).
            num_steps: env steps per episode (>= 1; the registered horizon is 100).

        Returns:
            `positions` `(B, num_steps + 1, 2)` (starting at the origin), `actions` and
            `rewards` `(B, num_steps)`, `headings_deg` `(B, num_steps + 1)`.
        """
        check_int_at_least("num_steps", num_steps, 1)
        heads = as_float64(headings_deg).reshape(-1)
        envs = [copy.deepcopy(self) for _ in heads]
        obs = np.stack([e.reset(options={"heading_deg": float(h)})[0]
                        for e, h in zip(envs, heads, strict=True)])
        B = len(envs)
        pos = np.zeros((B, num_steps + 1, 2))
        hd = np.zeros((B, num_steps + 1))
        hd[:, 0] = [e.heading_deg for e in envs]
        acts, rews = np.zeros((B, num_steps)), np.zeros((B, num_steps))
        for t in range(num_steps):
            a = np.asarray(act(obs.astype(np.float32)), dtype=np.float64).reshape(B, -1)
            for i, e in enumerate(envs):
                obs[i], rews[i, t], _, _, info = e.step(a[i])
                pos[i, t + 1], hd[i, t + 1] = info["position"], info["heading_deg"]
            acts[:, t] = a[:, 0]
        return {"positions": pos, "actions": acts, "rewards": rews, "headings_deg": hd}

    # --- exact MaxEnt optimum (action space) ---------------------------------------------------
    def log_z(self, temperature: float, heading_bin: int = 0) -> float:
        """log int_{-1}^{1} exp(r(a)/T) da by adaptive quadrature split at the kinks (cached)."""
        key = (float(temperature), int(heading_bin))
        if key not in self._log_z:
            self._log_z[key] = log_quad_exp(lambda a: self._reward(a, key[1]), -1.0, 1.0,
                                            temperature, self._breakpoints(key[1]))
        return self._log_z[key]

    def optimal_log_density(self, action: ArrayLike | float, temperature: float,
                            obs: ArrayLike | None = None, *,
                            heading_bin: ArrayLike | int | None = None) -> ArrayLike:
        """log pi*(a | s) = r(a)/T - log Z on [-1, 1] (-inf outside), for `a` `(B, 1)` or `(B,)`;
        returns `(B,)` (method.md §7.3-§7.5, I7). Torch in, torch out. The wells ignore `obs`;
        the GMM env needs `obs` `(2,)` / `(B, 2)` or `heading_bin` (int or `(B,)`)."""
        check_positive("temperature", temperature)
        a = scalar_actions(action)
        bins = np.broadcast_to(self._bins(obs, heading_bin), a.shape)
        out = np.full(a.shape, -np.inf)
        inside = np.abs(a) <= 1.0
        for b in np.unique(bins):
            sel = inside & (bins == b)
            out[sel] = self._reward(a[sel], int(b)) / temperature - self.log_z(temperature, int(b))
        return like_input(out, action)

    def optimal_mode_masses(self, temperature: float, obs: ArrayLike | None = None, *,
                            heading_bin: int | None = None) -> np.ndarray:
        """Mass of pi* in each mode region (see `mode_names`), `(M,)`, by quadrature. Double
        well: (a < 0, a >= 0), 0.5 each; multi-well: regions split at the midpoints between
        preferred turns. One state: `obs` `(2,)` or `heading_bin` (GMM only)."""
        b = int(np.asarray(self._bins(obs, heading_bin)).reshape(-1)[0])
        return self._sorted_to_modes(
            interval_masses(lambda a: self._reward(a, b), self._mode_edges(b), temperature,
                            self._breakpoints(b)), b)

    def _sorted_to_modes(self, masses: np.ndarray, heading_bin: int) -> np.ndarray:
        """Reorder masses of the regions left to right into `mode_names` order."""
        return masses


class TurningDoubleWellEnv(_TurningEnv):
    """Turning double-well (method.md §7.3, I7; official `turning_double_well_env.py`).

    Turn Delta = 90 a. With u = (clip(wrap(Delta), -90, 90) / 90)^2 (= a^2 on the box),
    u_p = 0.25 and h = `well_height`:
        r = h + (1 - h)(1 - (1 - u/u_p)^2)  if u <= u_p,   r = 1 - ((u - u_p)/(1 - u_p))^2  else,
    so r(0) = h, r(+-0.5) = 1, r(+-1) = 0. The transition turns by +45 if a >= 0 else -45 (snap),
    then steps forward. Initial heading uniform on {0, 45, ..., 315}. Modes: a < 0, a >= 0.

    Args:
        well_height: h, reward of the barrier at a = 0, in (0, 1).
        step_size: forward step length, > 0 (position is tracked in `info`, not observed).
    """

    mode_names = ("a<0", "a>=0")
    peak_u = 0.25
    headings_deg: tuple[float, ...] = tuple(45.0 * i for i in range(8))
    """The 8 headings: the reset support, and every heading an episode can reach."""

    @classmethod
    def all_observations(cls) -> np.ndarray:
        """Observations (cos theta, sin theta) of the 8 states, `(8, 2)` float32; row i is
        heading `headings_deg[i]` = 45 i degrees, bit-identical to what `reset`/`step` return."""
        return np.stack([np.array([math.cos(math.radians(h)), math.sin(math.radians(h))],
                                  dtype=np.float32) for h in cls.headings_deg])

    def __init__(self, well_height: float = 0.85, step_size: float = 1.0) -> None:
        _check_open_unit("well_height", well_height)
        super().__init__(step_size)
        self.well_height = float(well_height)

    def reward_of_action(self, action: ArrayLike | float) -> np.ndarray:
        """r(a) for `a` `(B, 1)` or `(B,)` (clipped to [-1, 1] first); returns `(B,)`."""
        return self._reward(np.clip(scalar_actions(action), -1.0, 1.0), 0)

    def _reward(self, a: np.ndarray, heading_bin: int = 0) -> np.ndarray:
        u = (np.clip(wrap_deg(self.max_turn_deg * a), -90.0, 90.0) / 90.0) ** 2
        h, up = self.well_height, self.peak_u
        left = h + (1.0 - h) * (1.0 - (1.0 - u / up) ** 2)
        right = 1.0 - ((u - up) / (1.0 - up)) ** 2
        return np.where(u <= up, left, right)

    def _transition_turn_deg(self, a: float) -> float:
        return 45.0 if a >= 0.0 else -45.0

    def _sample_heading(self) -> float:
        return 45.0 * float(self.np_random.integers(8))

    def _breakpoints(self, heading_bin: int = 0) -> list[float]:
        return [-0.5, 0.0, 0.5]

    def _mode_edges(self, heading_bin: int = 0) -> np.ndarray:
        return np.array([-1.0, 0.0, 1.0])


class TurningMultiWellEnv(_TurningEnv):
    """Turning multi-well (method.md §7.4; official `turning_multi_well_env.py`).

    Turn Delta = 90 a; preferred turns theta_i = 90 - 90/n - 180 i/n (sorted ascending in
    `preferred_turns_deg`), spacing 180/n, h = `well_height`. With Delta clipped to [-90, 90]:
        theta_min <= Delta <= theta_max: r = h + (1 - h) (1 + cos(2 pi (Delta - theta_min) / s)) / 2
        Delta < theta_min:               r = ((Delta + 90) / (theta_min + 90))^2
        Delta > theta_max:               r = ((90 - Delta) / (90 - theta_max))^2
    (s = spacing), all clipped to [0, 1]: r = 1 at every theta_i, r = h half-way between
    neighbours. The transition snaps the turn to the nearest theta_i (a tie goes to the lower
    angle). Initial heading uniform on {theta_i} u {theta_i + 180} (mod 360). Mode i = turns
    closer to theta_i than to its neighbours.

    Args:
        num_minima: n, number of preferred turns, integer >= 2.
        well_height: h, barrier reward between wells, in (0, 1).
        step_size: forward step length, > 0.
    """

    def __init__(self, num_minima: int = 4, well_height: float = 0.85,
                 step_size: float = 1.0) -> None:
        check_int_at_least("num_minima", num_minima, 2)
        _check_open_unit("well_height", well_height)
        super().__init__(step_size)
        n = num_minima
        self.num_minima = n
        self.well_height = float(well_height)
        self.spacing_deg = 180.0 / n
        self.preferred_turns_deg = np.sort(90.0 - 90.0 / n - 180.0 / n * np.arange(n))  # (n,)
        self.midpoints_deg = 0.5 * (self.preferred_turns_deg[1:] + self.preferred_turns_deg[:-1])
        support = np.concatenate([self.preferred_turns_deg, self.preferred_turns_deg + 180.0])
        self.initial_headings_deg = np.unique(support % 360.0)  # 2n values
        self.mode_names = tuple(f"{t:+g} deg" for t in self.preferred_turns_deg)

    def reward_of_action(self, action: ArrayLike | float) -> np.ndarray:
        """r(a) for `a` `(B, 1)` or `(B,)` (clipped to [-1, 1] first); returns `(B,)`."""
        return self._reward(np.clip(scalar_actions(action), -1.0, 1.0), 0)

    def _reward(self, a: np.ndarray, heading_bin: int = 0) -> np.ndarray:
        d = np.clip(wrap_deg(self.max_turn_deg * a), -90.0, 90.0)
        h = self.well_height
        lo, hi = self.preferred_turns_deg[0], self.preferred_turns_deg[-1]
        interior = h + (1.0 - h) * 0.5 * (1.0 + np.cos(2.0 * np.pi * (d - lo) / self.spacing_deg))
        left = ((d + 90.0) / (lo + 90.0)) ** 2
        right = ((90.0 - d) / (90.0 - hi)) ** 2
        return np.clip(np.where(d < lo, left, np.where(d > hi, right, interior)), 0.0, 1.0)

    def snap_turn_deg(self, turn_deg: ArrayLike | float) -> np.ndarray:
        """Nearest preferred turn to `turn_deg` (degrees, any shape); a tie (exactly on a
        midpoint) goes to the lower angle."""
        idx = np.searchsorted(self.midpoints_deg, as_float64(turn_deg), side="left")
        return self.preferred_turns_deg[idx]

    def _transition_turn_deg(self, a: float) -> float:
        return float(self.snap_turn_deg(self.max_turn_deg * a))

    def _sample_heading(self) -> float:
        return float(self.np_random.choice(self.initial_headings_deg))

    def _breakpoints(self, heading_bin: int = 0) -> list[float]:
        pts = np.concatenate([self.preferred_turns_deg, self.midpoints_deg]) / self.max_turn_deg
        return sorted(pts.tolist())

    def _mode_edges(self, heading_bin: int = 0) -> np.ndarray:
        return np.concatenate([[-1.0], self.midpoints_deg / self.max_turn_deg, [1.0]])


class TurningGMMEnv(_TurningEnv):
    """Turning GMM (method.md §7.5; official `turning_GMM_env.py`, `config/env/mjx_gmm.yaml`).

    Turn Delta = 120 a (linear). The heading before the turn selects bin floor(theta / 45) of
    8; bin b has an equal-weight 1-D GMM over actions with components N(mu_{b,m}, 0.05^2),
    mu = default_rng(gmm_seed).uniform(-(1 - 5 sigma), 1 - 5 sigma, (8, 5)) as float32. Reward
        r(a, b) = max(log p_GMM(clip(a, -(1 - 1e-6), 1 - 1e-6) | b), log 1e-12).
    Initial heading uniform on [0, 360). At T = 1, pi*(a | b) = p_GMM(a | b) up to ~4e-8.
    Mode m of bin b = actions closer to mu_{b,m} than to any other mean of that bin.

    Args:
        num_bins: heading bins over 360 degrees, integer >= 1.
        num_components: GMM components per bin, integer >= 1.
        gmm_std: component standard deviation in action units, in (0, 0.2) so the means'
            range +-(1 - 5 sigma) is not empty.
        gmm_seed: NumPy seed of the means (0 in the paper's config).
        step_size: forward step length, > 0.
    """

    max_turn_deg = 120.0
    action_clip_eps = 1e-6
    min_density = 1e-12
    mean_margin = 5.0
    """Means lie in +-(1 - mean_margin * gmm_std)."""

    def __init__(self, num_bins: int = 8, num_components: int = 5, gmm_std: float = 0.05,
                 gmm_seed: int = 0, step_size: float = 1.0) -> None:
        check_int_at_least("num_bins", num_bins, 1)
        check_int_at_least("num_components", num_components, 1)
        check_positive("gmm_std", gmm_std)
        if gmm_std * self.mean_margin >= 1.0:
            raise ValueError(f"gmm_std={gmm_std!r} must be < {1.0 / self.mean_margin} so that "
                             "the means' range +-(1 - 5 gmm_std) is not empty")
        check_int_at_least("gmm_seed", gmm_seed, 0)
        super().__init__(step_size)
        self.num_bins, self.num_components = num_bins, num_components
        self.gmm_std = float(gmm_std)
        self.bin_width_deg = 360.0 / num_bins
        half = 1.0 - self.mean_margin * self.gmm_std
        self.gmm_means = np.random.default_rng(gmm_seed).uniform(
            -half, half, size=(num_bins, num_components)).astype(np.float32)  # (bins, comps)
        self.mode_names = tuple(f"component {m}" for m in range(num_components))

    def heading_bin(self, heading_deg: ArrayLike | float) -> np.ndarray:
        """floor((heading mod 360) / bin width), any shape -> int64 of the same shape."""
        h = as_float64(heading_deg) % 360.0
        return np.clip(np.floor(h / self.bin_width_deg), 0, self.num_bins - 1).astype(np.int64)

    def _heading_bin(self) -> int:
        return int(self.heading_bin(self.heading_deg))

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["heading_bin"] = self._heading_bin()
        return info

    def _bins_of_obs(self, obs: ArrayLike | None) -> np.ndarray:
        if obs is None:
            raise ValueError("obs=None: TurningGMMEnv needs the observation (cos, sin) of the "
                             "heading, `(2,)` or `(B, 2)`, or heading_bin, to pick the bin")
        o = as_float64(obs)
        return self.heading_bin(np.degrees(np.arctan2(o[..., 1], o[..., 0])))

    def gmm_log_prob(self, action: ArrayLike | float, heading_bin: ArrayLike | int) -> np.ndarray:
        """log p_GMM(a | bin) for `a` `(B, 1)` or `(B,)`, clipped to +-(1 - 1e-6); `(B,)`."""
        a = np.clip(scalar_actions(action), -1.0 + self.action_clip_eps,
                    1.0 - self.action_clip_eps)
        mu = self.gmm_means.astype(np.float64)[np.asarray(heading_bin)]  # (..., comps)
        z = (a[..., None] - mu) / self.gmm_std
        logn = -0.5 * z**2 - math.log(self.gmm_std * math.sqrt(2.0 * math.pi))
        m = logn.max(-1, keepdims=True)
        lse = m[..., 0] + np.log(np.exp(logn - m).sum(-1))
        return lse - math.log(self.num_components)

    def reward_of_action(self, action: ArrayLike | float,
                         heading_bin: ArrayLike | int) -> np.ndarray:
        """r(a, bin) = max(log p_GMM(a | bin), log 1e-12), `(B,)` (method.md §7.5)."""
        return np.maximum(self.gmm_log_prob(action, heading_bin), math.log(self.min_density))

    def _reward(self, a: np.ndarray, heading_bin: int) -> np.ndarray:
        return self.reward_of_action(a, heading_bin)

    def _transition_turn_deg(self, a: float) -> float:
        return self.max_turn_deg * a

    def _sample_heading(self) -> float:
        return float(self.np_random.uniform(0.0, 360.0))

    def _breakpoints(self, heading_bin: int) -> list[float]:
        return sorted(self.gmm_means[heading_bin].astype(np.float64).tolist()
                      + self._mode_edges(heading_bin)[1:-1].tolist())

    def _mode_edges(self, heading_bin: int) -> np.ndarray:
        mu = np.sort(self.gmm_means[heading_bin].astype(np.float64))
        return np.concatenate([[-1.0], 0.5 * (mu[1:] + mu[:-1]), [1.0]])

    def _sorted_to_modes(self, masses: np.ndarray, heading_bin: int) -> np.ndarray:
        """Cells left to right -> the order of `gmm_means[bin]` (component m)."""
        out = np.empty_like(masses)
        out[np.argsort(self.gmm_means[heading_bin].astype(np.float64))] = masses
        return out
