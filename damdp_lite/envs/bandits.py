"""One-step bandits as Gymnasium envs (method.md §7.1, §7.2), plus the quadrature helpers that
the other toy envs share.

The rewards are not re-implemented here: they come from `damdp_lite.targets` (`DoubleWell1D`,
`FourModes2D`), so each formula lives in one place. Every step is a whole episode
(`terminated=True`); the observation is a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ..targets import DoubleWell1D, FourModes2D, log_quad_exp  # noqa: F401 (re-exported)
from ..utils import check_positive

ArrayLike = np.ndarray | torch.Tensor


# ----------------------------------------------------------------------------------------------
# Shared helpers (also used by turning.py)
# ----------------------------------------------------------------------------------------------


def as_float64(x: ArrayLike | float) -> np.ndarray:
    """A float64 NumPy copy of `x` (NumPy array, torch tensor or number)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def like_input(out: np.ndarray, like: ArrayLike | float) -> ArrayLike:
    """Return `out` as a torch tensor (dtype/device of `like`) when `like` is one, else NumPy."""
    if isinstance(like, torch.Tensor):
        dtype = like.dtype if like.is_floating_point() else torch.float64
        return torch.as_tensor(out, dtype=dtype, device=like.device)
    return out


def scalar_actions(action: ArrayLike | float) -> np.ndarray:
    """1-D actions `(B, 1)`, `(B,)` or `()` as float64 `(B,)` / `()`; only a trailing axis of size 1
    on an array with ndim >= 2 is dropped, so `(1,)` stays `(1,)`."""
    a = as_float64(action)
    if a.ndim >= 2 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def interval_masses(reward: Callable[[np.ndarray], np.ndarray], edges: Sequence[float],
                    temperature: float, points: Sequence[float] = ()) -> np.ndarray:
    """Mass of pi* proportional to exp(r / T) in each interval `[edges[i], edges[i+1]]`, `(M,)`."""
    logs = np.array([log_quad_exp(reward, lo, hi, temperature, points)
                     for lo, hi in zip(edges[:-1], edges[1:], strict=True)])
    w = np.exp(logs - logs.max())
    return w / w.sum()


# ----------------------------------------------------------------------------------------------
# §7.1 Latent double-well bandit
# ----------------------------------------------------------------------------------------------


