"""Exercise checkers (Spinning Up style): compare a learner's function with the package's
reference on seeded random inputs; fall back to the reference when the exercise is skipped.

Each checker prints one fixed line, so notebook cells calling it can be `NBVAL_CHECK_OUTPUT`:
- "Exercise N: all checks passed."                      (and returns the learner's function)
- "Exercise N not attempted; continuing with the reference implementation."
                                                        (stub raised NotImplementedError)
A wrong answer raises `AssertionError` explaining the first failing case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .damdp import soft_reward_current
from .diffusion import noise_kernel_log_prob

NOT_ATTEMPTED = "Exercise {n} not attempted; continuing with the reference implementation."
PASSED = "Exercise {n}: all checks passed."


def _first_difference(got: torch.Tensor, want: torch.Tensor, tol: float,
                      entry: Callable[[int], str] | None = None) -> str:
    """"entry INDEX (NAME): got G, expected W" for the first entry of `got` (same shape and
    dtype as `want`) that is not within `tol` of `want`; `entry(flat_index)` names it."""
    bad = ~torch.isclose(got, want, rtol=tol, atol=tol)
    i = int(bad.reshape(-1).nonzero()[0])
    g, w = got.reshape(-1)[i].item(), want.reshape(-1)[i].item()
    index = (np.unravel_index(i, tuple(want.shape)) if want.dim() > 1 else
             (i,) if want.dim() == 1 else ())
    where = f"entry {list(int(j) for j in index)}" if index else "the value"
    name = f" ({entry(i)})" if entry else ""
    return f"{where}{name}: got {g:.6g}, expected {w:.6g}"


def _check(fn: Callable, reference: Callable, cases, number: str, what: str,
           describe: Callable[[dict], str], tol: float = 1e-5, kind: str = "a tensor",
           entry: Callable[[dict, int], str] | None = None) -> Callable:
    """The loop every checker shares: compare `fn(**case)` with `reference(**case)` on each case.

    `what` says what one entry of the answer is; `describe(case)` names a failing case and
    `entry(case, flat_index)`, if given, the failing entry (else its index alone). Prints one
    fixed line and returns `fn` when all pass, or `reference` when `fn` raises
    `NotImplementedError`; raises `AssertionError` on the first wrong shape, or on the first
    case with a wrong value, showing the first entry that differs (index, got, expected).
    """
    try:
        for case in cases:
            got = fn(**case)
            want = torch.as_tensor(reference(**case))
            if type(got).__module__.startswith("numpy") or type(got) in (int, float):
                got = torch.as_tensor(got, dtype=want.dtype)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = getattr(got, "shape", type(got).__name__)
                raise AssertionError(f"Exercise {number}: expected {kind} of shape "
                                     f"{tuple(want.shape)} ({what}), got {shape}")
            if not torch.allclose(got.to(want.dtype), want, rtol=tol, atol=tol):
                name = (lambda i, c=case: entry(c, i)) if entry else None
                raise AssertionError(
                    f"Exercise {number}: wrong values for {describe(case)}: first difference at "
                    + _first_difference(got.to(want.dtype), want, tol, name))
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return reference
    print(PASSED.format(n=number))
    return fn


def _cases(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for B, d, per_sample in [(5, 1, False), (7, 3, False), (4, 2, True)]:
        a_k = 3 * torch.randn(B, d, generator=g)
        a_prev = 3 * torch.randn(B, d, generator=g)
        shape = (B, d) if per_sample else (d,)
        eta = 0.05 + torch.rand(shape, generator=g)
        for prior_std in (3.0, 1.3):
            for drift_at in ("conditioning", "evaluated"):
                yield dict(a_k=a_k, a_prev=a_prev, eta=eta, prior_std=prior_std,
                           drift_at=drift_at)


def _gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var) per entry (broadcast), without summing."""
    return -0.5 * (np.log(2 * np.pi) + torch.log(var) + (x - mean) ** 2 / var)


def _noise_mistakes(a_k, a_prev, eta, prior_std, drift_at) -> dict[str, torch.Tensor]:
    """What common wrong answers to exercise 1.1 return, `{what is wrong: (B,)}`."""
    other = "evaluated" if drift_at == "conditioning" else "conditioning"
    at = {"conditioning": a_prev, "evaluated": a_k}
    mean = a_prev - eta * at[drift_at] / prior_std**2
    var = (2 * eta).expand_as(mean)

    def lp(x, m, v):
        return _gaussian_log_prob(x, m, v.expand_as(m)).sum(-1)

    return {
        f"the drift's argument: with drift_at={drift_at!r} the drift -eta x / sigma_0^2 is taken "
        f"at x = {'a^{k-1} (a_prev)' if drift_at == 'conditioning' else 'a^k (a_k)'}, "
        f"not at the other latent":
            lp(a_k, a_prev - eta * at[other] / prior_std**2, var),
        "the variance: the kernel's variance is 2 eta, not eta": lp(a_k, mean, eta),
        "the variance: 2 eta is the variance, not the standard deviation":
            lp(a_k, mean, var ** 2),
        "the mean: it is a^{k-1} - eta x / sigma_0^2; the prior's drift is missing":
            lp(a_k, a_prev, var),
        "the drift's sign: the mean is a^{k-1} - eta x / sigma_0^2 (towards 0), not +":
            lp(a_k, a_prev + eta * at[drift_at] / prior_std**2, var),
        "the drift's scale: divide by sigma_0^2 (prior_std ** 2), not by sigma_0":
            lp(a_k, a_prev - eta * at[drift_at] / prior_std, var),
        "which latent is random: pi(a^k | a^{k-1}) is a density over a^k given a^{k-1}; "
        "a_k and a_prev are swapped":
            lp(a_prev, a_k - eta * {"conditioning": a_k, "evaluated": a_prev}[drift_at]
               / prior_std**2, var),
        "the normalising constant: log N includes -1/2 log(2 pi var) in every dimension":
            (-0.5 * (a_k - mean) ** 2 / var).sum(-1),
    }


