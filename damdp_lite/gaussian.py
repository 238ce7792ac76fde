"""Gaussian policy with the chain-policy protocol (K = 1, ell = log pi(a | s)).

Plugged into any algorithm of this package it gives plain MaxEnt RL (SAC, MaxEnt PPO, REPPO,
ME-WPO); the same algorithm with a `DiffusionPolicy` is its DA-MDP version (design.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from .chain import ChainPolicy
from .config import WIDTHS, Config, param
from .utils import (
    RunningNorm,
    check_choice,
    check_int_at_least,
    check_positive,
    log_one_minus_tanh_sq,
    normal_log_prob,
)


@dataclass
class GaussianConfig(Config):
    """Hyperparameters of a `GaussianPolicy`. Shared by CLI, widgets, checkpoints; nested in an
    algorithm config like `DiffusionConfig` (env and device fields set from the run)."""

    obs_dim: int = 1
    """Observation size (0 allowed: a state-free sampler)."""
    action_dim: int = 1
    """Action / latent size d (>= 1)."""
    hidden_sizes: tuple[int, ...] = param((64, 64), WIDTHS)
    """Widths of the mean (and log-std) network (toys 2 x 64, MuJoCo 2 x 64-256)."""
    init_std: float = 1.0
    """Initial standard deviation of the pre-squash Gaussian (> 0)."""
    state_dependent_std: bool = False
    """Predict log-std from the observation (SAC style) instead of a free vector (PPO style)."""
    log_std_min: float = -7.0
    """Lower clamp of log-std."""
    log_std_max: float = 2.0
    """Upper clamp of log-std."""
    tanh_jacobian: bool = False
    """Add -log(1 - tanh^2 a) to log pi: action-space entropy (D2)."""
    squash: str = "tanh"
    """"tanh" (clip(tanh a) rescaled to the action Box) or "identity" (latent bandit)."""
    action_clip: float = 1.0
    """Clip c of tanh(a), in (0, 1]."""
    action_low: tuple[float, ...] | None = None
    """Lower action bounds, length d (default -1)."""
    action_high: tuple[float, ...] | None = None
    """Upper action bounds, length d (default +1)."""
    device: str = "cpu"
    """Torch device ("cpu", "cuda")."""

    @property
    def num_steps(self) -> int:
        """K = 1: one Gaussian step per env step."""
        return 1

    def check(self) -> None:
        check_int_at_least("obs_dim", self.obs_dim, 0)
        check_int_at_least("action_dim", self.action_dim, 1)
        check_positive("init_std", self.init_std)
        if not 0.0 < self.action_clip <= 1.0:
            raise ValueError(f"action_clip={self.action_clip!r} must be in (0, 1]")
        check_choice("squash", self.squash, ("tanh", "identity"))
        if not self.log_std_min < math.log(self.init_std) < self.log_std_max:
            raise ValueError(f"init_std={self.init_std!r} must lie inside "
                             f"(exp(log_std_min), exp(log_std_max))")
        for i, h in enumerate(self.hidden_sizes):
            check_int_at_least(f"hidden_sizes[{i}]", h, 1)


class GaussianPolicy(ChainPolicy):
    """Diagonal Gaussian in latent space, `a = mean(s) + std(s) eps`, squashed like the diffusion
    policy. As a chain policy: K = 1, `init_latent` returns zeros (ignored), `ell = log pi(a | s)`
    and the noising kernel is absent (`noise_log_prob = 0`)."""

    def __init__(self, config: GaussianConfig) -> None:
        super().__init__()
        self.config = c = config
        self.num_steps, self.action_dim, self.obs_dim = 1, c.action_dim, c.obs_dim
        self.tanh_jacobian = c.tanh_jacobian
        self._setup_squash(c.squash, c.action_clip, c.action_low, c.action_high)
        layers: list[nn.Module] = []
        width = c.obs_dim
        with warnings.catch_warnings():  # obs_dim = 0 (a state-free sampler): zero-width input
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            for h in c.hidden_sizes:
                layers += [nn.Linear(width, h), nn.Tanh()]
                width = h
            self.mean_head = nn.Linear(width, c.action_dim)
        self.body = nn.Sequential(*layers)
        with torch.no_grad():
            self.mean_head.weight.mul_(0.01)
            self.mean_head.bias.zero_()
        if c.state_dependent_std:
            self.log_std_head = nn.Linear(width, c.action_dim)
            with torch.no_grad():
                self.log_std_head.weight.mul_(0.01)
                self.log_std_head.bias.fill_(math.log(c.init_std))
        else:
            self.log_std = nn.Parameter(torch.full((c.action_dim,), math.log(c.init_std)))
        self.obs_norm = RunningNorm(c.obs_dim)
        self.latent_norm = None  # the Gaussian never reads a latent
        self.to(c.device)

    @property
    def device(self) -> torch.device:
        return self.mean_head.weight.device

    def mean_and_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash mean and std, each `(B, d)`."""
        self._check_obs(obs)
        h = self.body(self.obs_norm(obs))
        mean = self.mean_head(h)
        log_std = self.log_std_head(h) if self.config.state_dependent_std else \
            self.log_std.expand_as(mean)
        log_std = log_std.clamp(self.config.log_std_min, self.config.log_std_max)
        return mean, log_std.exp()

    def describe(self) -> dict[str, list]:
        """`{"latent_mean", "latent_std"}` of the pre-squash Gaussian at the zero observation,
        each a list of length d."""
        with torch.no_grad():
            mean, std = self.mean_and_std(torch.zeros(1, self.obs_dim, device=self.device))
        return {"latent_mean": mean[0].cpu().tolist(), "latent_std": std[0].cpu().tolist()}

    def init_latent(self, obs: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """Placeholder latent `(B, d)` of zeros: a Gaussian policy has no prior."""
        self._check_obs(obs)
        return torch.zeros(obs.shape[0], self.action_dim, device=self.device)

    def denoise_mean(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                     ) -> torch.Tensor:
        """Mean of the (only) step, `(B, d)`; `a_k` is ignored."""
        self._check_k(k, obs.shape[0])
        return self.mean_and_std(obs)[0]

    def denoise_var(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                    ) -> torch.Tensor:
        """Variance std(s)^2 of the (only) step, `(B, d)`."""
        self._check_k(k, obs.shape[0])
        return self.mean_and_std(obs)[1] ** 2

    def denoise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                         a_prev: torch.Tensor) -> torch.Tensor:
        """log pi(a | s), `(B,)`; plus the tanh Jacobian if `tanh_jacobian`."""
        self._check_k(k, obs.shape[0])
        self._check_latent("a_prev", a_prev, obs.shape[0])
        mean, std = self.mean_and_std(obs)
        logp = normal_log_prob(a_prev, mean, std**2).sum(-1)
        if self.tanh_jacobian:
            logp = logp - log_one_minus_tanh_sq(a_prev).sum(-1)
        return logp

    def noise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                       a_prev: torch.Tensor) -> torch.Tensor:
        """No noising kernel: zeros `(B,)`."""
        self._check_k(k, a_prev.shape[0])
        return torch.zeros(a_prev.shape[0], device=a_prev.device)

    def log_ratio(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                  a_prev: torch.Tensor) -> torch.Tensor:
        """ell = log pi(a | s), `(B,)` (no noising kernel to subtract)."""
        return self.denoise_log_prob(obs, a_k, k, a_prev)

    def step(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
             generator: torch.Generator | None = None, reparameterize: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample `a` `(B, d)` and return it with `ell = log pi(a | s)` `(B,)`."""
        self._check_k(k, obs.shape[0])
        with torch.set_grad_enabled(reparameterize and torch.is_grad_enabled()):
            mean, std = self.mean_and_std(obs)
            eps = torch.randn(mean.shape, device=mean.device, generator=generator)
            a = mean + std * eps
            ell = self.log_ratio(obs, a_k, k, a)
        return a, ell
