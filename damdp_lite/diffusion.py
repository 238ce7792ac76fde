"""Diffusion policy: prior, Langevin denoising kernel, noising kernel, per-step log-ratio.

Everything follows method.md §3 in the paper's naming: the policy is the denoising kernel
`q(a^{k-1} | a^k, s)` (`denoise_log_prob`), the noising kernel is `pi(a^k | a^{k-1}, s)`
(`noise_log_prob`), their difference is the per-step log-ratio `ell_k` (`log_ratio`), and the
diffusion index `k` counts down from `K` (prior) to 1 (the step that produces `a^0`).
Introduced in notebook 01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .chain import ChainPolicy, gaussian_kl, step_kl  # noqa: F401  (gaussian_kl: old home)
from .config import WIDTHS, Config, between, one_of, param, positive
from .utils import (
    RunningNorm,
    check_choice,
    check_int_at_least,
    check_positive,
    log_one_minus_tanh_sq,
    normal_log_prob,
)

SCHEDULES = ("linear", "cosine", "constant")
NOISING_DRIFT_AT = ("conditioning", "evaluated")
NOISING_STEP_PAIRING = ("previous", "same")


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x with softplus(x) = y, for y > 0 (stable for large y)."""
    return y + torch.log(-torch.expm1(-y))


def step_size_schedule(name: str, num_steps: int, schedule_min: float = 0.17) -> torch.Tensor:
    """Initial schedule multipliers `sched_k`, shape `(K,)`, entry `k - 1` for step k.

    - `"linear"` (official REPPO/WPO): sched_k = (1 - k/K) min + k/K; 1 at k = K, shrinking
      towards the action end (method.md §3).
    - `"cosine"` (ours): sched_k = min + (1 - min) (1 - cos(pi k / K)) / 2; also 1 at k = K.
    - `"constant"` (DA-MDP PPO): sched_k = 1.
    """
    check_choice("step_size_schedule", name, SCHEDULES)
    check_int_at_least("num_steps", num_steps, 1)
    if not (0.0 < schedule_min <= 1.0):
        raise ValueError(f"schedule_min={schedule_min!r} must be in (0, 1]")
    k = torch.arange(1, num_steps + 1, dtype=torch.float64)
    frac = k / num_steps
    if name == "linear":
        sched = (1 - frac) * schedule_min + frac
    elif name == "cosine":
        sched = schedule_min + (1 - schedule_min) * (1 - torch.cos(math.pi * frac)) / 2
    else:
        sched = torch.ones_like(frac)
    return sched.float()


def denoise_kernel_log_prob(a_prev: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
                            ) -> torch.Tensor:
    """log q(a^{k-1} | a^k, s) = sum_i log N(a^{k-1}_i; mean_i, var_i), `(B,)` (method.md §3).

    `a_prev`, `mean`: `(B, d)`; `var`: `(B, d)` or `(d,)` (2 eta_k for the diffusion policy).
    """
    return normal_log_prob(a_prev, mean, var.expand_as(mean)).sum(-1)


def noise_kernel_log_prob(a_k: torch.Tensor, a_prev: torch.Tensor, eta: torch.Tensor,
                          prior_std: float, drift_at: str = "conditioning") -> torch.Tensor:
    """log pi(a^k | a^{k-1}) of the prior-ULA noising kernel, `(B,)` (method.md §3, D1).

    "conditioning": N(a^k; a^{k-1} - eta a^{k-1} / sigma_0^2, 2 eta) (normalised);
    "evaluated":    N(a^k; a^{k-1} - eta a^k / sigma_0^2, 2 eta) (official code, unnormalised).
    `a_k`, `a_prev`: `(B, d)`; `eta`: `(B, d)` or `(d,)`, the step size of the paired step k'.
    Exercise 1.1 of notebook 01.
    """
    check_choice("noising_drift_at", drift_at, NOISING_DRIFT_AT)
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    return normal_log_prob(a_k, mean, (2 * eta).expand_as(mean)).sum(-1)