def check_noise_log_prob(fn: Callable, number: str = "1.1") -> Callable:
    """Check `fn(a_k, a_prev, eta, prior_std, drift_at) -> (B,)` against
    `damdp_lite.diffusion.noise_kernel_log_prob` (method.md §3, notebook 01 exercise). A wrong
    answer that is a known mistake (the drift at the wrong latent, the variance eta or (2 eta)^2,
    no drift, the drift's sign or scale, a^k and a^{k-1} swapped, no normalising constant) is
    named in the `AssertionError`; a sum over the wrong axis is a shape error."""
    def diagnosed(**case):
        got = fn(**case)
        if not isinstance(got, torch.Tensor):
            return got  # `_check` reports what it got instead of a tensor
        want = noise_kernel_log_prob(**case)
        if got.shape == want.shape and not torch.allclose(got.to(want.dtype), want,
                                                          rtol=1e-5, atol=1e-5):
            for name, wrong in _noise_mistakes(**case).items():
                if torch.allclose(got.to(wrong.dtype), wrong, rtol=1e-5, atol=1e-5):
                    raise AssertionError(
                        f"Exercise {number}: wrong log pi(a^k | a^(k-1)) for "
                        f"drift_at={case['drift_at']!r}, prior_std={case['prior_std']}: check "
                        f"{name} (got {got.reshape(-1)[:3].tolist()}, expected "
                        f"{want.reshape(-1)[:3].tolist()})")
        return got

    passed = _check(diagnosed, noise_kernel_log_prob, _cases(), number,
                    "one log-density per batch row, summed over the d action dimensions",
                    lambda c: f"log pi(a^k | a^(k-1)) with drift_at={c['drift_at']!r}, "
                              f"prior_std={c['prior_std']}, eta shape {tuple(c['eta'].shape)}")
    return noise_kernel_log_prob if passed is noise_kernel_log_prob else fn


def _soft_reward_cases(seed: int = 0):
    """Rollout-shaped inputs `(S, N)` with S = L * K rows: R~ non-zero only on the k = 1 rows."""
    g = torch.Generator().manual_seed(seed)
    for L, K, N in [(1, 1, 5), (3, 4, 2), (2, 8, 3)]:
        k = torch.arange(K, 0, -1).repeat(L)[:, None].expand(L * K, N)  # (S, N)
        reward = torch.where(k == 1, torch.randn(L * K, N, generator=g), torch.zeros(()))
        ell = 2 * torch.randn(L * K, N, generator=g)
        for temperature in (0.25, 2.0):
            yield dict(reward=reward, ell=ell, temperature=temperature)


def _soft_reward_mistakes(reward, ell, temperature) -> dict[str, torch.Tensor]:
    """What common wrong answers to exercise 3.1 return, `{what is wrong: (S, N)}`."""
    on_k1 = reward != 0  # the rows that carry R~ (the cases draw no exact zero there)
    return {
        "the sign of the entropy term: r_soft = R~ - T ell_k (a log-ratio is paid, not earned)":
            reward + temperature * ell,
        "the temperature: the log-ratio is weighted by T, r_soft = R~ - T ell_k":
            reward - ell,
        "the scale: r_soft = R~ - T ell_k is in reward units; do not divide R~ by T":
            reward / temperature - ell,
        "which rows pay: every augmented step pays its own -T ell_k, not only the k = 1 row":
            torch.where(on_k1, reward - temperature * ell, torch.zeros_like(reward)),
        "the env reward: R~ is already 0 except on the k = 1 rows; add it as it is":
            -temperature * ell,
    }


def check_soft_reward(fn: Callable, number: str = "3.1") -> Callable:
    """Check `fn(reward, ell, temperature) -> (S, N)` against
    `damdp_lite.damdp.soft_reward_current`, the PPO soft reward r_soft = R~ - T ell_k
    (method.md §4.4, notebook 03 exercise). A wrong answer that is a known mistake (the
    entropy term's sign, T missing, R~ divided by T, -T ell_k on the k = 1 rows only, R~
    left out) is named in the `AssertionError`."""

    def diagnosed(**case):
        got = fn(**case)
        want = soft_reward_current(**case)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(
                got.to(want.dtype), want, rtol=1e-5, atol=1e-5):
            for name, wrong in _soft_reward_mistakes(**case).items():
                if torch.allclose(got.to(wrong.dtype), wrong, rtol=1e-5, atol=1e-5):
                    raise AssertionError(
                        f"Exercise {number}: wrong soft rewards for temperature="
                        f"{case['temperature']}: check {name}")
        return got

    passed = _check(diagnosed, soft_reward_current, _soft_reward_cases(), number,
                    "one soft reward per augmented transition",
                    lambda c: f"temperature={c['temperature']}, rollout shape "
                              f"{tuple(c['reward'].shape)}")
    return soft_reward_current if passed is soft_reward_current else fn


# ---------------------------------------------------------------------------------------------
# Notebook 04 (turning wells): one env step as K augmented transitions
# ---------------------------------------------------------------------------------------------

AUGMENTED_STEP_KEYS = ("k", "a_k", "a_prev", "ell", "reward", "terminated", "next_obs",
                       "next_k")
"""What exercise 4.1's function returns for one env step, each with K rows (rollout order)."""


def augmented_step_reference(obs: torch.Tensor, next_obs: torch.Tensor, latents: torch.Tensor,
                             log_ratios: torch.Tensor, reward: torch.Tensor,
                             terminated: torch.Tensor) -> dict[str, torch.Tensor]:
    """The K augmented transitions of one env step of N envs (method.md §4.1, I1), in the
    order and layout of `damdp.collect_rollout`: row i holds the step k = K - i.

    Args:
        obs, next_obs: the env observations s and s' of the env step, `(N, obs_dim)`.
        latents: the chain, `(K + 1, N, d)` with `latents[k]` = a^k (as `ChainSample.latents`).
        log_ratios: `(K, N)` with `log_ratios[k - 1]` = ell_k (as `ChainSample.log_ratios`).
        reward, terminated: the env step's reward r(a^0) and termination flag, `(N,)`.
    Returns:
        `{key: (K, N) or (K, N, ...)}` for `AUGMENTED_STEP_KEYS`: k = K..1; a_k = a^k and
        a_prev = a^{k-1} (the transition's action); ell = ell_k; reward and terminated on the
        k = 1 row only (0 elsewhere); next_obs = s while the env state is frozen (k > 1) and s'
        after the k = 1 step; next_k = k - 1, and K after k = 1 (s~' starts a fresh chain).
    """
    K = latents.shape[0] - 1
    k = torch.arange(K, 0, -1)  # (K,)
    last = (k == 1)[:, None]  # (K, 1): the k = 1 row, where the env steps
    N = reward.shape[0]
    zeros = torch.zeros(K, N, dtype=reward.dtype)
    return {
        "k": k[:, None].expand(K, N),
        "a_k": latents.flip(0)[:-1],  # a^K, ..., a^1
        "a_prev": latents.flip(0)[1:],  # a^{K-1}, ..., a^0
        "ell": log_ratios.flip(0),  # ell_K, ..., ell_1
        "reward": torch.where(last, reward, zeros),
        "terminated": torch.where(last, terminated.to(reward.dtype), zeros),
        "next_obs": torch.where(last[..., None], next_obs, obs),
        "next_k": torch.where(k > 1, k - 1, K)[:, None].expand(K, N),
    }


