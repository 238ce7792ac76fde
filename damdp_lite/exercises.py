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

import torch

from .damdp import soft_reward_current
from .diffusion import noise_kernel_log_prob

NOT_ATTEMPTED = "Exercise {n} not attempted; continuing with the reference implementation."
PASSED = "Exercise {n}: all checks passed."


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
    try:
        for case in _cases():
            got = fn(**case)
            want = noise_kernel_log_prob(**case)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = getattr(got, "shape", type(got).__name__)
                raise AssertionError(
                    f"Exercise {number}: expected a tensor of shape {tuple(want.shape)} "
                    f"(one log-density per batch row), got {shape}")
            if not torch.allclose(got, want, rtol=1e-5, atol=1e-5):
                raise AssertionError(
                    f"Exercise {number}: wrong values for drift_at={case['drift_at']!r}, "
                    f"prior_std={case['prior_std']}, eta shape {tuple(case['eta'].shape)}: "
                    f"got {got[:3].tolist()}, expected {want[:3].tolist()}")
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return noise_kernel_log_prob
    print(PASSED.format(n=number))
    return fn


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
    try:
        for case in _soft_reward_cases():
            got = fn(**case)
            want = soft_reward_current(**case)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = getattr(got, "shape", type(got).__name__)
                raise AssertionError(
                    f"Exercise {number}: expected a tensor of shape {tuple(want.shape)} "
                    f"(one soft reward per augmented transition), got {shape}")
            if not torch.allclose(got, want, rtol=1e-5, atol=1e-5):
                raise AssertionError(
                    f"Exercise {number}: wrong values for temperature={case['temperature']}, "
                    f"rollout shape {tuple(want.shape)}: got {got[:3, 0].tolist()}, "
                    f"expected {want[:3, 0].tolist()}")
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return soft_reward_current
    print(PASSED.format(n=number))
    return fn


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
    p_hat(c) = #{|a - c| < h} / (2 h n) per state, against `damdp_lite.plotting.window_density`
    (notebook 03 exercise; the estimator behind its bimodality test). A tensor or a NumPy array
    is accepted as the answer."""
    from .plotting import window_density  # lazy: matplotlib is only needed here

    try:
        for case in _window_density_cases():
            got = fn(**case)
            want = torch.as_tensor(window_density(**case))
            if type(got).__module__.startswith("numpy"):
                got = torch.as_tensor(got)
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                shape = getattr(got, "shape", type(got).__name__)
                raise AssertionError(
                    f"Exercise {number}: expected an array of shape {tuple(want.shape)} "
                    f"(one density per state and window centre), got {shape}")
            if not torch.allclose(got.double(), want, rtol=1e-6, atol=1e-6):
                raise AssertionError(
                    f"Exercise {number}: wrong values for half_width={case['half_width']}, "
                    f"centres {case['centres'].tolist()}: got {got[0].tolist()}, "
                    f"expected {want[0].tolist()} (first state)")
    except NotImplementedError:
        print(NOT_ATTEMPTED.format(n=number))
        return window_density
    print(PASSED.format(n=number))
    return fn