@dataclass
class DiffusionConfig(Config):
    """Hyperparameters of a `DiffusionPolicy` (method.md §3, §9).

    Shared by the CLI, the widgets and the checkpoints. Inside an algorithm config it is the
    nested `policy` field; there `obs_dim`, `action_dim`, `squash`, the action bounds and the
    device are set from the env and the run (`policies.ENV_FIELDS`)."""

    obs_dim: int = 1
    """Observation size (0 allowed: a state-free sampler, as in notebook 01)."""
    action_dim: int = 1
    """Action / latent size d (>= 1)."""
    num_steps: int = param(8, between(1, 1000))
    """Number of denoising steps K (>= 1; 4-8 on CPU, 8 in the paper)."""
    prior_std: float = param(3.0, positive())
    """Prior standard deviation sigma_0 (> 0; official 3.0; 1.5 in the MuJoCo/DMC presets)."""
    dt: float = param(0.125, positive())
    """Base step `dt` (> 0); eta_k = dt * sched_k / friction at init (0.125)."""
    friction: float = param(0.25, positive())
    """Friction `fr` (> 0); with dt = 0.125 gives eta_k = 0.5 sched_k (0.25)."""
    step_size_schedule: str = "linear"
    """Initial step-size schedule: "linear" (REPPO/WPO), "cosine" or "constant" (PPO)."""
    schedule_min: float = 0.17
    """Smallest schedule multiplier, in (0, 1] (0.17 official; 0.05 in the toy REPPO config)."""
    init_step_sizes: tuple[float, ...] | None = None
    """Explicit initial eta_k for k = 1..K (overrides dt/friction/schedule; each > 0)."""
    learn_step_sizes: bool = True
    """Learn the per-step parameters rho (official: True)."""
    per_dim_step_sizes: bool = False
    """rho of shape (K, d) instead of (K,) (official: WPO True, REPPO/PPO False)."""
    learn_friction: bool = True
    """Learn the per-dimension friction phi (official: REPPO/PPO True, WPO False)."""
    noising_drift_at: str = "conditioning"
    """Noising drift at a^{k-1} ("conditioning", normalised, ours) or a^k ("evaluated"), D1."""
    noising_step_pairing: str = "previous"
    """Noising kernel at step k uses eta_{max(k-1,1)} ("previous", official) or eta_k ("same")."""
    tanh_jacobian: bool = False
    """Add -log(1 - tanh^2 a^0) to the k = 1 term: action-space entropy (D2; official False,
    latent-space entropy; True in the MuJoCo/DMC presets, `algos.common.DIFFUSION_MUJOCO`)."""
    squash: str = "tanh"
    """"tanh" (clip(tanh a^0) rescaled to the action Box) or "identity" (latent bandit)."""
    action_clip: float = 1.0
    """Clip c of tanh(a^0), in (0, 1] (0.999 REPPO, 1.0 WPO/PPO), D9."""
    action_low: tuple[float, ...] | None = None
    """Lower action bounds, length d (default -1)."""
    action_high: tuple[float, ...] | None = None
    """Upper action bounds, length d (default +1)."""
    hidden_sizes: tuple[int, ...] = param((256, 256, 256), WIDTHS)
    """Widths of the control network f_theta (official: 3 x 256; toys: 2 x 64-128)."""
    time_embedding_dim: int = param(16, between(1, 4096))
    """Output size of the diffusion-index embedding (16)."""
    output_init_scale: float = 1e-8
    """Scale of the control network's last-layer weights (f_theta ~ 0 at init)."""
    hidden_init: str = param("torch", one_of("torch", "lecun_normal"))
    """Init of the control network's other Linear layers: "lecun_normal" (official: flax's
    default, truncated normal with variance 1/fan_in, zero bias; hidden features ~4x larger)
    or "torch" (PyTorch's default, kept by the toy presets whose shipped results used it)."""
    control_clip: float = param(1e4, positive())
    """Clip of the control output f_theta (1e4)."""
    device: str = "cpu"
    """Torch device for every parameter and sample ("cpu", "cuda")."""

    def check(self) -> None:
        check_int_at_least("obs_dim", self.obs_dim, 0)
        check_int_at_least("action_dim", self.action_dim, 1)
        check_int_at_least("num_steps", self.num_steps, 1)
        for name in ("prior_std", "dt", "friction", "control_clip"):
            check_positive(name, getattr(self, name))
        if not 0.0 < self.action_clip <= 1.0:
            raise ValueError(f"action_clip={self.action_clip!r} must be in (0, 1]")
        if not (0.0 < self.schedule_min <= 1.0):
            raise ValueError(f"schedule_min={self.schedule_min!r} must be in (0, 1]")
        check_choice("step_size_schedule", self.step_size_schedule, SCHEDULES)
        check_choice("noising_drift_at", self.noising_drift_at, NOISING_DRIFT_AT)
        check_choice("noising_step_pairing", self.noising_step_pairing, NOISING_STEP_PAIRING)
        check_choice("squash", self.squash, ("tanh", "identity"))
        if self.init_step_sizes is not None:
            if len(self.init_step_sizes) != self.num_steps:
                raise ValueError(
                    f"init_step_sizes has length {len(self.init_step_sizes)}; "
                    f"expected num_steps={self.num_steps}"
                )
            for i, eta in enumerate(self.init_step_sizes):
                check_positive(f"init_step_sizes[{i}] (eta_{i + 1})", eta)
        for i, h in enumerate(self.hidden_sizes):
            check_int_at_least(f"hidden_sizes[{i}]", h, 1)

    @classmethod
    def teaching(cls, **overrides) -> DiffusionConfig:
        """Our defaults (method.md §9 `teaching` preset): the normalised noising kernel and the
        "same" step pairing, which gave a tighter bound at every K >= 2 in notebook 01 §5."""
        base = dict(noising_drift_at="conditioning", noising_step_pairing="same")
        return cls(**{**base, **overrides})