def _augmented_step_mistakes(obs, next_obs, latents, log_ratios, reward, terminated
                             ) -> dict[str, dict[str, torch.Tensor]]:
    """Common wrong values of single entries, `{key: {what is wrong: value}}`."""
    K, N = log_ratios.shape
    k = torch.arange(K, 0, -1)
    return {
        "k": {"k counts down along the rows: row 0 is the first denoising step, k = K, and the "
              "last row is k = 1": torch.arange(1, K + 1)[:, None].expand(K, N)},
        "a_k": {"the order: latents[k] is a^k, so row i (k = K - i) holds latents[K - i]; "
                "flip latents": latents[:-1],
                "off by one: a_k is the latent *before* the step, a^k = latents[k], not "
                "a^{k-1}": latents.flip(0)[1:]},
        "a_prev": {"the order: row i (k = K - i) holds a^{k-1} = latents[K - i - 1]; flip "
                   "latents": latents[1:],
                   "off by one: a_prev is the latent the step produces, a^{k-1}, not a^k":
                       latents.flip(0)[:-1]},
        "ell": {"the order: log_ratios[k - 1] is ell_k, so row i (k = K - i) holds "
                "log_ratios[K - 1 - i]; flip log_ratios": log_ratios},
        "reward": {"which row pays: the env reward belongs to the k = 1 row (the last one, "
                   "where the env steps), 0 on the other K - 1 rows":
                       torch.zeros(K, N, dtype=reward.dtype).index_copy(0, torch.tensor([0]),
                                                                       reward[None]),
                   "the env pays once per env step: put r(a^0) on the k = 1 row only, not on "
                   "every row": reward[None].expand(K, N)},
        "terminated": {"the env ends an episode only where it steps: terminated on the k = 1 "
                       "row only": terminated[None].expand(K, N).to(reward.dtype)},
        "next_obs": {"the env state is frozen inside the chain: next_obs is s for k > 1 and s' "
                     "only after the k = 1 step": next_obs[None].expand(K, *next_obs.shape),
                     "the env steps at the end of the chain: next_obs is s' after the k = 1 "
                     "step": obs[None].expand(K, *obs.shape)},
        "next_k": {"after the k = 1 step the next augmented state starts a fresh chain: "
                   "next_k = K there, not 0": (k - 1)[:, None].expand(K, N)},
    }


def _augmented_step_cases(seed: int = 0):
    """One env step of N envs for K = 4, 8 and 1 (a Gaussian policy; last, since there some
    mistakes give the right answer); latents `(K + 1, N, d)`, rewards never exactly 0, some
    envs terminated."""
    g = torch.Generator().manual_seed(seed)
    for K, N, d, obs_dim in [(4, 5, 2, 3), (8, 2, 1, 2), (1, 3, 1, 2)]:
        yield dict(obs=torch.randn(N, obs_dim, generator=g),
                   next_obs=torch.randn(N, obs_dim, generator=g),
                   latents=3 * torch.randn(K + 1, N, d, generator=g),
                   log_ratios=torch.randn(K, N, generator=g),
                   reward=1 + torch.rand(N, generator=g),
                   terminated=(torch.arange(N) % 2 == 1).float())


def check_augmented_step(fn: Callable, number: str = "4.1") -> Callable:
    """Check `fn(obs, next_obs, latents, log_ratios, reward, terminated) -> {key: tensor}`, the
    K augmented transitions of one env step (`augmented_step_reference`, the layout of
    `damdp.collect_rollout`; method.md §4.1), key by key (`AUGMENTED_STEP_KEYS`). A wrong
    answer names the quantity, and the known mistake or else the first row (with its k) and
    env that differ. Prints one fixed line; returns `fn`, or the reference when `fn` raises
    `NotImplementedError`."""
    try:
        for case in _augmented_step_cases():
            got = fn(**case)
            want = augmented_step_reference(**case)
            K = case["log_ratios"].shape[0]
            where = f"K = {K}, N = {case['reward'].shape[0]}"
            if not isinstance(got, dict):
                raise AssertionError(f"Exercise {number}: expected a dict with keys "
                                     f"{AUGMENTED_STEP_KEYS}, got {type(got).__name__}")
            missing = [key for key in AUGMENTED_STEP_KEYS if key not in got]
            if missing:
                raise AssertionError(f"Exercise {number}: the answer has no {missing[0]!r}; "
                                     f"expected the keys {AUGMENTED_STEP_KEYS}")
            mistakes = _augmented_step_mistakes(**case)
            for key in AUGMENTED_STEP_KEYS:
                g_val, w_val = torch.as_tensor(got[key]), want[key]
                if g_val.shape != w_val.shape:
                    raise AssertionError(
                        f"Exercise {number}: {key} ({where}): expected shape "
                        f"{tuple(w_val.shape)} (K rows, k = K..1), got {tuple(g_val.shape)}")
                g_val = g_val.to(w_val.dtype)
                if torch.equal(g_val, w_val) or (w_val.is_floating_point() and torch.allclose(
                        g_val, w_val, rtol=1e-6, atol=1e-6)):
                    continue
                for name, wrong in mistakes.get(key, {}).items():
                    if torch.equal(g_val, wrong.to(w_val.dtype)) and not torch.equal(
                            wrong.to(w_val.dtype), w_val):
                        raise AssertionError(f"Exercise {number}: wrong {key} ({where}): "
                                             f"{name}")
                bad = (g_val - w_val).abs() > 1e-6
                i, n = (int(j) for j in bad.nonzero()[0][:2])
                raise AssertionError(
                    f"Exercise {number}: wrong {key} ({where}) at row {i} (k = {K - i}), env "
                    f"{n}: got {g_val[i, n].reshape(-1)[:3].tolist()}, expected "
                    f"{w_val[i, n].reshape(-1)[:3].tolist()}")
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return augmented_step_reference
    print(PASSED.format(n=number))
    return fn


def _iqm_cases(seed: int = 0):
    """Final returns of n runs, in no particular order: n = 3 (nothing dropped: the mean),
    4 (the middle two), 8, 10 (floor(10/4) = 2 dropped at each end: the middle six), 101."""
    g = torch.Generator().manual_seed(seed)
    for n in (3, 4, 8, 10, 101):
        yield dict(values=(1000 * torch.randn(n, generator=g, dtype=torch.float64)).tolist())


def _iqm_mistakes(values: list[float]) -> dict[str, float]:
    """What common wrong answers return on `values`, named as the checker reports them."""
    raw = np.asarray(values, float)
    x, n = np.sort(raw), raw.size
    k = n // 4
    # the interpolating definition: sorted value i covers [i, i + 1) on the rank axis and is
    # weighted by its overlap with [n/4, 3n/4]
    w = np.clip(np.minimum(np.arange(1, n + 1), 0.75 * n) - np.maximum(np.arange(n), 0.25 * n),
                0, None)
    out = {"the plain mean (nothing dropped)": float(x.mean()),
           "the median": float(np.median(x)),
           "the trimmed mean of the values in their given order (sort them first)":
               float(raw[k:n - k].mean()),
           "the fractional-weight IQM (partial weights at the 25% and 75% points; drop whole "
           "values instead)": float((w * x).sum() / w.sum())}
    lo, hi = int(0.25 * n), int(0.75 * n)
    if hi > lo:
        out[f"the mean of x[int(0.25 n):int(0.75 n)] (n = {n}: drops {lo} at the bottom but "
            f"{n - hi} at the top)"] = float(x[lo:hi].mean())
    return out


