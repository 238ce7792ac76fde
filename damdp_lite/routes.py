"""Four gradient routes through one diffusion policy on a state-less target (method.md §5.7).

Every route returns a scalar surrogate loss whose gradient w.r.t. the policy's parameters is
that route's estimate of the gradient of -J, for one batch of B chains `a^K -> ... -> a^0` of a
`ChainPolicy` on a `Target` (a one-step problem: no state, the reward r(squash(a^0)) only):

| name        | route                                              | estimates              |
|-------------|----------------------------------------------------|------------------------|
| "per_step"  | (a) DA-MDP: clipped per-step PPO surrogate          | -grad J_bound (T > 0)  |
| "pathwise"  | (b) back-propagation through the chain (DIME-style) | -grad J_bound          |
| "dppo"      | (c) DPPO: (a) at T = 0                              | -grad E[r]             |
| "fpo_style" | (d) FPO-style: clipped ratio of ELBO estimates      | biased (an ELBO ratio) |

    J_bound = E[r(a^0)] + T H(p_0) - T E[sum_k ell_k]      (method.md §2.2, notebook 01)

(a) and (b) are unbiased for the same gradient when T > 0 (tested); (c) drops the entropy; (d)
replaces the exact per-step likelihoods with a Monte Carlo ELBO of log q(a^0). `ROUTES` names
them for the notebook, its widget and `benchmarks/gradient_routes.py`; `train_route` trains any
of them with one budget and one optimiser. Introduced in notebook 07.

Design choices, shared by the routes:
- One batch per iteration: B chains drawn with the current policy (prior draws and noise from
  one generator, so every route sees the same random numbers), then `update_epochs` Adam steps
  on it. The likelihood-ratio routes re-weight the stored samples by their ratio to the policy
  that drew them (PPO's reuse, with the clip); the pathwise route replays the stored noise at
  the current parameters (its samples move with theta, so it needs no ratio).
- No learned critic: the advantages are Monte Carlo soft returns (GAE at gamma = lambda = 1 with
  V = 0), centred by their batch mean, so that every route gets the same information. DiffPPO
  adds a learned V(s~) baseline (method.md §5.3), which lowers the variance of (a) further.
- Scale: the per-step surrogate is a mean over augmented transitions; one chain is K of them,
  so it is multiplied by K to estimate the gradient of one chain's objective, like the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .algos.common import minibatch_indices
from .algos.ppo import MAX_LOG_RATIO, actor_advantage, dest_loss, policy_loss
from .bound import bound_loss, check_policy_matches_target
from .chain import ChainPolicy, ChainSample
from .config import SEED, Config, between, param, positive
from .damdp import gae, soft_reward_current
from .exercises import augmented_step_reference
from .targets import Target
from .utils import check_choice, check_finite, check_int_at_least, normal_log_prob, report_progress

# ---------------------------------------------------------------------------------------------
# (b) Through the whole chain: the pathwise gradient of the bound (notebook 01)
# ---------------------------------------------------------------------------------------------

pathwise_bound_loss = bound_loss
"""(b) -mean J_bound over reparameterised chains, back-propagated through all K steps: the
pathwise (reparameterisation) gradient of notebook 01, `bound.bound_loss` itself. DIME (Celik
et al. 2025, arXiv 2502.02316) and REPPO-DiME optimise a diffusion policy this way (method.md
§5.7). Memory: the whole chain's graph, K steps per sample."""

# ---------------------------------------------------------------------------------------------
# (a) and (c) One denoising step at a time: the DA-MDP's per-step surrogate (method.md §4, §5.3)
# ---------------------------------------------------------------------------------------------