def lecun_normal_(layer: nn.Linear) -> None:
    """LeCun-normal init in place: weights from N(0, 1/fan_in) truncated at two standard
    deviations (rescaled so the variance stays 1/fan_in, as flax's `lecun_normal`), bias 0."""
    std = math.sqrt(1.0 / layer.in_features) / 0.87962566103423978
    with torch.no_grad():
        nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
        layer.bias.zero_()


class TimeEmbedding(nn.Module):
    """[sin(c k + p), cos(c k + p)] with fixed c = linspace(0.1, 100, 32), learnable phase p,
    then Linear(64 -> 32), GELU, Linear(32 -> out). method.md §3."""

    def __init__(self, out_dim: int = 16, num_freq: int = 32, max_freq: float = 100.0) -> None:
        super().__init__()
        self.register_buffer("freq", torch.linspace(0.1, max_freq, num_freq))
        self.phase = nn.Parameter(torch.zeros(num_freq))
        self.mlp = nn.Sequential(nn.Linear(2 * num_freq, 32), nn.GELU(), nn.Linear(32, out_dim))

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        """`k`: `(B,)` diffusion indices (fed raw); returns `(B, out_dim)`."""
        ang = k.float()[:, None] * self.freq + self.phase  # (B, num_freq)
        return self.mlp(torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1))