def check_iqm(fn: Callable, number: str = "5.1") -> Callable:
    """Check `fn(values) -> float`, the interquartile mean (sort the n values, drop floor(n/4)
    at each end, average the rest: rliable's `metrics.aggregate_iqm`), against
    `damdp_lite.results.iqm` (notebook 05 exercise). A float or 0-d tensor is accepted. A wrong
    answer that is a known mistake (the mean, the median, unsorted values, the fractional-weight
    IQM, an asymmetric cut) is named in the `AssertionError`."""
    from .results import iqm  # lazy: results reads the training runner

    def reference(values):
        return torch.tensor(iqm(values), dtype=torch.float64)

    def diagnosed(values):
        got = fn(values)
        try:
            value = float(got) if getattr(got, "shape", ()) == () else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            return got  # `_check` reports what it got instead of a number
        want = iqm(values)
        if not np.isclose(value, want, rtol=1e-9, atol=1e-9):
            for name, wrong in _iqm_mistakes(values).items():
                if np.isclose(value, wrong, rtol=1e-9, atol=1e-9):
                    raise AssertionError(
                        f"Exercise {number}: wrong values for {len(values)} values: got "
                        f"{value:.6g}, which is {name}; expected {want:.6g} (sort, drop "
                        f"floor(n/4) = {len(values) // 4} values at each end, average the rest)")
        return got

    passed = _check(diagnosed, reference, _iqm_cases(), number, "one number",
                    lambda c: f"{len(c['values'])} values", tol=1e-9, kind="a number")
    return iqm if passed is reference else fn


def _reppo_actor_cases(seed: int = 0):
    """Per-state inputs `(B,)` with KL values on both sides of the bound."""
    g = torch.Generator().manual_seed(seed)
    for B, kl_bound in [(6, 0.04), (32, 0.1), (5, 1e-6)]:
        yield dict(ell_hat=torch.randn(B, generator=g, dtype=torch.float64),
                   q_hat=3 * torch.randn(B, generator=g, dtype=torch.float64),
                   kl=0.08 * torch.rand(B, generator=g, dtype=torch.float64),
                   temperature=torch.tensor(0.02 + torch.rand((), generator=g).item(),
                                            dtype=torch.float64),
                   lagrangian=torch.tensor(0.3, dtype=torch.float64), kl_bound=kl_bound)


def _value_and_gradients(loss_fn: Callable, number: str) -> Callable:
    """`case -> [loss, dL/d ell_hat, dL/d q_hat, dL/d kl, dL/dT, dL/d lambda]` of `loss_fn`:
    comparing these checks the stop-gradients as well as the value."""
    names = ("ell_hat", "q_hat", "kl", "temperature", "lagrangian")

    def wrapped(**case) -> torch.Tensor:
        inputs = {k: case[k].clone().requires_grad_(True) for k in names}
        loss = loss_fn(**inputs, kl_bound=case["kl_bound"])
        if not isinstance(loss, torch.Tensor) or loss.shape != ():
            shape = tuple(loss.shape) if hasattr(loss, "shape") else type(loss).__name__
            raise AssertionError(f"Exercise {number}: expected a 0-d tensor (the mean over "
                                 f"states), got {shape}")
        grads = torch.autograd.grad(loss, list(inputs.values()), allow_unused=True)
        return torch.cat([loss.detach().reshape(1), *(
            torch.zeros_like(x).reshape(-1) if gr is None else gr.reshape(-1)
            for x, gr in zip(inputs.values(), grads, strict=True))])
    return wrapped


def check_reppo_actor_loss(fn: Callable, number: str = "6.1") -> Callable:
    """Check `fn(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound) -> ()`, REPPO's actor
    loss with the trust-region switch, against `damdp_lite.algos.reppo.reppo_actor_loss`
    (method.md §5.1 step 4; notebook 06 exercise): the value and its gradient with respect to
    every input, so that the stop-gradients on T and lambda_KL are checked too."""
    from .algos.reppo import reppo_actor_loss  # lazy: the algos import the env stack

    reference = _value_and_gradients(reppo_actor_loss, number)
    passed = _check(_value_and_gradients(fn, number), reference, _reppo_actor_cases(), number,
                    "the loss, then its gradients w.r.t. ell_hat, q_hat, kl, T and lambda",
                    lambda c: f"{c['q_hat'].shape[0]} states, kl_bound={c['kl_bound']}",
                    tol=1e-9, kind="a vector", entry=_reppo_actor_entry)
    return reppo_actor_loss if passed is reference else fn