def augmented_transitions(policy: ChainPolicy, sample: ChainSample, reward: torch.Tensor,
                          temperature: float) -> dict[str, torch.Tensor]:
    """The K augmented transitions of each of B chains, with soft rewards and returns-to-go.

    Rows as `damdp.collect_rollout` writes them for one env step of B envs (row i: k = K - i;
    `exercises.augmented_step_reference`), soft rewards r_soft = R~ - T ell_k
    (`damdp.soft_reward_current`, method.md §4.4), advantages by `damdp.gae` at gamma = lambda
    = 1 with V = 0: the soft return-to-go A_k = r(a^0) - T sum_{j <= k} ell_j of the step
    a^k -> a^{k-1} (the bandit's episode ends after k = 1). At the k = K row this is the chain's
    whole soft return.

    Args:
        policy: the policy that drew `sample` (its old log-probabilities are stored).
        sample: B chains, latents `(K + 1, B, d)`, log-ratios `(K, B)` (detached).
        reward: r(squash(a^0)), `(B,)`.
        temperature: T >= 0 of the soft rewards (0: DPPO).
    Returns:
        Flattened `(K B, ...)` tensors: obs `(K B, 0 or obs_dim)`, a_k, a_prev `(K B, d)`, k,
        log_prob (log q_old), advantages, r_soft, reward `(K B,)`; row `i B + b` is step
        k = K - i of chain b.
    """
    if not (isinstance(temperature, int | float) and math.isfinite(temperature)
            and temperature >= 0):
        raise ValueError(f"temperature={temperature!r} must be a finite number >= 0")
    K, B = sample.log_ratios.shape
    obs = torch.zeros(B, policy.obs_dim, device=reward.device)
    rows = augmented_step_reference(obs, obs, sample.latents, sample.log_ratios, reward,
                                    torch.ones_like(reward))  # (K, B[, ...])
    r_soft = soft_reward_current(rows["reward"], rows["ell"], temperature)
    zeros = torch.zeros_like(r_soft)
    advantages, _ = gae(r_soft, zeros, zeros, rows["terminated"], zeros, 1.0, 1.0)
    flat = {"obs": obs.expand(K, B, -1), "a_k": rows["a_k"], "a_prev": rows["a_prev"],
            "k": rows["k"], "advantages": advantages, "r_soft": r_soft, "reward": rows["reward"]}
    flat = {key: v.reshape(K * B, *v.shape[2:]) for key, v in flat.items()}
    with torch.no_grad():
        flat["log_prob"] = policy.denoise_log_prob(flat["obs"], flat["a_k"], flat["k"],
                                                   flat["a_prev"])
    return flat


def per_step_surrogate(policy: ChainPolicy, transitions: dict[str, torch.Tensor],
                       temperature: float, clip_coef: float) -> torch.Tensor:
    """(a) K [ -mean min(w A_hat, clip(w, 1 +- eps) A_hat) + dest_loss ], a scalar.

    DiffPPO's actor loss on augmented transitions (method.md §5.3): the per-step ratio
    w = q_theta(a^{k-1} | a^k) / q_old(a^{k-1} | a^k), the actor advantage A_hat
    (`algos.ppo.actor_advantage`: the rollout's entropy term swapped for the current one,
    centred), the clipped surrogate (`algos.ppo.policy_loss`) and the appendix-G term of the
    learnable noising kernel (`algos.ppo.dest_loss`, §4.3). The mean over transitions is
    multiplied by K (one chain is K transitions), so that on-policy (w = 1) its expected
    gradient is -grad J_bound per chain, the same as `pathwise_bound_loss` (tested; the batch
    mean used as a baseline adds an O(1/B) bias).

    `transitions`: rows of `augmented_transitions` (all of them or a subset, e.g. kappa steps
    per chain), each `(N,)` or `(N, d)`. Memory: one network call per row, independent of K
    for a fixed number of rows.
    """
    check_positive_clip(clip_coef)
    t = transitions
    new_log_prob = policy.denoise_log_prob(t["obs"], t["a_k"], t["k"], t["a_prev"])
    noise_log_prob = policy.noise_log_prob(t["obs"], t["a_k"], t["k"], t["a_prev"])
    ell_new = new_log_prob - noise_log_prob
    ratio = (new_log_prob - t["log_prob"]).clamp(max=MAX_LOG_RATIO).exp()  # per-step w_theta
    adv_hat = actor_advantage(t["advantages"], t["r_soft"], t["reward"], ell_new, temperature)
    pg_loss, active = policy_loss(ratio, adv_hat, clip_coef)
    return policy.num_steps * (pg_loss + dest_loss(ratio, noise_log_prob, active, temperature))


