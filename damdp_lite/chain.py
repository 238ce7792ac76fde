"""The chain-policy protocol every algorithm is written against (design.md, "the one idea").

A chain policy turns an observation into an action through K stochastic steps
`a^K -> a^{K-1} -> ... -> a^0`, reporting a per-step entropy term `ell_k` at each one:

    GaussianPolicy:  K = 1,  ell = log pi(a | s)                                (MaxEnt RL)
    DiffusionPolicy: K >= 1, ell = log q(a^{k-1} | a^k, s) - log pi(a^k | a^{k-1}, s)  (DA-MDP)

Algorithms only call the methods `ChainPolicy` declares, so Gaussian and diffusion runs share
one code path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from .utils import check_choice, check_shape


def gaussian_kl(mean_p: torch.Tensor, var_p: torch.Tensor, mean_q: torch.Tensor,
                var_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_p, var_p) || N(mean_q, var_q)) for diagonal Gaussians, summed over the last axis.

    With equal variances 2 eta this is sum_i (mean_p - mean_q)^2 / (4 eta_i) (method.md I9).
    """
    return 0.5 * (torch.log(var_q / var_p) + (var_p + (mean_p - mean_q) ** 2) / var_q - 1).sum(-1)


def step_kl(old: ChainPolicy, new: ChainPolicy, obs: torch.Tensor, a_k: torch.Tensor,
            k: int | torch.Tensor) -> torch.Tensor:
    """Single-step forward KL(q_old(. | s~) || q_new(. | s~)), `(B,)`, in closed form (I9).

    Every step of a chain policy is a diagonal Gaussian in the latent (the diffusion kernel
    N(mean, 2 eta), the Gaussian policy's N(mu(s), std^2)), so the KL the REPPO/WPO trust region
    bounds needs no sampling. The tanh Jacobian cancels between the two kernels. Differentiable
    in `new` only when `old` is frozen.
    """
    return gaussian_kl(old.denoise_mean(obs, a_k, k), old.denoise_var(obs, a_k, k),
                       new.denoise_mean(obs, a_k, k), new.denoise_var(obs, a_k, k))


def saturated_fraction(a_0: torch.Tensor, threshold: float = 0.99) -> float:
    """Fraction of action coordinates with |tanh a^0| > `threshold`, over every entry of `a_0`
    `(..., d)`: where tanh is flat, Q and the control cost no longer depend on the latent, so a
    policy pushed there stops learning (a diagnostic in every run's progress.csv)."""
    return (torch.tanh(a_0).abs() > threshold).float().mean().item()


@dataclass
class ChainSample:
    """Every latent and every log-ratio of one pass through the chain.

    Attributes:
        latents: `(K + 1, B, d)`; `latents[k]` is `a^k` (`latents[K]` the prior sample,
            `latents[0]` the final latent `a^0`).
        log_ratios: `(K, B)`; `log_ratios[k - 1]` is `ell_k` of the step `a^k -> a^{k-1}`.
        action: `(B, d)`; `to_action(a^0)`, the env action.
    """

    latents: torch.Tensor
    log_ratios: torch.Tensor
    action: torch.Tensor

    @property
    def a_0(self) -> torch.Tensor:
        """The final latent `a^0`, `(B, d)`."""
        return self.latents[0]