def _reppo_actor_entry(case: dict, i: int) -> str:
    """Name of entry `i` of `_value_and_gradients`' vector [L, dL/d ell_hat (B), dL/d q_hat (B),
    dL/d kl (B), dL/dT, dL/d lambda] for `case`, and what it should be."""
    B = case["q_hat"].shape[0]
    if i == 0:
        return ("the loss L: per state sg(T) ell_hat - q_hat where kl < kl_bound, else "
                "sg(lambda) kl; then the mean over the states")
    if i == 3 * B + 1:
        return "dL/dT, which must be 0: T is trained by its own loss only, use temperature.detach()"
    if i == 3 * B + 2:
        return ("dL/dlambda, which must be 0: lambda is trained by its own loss only, use "
                "lagrangian.detach()")
    name, j = ("ell_hat", "q_hat", "kl")[(i - 1) // B], (i - 1) % B
    inside = bool(case["kl"][j] < case["kl_bound"])
    should = {("ell_hat", True): "T / B", ("q_hat", True): "-1 / B", ("kl", True): "0",
              ("ell_hat", False): "0", ("q_hat", False): "0", ("kl", False): "lambda / B"}
    return (f"dL/d{name}[{j}]; state {j} is {'inside' if inside else 'outside'} the trust "
            f"region, so it should be {should[name, inside]} with B = {B}")


# ---------------------------------------------------------------------------------------------
# Notebook 02_maxent_rl_to_damdp (from MaxEnt RL to the diffusion-augmented MDP)
# ---------------------------------------------------------------------------------------------


def augmented_gae_reference(r_soft: torch.Tensor, value: torch.Tensor, next_value: torch.Tensor,
                            terminated: torch.Tensor, truncated: torch.Tensor, num_steps: int,
                            gamma_env: float, lambda_env: float) -> torch.Tensor:
    """GAE advantages `(S, N)` over augmented steps, discounted per augmented step:
    gamma_aug = gamma_env^(1/K), lambda_aug = lambda_env^(1/K) on every augmented step
    (`damdp.per_augmented_step`, `damdp.augmented_discounts`), then `damdp.gae`, the function
    DA-MDP PPO calls (gymnasium rule). Inputs `(S, N)` with S = L * K rows in rollout order."""
    from .damdp import gae, per_augmented_step

    gamma_aug = per_augmented_step(gamma_env, num_steps)
    lambda_aug = per_augmented_step(lambda_env, num_steps)
    return gae(r_soft, value, next_value, terminated, truncated, gamma_aug, lambda_aug)[0]


def _gae_variant(r_soft, value, next_value, terminated, truncated, gamma, lam,
                 cut_truncation=True, cut_termination=True, bootstrap_termination=False):
    """A reverse-loop GAE with one rule switchable, for naming common mistakes."""
    end = terminated if not bootstrap_termination else torch.zeros_like(terminated)
    delta = r_soft + gamma * (1 - end) * next_value - value
    adv, last = torch.zeros_like(value), torch.zeros_like(value[0])
    for t in reversed(range(value.shape[0])):
        cont = gamma * lam * torch.ones_like(last)
        if cut_termination:
            cont = cont * (1 - terminated[t])
        if cut_truncation:
            cont = cont * (1 - truncated[t])
        last = delta[t] + (cont * last if t < value.shape[0] - 1 else 0.0)
        adv[t] = last
    return adv


def _augmented_gae_mistakes(r_soft, value, next_value, terminated, truncated, num_steps,
                            gamma_env, lambda_env) -> dict[str, torch.Tensor]:
    """What common wrong answers return, named as the checker reports them."""
    K = num_steps
    g, lam = gamma_env ** (1 / K), lambda_env ** (1 / K)
    args = (r_soft, value, next_value, terminated, truncated)
    adv = _gae_variant(*args, g, lam)
    return {
        "gamma_env and lambda_env used on every augmented step (per augmented step use "
        "gamma_env^(1/K) and lambda_env^(1/K), so that K steps discount by gamma_env)":
            _gae_variant(*args, gamma_env, lambda_env),
        "lambda_env used on every augmented step (take its K-th root too)":
            _gae_variant(*args, g, lambda_env),
        "gamma_env used on every augmented step (take its K-th root: gamma_env^(1/K))":
            _gae_variant(*args, gamma_env, lam),
        "lambda left out of the recursion (A_t = delta_t + gamma lambda (...) A_{t+1})":
            _gae_variant(*args, g, 1.0),
        "V(s~') bootstrapped at a termination (multiply gamma V(s~') by 1 - terminated)":
            _gae_variant(*args, g, lam, bootstrap_termination=True),
        "the advantage carried back across a truncation (multiply the carried term by "
        "1 - truncated)": _gae_variant(*args, g, lam, cut_truncation=False),
        "the advantage carried back across a termination (multiply the carried term by "
        "1 - terminated)": _gae_variant(*args, g, lam, cut_termination=False),
        "the returns A + V, not the advantages A": adv + value,
    }


def _augmented_gae_cases(seed: int = 0):
    """Rollouts `(S, N)` in float64, S = L * K: dones only on k = 1 rows, one truncation and
    one termination before the last row, and none on env 0."""
    g = torch.Generator().manual_seed(seed)
    for L, K, N, gamma_env, lambda_env in [(5, 1, 3, 0.9, 0.8), (4, 4, 3, 0.99, 0.95),
                                           (3, 8, 2, 0.9, 0.7)]:
        S = L * K

        def rows(*shape):
            return torch.randn(*shape, generator=g, dtype=torch.float64)

        terminated = torch.zeros(S, N, dtype=torch.float64)
        truncated = torch.zeros(S, N, dtype=torch.float64)
        truncated[1 * K + K - 1, 1] = 1.0  # env step 1 of env 1 ends by truncation
        terminated[(L - 2) * K + K - 1, N - 1] = 1.0  # env step L-2 of the last env ends
        yield dict(r_soft=rows(S, N), value=3 * rows(S, N), next_value=3 * rows(S, N),
                   terminated=terminated, truncated=truncated, num_steps=K,
                   gamma_env=gamma_env, lambda_env=lambda_env)


def check_augmented_gae(fn: Callable, number: str = "2.1") -> Callable:
    """Check `fn(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
    lambda_env) -> (S, N)`, the GAE advantages over augmented steps with per-augmented-step
    discounts gamma_env^(1/K), lambda_env^(1/K), against `augmented_gae_reference` (which calls
    `damdp.gae`, as DA-MDP PPO does). A wrong answer names a known mistake, or else the first
    advantage entry (row, k, env) that differs."""

    def diagnosed(**case):
        got = fn(**case)
        want = augmented_gae_reference(**case)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return got  # `_check` reports the shape
        got64 = got.detach().to(torch.float64)
        if torch.allclose(got64, want, rtol=1e-5, atol=1e-5):
            return got
        K, N = case["num_steps"], want.shape[1]
        where = f"K = {K}, gamma_env = {case['gamma_env']}, lambda_env = {case['lambda_env']}"
        for name, wrong in _augmented_gae_mistakes(**case).items():
            if (torch.allclose(got64, wrong, rtol=1e-5, atol=1e-5)
                    and not torch.allclose(wrong, want, rtol=1e-5, atol=1e-5)):
                raise AssertionError(f"Exercise {number}: wrong advantages ({where}): {name}")
        t, n = divmod(int(((got64 - want).abs() > 1e-5 + 1e-5 * want.abs()).flatten()
                           .nonzero()[0]), N)
        done = ("terminated" if case["terminated"][t, n] else
                "truncated" if case["truncated"][t, n] else "no done")
        raise AssertionError(
            f"Exercise {number}: wrong advantage A at row {t} (env step {t // K}, k = "
            f"{K - t % K}, {done}), env {n} ({where}): got {got64[t, n].item():.6g}, "
            f"expected {want[t, n].item():.6g}")

    passed = _check(diagnosed, augmented_gae_reference, _augmented_gae_cases(), number,
                    "one advantage per augmented transition",
                    lambda c: f"K = {c['num_steps']}", tol=1e-5)
    return augmented_gae_reference if passed is augmented_gae_reference else fn


def ppo_actor_loss_reference(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                             noise_log_prob: torch.Tensor, adv_hat: torch.Tensor,
                             clip_coef: float, temperature: float) -> torch.Tensor:
    """DiffPPO's actor loss on a minibatch, `()`: the clipped surrogate of the per-step ratio
    w = exp(log q_theta - log q_old) plus the appendix-G `dest_loss`, with the package's
    `algos.ppo.policy_loss` and `algos.ppo.dest_loss`. Inputs `(B,)`."""
    from .algos.ppo import dest_loss, policy_loss  # lazy: the algos import the env stack

    ratio = torch.exp(new_log_prob - old_log_prob)
    pg_loss, active = policy_loss(ratio, adv_hat, clip_coef)
    return pg_loss + dest_loss(ratio, noise_log_prob, active, temperature)


def _actor_loss_mistakes() -> dict[str, Callable]:
    """Common wrong answers, as functions of the exercise's inputs, named as the checker says."""

    def loss(new, old, noise, adv, eps, T, *, detach_w=True, active_op="le", over="active",
             weight="w", sign=1.0, dest=True, surrogate="clip"):
        w = torch.exp(new - old)
        unclipped, clipped = w * adv, torch.clamp(w, 1 - eps, 1 + eps) * adv
        pg = {"clip": torch.min(unclipped, clipped), "max": torch.max(unclipped, clipped),
              "none": unclipped}[surrogate]
        active = unclipped <= clipped if active_op == "le" else unclipped < clipped
        wd = w.detach() if detach_w else w
        wt = {"w": wd, "one": torch.ones_like(wd)}[weight]
        mask = torch.ones_like(active) if over == "all_mean" else active
        count = active.sum().clamp(min=1) if over == "active" else torch.tensor(len(w))
        d = -(wt * mask * T * noise).sum() / count if dest else 0.0 * noise.sum()
        return -pg.mean() + sign * d

    return {
        "dest_loss is missing (add -mean over active samples of sg(w) T log pi_theta)":
            lambda *a: loss(*a, dest=False),
        "w is not detached in dest_loss (its weight is sg(w): dest_loss must not move "
        "log q_theta)": lambda *a: loss(*a, detach_w=False),
        "dest_loss is taken over all B samples (keep the active ones only, and average over "
        "them)": lambda *a: loss(*a, over="all_mean"),
        "dest_loss is divided by B (divide by the number of active samples)":
            lambda *a: loss(*a, over="active_over_B"),
        "dest_loss has the wrong sign (it is -mean_active[sg(w) T log pi_theta], added to the "
        "loss)": lambda *a: loss(*a, sign=-1.0),
        "dest_loss is weighted by 1 instead of sg(w)": lambda *a: loss(*a, weight="one"),
        "the active set uses < instead of <= (a sample with w inside [1 - eps, 1 + eps] ties "
        "and is active)": lambda *a: loss(*a, active_op="lt"),
        "the surrogate takes the max of the two branches (PPO takes the min)":
            lambda *a: loss(*a, surrogate="max"),
        "the surrogate is not clipped (use min(w A, clip(w, 1 - eps, 1 + eps) A))":
            lambda *a: loss(*a, surrogate="none"),
        "the surrogate has the wrong sign (L = -mean min(w A, clip(w, 1 - eps, 1 + eps) A) "
        "+ dest_loss is minimised)": lambda *a: -loss(*a, sign=-1.0),
        "the whole loss has the wrong sign (L is minimised, so the surrogate enters with a "
        "minus sign)": lambda *a: -loss(*a),
        "the ratio is inverted (w = q_theta / q_old = exp(log q_theta - log q_old))":
            lambda new, old, *rest: loss(-new, -old, *rest),
    }


def _actor_loss_value_and_gradients(loss_fn: Callable, number: str) -> Callable:
    """`case -> [L, dL/d log q_theta (B), dL/d log pi_theta (B)]` of `loss_fn`."""

    def wrapped(**case) -> torch.Tensor:
        new = case["new_log_prob"].clone().requires_grad_(True)
        noise = case["noise_log_prob"].clone().requires_grad_(True)
        out = loss_fn(new, case["old_log_prob"], noise, case["adv_hat"], case["clip_coef"],
                      case["temperature"])
        if not isinstance(out, torch.Tensor) or out.shape != ():
            shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
            raise AssertionError(f"Exercise {number}: expected a 0-d tensor (the loss L, a "
                                 f"mean over the minibatch), got {shape}")
        grads = torch.autograd.grad(out, [new, noise], allow_unused=True)
        return torch.cat([out.detach().reshape(1), *(
            torch.zeros_like(x) if gr is None else gr
            for x, gr in zip((new, noise), grads, strict=True))])
    return wrapped


def _actor_loss_cases(seed: int = 0):
    """Minibatches `(B,)` in float64 whose per-step ratios fall on both sides of the clip range."""
    g = torch.Generator().manual_seed(seed)
    for B, clip_coef, temperature in [(8, 0.2, 0.5), (32, 0.1, 1.3), (12, 0.2, 0.0)]:
        old = torch.randn(B, generator=g, dtype=torch.float64)
        adv = torch.randn(B, generator=g, dtype=torch.float64)
        yield dict(new_log_prob=old + 0.3 * torch.randn(B, generator=g, dtype=torch.float64),
                   old_log_prob=old,
                   noise_log_prob=2 * torch.randn(B, generator=g, dtype=torch.float64),
                   adv_hat=adv - adv.mean(), clip_coef=clip_coef, temperature=temperature)


def check_ppo_actor_loss(fn: Callable, number: str = "2.2") -> Callable:
    """Check `fn(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature)
    -> ()`, DiffPPO's clipped per-step surrogate plus `dest_loss`, against
    `ppo_actor_loss_reference`: the loss L and its gradients with respect to log q_theta
    (`new_log_prob`) and log pi_theta (`noise_log_prob`), so the stop-gradient on w and the
    active set are checked too. A wrong answer names a known mistake, or else the quantity
    (L, dL/d log q_theta or dL/d log pi_theta) and the sample that differ."""
    reference = _actor_loss_value_and_gradients(ppo_actor_loss_reference, number)
    learner = _actor_loss_value_and_gradients(fn, number)
    names = ("the loss L", "dL/d log q_theta (the gradient through w)",
             "dL/d log pi_theta (the gradient of dest_loss)")

    def close(a, b):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-7, atol=1e-9)

    def diagnosed(**case):
        got, want = learner(**case), reference(**case)
        if close(got.to(want.dtype), want):
            return got
        got = got.to(want.dtype)
        where = (f"B = {case['adv_hat'].shape[0]}, eps = {case['clip_coef']}, "
                 f"T = {case['temperature']}")
        for name, wrong_fn in _actor_loss_mistakes().items():
            wrong = _actor_loss_value_and_gradients(wrong_fn, number)(**case)
            if close(got, wrong) and not close(wrong, want):
                raise AssertionError(f"Exercise {number}: wrong loss ({where}): {name}")
        B = case["adv_hat"].shape[0]
        parts = [(names[0], got[:1], want[:1]), (names[1], got[1:B + 1], want[1:B + 1]),
                 (names[2], got[B + 1:], want[B + 1:])]
        for name, g_part, w_part in parts:
            if not torch.allclose(g_part, w_part, rtol=1e-7, atol=1e-9):
                i = int(((g_part - w_part).abs() > 1e-9 + 1e-7 * w_part.abs()).nonzero()[0])
                at = "" if name == names[0] else f" at sample {i}"
                raise AssertionError(
                    f"Exercise {number}: wrong value of {name}{at} ({where}): got "
                    f"{g_part[i].item():.6g}, expected {w_part[i].item():.6g}")
        return got

    passed = _check(diagnosed, reference, _actor_loss_cases(), number,
                    "the loss, then its gradients w.r.t. log q_theta and log pi_theta",
                    lambda c: f"B = {c['adv_hat'].shape[0]}", tol=1e-7, kind="a vector")
    return ppo_actor_loss_reference if passed is reference else fn


