"""Critics over augmented states: the HL-Gauss categorical value head and Q networks on
(observation, latent, diffusion index[, action]) (method.md §5.0; used by REPPO, WPO, SAC).

HL-Gauss (Farebrother et al. 2024, arXiv 2403.03950; REPPO's `hl_gauss`): a scalar target G is
turned into a distribution over B bins, the mass a Gaussian N(clip(G), sigma^2), sigma = 0.75 w,
puts on each bin [z_i - w/2, z_i + w/2); the critic is trained by cross-entropy to it and read
out as Q = softmax(logits) . z.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .diffusion import TimeEmbedding
from .utils import RunningNorm, check_int_at_least, check_positive


class HLGaussSupport(nn.Module):
    """Bins of the categorical critic: centres z = linspace(v_min, v_max, B), width w."""

    def __init__(self, v_min: float = -100.0, v_max: float = 200.0, num_bins: int = 151,
                 sigma_ratio: float = 0.75) -> None:
        super().__init__()
        check_int_at_least("num_bins", num_bins, 2)
        check_positive("sigma_ratio", sigma_ratio)
        if not (math.isfinite(v_min) and math.isfinite(v_max) and v_min < v_max):
            raise ValueError(f"v_min={v_min!r}, v_max={v_max!r} must be finite with v_min < v_max")
        self.v_min, self.v_max, self.num_bins = float(v_min), float(v_max), num_bins
        self.width = (self.v_max - self.v_min) / (num_bins - 1)
        self.sigma = sigma_ratio * self.width
        self.register_buffer("centres", torch.linspace(v_min, v_max, num_bins))
        self.register_buffer("edges", torch.linspace(v_min - self.width / 2,
                                                     v_max + self.width / 2, num_bins + 1))

    def probs(self, target: torch.Tensor) -> torch.Tensor:
        """HLGauss(G): `target` `(B,)` -> bin probabilities `(B, num_bins)`, rows sum to 1.

        Differences of the N(clip(G, v_min, v_max), sigma^2) CDF at the edges, renormalised.
        """
        g = target.clamp(self.v_min, self.v_max)[:, None]
        cdf = torch.special.ndtr((self.edges.to(g.dtype) - g) / self.sigma)  # (B, B+1)
        mass = cdf[:, 1:] - cdf[:, :-1]
        return mass / mass.sum(-1, keepdim=True)

    def clipped_fraction(self, target: torch.Tensor) -> float:
        """Fraction of `target` outside [v_min, v_max]: those targets are clipped to the edge bin,
        so the critic cannot represent them (keep it under 1 % by sizing the support)."""
        return ((target < self.v_min) | (target > self.v_max)).float().mean().item()

    def value(self, logits: torch.Tensor) -> torch.Tensor:
        """Q = softmax(logits) . z, `(B, num_bins)` -> `(B,)`."""
        return torch.softmax(logits, -1) @ self.centres.to(logits.dtype)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to HLGauss(target) per sample, `(B,)`; the target is not differentiated."""
        return -(self.probs(target.detach()) * torch.log_softmax(logits, -1)).sum(-1)


def mlp(widths: list[int], layer_norm: bool = True, out: int | None = None) -> nn.Sequential:
    """Linear (-> LayerNorm) -> SiLU per hidden width, then an optional Linear to `out`."""
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), *([nn.LayerNorm(b)] if layer_norm else []), nn.SiLU()]
    if out is not None:
        layers.append(nn.Linear(widths[-1], out))
    return nn.Sequential(*layers)


class AugmentedCritic(nn.Module):
    """Q_phi(s_bar, a_bar^k, a^{k-1}, temb(k)) or V_psi(s_bar, a_bar^k, temb(k)), optionally
    categorical (HL-Gauss) (method.md §5.0).

    Owns running normalisers `obs_norm`, `latent_norm` (updated by `collect_rollout`); the action
    a^{k-1} enters raw. With `support` the head outputs `num_bins` logits plus a learnable bias
    initialised to log HLGauss(0); `forward` returns the scalar value either way, `logits` the
    categorical head's output.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...] = (256, 256),
                 with_action: bool = True, support: HLGaussSupport | None = None,
                 time_embedding_dim: int = 16) -> None:
        super().__init__()
        self.with_action, self.support = with_action, support
        self.obs_norm = RunningNorm(obs_dim)
        self.latent_norm = RunningNorm(action_dim)
        self.temb = TimeEmbedding(time_embedding_dim)
        width = obs_dim + action_dim * (2 if with_action else 1) + time_embedding_dim
        out = support.num_bins if support is not None else 1
        self.net = mlp([width, *hidden_sizes], out=out)
        if support is not None:
            with torch.no_grad():
                self.net[-1].weight.mul_(0.01)
                self.net[-1].bias.zero_()
            prior = support.probs(torch.zeros(1))[0].clamp(min=1e-12).log()
            self.logit_bias = nn.Parameter(prior)

    def _features(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                  action: torch.Tensor | None) -> torch.Tensor:
        k_t = torch.as_tensor(k, device=obs.device).expand(obs.shape[0])
        parts = [self.obs_norm(obs), self.latent_norm(a_k), self.temb(k_t)]
        if self.with_action:
            if action is None:
                raise ValueError("action is None but this critic is a Q function "
                                 "(with_action=True)")
            parts.insert(2, action)
        return torch.cat(parts, dim=-1)

    def logits(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
               action: torch.Tensor | None = None) -> torch.Tensor:
        """Categorical head's logits `(B, num_bins)` (requires a `support`)."""
        if self.support is None:
            raise ValueError("logits() needs a categorical critic (support=HLGaussSupport(...))")
        return self.net(self._features(obs, a_k, k, action)) + self.logit_bias

    def forward(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                action: torch.Tensor | None = None) -> torch.Tensor:
        """The value `(B,)`; `obs` `(B, obs_dim)`, `a_k` and `action` `(B, d)`, `k` int / `(B,)`."""
        if self.support is not None:
            return self.support.value(self.logits(obs, a_k, k, action))
        return self.net(self._features(obs, a_k, k, action)).squeeze(-1)

    def loss(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
             action: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        """Per-sample loss `(B,)`: HL-Gauss cross-entropy, or squared error without a support."""
        if self.support is not None:
            return self.support.loss(self.logits(obs, a_k, k, action), target)
        return (self(obs, a_k, k, action) - target.detach()) ** 2