def dppo_surrogate(policy: ChainPolicy, transitions: dict[str, torch.Tensor],
                   clip_coef: float) -> torch.Tensor:
    """(c) DPPO (Ren et al. 2024, arXiv 2409.00588): `per_step_surrogate` at T = 0, a scalar.

    The transitions must come from `augmented_transitions(..., temperature=0)` (no soft-reward
    term: r_soft = R~); on-policy its expected gradient is -grad E[r(a^0)] (tested). Nothing
    rewards spread, so the policy collapses onto a mode (method.md §5.3).
    """
    if not torch.equal(transitions["r_soft"], transitions["reward"]):
        raise ValueError("transitions have soft rewards r_soft != R~; DPPO needs them built "
                         "with augmented_transitions(..., temperature=0)")
    return per_step_surrogate(policy, transitions, 0.0, clip_coef)


def check_positive_clip(clip_coef: float) -> None:
    """`ValueError` unless the clip epsilon is a finite number > 0."""
    if not (isinstance(clip_coef, int | float) and math.isfinite(clip_coef) and clip_coef > 0):
        raise ValueError(f"clip_coef={clip_coef!r} must be a finite number > 0")


# ---------------------------------------------------------------------------------------------
# (d) FPO-style: a likelihood-ratio surrogate on a^0 with a Monte Carlo ELBO of log q(a^0)
# ---------------------------------------------------------------------------------------------