# ---------------------------------------------------------------------------------------------
# Notebook 07 (four gradient routes): the FPO-style ratio of two Monte Carlo ELBOs
# ---------------------------------------------------------------------------------------------


def _fpo_ratio_cases(seed: int = 0):
    """Draws `(M, B)` in float64: K = 1 with one draw, then several draws and steps; the new
    log-ratios near the old ones, so that every ratio stays well below the cap."""
    g = torch.Generator().manual_seed(seed)
    for M, B, K in [(1, 5, 1), (4, 6, 8), (16, 3, 4)]:
        ell_old = torch.randn(M, B, generator=g, dtype=torch.float64)
        yield dict(log_prior=-2.0 + torch.randn(M, B, generator=g, dtype=torch.float64),
                   ell_new=ell_old + 0.05 * torch.randn(M, B, generator=g, dtype=torch.float64),
                   ell_old=ell_old, num_steps=K)


def _fpo_ratio_value_and_gradients(fn: Callable, number: str) -> Callable:
    """`case -> [r_hat (B), d sum r_hat / d ell_new (M B), d sum r_hat / d ell_old (M B)]`."""

    def wrapped(**case) -> torch.Tensor:
        new = case["ell_new"].clone().requires_grad_(True)
        old = case["ell_old"].clone().requires_grad_(True)
        out = fn(case["log_prior"], new, old, case["num_steps"])
        M, B = new.shape
        if not isinstance(out, torch.Tensor) or out.shape != (B,):
            shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
            per_draw = " (one ratio per action: average the M draws inside the exp)" if (
                shape == (M, B)) else ""
            raise AssertionError(f"Exercise {number}: expected a tensor of shape ({B},), one "
                                 f"ratio per action, got {shape}{per_draw}")
        grads = (torch.autograd.grad(out.sum(), [new, old], allow_unused=True)
                 if out.requires_grad else (None, None))
        return torch.cat([out.detach().reshape(-1), *(
            torch.zeros_like(x).reshape(-1) if gr is None else gr.reshape(-1)
            for x, gr in zip((new, old), grads, strict=True))])
    return wrapped


