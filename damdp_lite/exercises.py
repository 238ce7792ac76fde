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
