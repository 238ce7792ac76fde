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
from .metrics import window_density

NOT_ATTEMPTED = "Exercise {n} not attempted; continuing with the reference implementation."
PASSED = "Exercise {n}: all checks passed."


def _check(fn: Callable, reference: Callable, cases, number: str, what: str,
           describe: Callable[[dict], str], tol: float = 1e-5, kind: str = "a tensor"
           ) -> Callable:
    """The loop every checker shares: compare `fn(**case)` with `reference(**case)` on each case.

    `what` says what one entry of the answer is; `describe(case)` names a failing case. Prints
    one fixed line and returns `fn` when all pass, or `reference` when `fn` raises
    `NotImplementedError`; raises `AssertionError` on the first wrong shape or value.
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
                raise AssertionError(
                    f"Exercise {number}: wrong values for {describe(case)}: got "
                    f"{got.reshape(-1)[:3].tolist()}, expected {want.reshape(-1)[:3].tolist()}")
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


def check_noise_log_prob(fn: Callable, number: str = "1.1") -> Callable:
    """Check `fn(a_k, a_prev, eta, prior_std, drift_at) -> (B,)` against
    `damdp_lite.diffusion.noise_kernel_log_prob` (method.md §3, notebook 01 exercise)."""
    return _check(fn, noise_kernel_log_prob, _cases(), number,
                  "one log-density per batch row",
                  lambda c: f"drift_at={c['drift_at']!r}, prior_std={c['prior_std']}, "
                            f"eta shape {tuple(c['eta'].shape)}")


def _soft_reward_cases(seed: int = 0):
    """Rollout-shaped inputs `(S, N)` with S = L * K rows: R~ non-zero only on the k = 1 rows."""
    g = torch.Generator().manual_seed(seed)
    for L, K, N in [(1, 1, 5), (3, 4, 2), (2, 8, 3)]:
        k = torch.arange(K, 0, -1).repeat(L)[:, None].expand(L * K, N)  # (S, N)
        reward = torch.where(k == 1, torch.randn(L * K, N, generator=g), torch.zeros(()))
        ell = 2 * torch.randn(L * K, N, generator=g)
        for temperature in (0.25, 2.0):
            yield dict(reward=reward, ell=ell, temperature=temperature)


def check_soft_reward(fn: Callable, number: str = "2.1") -> Callable:
    """Check `fn(reward, ell, temperature) -> (S, N)` against
    `damdp_lite.damdp.soft_reward_current`, the PPO soft reward r_soft = R~ - T ell_k
    (method.md §4.4, notebook 02 exercise)."""
    return _check(fn, soft_reward_current, _soft_reward_cases(), number,
                  "one soft reward per augmented transition",
                  lambda c: f"temperature={c['temperature']}, rollout shape "
                            f"{tuple(c['reward'].shape)}")


def _window_density_cases(seed: int = 0):
    """Per-state action samples `(S, n)` in (-1, 1), window centres `(C,)` and half-widths."""
    g = torch.Generator().manual_seed(seed)
    for S, n in [(1, 50), (8, 400), (3, 1000)]:
        actions = torch.tanh(torch.randn(S, n, generator=g, dtype=torch.float64))
        for centres, half_width in [((0.0, -0.5, 0.5), 0.05), ((0.0,), 0.2),
                                    ((-0.9, 0.1, 0.3, 0.7), 0.1)]:
            yield dict(actions=actions, centres=torch.tensor(centres, dtype=torch.float64),
                       half_width=half_width)


def check_window_density(fn: Callable, number: str = "3.1") -> Callable:
    """Check `fn(actions, centres, half_width) -> (S, C)`, the box-window density estimate
    p_hat(c) = #{|a - c| < h} / (2 h n) per state, against `damdp_lite.metrics.window_density`
    (notebook 03 exercise; the estimator behind its bimodality test). A tensor or a NumPy array
    is accepted as the answer."""

    return _check(fn, window_density, _window_density_cases(), number,
                  "one density per state and window centre",
                  lambda c: f"half_width={c['half_width']}, centres {c['centres'].tolist()}",
                  tol=1e-6, kind="an array")


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


def check_iqm(fn: Callable, number: str = "4.1") -> Callable:
    """Check `fn(values) -> float`, the interquartile mean (sort the n values, drop floor(n/4)
    at each end, average the rest: rliable's `metrics.aggregate_iqm`), against
    `damdp_lite.results.iqm` (notebook 04 exercise). A float or 0-d tensor is accepted. A wrong
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


def check_reppo_actor_loss(fn: Callable, number: str = "5.1") -> Callable:
    """Check `fn(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound) -> ()`, REPPO's actor
    loss with the trust-region switch, against `damdp_lite.algos.reppo.reppo_actor_loss`
    (method.md §5.1 step 4; notebook 05 exercise): the value and its gradient with respect to
    every input, so that the stop-gradients on T and lambda_KL are checked too."""
    from .algos.reppo import reppo_actor_loss  # lazy: the algos import the env stack

    reference = _value_and_gradients(reppo_actor_loss, number)
    passed = _check(_value_and_gradients(fn, number), reference, _reppo_actor_cases(), number,
                    "the loss, then its gradients w.r.t. ell_hat, q_hat, kl, T and lambda",
                    lambda c: f"{c['q_hat'].shape[0]} states, kl_bound={c['kl_bound']}",
                    tol=1e-9, kind="a vector")
    return reppo_actor_loss if passed is reference else fn