def _fpo_ratio_mistakes() -> dict[str, Callable]:
    """Common wrong answers to exercise 7.1, `{what is wrong: fn(log_prior, new, old, K)}`."""
    def elbo(lp, ell, K):
        return (lp + K * ell).mean(0)

    return {
        "the factor K: one random step stands for all K steps, ELBO_hat = mean[log p_0 + K ell_k]":
            lambda lp, new, old, K: torch.exp((new - old.detach()).mean(0)),
        "the ratio is inverted: r_hat = exp(ELBO_hat_new - ELBO_hat_old) (FPO's exp(L_old - "
        "L_new) is written with losses, which are negative ELBOs)":
            lambda lp, new, old, K: torch.exp(elbo(lp, old.detach(), K) - elbo(lp, new, K)),
        "the M draws are summed; average them (ELBO_hat is a mean over the draws)":
            lambda lp, new, old, K: torch.exp(K * (new - old.detach()).sum(0)),
        "the mean is outside the exp: r_hat = exp(mean of the log-ratios), not the mean of "
        "per-draw ratios":
            lambda lp, new, old, K: torch.exp(K * (new - old.detach())).mean(0),
        "log p_0(a^K) is in one ELBO only; it is in both (and cancels)":
            lambda lp, new, old, K: torch.exp(elbo(lp, new, K) - (K * old.detach()).mean(0)),
        "the old ELBO is not detached: it is a constant (sg), so d r_hat / d ell_old must be 0":
            lambda lp, new, old, K: torch.exp(elbo(lp, new, K) - elbo(lp, old, K)),
        "the new ELBO is detached: the ratio must carry the gradient through ell_new":
            lambda lp, new, old, K: torch.exp(elbo(lp, new.detach(), K)
                                              - elbo(lp, old.detach(), K)),
        "the log-ratio is returned; return the ratio r_hat = exp(...)":
            lambda lp, new, old, K: elbo(lp, new, K) - elbo(lp, old.detach(), K),
    }


def check_fpo_ratio(fn: Callable, number: str = "7.1") -> Callable:
    """Check `fn(log_prior, ell_new, ell_old, num_steps) -> (B,)`, the FPO-style ratio
    r_hat = exp(ELBO_hat_new - sg(ELBO_hat_old)) with ELBO_hat = mean over M draws of
    log p_0(a^K) + K ell_k, against `damdp_lite.routes.fpo_ratio` (method.md §5.7, notebook 07):
    its values and its gradients w.r.t. ell_new and ell_old (which must be 0). A wrong answer
    that is a known mistake (K missing, the ratio inverted, the draws summed, the mean of
    per-draw ratios, the prior on one side, a missing or misplaced detach, no exp) is named in
    the `AssertionError`; otherwise the first entry that differs is shown."""
    from .routes import fpo_ratio  # lazy: routes imports this module

    reference = _fpo_ratio_value_and_gradients(fpo_ratio, number)
    learner = _fpo_ratio_value_and_gradients(fn, number)

    def close(a, b):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-7, atol=1e-9)

    def diagnosed(**case):
        got, want = learner(**case), reference(**case)
        if close(got.to(want.dtype), want):
            return got
        where = f"M = {case['ell_new'].shape[0]}, B = {case['ell_new'].shape[1]}, " \
                f"K = {case['num_steps']}"
        for name, wrong_fn in _fpo_ratio_mistakes().items():
            wrong = _fpo_ratio_value_and_gradients(wrong_fn, number)(**case)
            if close(got.to(want.dtype), wrong) and not close(wrong, want):
                raise AssertionError(f"Exercise {number}: wrong ratio ({where}): {name}")
        return got

    def entry(case: dict, i: int) -> str:
        M, B = case["ell_new"].shape
        if i < B:
            return f"r_hat of action {i}"
        part, j = divmod(i - B, M * B)
        m, b = divmod(j, B)
        return (f"d r_hat[{b}] / d ell_{'new' if part == 0 else 'old'}[{m}, {b}]"
                + ("" if part == 0 else ", which must be 0"))

    passed = _check(diagnosed, reference, _fpo_ratio_cases(), number,
                    "the B ratios, then their gradients w.r.t. ell_new and ell_old",
                    lambda c: f"M = {c['ell_new'].shape[0]}, K = {c['num_steps']}",
                    tol=1e-7, kind="a vector", entry=entry)
    return fpo_ratio if passed is reference else fn