def sample_noising_chain(policy: ChainPolicy, a_0: torch.Tensor, num_draws: int,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """a^k ~ pi_theta(. | a^{k-1}) for k = 1..K from each final latent a^0, `num_draws` times:
    the noising chain of method.md §3 run forward, the variational posterior of the ELBO.

    The kernel is N(a^{k-1} - eta_k' a^{k-1} / sigma_0^2, 2 eta_k') (`noising_drift_at=
    "conditioning"`; the "evaluated" kernel of the official code is not a density, D1, and
    cannot be sampled). It has no network, so drawing it costs no network call.

    Args:
        policy: a chain policy with a prior and a noising kernel (a `DiffusionPolicy`).
        a_0: final latents, `(B, d)`.
        num_draws: M >= 1 noising chains per a^0.
    Returns:
        latents `(K + 1, M, B, d)`, detached; `latents[0]` is a^0 repeated, `latents[k]` = a^k.
    """
    check_int_at_least("elbo_draws", num_draws, 1)
    drift_at = getattr(getattr(policy, "config", None), "noising_drift_at", None)
    if policy.prior_std is None or not hasattr(policy, "step_sizes"):
        raise ValueError(f"the FPO-style route needs a policy with a prior and a noising kernel "
                         f"(a DiffusionPolicy); got {type(policy).__name__}")
    if drift_at != "conditioning":
        raise ValueError(f"noising_drift_at={drift_at!r}: the FPO-style route samples the "
                         f"noising kernel, which needs 'conditioning' (a normalised density)")
    with torch.no_grad():
        eta = policy.step_sizes()  # (K, d), row k - 1 holds eta_k
        a = a_0.detach().expand(num_draws, *a_0.shape)  # (M, B, d)
        latents = [a]
        for k in range(1, policy.num_steps + 1):
            e = eta[policy.noise_index(k) - 1]  # (d,), eta_k'
            eps = torch.randn(a.shape, device=a.device, generator=generator)
            a = a - e * a / policy.prior_std**2 + torch.sqrt(2 * e) * eps
            latents.append(a)
    return torch.stack(latents)


@dataclass
class ElboDraws:
    """M Monte Carlo draws per final latent for `elbo_terms`: one noising chain each and one
    step k of it drawn uniformly from 1..K (FPO's flow time tau), held fixed across epochs."""

    a_0: torch.Tensor
    """The final latents the ELBO is of, `(B, d)`."""
    a_k: torch.Tensor
    """a^k of the drawn step, `(M, B, d)`."""
    a_prev: torch.Tensor
    """a^{k-1} of the drawn step, `(M, B, d)`."""
    k: torch.Tensor
    """The drawn step, `(M, B)` long in [1, K]."""
    log_prior: torch.Tensor
    """log p_0(a^K) of each noising chain's end, `(M, B)`."""


def elbo_draws(policy: ChainPolicy, a_0: torch.Tensor, num_draws: int,
               generator: torch.Generator | None = None) -> ElboDraws:
    """Draw M noising chains from each a^0 (`sample_noising_chain`) and one step k ~ U{1..K}
    of each. `a_0`: `(B, d)`."""
    latents = sample_noising_chain(policy, a_0, num_draws, generator)  # (K + 1, M, B, d)
    K = policy.num_steps
    M, B, d = latents.shape[1:]
    k = torch.randint(1, K + 1, (M, B), device=a_0.device, generator=generator)
    idx = k[None, ..., None].expand(1, M, B, d)
    a_k = latents.gather(0, idx)[0]
    a_prev = latents.gather(0, idx - 1)[0]
    var = torch.full_like(latents[K], policy.prior_std**2)
    log_prior = normal_log_prob(latents[K], torch.zeros_like(latents[K]), var).sum(-1)
    return ElboDraws(a_0.detach(), a_k, a_prev, k, log_prior)


def elbo_terms(policy: ChainPolicy, draws: ElboDraws) -> torch.Tensor:
    """ell_k(a^k, a^{k-1}) at each draw's step, `(M, B)`, differentiable in theta: one network
    call per draw, whatever K."""
    M, B, d = draws.a_k.shape
    obs = torch.zeros(M * B, policy.obs_dim, device=draws.a_k.device)
    ell = policy.log_ratio(obs, draws.a_k.reshape(M * B, d), draws.k.reshape(-1),
                           draws.a_prev.reshape(M * B, d))
    return ell.reshape(M, B)


def elbo_estimate(log_prior: torch.Tensor, ell: torch.Tensor, num_steps: int) -> torch.Tensor:
    """ELBO_hat(a^0) = mean over the M draws of [log p_0(a^K) + K ell_k], `(B,)`.

    With a^{1:K} ~ pi_theta(. | a^0) (the noising chain as variational posterior) and k uniform,
    E[log p_0(a^K) + K ell_k] = E[log p_0(a^K) + sum_k ell_k] <= log q_theta(a^0); the gap is
    KL(pi_theta(a^{1:K} | a^0) || q_theta(a^{1:K} | a^0)) (tested against the exact 1-D
    marginal). `log_prior`, `ell`: `(M, B)`.
    """
    return (log_prior + num_steps * ell).mean(0)


def fpo_ratio(log_prior: torch.Tensor, ell_new: torch.Tensor, ell_old: torch.Tensor,
              num_steps: int) -> torch.Tensor:
    """r_hat = exp(ELBO_hat_theta(a^0) - sg(ELBO_hat_old(a^0))), `(B,)`, with the same draws in
    both (common random numbers, as FPO's shared (tau, eps) pairs): exactly 1 at the old
    parameters. log p_0(a^K) cancels; the log-ratio is capped at `MAX_LOG_RATIO` as in PPO.
    `log_prior`, `ell_new` (differentiable), `ell_old`: `(M, B)`. Exercise 7.1 of notebook 07.
    """
    log_r = (elbo_estimate(log_prior, ell_new, num_steps)
             - elbo_estimate(log_prior, ell_old, num_steps).detach())
    return log_r.clamp(max=MAX_LOG_RATIO).exp()


def chain_advantages(transitions: dict[str, torch.Tensor], num_steps: int) -> torch.Tensor:
    """The whole chain's soft return r(a^0) - T sum_k ell_k (the k = K rows' return-to-go of
    `augmented_transitions`), centred by the batch mean, `(B,)`: the advantage of the chain
    taken as one action. Only a state baseline is allowed there, and the bandit has no state."""
    adv = transitions["advantages"].reshape(num_steps, -1)[0]  # row 0 of each chain: k = K
    return adv - adv.mean()


def fpo_surrogate(policy: ChainPolicy, draws: ElboDraws, ell_old: torch.Tensor,
                  advantages: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """(d) -mean min(r_hat A, clip(r_hat, 1 +- eps) A) over the B final actions, a scalar.

    FPO (McAllister et al. 2025, arXiv 2507.21053) keeps PPO's clipped surrogate for a flow
    policy and replaces the likelihood ratio by exp(L_CFM,old - L_CFM,theta), where L_CFM is a
    Monte Carlo estimate of the conditional flow-matching loss at the action, related to an
    ELBO of its log-likelihood. Our analogue for this discrete chain is `fpo_ratio`: the exact
    ELBO of log q(a^0) with the noising chain as variational posterior, estimated from M draws
    of (noising chain, step k). Differences from FPO: the ELBO here is the chain's own (each step
    weighted equally, no flow-matching weighting); our noising chain shares eta with the policy
    and is drawn under the old parameters and held fixed, where FPO's noising path has no
    parameters; and the advantage is the chain's MaxEnt soft return (`chain_advantages`), so
    T > 0 still enters, through the rewards only. The gradient follows the ELBO, not log q:
    biased for grad J_bound by the gradient of the ELBO's gap.
    """
    check_positive_clip(clip_coef)
    ratio = fpo_ratio(draws.log_prior, elbo_terms(policy, draws), ell_old, policy.num_steps)
    return policy_loss(ratio, advantages, clip_coef)[0]


# ---------------------------------------------------------------------------------------------
# Registry, one training loop, and a memory probe
# ---------------------------------------------------------------------------------------------


@dataclass
class RouteConfig(Config):
    """One budget for every route (notebook 07): the same chains, updates and optimiser."""

    temperature: float = param(0.25, positive())
    """Temperature T of the target exp(r/T)/Z (> 0; DPPO's loss ignores it, T = 0)."""
    iterations: int = param(100, between(0, 10_000_000))
    """Batches of fresh chains (>= 0)."""
    batch_size: int = param(256, between(2, 10_000_000))
    """Chains B per batch (>= 2)."""
    update_epochs: int = param(4, between(1, 1000))
    """Adam steps per batch (>= 1): the likelihood-ratio routes re-weight the stored samples,
    the pathwise route replays their noise at the current parameters."""
    diffusion_steps_per_update: int = param(0, between(0, 1000))
    """kappa: chain steps per chain in each update of the per-step routes (0 = all K; D11)."""
    lr: float = param(3e-3, positive())
    """Adam learning rate (> 0), the same for every route."""
    clip_coef: float = param(0.2, positive())
    """PPO's clip epsilon of the ratio routes (0.1-0.3)."""
    elbo_draws: int = param(4, between(1, 10_000))
    """M: Monte Carlo draws (noising chain, step k) per action of the FPO-style ELBO (>= 1)."""
    max_grad_norm: float = param(1.0, positive())
    """Global gradient-norm clip (> 0)."""
    seed: int = param(0, SEED)
    """Seed of the chains' and the draws' random numbers."""


@dataclass
class Route:
    """A gradient route: how to prepare a batch once (at the old parameters) and the surrogate
    loss of each update on it."""

    name: str
    label: str
    """Name in figures and tables (also picks the plotting style)."""
    prepare: Callable[..., dict]
    """`prepare(policy, target, sample, reward, state, config, generator) -> dict`."""
    loss: Callable[..., torch.Tensor]
    """`loss(policy, target, prepared, config, generator=None) -> ()` (the generator draws the
    kappa chain steps of a per-step update)."""
    estimates: str
    """What the expected gradient of `loss` is, in words."""


def _prepare_per_step(policy, target, sample, reward, state, cfg, gen, temperature):
    return {"transitions": augmented_transitions(policy, sample, reward, temperature)}


def _rows(policy, prepared, cfg, gen) -> dict[str, torch.Tensor]:
    """All rows, or kappa chain steps per chain (`algos.common.minibatch_indices`)."""
    t = prepared["transitions"]
    if cfg.diffusion_steps_per_update == 0:
        return t
    B = t["k"].shape[0] // policy.num_steps
    idx = minibatch_indices(1, policy.num_steps, B, cfg.diffusion_steps_per_update, 1, gen)[0]
    return {key: v[idx] for key, v in t.items()}


def _prepare_fpo(policy, target, sample, reward, state, cfg, gen):
    transitions = augmented_transitions(policy, sample, reward, cfg.temperature)
    draws = elbo_draws(policy, sample.a_0, cfg.elbo_draws, gen)
    with torch.no_grad():
        ell_old = elbo_terms(policy, draws)
    return {"draws": draws, "ell_old": ell_old,
            "advantages": chain_advantages(transitions, policy.num_steps)}


def _replay(state: torch.Tensor, device: torch.device) -> torch.Generator:
    """A generator that repeats the random numbers drawn from `state` on."""
    g = torch.Generator(device=device)
    g.set_state(state)
    return g


ROUTES: dict[str, Route] = {
    "per_step": Route(
        "per_step", "DA-MDP per step (DiffPPO)",
        lambda p, tg, s, r, st, c, g: _prepare_per_step(p, tg, s, r, st, c, g, c.temperature),
        lambda p, tg, prep, c, g=None: per_step_surrogate(p, _rows(p, prep, c, g),
                                                          c.temperature, c.clip_coef),
        "-grad J_bound (unbiased on-policy, T > 0)"),
    "pathwise": Route(
        "pathwise", "through the chain (DIME-style)",
        lambda p, tg, s, r, st, c, g: {"state": st},
        lambda p, tg, prep, c, g=None: pathwise_bound_loss(
            p, tg, c.temperature, c.batch_size, generator=_replay(prep["state"], p.device)),
        "-grad J_bound (unbiased)"),
    "dppo": Route(
        "dppo", "DPPO (T = 0)",
        lambda p, tg, s, r, st, c, g: _prepare_per_step(p, tg, s, r, st, c, g, 0.0),
        lambda p, tg, prep, c, g=None: dppo_surrogate(p, _rows(p, prep, c, g), c.clip_coef),
        "-grad E[r] (unbiased on-policy; no entropy)"),
    "fpo_style": Route(
        "fpo_style", "FPO-style ELBO ratio",
        _prepare_fpo,
        lambda p, tg, prep, c, g=None: fpo_surrogate(p, prep["draws"], prep["ell_old"],
                                                     prep["advantages"], c.clip_coef),
        "-grad of an ELBO-weighted objective (biased)"),
}
"""The four routes by name: (a) per_step, (b) pathwise, (c) dppo, (d) fpo_style."""

ROUTE_LABELS = {name: r.label for name, r in ROUTES.items()}
"""How figures and tables name each route."""


def get_route(name: str) -> Route:
    """The `Route` called `name`; `ValueError` naming the allowed ones otherwise."""
    check_choice("route", name, tuple(ROUTES))
    return ROUTES[name]


@dataclass
class RouteBatch:
    """One batch of chains and what a route prepared from it at the old parameters."""

    sample: ChainSample
    """B chains, detached: latents `(K + 1, B, d)`, log-ratios `(K, B)`."""
    reward: torch.Tensor
    """r(squash(a^0)), `(B,)`."""
    prepared: dict
    """The route's data for its loss (transitions, ELBO draws, or the replay state)."""


def draw_batch(route: Route, policy: ChainPolicy, target: Target, config: RouteConfig,
               chain_gen: torch.Generator, aux_gen: torch.Generator) -> RouteBatch:
    """B fresh chains (noise from `chain_gen`) and the route's preparation (any other random
    numbers from `aux_gen`, so that `chain_gen` draws the same sequence for every route)."""
    state = chain_gen.get_state()
    with torch.no_grad():
        sample = policy.sample(config.batch_size, generator=chain_gen)
        reward = target.reward(sample.action)
    prepared = route.prepare(policy, target, sample, reward, state, config, aux_gen)
    return RouteBatch(sample, reward, prepared)


def route_loss(route: Route, policy: ChainPolicy, target: Target, batch: RouteBatch,
               config: RouteConfig, aux_gen: torch.Generator | None = None) -> torch.Tensor:
    """The route's surrogate loss on `batch` at the current parameters, a scalar."""
    return route.loss(policy, target, batch.prepared, config, aux_gen)


@dataclass
class RouteHistory:
    """Per-iteration record of `train_route`."""

    iteration: list[int] = field(default_factory=list)
    j_bound: list[float] = field(default_factory=list)
    """Minibatch J_bound = mean r + T H(p_0) - T mean sum ell of each fresh batch (before its
    updates), at the target's T for every route."""
    seconds: float = 0.0
    """Wall-clock of the whole loop."""


def train_route(name: str, policy: ChainPolicy, target: Target, config: RouteConfig,
                progress: bool = False) -> RouteHistory:
    """Train `policy` on `target` with route `name` (a key of `ROUTES`): `config.iterations`
    batches of `config.batch_size` fresh chains, `config.update_epochs` Adam steps on each
    (lr `config.lr`, global-norm clip `config.max_grad_norm`), the same for every route.
    Reports progress to `utils.progress_listener` (widgets). Returns the history.
    """
    route = get_route(name)
    check_policy_matches_target(policy, target)
    chain_gen = torch.Generator(device=policy.device).manual_seed(config.seed)
    aux_gen = torch.Generator(device=policy.device).manual_seed(config.seed + 1)
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr)
    hist, start = RouteHistory(), time.perf_counter()
    for it in range(config.iterations):
        batch = draw_batch(route, policy, target, config, chain_gen, aux_gen)
        j = batch.reward + config.temperature * (policy.prior_entropy()
                                                 - batch.sample.log_ratios.sum(0))
        for _ in range(config.update_epochs):
            loss = route_loss(route, policy, target, batch, config, aux_gen)
            check_finite(f"{name} loss", loss.detach(), it, hint="try a smaller lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            opt.step()
        hist.iteration.append(it)
        hist.j_bound.append(float(j.mean()))
        report_progress(it + 1, config.iterations, {"j_bound": hist.j_bound[-1]})
        if progress and (it + 1) % max(1, config.iterations // 10) == 0:
            print(f"{name}: iteration {it + 1}/{config.iterations}, J_bound {hist.j_bound[-1]:.4f}",
                  flush=True)
    hist.seconds = time.perf_counter() - start
    return hist


def route_gradient(name: str, policy: ChainPolicy, target: Target, config: RouteConfig,
                   chain_gen: torch.Generator, aux_gen: torch.Generator) -> torch.Tensor:
    """One batch's gradient of route `name`'s loss at the current (= old) parameters,
    flattened over every trainable parameter, `(P,)`; the policy is not changed."""
    route = get_route(name)
    batch = draw_batch(route, policy, target, config, chain_gen, aux_gen)
    params = [p for p in policy.parameters() if p.requires_grad]
    loss = route_loss(route, policy, target, batch, config, aux_gen)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for p, g in zip(params, grads, strict=True)])


ESCAPED_OUTSIDE = 0.01
"""A trained sampler has `escaped` when more than this fraction of its samples lies outside the
target's bounds (where pi* has next to no mass), or its J_bound is not finite."""

EVAL_GRID = (-4.0, 4.0, 2001)
"""(low, high, nodes) of the 1-D quadrature grid of `evaluate_sampler` (notebook 01's)."""


def evaluate_sampler(policy: ChainPolicy, target: Target, temperature: float, n: int = 20_000,
                     seed: int = 4, log_z: float | None = None,
                     exact_masses: torch.Tensor | None = None) -> dict:
    """What notebook 07 and `benchmarks/gradient_routes.py` measure of a trained sampler.

    With its own generator (`seed`): `j_bound` and `j_bound_se` (`bound.estimate_bound`, n
    chains), `mode_masses` of n samples of a^0 (`Target.mode_masses`; 2-D targets: at least
    50,000), `outside` (fraction outside `target.bounds`), `escaped` (see `ESCAPED_OUTSIDE`),
    `eta_1`. 1-D targets add, from the exact marginal on `EVAL_GRID` (`bound.exact_marginal_kl_1d`;
    None when escaped: the grid would miss that mass): `j_marginal`, `kl`, `dip_ratio`
    (`metrics.dip_ratio`), `mass_pos` and `density` `(N,)` with its `grid`. 2-D targets add
    `kl_hist` (`bound.histogram_kl`, [q||pi*, pi*||q]) and `mode_tv`
    (`metrics.mode_mass_errors` against `exact_masses`, by quadrature when not given).
    `log_z`: the target's log Z at T, if already known (2-D quadrature is slow).
    """
    from .bound import estimate_bound, exact_marginal_kl_1d, histogram_kl
    from .metrics import dip_ratio, mode_mass_errors

    gen = torch.Generator().manual_seed(seed)
    est = estimate_bound(policy, target, temperature, n=n, generator=gen, log_z=log_z)
    with torch.no_grad():
        x = policy.sample(n if target.dim == 1 else max(n, 50_000), generator=gen).a_0
    lo, hi = target.bounds
    outside = float(((x < lo) | (x > hi)).any(-1).float().mean())
    finite = math.isfinite(est.j_bound)
    escaped = outside > ESCAPED_OUTSIDE or not finite
    rec = {"j_bound": est.j_bound if finite else None,
           "j_bound_se": est.j_bound_se if math.isfinite(est.j_bound_se) else None,
           "outside": outside, "escaped": escaped, "mode_masses": target.mode_masses(x).tolist(),
           "eta_1": policy.describe().get("step_sizes", [[math.nan]])[0][0]}
    if target.dim == 1:
        grid = torch.linspace(*EVAL_GRID[:2], EVAL_GRID[2], dtype=torch.float64)
        rec.update(j_marginal=None, kl=None, dip_ratio=None, mass_pos=None, grid=grid,
                   density=None)
        if not escaped:
            m = exact_marginal_kl_1d(policy, target, temperature, grid=grid)
            h = float(grid[1] - grid[0])
            rec.update(j_marginal=m["j_marginal"], kl=m["kl"],
                       dip_ratio=dip_ratio(grid, m["density"]),
                       mass_pos=float(m["density"][grid >= 0].sum() * h), density=m["density"])
    else:
        exact = target.exact_mode_masses(temperature) if exact_masses is None else exact_masses
        kls = histogram_kl(x, target, temperature)
        rec.update(kl_hist=[k if math.isfinite(k) else None for k in kls],
                   mode_tv=mode_mass_errors(target.mode_masses(x), exact)["tv"])
    return rec


def saved_tensor_bytes(build_loss: Callable[[], torch.Tensor],
                       exclude: list[torch.Tensor] | tuple = ()) -> int:
    """Bytes autograd saves for the backward pass while `build_loss()` runs, each storage
    counted once and the tensors in `exclude` (e.g. the parameters) left out: a deterministic
    measure of the activation memory of one update (`torch.autograd.graph.saved_tensors_hooks`)."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip:
            seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        build_loss()
    return sum(seen.values())


__all__ = [
    "ESCAPED_OUTSIDE", "EVAL_GRID", "ROUTES", "ROUTE_LABELS", "ElboDraws", "Route", "RouteBatch",
    "RouteConfig", "RouteHistory", "augmented_transitions", "chain_advantages", "dppo_surrogate",
    "draw_batch", "elbo_draws", "elbo_estimate", "elbo_terms", "evaluate_sampler", "fpo_ratio",
    "fpo_surrogate", "get_route",
    "pathwise_bound_loss", "per_step_surrogate", "route_gradient", "route_loss",
    "sample_noising_chain", "saved_tensor_bytes", "train_route",
]
