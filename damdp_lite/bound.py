"""The reverse-KL bound of a diffusion sampler, the entropy lower bound, exact-KL references.

For a target pi*(x) = exp(r(x)/T) / Z and a chain policy with prior p_0 (method.md §2.2, I6):

    J_bound = E[r(a^0)] + T H(p_0) - T E[sum_k ell_k]  <=  J(marginal)  <=  T log Z,
    T log Z - J_bound = T [ KL(q_{a^0} || pi*) + gap ],

so `log Z - J_bound / T` is a certified upper bound on KL(q_{a^0} || pi*), and
`H(p_0) - E[sum_k ell_k]` a lower bound on the marginal entropy H(q_{a^0}).
Introduced in notebook 01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import optimize
from tqdm import tqdm

from .chain import ChainPolicy, ChainSample
from .config import SEED, Config, between, param, positive
from .targets import Target
from .utils import (
    check_finite,
    check_int_at_least,
    check_positive,
    log_one_minus_tanh_sq,
    normal_log_prob,
    report_progress,
)


def check_policy_matches_target(policy: ChainPolicy, target: Target) -> None:
    """Raise `ValueError` unless the policy samples in the target's domain (method.md §7)."""
    if policy.action_dim != target.dim:
        raise ValueError(f"policy action_dim={policy.action_dim} but target dim={target.dim}")
    if target.domain == "latent" and policy.squash_mode != "identity":
        raise ValueError("a 'latent' target needs squash='identity' "
                         f"(got squash={policy.squash_mode!r})")
    if target.domain == "box":
        if policy.squash_mode != "tanh":
            raise ValueError("a 'box' target needs squash='tanh' "
                             f"(got squash={policy.squash_mode!r})")
        if not policy.tanh_jacobian:
            raise ValueError("the bound against a 'box' (action-space) target needs "
                             "tanh_jacobian=True (got False)")


def j_bound_per_sample(sample: ChainSample, policy: ChainPolicy, target: Target,
                       temperature: float) -> torch.Tensor:
    """r(squash(a^0)) + T H(p_0) - T sum_k ell_k for each chain, `(B,)`. method.md I6."""
    reward = target.reward(sample.action)
    return reward + temperature * (policy.prior_entropy() - sample.log_ratios.sum(0))