# ---------------------------------------------------------------------------------------------
# Notebook 08 (sequential multimodality): which goals did the episodes reach?
# ---------------------------------------------------------------------------------------------

def goals_reached_reference(final_positions: torch.Tensor, goals: torch.Tensor,
                            threshold: float) -> tuple[int, torch.Tensor]:
    """(number of distinct goals reached, `(G,)` fraction of the E episodes ending at each goal)
    from the final positions `(E, 2)` and the goals `(G, 2)`: an episode reached goal g when it
    ended strictly within `threshold` of it (`metrics.goals_reached`, `MultiGoalEnv`)."""
    from .metrics import goals_reached

    count, fractions = goals_reached(final_positions, goals, threshold)
    return count, torch.as_tensor(fractions, dtype=torch.float64)


def _goals_cases(seed: int = 0):
    """Hand-made final positions: one episode at each goal; episodes on the goal radius (exactly
    1 from a goal: not reached, the env terminates at < 1), just inside it, and far from every
    goal; none reached; 60 random ends around the goals; three goals of another layout with
    threshold 0.5 (points 0.6 from a goal: reached under d^2 < threshold only)."""
    g4 = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]], dtype=torch.float64)
    yield dict(final_positions=g4.clone(), goals=g4, threshold=1.0)
    yield dict(final_positions=torch.tensor([[4.0, 0.0], [0.0, 4.05], [0.3, 4.2], [0.0, 0.0],
                                             [-0.5, -4.5], [2.0, 2.0]], dtype=torch.float64),
               goals=g4, threshold=1.0)
    yield dict(final_positions=torch.tensor([[0.0, 0.0], [2.5, 2.5], [-3.0, 1.0]],
                                            dtype=torch.float64), goals=g4, threshold=1.0)
    gen = torch.Generator().manual_seed(seed)
    which = torch.randint(0, 4, (60,), generator=gen)
    ends = g4[which] + 1.4 * torch.rand(60, 2, generator=gen, dtype=torch.float64) - 0.7
    yield dict(final_positions=ends, goals=g4, threshold=1.0)
    g3 = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    yield dict(final_positions=torch.tensor([[2.6, 2.0], [2.2, 2.1], [-2.0, 2.3], [0.0, -2.6],
                                             [0.0, 0.0]], dtype=torch.float64),
               goals=g3, threshold=0.5)


def _goals_mistakes(final_positions, goals, threshold) -> dict[str, tuple[int, torch.Tensor]]:
    """What common wrong answers return, `{what is wrong: (count, fractions)}`."""
    s, g = final_positions.double(), goals.double()
    d = torch.cdist(s, g)  # (E, G)
    E, G = d.shape
    nearest = d.argmin(-1)

    def answer(hit: torch.Tensor, denominator: float | None = None) -> tuple[int, torch.Tensor]:
        counts = torch.bincount(nearest[hit], minlength=G).double()
        frac = counts / (E if denominator is None else max(denominator, 1.0))
        return int((counts > 0).sum()), frac

    inside = d.min(-1).values < threshold
    counts = torch.bincount(nearest[inside], minlength=G).double()
    return {
        "the goal radius is strict: an episode ending exactly `threshold` from a goal did not "
        "reach it (the env terminates when the distance is < threshold)":
            answer(d.min(-1).values <= threshold),
        "compare the distance with the threshold, not the squared distance":
            answer((d**2).min(-1).values < threshold),
        "an episode ending far from every goal reached none: check the threshold before "
        "taking the nearest goal": answer(torch.ones(E, dtype=torch.bool)),
        "the fractions are over all E episodes, not over the episodes that reached a goal":
            answer(inside, float(inside.sum())),
        "the fractions are fractions of the E episodes, not counts of episodes":
            (int((counts > 0).sum()), counts),
        "the count is of distinct goals reached, not of episodes that reached one":
            (int(inside.sum()), counts / E),
    }


def check_goals_reached(fn: Callable, number: str = "8.1") -> Callable:
    """Check `fn(final_positions, goals, threshold) -> (count, fractions)` on hand-made final
    positions (`_goals_cases`): `count` the number of distinct goals at least one episode
    reached (an int or 0-d tensor), `fractions` `(G,)` the fraction of the E episodes that
    ended within `threshold` of each goal (`goals_reached_reference`). A wrong answer names
    the quantity (the count, or the fraction at goal g) and the known mistake, else the case.
    Prints one fixed line; returns `fn`, or the reference when `fn` raises
    `NotImplementedError`."""
    try:
        for case in _goals_cases():
            got = fn(**case)
            count, want = goals_reached_reference(**case)
            E, G = case["final_positions"].shape[0], case["goals"].shape[0]
            where = f"E = {E} episodes, G = {G} goals, threshold {case['threshold']:g}"
            if not isinstance(got, tuple | list) or len(got) != 2:
                raise AssertionError(f"Exercise {number}: expected a pair (count, fractions), "
                                     f"got {type(got).__name__}")
            g_count = torch.as_tensor(got[0])
            g_frac = torch.as_tensor(np.asarray(got[1], dtype=np.float64)
                                     if not isinstance(got[1], torch.Tensor) else got[1])
            if g_count.numel() != 1:
                raise AssertionError(f"Exercise {number}: count ({where}): expected one "
                                     f"number, got shape {tuple(g_count.shape)}")
            if g_frac.shape != want.shape:
                raise AssertionError(f"Exercise {number}: fractions ({where}): expected shape "
                                     f"{tuple(want.shape)} (one per goal), got "
                                     f"{tuple(g_frac.shape)}")
            g_frac = g_frac.to(torch.float64)
            frac_ok = torch.allclose(g_frac, want, rtol=1e-9, atol=1e-12)
            count_ok = float(g_count) == count
            if frac_ok and count_ok:
                continue
            for name, (w_count, w_frac) in _goals_mistakes(**case).items():
                same_as_wrong = float(g_count) == w_count and torch.allclose(
                    g_frac, w_frac, rtol=1e-9, atol=1e-12)
                right = w_count == count and torch.allclose(w_frac, want, rtol=1e-9, atol=1e-12)
                if same_as_wrong and not right:
                    what = "fractions" if not frac_ok else "count"
                    raise AssertionError(f"Exercise {number}: wrong {what} ({where}): {name}")
            if not count_ok:
                raise AssertionError(f"Exercise {number}: wrong count ({where}): got "
                                     f"{float(g_count):g} distinct goals reached, expected "
                                     f"{count}")
            i = int((~torch.isclose(g_frac, want, rtol=1e-9, atol=1e-12)).nonzero()[0])
            goal = tuple(round(float(x), 6) for x in case["goals"][i])
            raise AssertionError(f"Exercise {number}: wrong fractions ({where}): the fraction "
                                 f"of episodes at goal {i} {goal}: got {g_frac[i].item():.6g}, "
                                 f"expected {want[i].item():.6g}")
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return goals_reached_reference
    print(PASSED.format(n=number))
    return fn