class ControlNet(nn.Module):
    """Control network f_theta(a^k, s_bar, a_bar^k, temb(k)) -> (B, d), near zero at init."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes=(256, 256, 256),
                 time_embedding_dim: int = 16, output_init_scale: float = 1e-8,
                 hidden_init: str = "torch") -> None:
        super().__init__()
        self.temb = TimeEmbedding(time_embedding_dim)
        layers: list[nn.Module] = []
        width = 2 * action_dim + obs_dim + time_embedding_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.GELU()]
            width = h
        out = nn.Linear(width, action_dim)
        if hidden_init == "lecun_normal":
            for m in [*self.temb.modules(), *layers]:
                if isinstance(m, nn.Linear):
                    lecun_normal_(m)
        with torch.no_grad():
            out.weight.mul_(output_init_scale)
            out.bias.zero_()
        self.net = nn.Sequential(*layers, out)

    def forward(self, a_k: torch.Tensor, obs_n: torch.Tensor, a_n: torch.Tensor,
                k: torch.Tensor) -> torch.Tensor:
        """`a_k`, `a_n`: `(B, d)`; `obs_n`: `(B, obs_dim)`; `k`: `(B,)`; returns `(B, d)`."""
        return self.net(torch.cat([a_k, obs_n, a_n, self.temb(k)], dim=-1))


class DiffusionPolicy(ChainPolicy):
    """K-step Langevin-style diffusion policy (method.md §3).

    Denoising kernel (the policy), per coordinate:
        a^{k-1} = a^k + eta_k (-a^k / sigma_0^2 + f_theta(a^k, s, k)) + sqrt(2 eta_k) eps.
    Noising kernel, step index k' = max(k-1, 1) ("previous") or k ("same"):
        "conditioning": a^k ~ N(a^{k-1} - eta_k' a^{k-1} / sigma_0^2, 2 eta_k')
        "evaluated":    same with the drift taken at a^k (unnormalised; official code).

    Args:
        config: a `DiffusionConfig`.
        control_net: optional replacement for f_theta, called as
            `control_net(a_k, obs_n, a_n, k)` with `k` of shape `(B,)`; returns `(B, d)`.
    """

    def __init__(self, config: DiffusionConfig, control_net: nn.Module | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.num_steps, self.action_dim, self.obs_dim = c.num_steps, c.action_dim, c.obs_dim
        self.prior_std, self.tanh_jacobian = c.prior_std, c.tanh_jacobian
        self._setup_squash(c.squash, c.action_clip, c.action_low, c.action_high)
        K, d = c.num_steps, c.action_dim
        if c.init_step_sizes is not None:
            dt_k = torch.tensor(c.init_step_sizes) * c.friction  # eta_k * fr
        else:
            dt_k = c.dt * step_size_schedule(c.step_size_schedule, K, c.schedule_min)
        rho = inverse_softplus(dt_k.double()).float()  # (K,)
        if c.per_dim_step_sizes:
            rho = rho[:, None].repeat(1, d)  # (K, d)
        self.rho = nn.Parameter(rho, requires_grad=c.learn_step_sizes)
        phi = inverse_softplus(torch.full((d,), c.friction, dtype=torch.float64)).float()
        self.phi = nn.Parameter(phi, requires_grad=c.learn_friction)
        self.control_net = control_net if control_net is not None else ControlNet(
            c.obs_dim, d, c.hidden_sizes, c.time_embedding_dim, c.output_init_scale,
            c.hidden_init)
        self.obs_norm = RunningNorm(c.obs_dim)
        self.latent_norm = RunningNorm(d, init_var=c.prior_std**2)
        self.to(c.device)

    @property
    def device(self) -> torch.device:
        return self.rho.device

    # ------------------------------------------------------------- step sizes
    def step_sizes(self) -> torch.Tensor:
        """eta, shape `(K, d)`; row `k - 1` holds eta_k = softplus(rho_k) / softplus(phi)."""
        dt = nn.functional.softplus(self.rho)
        if dt.dim() == 1:
            dt = dt[:, None]
        return dt / nn.functional.softplus(self.phi)

    def noise_index(self, k: int | torch.Tensor) -> int | torch.Tensor:
        """Step index k' whose eta the noising kernel at step k uses (D13)."""
        if self.config.noising_step_pairing == "same":
            return k
        if isinstance(k, torch.Tensor):
            return torch.clamp(k - 1, min=1)
        return max(k - 1, 1)

    def _eta(self, k: int | torch.Tensor) -> torch.Tensor:
        """eta_k, `(d,)` for an int k or `(B, d)` for a tensor k of shape `(B,)`."""
        return self.step_sizes()[k - 1]

    # ------------------------------------------------------------- kernels
    def init_latent(self, obs: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """Prior sample a^K ~ N(0, sigma_0^2 I), `(B, d)` for `obs` of shape `(B, obs_dim)`."""
        self._check_obs(obs)
        eps = torch.randn(obs.shape[0], self.action_dim, device=self.device, generator=generator)
        return self.prior_std * eps

    def prior_log_prob(self, a_K: torch.Tensor) -> torch.Tensor:
        """log p_0(a^K), `(B,)`."""
        var = torch.full_like(a_K, self.prior_std**2)
        return normal_log_prob(a_K, torch.zeros_like(a_K), var).sum(-1)

    def prior_entropy(self) -> float:
        """H(p_0) = d/2 log(2 pi e sigma_0^2) in nats."""
        return 0.5 * self.action_dim * math.log(2 * math.pi * math.e * self.prior_std**2)

    def control(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
        """f_theta(a^k, s_bar, a_bar^k, k), clipped to +-control_clip; `(B, d)`."""
        k_t = k if isinstance(k, torch.Tensor) else torch.full(
            (a_k.shape[0],), k, device=a_k.device, dtype=torch.long)
        f = self.control_net(a_k, self.obs_norm(obs), self.latent_norm(a_k), k_t)
        return f.clamp(-self.config.control_clip, self.config.control_clip)

    def denoise_mean(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                     ) -> torch.Tensor:
        """mu_theta = a^k + eta_k (-a^k / sigma_0^2 + f_theta(a^k, s, k)), `(B, d)`. method.md §3"""
        self._check_obs(obs)
        self._check_latent("a_k", a_k, obs.shape[0])
        self._check_k(k, obs.shape[0])
        eta = self._eta(k)
        return a_k + eta * (-a_k / self.prior_std**2 + self.control(obs, a_k, k))

    def denoise_var(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor
                    ) -> torch.Tensor:
        """Variance 2 eta_k of the denoising kernel, broadcast to `(B, d)` (state-independent)."""
        return (2 * self._eta(k)).expand(a_k.shape[0], self.action_dim)

    def denoise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                         a_prev: torch.Tensor) -> torch.Tensor:
        """log q_theta(a^{k-1} | a^k, s), `(B,)`; includes the tanh Jacobian at k = 1 if enabled.

        Per coordinate a Gaussian with mean `denoise_mean` and variance 2 eta_k. method.md §3.
        """
        self._check_latent("a_prev", a_prev, a_k.shape[0])
        mu = self.denoise_mean(obs, a_k, k)
        return self._denoise_log_prob_at(a_prev, mu, self.denoise_var(obs, a_k, k), k)

    def _denoise_log_prob_at(self, a_prev: torch.Tensor, mu: torch.Tensor, var: torch.Tensor,
                             k: int | torch.Tensor) -> torch.Tensor:
        """log q given the kernel's mean and variance (so `step` evaluates f_theta once)."""
        logq = denoise_kernel_log_prob(a_prev, mu, var)
        if self.tanh_jacobian:
            jac = log_one_minus_tanh_sq(a_prev).sum(-1)  # (B,)
            at_last = (k == 1) if isinstance(k, torch.Tensor) else torch.tensor(k == 1)
            logq = logq - torch.where(at_last.to(jac.device), jac, torch.zeros_like(jac))
        return logq

    def noise_log_prob(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
                       a_prev: torch.Tensor) -> torch.Tensor:
        """log pi_theta(a^k | a^{k-1}, s), `(B,)`; prior-ULA kernel, flags D1 and D13."""
        self._check_latent("a_k", a_k)
        self._check_latent("a_prev", a_prev, a_k.shape[0])
        self._check_k(k, a_k.shape[0])
        eta = self._eta(self.noise_index(k))
        return noise_kernel_log_prob(a_k, a_prev, eta, self.prior_std,
                                     self.config.noising_drift_at)

    def step(self, obs: torch.Tensor, a_k: torch.Tensor, k: int | torch.Tensor,
             generator: torch.Generator | None = None, reparameterize: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One denoising step: returns `a^{k-1}` `(B, d)` and `ell_k` `(B,)`.

        With `reparameterize=True` the sample a^{k-1} = mu + sqrt(2 eta) eps keeps its graph
        (pathwise gradients); otherwise both outputs are computed without gradients.
        """
        with torch.set_grad_enabled(reparameterize and torch.is_grad_enabled()):
            mu = self.denoise_mean(obs, a_k, k)
            var = self.denoise_var(obs, a_k, k)
            eps = torch.randn(mu.shape, device=mu.device, generator=generator)
            a_prev = mu + torch.sqrt(var) * eps
            # ell_k = log q - log pi (same as `log_ratio`, without evaluating f_theta twice)
            ell = self._denoise_log_prob_at(a_prev, mu, var, k) - self.noise_log_prob(
                obs, a_k, k, a_prev)
        return a_prev, ell

    def describe(self) -> dict[str, list]:
        """`{"step_sizes": eta}`, eta of shape (K, d) as nested lists (row k - 1: eta_k)."""
        return {"step_sizes": self.step_sizes().detach().cpu().tolist()}

    def kernel_entropy(self, k: int) -> torch.Tensor:
        """H(q_theta(. | a^k, s)) = sum_i ½ log(4 pi e eta_{k,i}), independent of f and a^k (I2)."""
        self._check_k(k)
        return 0.5 * torch.log(4 * math.pi * math.e * self._eta(k)).sum()


def denoise_kl(old: DiffusionPolicy, new: DiffusionPolicy, obs: torch.Tensor,
               a_k: torch.Tensor, k: int | torch.Tensor) -> torch.Tensor:
    """Single-step forward KL(q_old(. | s~) || q_new(. | s~)), `(B,)`, closed form (I9):
    `chain.step_kl` for two diffusion policies, whose kernels share the variance 2 eta_k when
    the step sizes are not learned (then sum_i (mu_old - mu_new)^2 / (4 eta_i))."""
    return step_kl(old, new, obs, a_k, k)