class ChainPolicy(nn.Module, abc.ABC):
    """The protocol every learner calls, as an abstract base; shared squashing, shape checks
    and whole-chain sampling are implemented here.

    Every kernel method takes its arguments in one order, the conditioning first and the
    evaluated latent last: `(obs, a_k, k, a_prev)`, with a^{k-1} written `a_prev`.

    | method / attribute                    | equation                           | returns       |
    |---------------------------------------|------------------------------------|---------------|
    | init_latent(obs)                      | a^K ~ p_0 = N(0, sigma_0^2 I)      | (B, d)        |
    | denoise_mean(obs, a_k, k)             | mean of q_theta(. ; a^k, s)        | (B, d)        |
    | denoise_var(obs, a_k, k)              | variance of q_theta(. ; a^k, s)    | (B, d)        |
    | denoise_log_prob(obs, a_k, k, a_prev) | log q_theta(a^{k-1} ; a^k, s)      | (B,)          |
    | noise_log_prob(obs, a_k, k, a_prev)   | log pi_theta(a^k ; a^{k-1}, s)     | (B,)          |
    | log_ratio(obs, a_k, k, a_prev)        | ell_k = log q - log pi             | (B,)          |
    | step(obs, a_k, k)                     | a^{k-1} ~ q_theta, with its ell_k  | (B, d), (B,)  |
    | to_action(a_0)                        | clip(tanh a^0, +-c) on the Box     | (B, d)        |
    | prior_entropy()                       | H(p_0) in nats                     | float         |
    | describe()                            | learned step sizes / std, as lists | dict          |
    | num_steps, obs_dim, action_dim        | K, O, d                            | int           |
    | tanh_jacobian                         | -log(1 - tanh^2 a^0) in ell_1      | bool          |
    | obs_norm, latent_norm                 | normalisers the rollout updates    | module / None |

    `k` is an int in [1, K] or a `(B,)` long tensor (k mixed within a batch); B is the batch.
    """

    num_steps: int
    """K: denoising steps per env step (1 for the Gaussian policy)."""
    action_dim: int
    """d: size of the action and of every latent a^k."""
    obs_dim: int
    """O: size of the observation (0 for a state-free sampler)."""
    tanh_jacobian: bool = False
    """Whether ell_1 (and so log q at k = 1) includes the tanh Jacobian: action-space entropy."""
    prior_std: float | None = None
    """sigma_0 of the prior N(0, sigma_0^2 I) of a^K; None for a policy without a prior (its
    first step ignores a^K)."""
    obs_norm: nn.Module | None
    """Running observation normaliser, updated once per env step by the rollout (or None).
    (Declared, not defaulted: a class attribute would shadow the submodule.)"""
    latent_norm: nn.Module | None
    """Running latent normaliser, updated with every a^k by the rollout (or None)."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Device of the parameters and of every sample."""

    @abc.abstractmethod
    def init_latent(self, obs: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """a^K ~ p_0, `(B, d)` for obs `(B, obs_dim)`."""

    @abc.abstractmethod
    def denoise_mean(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                     ) -> torch.Tensor:
        """Mean of q_theta(a^{k-1} | a^k, s), `(B, d)`."""

    @abc.abstractmethod
    def denoise_var(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                    ) -> torch.Tensor:
        """Variance of q_theta(a^{k-1} | a^k, s), `(B, d)`."""

    @abc.abstractmethod
    def denoise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                         a_prev: torch.Tensor) -> torch.Tensor:
        """log q_theta(a^{k-1} | a^k, s), `(B,)` (the tanh Jacobian at k = 1 if enabled)."""

    @abc.abstractmethod
    def noise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                       a_prev: torch.Tensor) -> torch.Tensor:
        """log pi_theta(a^k | a^{k-1}, s), `(B,)` (zeros for a policy without a noising
        kernel)."""

    def log_ratio(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                  a_prev: torch.Tensor) -> torch.Tensor:
        """ell_k = log q_theta(a^{k-1} | a^k, s) - log pi_theta(a^k | a^{k-1}, s), `(B,)`;
        differentiable in theta and in a_prev."""
        return (self.denoise_log_prob(obs, a_k, k, a_prev)
                - self.noise_log_prob(obs, a_k, k, a_prev))

    @abc.abstractmethod
    def step(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
             generator: torch.Generator | None = None, reparameterize: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One denoising step: a^{k-1} ~ q_theta(. | a^k, s) `(B, d)` and its ell_k `(B,)`.
        With `reparameterize=True` the sample keeps its graph (pathwise gradients)."""

    def _setup_squash(self, squash: str, action_clip: float, low, high) -> None:
        check_choice("squash", squash, ("tanh", "identity"))
        if not (0.0 < action_clip <= 1.0):
            raise ValueError(f"action_clip={action_clip!r} must be in (0, 1]")
        self.squash_mode = squash
        self.action_clip = float(action_clip)
        low = torch.full((self.action_dim,), -1.0) if low is None else torch.as_tensor(low)
        high = torch.full((self.action_dim,), 1.0) if high is None else torch.as_tensor(high)
        low, high = low.float().reshape(-1), high.float().reshape(-1)
        if low.shape != (self.action_dim,) or high.shape != (self.action_dim,):
            raise ValueError(
                f"action_low/action_high have shapes {tuple(low.shape)}/{tuple(high.shape)}; "
                f"expected ({self.action_dim},)"
            )
        if squash == "tanh" and not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError("action_low/action_high must be finite when squash='tanh'")
        if squash == "tanh" and not (high > low).all():
            raise ValueError("action_high must be > action_low in every coordinate")
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    # ------------------------------------------------------------------ checks
    def _check_obs(self, obs: torch.Tensor) -> None:
        check_shape("obs", obs, (None, self.obs_dim))

    def _check_latent(self, name: str, a: torch.Tensor, batch: int | None = None) -> None:
        check_shape(name, a, (batch, self.action_dim))

    def _check_k(self, k: int | torch.Tensor, batch: int | None = None) -> None:
        K = self.num_steps
        if isinstance(k, torch.Tensor):
            B = "B" if batch is None else batch
            if k.dtype.is_floating_point or k.numel() == 0 or k.dim() != 1 or (
                    batch is not None and k.shape[0] != batch):
                raise ValueError(f"k has dtype {k.dtype} and shape {tuple(k.shape)}; expected an "
                                 f"integer tensor of shape ({B},) with values in [1, {K}]")
            lo, hi = int(k.min()), int(k.max())
            if lo < 1 or hi > K:
                raise ValueError(f"k has values in [{lo}, {hi}]; allowed range is [1, {K}]")
        elif isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= K:
            raise ValueError(f"k={k!r}; allowed: an integer in [1, {K}]")

    # ------------------------------------------------------------------ protocol
    def to_action(self, a_0: torch.Tensor) -> torch.Tensor:
        """Env action from the final latent: `clip(tanh a^0, +-c)` rescaled to the Box.

        With `squash="identity"` (the latent bandit, method.md §7.1) the latent is the action.
        `a_0`: `(B, d)`; returns `(B, d)`.
        """
        if self.squash_mode == "identity":
            return a_0
        c = self.action_clip
        u = torch.tanh(a_0).clamp(-c, c)
        return self.action_low + (u + 1.0) * 0.5 * (self.action_high - self.action_low)

    def sample_chain(
        self,
        obs: torch.Tensor,
        generator: torch.Generator | None = None,
        reparameterize: bool = False,
    ) -> ChainSample:
        """Run the whole chain `a^K -> a^0` for a batch of observations.

        Args:
            obs: `(B, obs_dim)`.
            generator: optional torch generator for reproducible noise.
            reparameterize: keep the autograd graph through every sample (pathwise
                gradients, used by notebook 01); otherwise the samples are detached.

        Returns:
            A `ChainSample` with latents `(K + 1, B, d)` and log-ratios `(K, B)`.
        """
        self._check_obs(obs)
        a = self.init_latent(obs, generator=generator)
        latents, ells = [a], []
        for k in range(self.num_steps, 0, -1):
            a, ell = self.step(obs, a, k, generator=generator, reparameterize=reparameterize)
            latents.append(a)
            ells.append(ell)
        # Built in order a^K ... a^0; flip so that index k holds a^k.
        latents_t = torch.stack(latents[::-1])  # (K + 1, B, d)
        ells_t = torch.stack(ells[::-1])  # (K, B)
        return ChainSample(latents_t, ells_t, self.to_action(latents_t[0]))

    def sample(self, n: int, generator: torch.Generator | None = None,
               reparameterize: bool = False) -> ChainSample:
        """`sample_chain` for a state-free sampler: `n` chains at the zero observation."""
        obs = torch.zeros(n, self.obs_dim, device=self.device)
        return self.sample_chain(obs, generator=generator, reparameterize=reparameterize)

    def act(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Env actions `(B, d)` for observations `(B, obs_dim)`, without gradients."""
        with torch.no_grad():
            return self.sample_chain(obs, generator=generator).action

    def prior_entropy(self) -> float:
        """Entropy of the prior `p_0` in nats (0 for a policy without a prior)."""
        return 0.0

    @abc.abstractmethod
    def describe(self) -> dict[str, list]:
        """What the policy has learned beyond its networks, as lists for result records (the
        diffusion policy's step sizes, the Gaussian's mean and std at the zero observation)."""
