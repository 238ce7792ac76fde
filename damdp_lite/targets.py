"""Unnormalised targets exp(r(x) / T) with exact log Z by quadrature (notebook 01, method.md §7).

A target has a reward `r(x)` on its domain: `"latent"` targets live on R^d and are sampled with
`squash="identity"`; `"box"` targets live on [-1, 1]^d and are sampled through `tanh` (use
`tanh_jacobian=True` for exact comparisons). The MaxEnt optimum is pi*(x) = exp(r(x)/T) / Z.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate

from .utils import check_positive


def _check_temperature(temperature: float) -> None:
    check_positive("temperature", temperature)


def log_quad_exp(reward: Callable[[np.ndarray], np.ndarray], lo: float, hi: float,
                 temperature: float, points: Sequence[float] = ()) -> float:
    """log of int_lo^hi exp(r(a) / T) da by adaptive quadrature (scipy `quad`, split at `points`).

    `reward` is vectorised: `(N,)` -> `(N,)`. The integrand is shifted by max r / T (found on a
    4001-node grid plus `points`) so it cannot overflow; the shift is added back to the log.
    """
    _check_temperature(temperature)
    grid = np.concatenate([np.linspace(lo, hi, 4001), np.asarray(points, dtype=np.float64)])
    grid = grid[(grid >= lo) & (grid <= hi)]
    shift = float(np.max(reward(grid))) / temperature
    inner = sorted({float(p) for p in points if lo < p < hi})

    def f(x: float) -> float:
        return math.exp(float(reward(np.array([x]))[0]) / temperature - shift)

    val, _ = integrate.quad(f, lo, hi, points=inner or None, limit=400, epsabs=0.0,
                            epsrel=1e-11)
    return (math.log(val) if val > 0 else -math.inf) + shift


@dataclass(frozen=True)
class Grid:
    """A tensor-product quadrature grid with trapezoid weights (float64)."""

    axes: tuple[torch.Tensor, ...]
    """One 1-D tensor of nodes per dimension."""

    @property
    def points(self) -> torch.Tensor:
        """All nodes, `(N, dim)` (meshgrid order 'ij')."""
        mesh = torch.meshgrid(*self.axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=-1)

    @property
    def log_weights(self) -> torch.Tensor:
        """log of the trapezoid weights at `points`, `(N,)`."""
        logw = torch.zeros(())
        for ax in self.axes:
            h = (ax[1] - ax[0]).item()
            w = torch.full_like(ax, h)
            w[0] = w[-1] = h / 2
            logw = (logw[..., None] + torch.log(w)).reshape(-1)
        return logw

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)


class Target:
    """Base class. Subclasses define `dim`, `domain`, `bounds` and `reward`."""

    dim: int = 1
    domain: str = "latent"
    bounds: tuple[float, float] = (-4.0, 4.0)
    """Integration / plotting range per axis (mass outside is negligible)."""
    mode_names: tuple[str, ...] = ()

    def reward(self, x: torch.Tensor) -> torch.Tensor:
        """r(x) for `x` of shape `(B, dim)`; returns `(B,)`."""
        raise NotImplementedError

    def log_density(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """log pi*(x) = r(x)/T - log Z, `(B,)`."""
        return self.reward(x) / temperature - self.log_z(temperature)

    def grid(self, n: int | None = None) -> Grid:
        """Quadrature grid over `bounds`: 4001 nodes in 1-D, 2001^2 in 2-D (method.md I16)."""
        n = n or (4001 if self.dim == 1 else 2001)
        ax = torch.linspace(self.bounds[0], self.bounds[1], n, dtype=torch.float64)
        return Grid(tuple(ax for _ in range(self.dim)))

    def log_z(self, temperature: float) -> float:
        """log of int exp(r(x)/T) dx over the domain: adaptive quadrature in 1-D (scipy `quad`,
        with `breakpoints`), trapezoid on a 2001^2 grid with log-sum-exp in 2-D."""
        _check_temperature(temperature)
        if self.dim == 1:
            def reward_np(a: np.ndarray) -> np.ndarray:
                return self.reward(torch.as_tensor(a, dtype=torch.float64)[:, None]).numpy()

            return log_quad_exp(reward_np, *self.bounds, temperature, self.breakpoints() or ())
        g = self.grid()
        return float(torch.logsumexp(self.reward(g.points) / temperature + g.log_weights, 0))

    def breakpoints(self) -> list[float] | None:
        """Kinks or narrow peaks that 1-D quadrature should split at."""
        return None

    def mode_index(self, x: torch.Tensor) -> torch.Tensor:
        """Which mode region each point is in, `(B,)` long, indices into `mode_names`."""
        raise NotImplementedError

    def mode_masses(self, x: torch.Tensor) -> torch.Tensor:
        """Fraction of samples `x` `(B, dim)` in each mode region, `(M,)`."""
        idx = self.mode_index(x)
        return torch.bincount(idx, minlength=len(self.mode_names)).double() / len(idx)

    def exact_mode_masses(self, temperature: float) -> torch.Tensor:
        """Mode masses of pi* by quadrature on `grid()`, `(M,)`."""
        g = self.grid()
        pts = g.points
        logp = self.reward(pts) / temperature + g.log_weights
        w = torch.softmax(logp, 0)
        return torch.zeros(len(self.mode_names), dtype=torch.float64).index_add_(
            0, self.mode_index(pts), w)


class DoubleWell1D(Target):
    """1-D latent double well r(x) = -(x^2 - 1)^2 (method.md §7.1, I6). Modes: x < 0, x >= 0."""

    dim, domain, bounds = 1, "latent", (-4.0, 4.0)
    mode_names = ("x<0", "x>=0")

    def reward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x[..., 0] ** 2 - 1.0) ** 2)

    def breakpoints(self) -> list[float]:
        return [-1.0, 0.0, 1.0]

    def mode_index(self, x: torch.Tensor) -> torch.Tensor:
        return (x[..., 0] >= 0).long()


class FourModes2D(Target):
    """Four-mode bandit of Diffusion-QL, online version (method.md §7.2, I16), on [-1, 1]^2:

        r(a) = log sum_m exp(R_m - ||a - mu_m||^2 / (2 sigma_r^2)),
        mu in {(-0.8, 0.8), (-0.8, -0.8), (0.8, 0.8), (0.8, -0.8)}  (LU, LD, RU, RD).

    Mode masses of pi* are softmax(R / T) up to a negligible overlap term.
    """

    dim, domain, bounds = 2, "box", (-1.0, 1.0)
    mode_names = ("LU", "LD", "RU", "RD")
    means = ((-0.8, 0.8), (-0.8, -0.8), (0.8, 0.8), (0.8, -0.8))

    def __init__(self, mode_rewards=(3.0, 0.0, 1.5, 5.0), sigma_r: float = 0.05) -> None:
        check_positive("sigma_r", sigma_r)
        if len(mode_rewards) != 4:
            raise ValueError(f"mode_rewards has {len(mode_rewards)} entries; expected 4")
        self.mode_rewards = tuple(float(r) for r in mode_rewards)
        self.sigma_r = float(sigma_r)

    def reward(self, x: torch.Tensor) -> torch.Tensor:
        mu = torch.tensor(self.means, dtype=x.dtype, device=x.device)  # (4, 2)
        R = torch.tensor(self.mode_rewards, dtype=x.dtype, device=x.device)
        d2 = ((x[..., None, :] - mu) ** 2).sum(-1)  # (B, 4)
        return torch.logsumexp(R - d2 / (2 * self.sigma_r**2), dim=-1)

    def mode_index(self, x: torch.Tensor) -> torch.Tensor:
        right, down = (x[..., 0] >= 0).long(), (x[..., 1] < 0).long()
        return 2 * right + down  # LU=0, LD=1, RU=2, RD=3

    def softmax_masses(self, temperature: float) -> torch.Tensor:
        """softmax(R / T), the exact masses up to overlap, `(4,)`."""
        return torch.softmax(torch.tensor(self.mode_rewards, dtype=torch.float64) / temperature, 0)


class GaussianMixture2D(Target):
    """Latent 2-D mixture, r(x) = log sum_m w_m N(x; mu_m, s^2 I): at T = 1, pi* is the mixture
    itself and log Z = 0 exactly (a built-in check of the quadrature). Default: a ring of
    `num_modes` modes of radius `radius`."""

    dim, domain = 2, "latent"

    def __init__(self, num_modes: int = 4, radius: float = 2.0, std: float = 0.4,
                 weights=None) -> None:
        check_positive("radius", radius)
        check_positive("std", std)
        if num_modes < 1:
            raise ValueError(f"num_modes={num_modes!r} must be >= 1")
        ang = 2 * np.pi * np.arange(num_modes) / num_modes + np.pi / 4
        self.mode_means = torch.tensor(np.stack([radius * np.cos(ang), radius * np.sin(ang)], 1))
        w = np.ones(num_modes) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (num_modes,) or (w <= 0).any():
            raise ValueError(f"weights={weights!r} must be {num_modes} positive numbers")
        self.weights = torch.tensor(w / w.sum())
        self.std = float(std)
        L = radius + 8 * std
        self.bounds = (-L, L)
        self.mode_names = tuple(f"mode {m}" for m in range(num_modes))

    def reward(self, x: torch.Tensor) -> torch.Tensor:
        mu = self.mode_means.to(x)
        d2 = ((x[..., None, :] - mu) ** 2).sum(-1)  # (B, M)
        logn = -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(torch.log(self.weights.to(x)) + logn, dim=-1)

    def mode_index(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x[..., None, :] - self.mode_means.to(x)) ** 2).sum(-1)
        return d2.argmin(-1)


TARGETS = {"double_well": DoubleWell1D, "four_modes": FourModes2D, "ring": GaussianMixture2D}


def make_target(name: str, **kwargs) -> Target:
    """Build a target by name: one of `TARGETS`."""
    if name not in TARGETS:
        raise ValueError(f"target={name!r} is not known; expected one of {tuple(TARGETS)}")
    return TARGETS[name](**kwargs)