def bound_loss(policy: ChainPolicy, target: Target, temperature: float, batch_size: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """-mean J_bound over `batch_size` reparameterised chains (pathwise through the chain).

    Minimising it minimises the reverse-KL upper bound `T log Z - J_bound` of notebook 01.
    Returns a scalar with gradients w.r.t. every policy parameter.
    """
    check_positive("temperature", temperature)
    check_policy_matches_target(policy, target)
    sample = policy.sample(batch_size, generator=generator, reparameterize=True)
    return -j_bound_per_sample(sample, policy, target, temperature).mean()


@dataclass
class BoundEstimate:
    """Monte Carlo estimate of the bound and its references (all in nats, T-scaled where named)."""

    temperature: float
    n: int
    j_bound: float
    """E[r] + T H(p_0) - T E[sum ell] (a certified lower bound on J(marginal))."""
    j_bound_se: float
    """Standard error of `j_bound`."""
    mean_reward: float
    entropy_lower_bound: float
    """H(p_0) - E[sum ell] <= H(q_{a^0})."""
    log_z: float
    t_log_z: float
    """T log Z = max over all policies of E[r] + T H."""
    kl_upper: float
    """log Z - J_bound / T >= KL(q_{a^0} || pi*)."""


@torch.no_grad()
def estimate_bound(policy: ChainPolicy, target: Target, temperature: float, n: int = 20_000,
                   generator: torch.Generator | None = None, log_z: float | None = None
                   ) -> BoundEstimate:
    """Estimate J_bound, the entropy lower bound and the KL upper bound from `n` chains."""
    check_positive("temperature", temperature)
    check_int_at_least("n", n, 2)
    check_policy_matches_target(policy, target)
    s = policy.sample(n, generator=generator)
    j = j_bound_per_sample(s, policy, target, temperature).double()
    h = policy.prior_entropy() - s.log_ratios.sum(0).double()
    log_z = target.log_z(temperature) if log_z is None else log_z
    jb = float(j.mean())
    return BoundEstimate(
        temperature=temperature, n=n, j_bound=jb, j_bound_se=float(j.std() / math.sqrt(n)),
        mean_reward=float(target.reward(s.action).double().mean()),
        entropy_lower_bound=float(h.mean()), log_z=log_z, t_log_z=temperature * log_z,
        kl_upper=log_z - jb / temperature)


@torch.no_grad()
def entropy_lower_bound(policy: ChainPolicy, n: int = 20_000, obs: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> tuple[float, float]:
    """-E[log p_0(a^K) + sum_k ell_k] = H(p_0) - E[sum ell] <= H(q(a^0 | s)) (I4).

    Returns `(estimate, standard error)` from `n` chains (at `obs`, `(1, obs_dim)`, if given).
    """
    obs = torch.zeros(1, policy.obs_dim, device=policy.device) if obs is None else obs
    s = policy.sample_chain(obs.expand(n, -1), generator=generator)
    h = policy.prior_entropy() - s.log_ratios.sum(0).double()
    return float(h.mean()), float(h.std() / math.sqrt(n))


@torch.no_grad()
def marginal_density_1d(policy: ChainPolicy, grid: torch.Tensor,
                        obs: torch.Tensor | None = None) -> torch.Tensor:
    """Density of the final latent a^0 on a uniform 1-D `grid` `(N,)`, by propagating the prior
    density through every kernel on the grid (quadrature, no sampling):

        p_{k-1}(y) = int q(y | x) p_k(x) dx.

    Each kernel column is renormalised on the grid. Returns `(N,)` (float64), integrating to 1.
    """
    if policy.action_dim != 1:
        raise ValueError(f"marginal_density_1d needs action_dim=1 (got {policy.action_dim})")
    x = grid.to(policy.device).float()[:, None]  # (N, 1)
    h = float(grid[1] - grid[0])
    obs = torch.zeros(1, policy.obs_dim, device=policy.device) if obs is None else obs
    obs_n = obs.expand(len(grid), -1)
    if policy.prior_std is not None:  # protocol attribute: the density of a^K
        var = torch.tensor(policy.prior_std**2)
        p = torch.exp(normal_log_prob(grid, torch.zeros_like(grid), var))
    else:  # no prior (Gaussian policy): the first kernel ignores a^K, any density will do
        p = torch.zeros_like(grid, dtype=torch.float64)
        p[len(grid) // 2] = 1.0 / h
    p = p.double().cpu()
    y = grid.double()[:, None]  # (N, 1), rows = y
    for k in range(policy.num_steps, 0, -1):
        mu = policy.denoise_mean(obs_n, x, k).double().cpu()[:, 0]  # (N,) over x
        var = policy.denoise_var(obs_n, x, k).double().cpu()[:, 0]
        trans = torch.exp(normal_log_prob(y, mu[None, :], var[None, :]))  # (N_y, N_x)
        trans = trans / (trans.sum(0, keepdim=True) * h).clamp_min(1e-300)
        p = trans @ p * h
    return p / (p.sum() * h)


def exact_marginal_kl_1d(policy: ChainPolicy, target: Target, temperature: float,
                         grid: torch.Tensor | None = None) -> dict:
    """KL(q_{a^0} || pi*) and J(marginal) = T (log Z - KL) by 1-D quadrature of the marginal.

    For 'box' targets the KL is computed in latent space against the pulled-back target
    pi*_x(x) = pi*(tanh x) (1 - tanh^2 x) (KL is invariant under the bijection tanh).
    Returns a dict with `kl`, `j_marginal`, `grid` `(N,)`, `density` `(N,)`.
    """
    check_positive("temperature", temperature)
    check_policy_matches_target(policy, target)
    if grid is None:
        lo, hi = (target.bounds if target.domain == "latent" else (-12.0, 12.0))
        grid = torch.linspace(lo, hi, 3001, dtype=torch.float64)
    p = marginal_density_1d(policy, grid)
    h = float(grid[1] - grid[0])
    log_z = target.log_z(temperature)
    if target.domain == "latent":
        log_pi = target.reward(grid[:, None]) / temperature - log_z
    else:
        u = torch.tanh(grid).clamp(-1 + 1e-12, 1 - 1e-12)
        log_pi = target.reward(u[:, None]) / temperature - log_z + log_one_minus_tanh_sq(grid)
    pos = p > 0
    kl = float((p[pos] * (torch.log(p[pos]) - log_pi[pos])).sum() * h)
    return {"kl": kl, "j_marginal": temperature * (log_z - kl), "grid": grid, "density": p}


def histogram_kl(x: torch.Tensor, target: Target, temperature: float, bins: int | None = None,
                 smoothing: float = 0.5) -> tuple[float, float]:
    """Plug-in KL(q || pi*) and KL(pi* || q) from a fixed-bin histogram of samples `x` `(n, dim)`.

    Bins: 200 (1-D) or 100 x 100 (2-D) over `target.bounds` (benchmarks.md §3); samples outside
    are counted in the edge bins. The forward KL uses additive smoothing (`smoothing` counts per
    bin) so that an empty bin costs a finite, large amount; the reverse KL uses raw frequencies.
    """
    check_positive("temperature", temperature)
    bins = bins or (200 if target.dim == 1 else 100)
    lo, hi = target.bounds
    x = x.double().cpu().clamp(lo, hi - 1e-12)
    idx = ((x - lo) / (hi - lo) * bins).long().clamp(0, bins - 1)  # (n, dim)
    flat = idx[:, 0] if target.dim == 1 else idx[:, 0] * bins + idx[:, 1]
    counts = torch.bincount(flat, minlength=bins**target.dim).double()
    sub = 8  # quadrature points per bin and axis for the target's bin masses
    centres = lo + (torch.arange(bins * sub, dtype=torch.float64) + 0.5) * (hi - lo) / (bins * sub)
    mesh = torch.meshgrid(*([centres] * target.dim), indexing="ij")
    pts = torch.stack([m.reshape(-1) for m in mesh], -1)
    w = torch.softmax(target.reward(pts) / temperature, 0)
    w = w.reshape(*([bins, sub] * target.dim))
    pi_b = w.sum(dim=tuple(range(1, 2 * target.dim, 2))).reshape(-1)  # (bins^dim,)
    q = counts / counts.sum()
    pos = q > 0
    kl_q_pi = float((q[pos] * torch.log(q[pos] / pi_b[pos].clamp_min(1e-300))).sum())
    q_s = (counts + smoothing) / (counts.sum() + smoothing * len(counts))
    kl_pi_q = float((pi_b * torch.log(pi_b.clamp_min(1e-300) / q_s)).sum())
    return kl_q_pi, kl_pi_q


def best_gaussian_1d(target: Target, temperature: float) -> dict:
    """The Gaussian N(m, v) (tanh-squashed with Jacobian for 'box' targets) maximising
    J = E[r] + T H, by 64-node Gauss-Hermite quadrature and multi-start optimisation.

    Returns `j`, `mean`, `var` and `t_kl = T log Z - j = T KL(gauss || pi*)` (method.md I6).
    """
    check_positive("temperature", temperature)
    if target.dim != 1:
        raise ValueError(f"best_gaussian_1d needs a 1-D target (dim={target.dim})")
    t, w = np.polynomial.hermite.hermgauss(64)
    t, w = torch.tensor(t), torch.tensor(w) / math.sqrt(math.pi)

    def neg_j(params: np.ndarray) -> float:
        m, log_v = params
        x = m + math.sqrt(2 * math.exp(log_v)) * t
        ent = 0.5 * math.log(2 * math.pi * math.e * math.exp(log_v))
        if target.domain == "latent":
            r = target.reward(x[:, None])
        else:
            r = target.reward(torch.tanh(x)[:, None])
            ent = ent + float((w * log_one_minus_tanh_sq(x)).sum())
        return -(float((w * r).sum()) + temperature * ent)

    best = None
    for m0 in (-1.5, -0.5, 0.0, 0.5, 1.5):
        for v0 in (0.02, 0.3, 1.0):
            res = optimize.minimize(neg_j, np.array([m0, math.log(v0)]), method="Nelder-Mead",
                                    options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
            if best is None or res.fun < best.fun:
                best = res
    j = -float(best.fun)
    return {"j": j, "mean": float(best.x[0]), "var": math.exp(best.x[1]),
            "t_kl": temperature * target.log_z(temperature) - j}


@dataclass
class FitHistory:
    """Per-step record of `fit_sampler` (the minibatch J_bound estimate)."""

    step: list[int] = field(default_factory=list)
    j_bound: list[float] = field(default_factory=list)


@dataclass
class FitConfig(Config):
    """Training a sampler on a target by minimising the bound (notebook 01). Shared by widgets."""

    temperature: float = param(0.25, positive())
    """Temperature T of the target exp(r/T)/Z (> 0; 0.1-1 on the double well)."""
    steps: int = param(400, between(0, 10_000_000))
    """Adam steps (>= 0; 300-800 for the 1-D toys)."""
    batch_size: int = param(512, between(2, 10_000_000))
    """Chains per step (>= 2; 256-1024)."""
    lr: float = param(3e-3, positive())
    """Adam learning rate (> 0; 1e-3-5e-3)."""
    seed: int = param(0, SEED)
    """Seed of the sampling noise."""
    max_grad_norm: float = param(1.0, positive())
    """Global gradient-norm clip (> 0)."""


def fit_sampler(policy: ChainPolicy, target: Target, temperature: float, steps: int = 400,
                batch_size: int = 512, lr: float = 3e-3, seed: int = 0, max_grad_norm: float = 1.0,
                progress: bool = False) -> FitHistory:
    """Train a sampler (no RL) by minimising the bound with Adam and pathwise gradients.

    Every parameter moves: the control network, the step sizes and the friction (or, for a
    Gaussian, mean and std). Arguments as in `FitConfig`. Returns the per-step minibatch J_bound.
    Notebook 01.
    """
    FitConfig(temperature, steps, batch_size, lr, seed, max_grad_norm)  # validates
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    hist = FitHistory()
    for it in tqdm(range(steps), disable=not progress, desc="fit_sampler"):
        loss = bound_loss(policy, target, temperature, batch_size, generator=gen)
        check_finite("bound_loss", loss, it, hint="try a smaller lr or temperature")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        hist.step.append(it)
        hist.j_bound.append(-float(loss.detach()))
        report_progress(it + 1, steps, {"j_bound": hist.j_bound[-1]})
    return hist