class DoubleWellBanditEnv(gym.Env[np.ndarray, np.ndarray]):
    """1-D latent double-well bandit (method.md §7.1, I6).

    Observation `Box(-inf, inf, (1,))`, always `[0.]`; action `Box(-inf, inf, (1,))` used raw
    (no clip, no squash); reward r(x) = -(x^2 - 1)^2 (`targets.DoubleWell1D`); one step,
    `terminated=True`. Optimum pi*(x) = exp(r(x)/T) / Z on R with mass 0.5 on each sign.
    """

    metadata = {"render_modes": []}
    STATE_ATTRS: tuple[str, ...] = ()
    """No dynamic state: every step is a whole episode from a constant observation."""
    mode_names = DoubleWell1D.mode_names

    def __init__(self) -> None:
        self.target = DoubleWell1D()
        self.observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self._log_z: dict[float, float] = {}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One whole episode: reward r(action) on the raw action `(1,)`."""
        x = as_float64(action).reshape(-1)
        if x.shape != (1,):
            raise ValueError(f"action has shape {np.shape(action)}; expected (1,)")
        reward = float(self.reward_of_action(x)[0])
        return np.zeros(1, dtype=np.float32), reward, True, False, {}

    def reward_of_action(self, action: ArrayLike | float) -> np.ndarray:
        """r(x) = -(x^2 - 1)^2 for `x` `(B, 1)` or `(B,)`; returns `(B,)` (method.md §7.1)."""
        x = torch.as_tensor(scalar_actions(action))
        return self.target.reward(x[..., None]).numpy()

    def log_z(self, temperature: float) -> float:
        """log int_R exp(r(x)/T) dx (quadrature in `targets`, cached); I6 table."""
        if temperature not in self._log_z:
            self._log_z[temperature] = self.target.log_z(temperature)
        return self._log_z[temperature]

    def optimal_log_density(self, action: ArrayLike | float, temperature: float,
                            obs: ArrayLike | None = None) -> ArrayLike:
        """log pi*(x) = r(x)/T - log Z for `x` `(B, 1)` or `(B,)`; returns `(B,)`.
        `obs` is ignored (the state is constant)."""
        out = self.reward_of_action(action) / temperature - self.log_z(temperature)
        return like_input(out, action)

    def optimal_mode_masses(self, temperature: float, obs: ArrayLike | None = None) -> np.ndarray:
        """Masses of pi* on (x < 0, x >= 0), `(2,)`: both 0.5 by symmetry (computed by quad)."""
        lo, hi = self.target.bounds
        return interval_masses(self.reward_of_action, [lo, 0.0, hi], temperature,
                               self.target.breakpoints())


# ----------------------------------------------------------------------------------------------
# §7.2 Four-mode bandit
# ----------------------------------------------------------------------------------------------


class FourModeBanditEnv(gym.Env[np.ndarray, np.ndarray]):
    """2-D four-mode bandit, online version of the Diffusion-QL toy (method.md §7.2, I16).

    Observation `zeros(2)` in `Box(-1, 1, (2,))`; action `Box(-1, 1, (2,))`, clipped to the box;
    r(a) = log sum_m exp(R_m - ||a - mu_m||^2 / (2 sigma_r^2)) (`targets.FourModes2D`); one step,
    `terminated=True`. Quadrant masses of pi* are softmax(R / T) up to a negligible overlap.

    Args:
        mode_rewards: R for (LU, LD, RU, RD); `(0, 0, 0, 0)` gives four equal modes (see
            `equal_modes`).
        sigma_r: width of each reward bump, > 0 (0.05 default, 0.1 in the paper's variant).
    """

    metadata = {"render_modes": []}
    STATE_ATTRS: tuple[str, ...] = ()
    """No dynamic state: every step is a whole episode from a constant observation."""
    mode_names = FourModes2D.mode_names

    def __init__(self, mode_rewards: Sequence[float] = (3.0, 0.0, 1.5, 5.0),
                 sigma_r: float = 0.05) -> None:
        self.target = FourModes2D(mode_rewards=mode_rewards, sigma_r=sigma_r)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._log_z: dict[float, float] = {}

    @classmethod
    def equal_modes(cls, sigma_r: float = 0.05) -> FourModeBanditEnv:
        """Four equal modes, R = (0, 0, 0, 0) (method.md §7.2)."""
        return cls(mode_rewards=(0.0, 0.0, 0.0, 0.0), sigma_r=sigma_r)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One whole episode: reward r(clip(action, -1, 1)) for `action` `(2,)`."""
        a = as_float64(action)
        if a.shape != (2,):
            raise ValueError(f"action has shape {a.shape}; expected (2,)")
        reward = float(self.reward_of_action(a))
        return np.zeros(2, dtype=np.float32), reward, True, False, {}

    def reward_of_action(self, action: ArrayLike) -> np.ndarray:
        """r(clip(a)) for `a` `(B, 2)` (or `(2,)`); returns `(B,)` (or `()`), method.md §7.2."""
        a = np.clip(as_float64(action), -1.0, 1.0)
        return self.target.reward(torch.as_tensor(a)).numpy()

    def log_z(self, temperature: float) -> float:
        """log int_{[-1,1]^2} exp(r/T) da (2001^2 trapezoid in `targets`, cached); I16 values."""
        if temperature not in self._log_z:
            self._log_z[temperature] = self.target.log_z(temperature)
        return self._log_z[temperature]

    def optimal_log_density(self, action: ArrayLike, temperature: float,
                            obs: ArrayLike | None = None) -> ArrayLike:
        """log pi*(a) = r(a)/T - log Z on [-1, 1]^2 (-inf outside) for `a` `(B, 2)`; returns `(B,)`.
        Action-space density (`tanh_jacobian=True` comparisons). `obs` is ignored."""
        a = as_float64(action)
        inside = np.all(np.abs(a) <= 1.0, axis=-1)
        out = self.reward_of_action(a) / temperature - self.log_z(temperature)
        return like_input(np.where(inside, out, -np.inf), action)

    def optimal_mode_masses(self, temperature: float, obs: ArrayLike | None = None) -> np.ndarray:
        """Quadrant masses of pi* (LU, LD, RU, RD) by quadrature on the 2001^2 grid, `(4,)`."""
        check_positive("temperature", temperature)
        return self.target.exact_mode_masses(temperature).numpy()
