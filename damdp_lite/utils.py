"""Small shared helpers: seeding, the SMOKE switch, progress reports, input validation, running
normalisation."""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)


def seed_everything(seed: int) -> None:
    """Seed `random`, NumPy and torch (CPU and, when present, CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def smoke() -> bool:
    """True when the environment asks for a tiny CI-sized run (`DAMDP_SMOKE=1`)."""
    return os.environ.get("DAMDP_SMOKE", "0") == "1"


ProgressListener = Callable[[int, int, Mapping[str, object]], None]
"""`listener(done, total, row)`: `done` of `total` iterations finished, `row` their last log row."""

_listeners: list[ProgressListener] = []


@contextlib.contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """Within the block, every training loop (`train.train`, `bound.fit_sampler`) calls
    `listener(done, total, row)` after each iteration; this is how a widget's Train button
    shows progress without the notebook's `run` function knowing about it."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def report_progress(done: int, total: int, row: Mapping[str, object] | None = None) -> None:
    """Tell the active `progress_listener`s that `done` of `total` iterations are finished."""
    for listener in tuple(_listeners):
        listener(done, total, row or {})


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, detached) or an array-like as a NumPy array."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def check_choice(field: str, value: object, allowed: Iterable[object]) -> None:
    """Raise `ValueError` unless `value` is one of `allowed`, naming the field."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not allowed; expected one of {allowed}")


def check_positive(field: str, value: float) -> None:
    """Raise `ValueError` unless `value` is a finite number > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{field}={value!r} must be a finite number > 0")


def check_nonnegative(field: str, value: float) -> None:
    """Raise `ValueError` unless `value` is a finite number >= 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{field}={value!r} must be a finite number >= 0")


def check_int_at_least(field: str, value: int, low: int) -> None:
    """Raise `ValueError` unless `value` is an integer >= `low`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field}={value!r} must be an integer >= {low}")


def check_finite(name: str, value: torch.Tensor, iteration: int, where: str = "",
                 hint: str = "try a smaller lr") -> None:
    """The one NaN guard (learners, `fit_sampler`): `FloatingPointError` naming the loss, its
    value and the iteration, raised before the optimiser step that would spread it."""
    if not torch.isfinite(value):
        at = f" ({where})" if where else ""
        raise FloatingPointError(f"{name}={value.item()} at iteration {iteration}{at}; {hint}")


def available_memory() -> int | None:
    """Bytes of RAM available now (Linux `MemAvailable`), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(what: str, nbytes: int) -> None:
    """`ValueError` naming `what` (the fields that size it) when `nbytes` would not fit in the
    memory available now, before anything is allocated."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise ValueError(f"{what} needs about {nbytes / 2**30:.1f} GiB; {avail / 2**30:.1f} GiB "
                         f"are available")


def check_shape(field: str, x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """Raise `ValueError` unless `x.shape` matches `shape` (`None` = any size on that axis)."""
    ok = x.dim() == len(shape) and all(
        s is None or s == n for s, n in zip(shape, x.shape, strict=True))
    if not ok:
        want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{field} has shape {tuple(x.shape)}; expected {want}")


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, var); same shape as the broadcast inputs."""
    return -0.5 * (LOG_2PI + torch.log(var) + (x - mean) ** 2 / var)


def log_one_minus_tanh_sq(x: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(x)^2), exact and stable for any x.

    Identity: 1 - tanh^2 x = 4 / (e^x + e^-x)^2, so
    log(1 - tanh^2 x) = 2 (log 2 - x - softplus(-2x)). The naive `log1p(-tanh(x)**2)` is -inf in
    float32 once tanh(x) rounds to +-1 (|x| >~ 9). method.md §3.1.
    """
    return 2.0 * (math.log(2.0) - x - nn.functional.softplus(-2.0 * x))


class RunningNorm(nn.Module):
    """Running mean/variance normaliser, `(x - mean) / sqrt(var + eps)` (method.md §5.0).

    Used only on network inputs; kernel maths always uses raw values. Updated explicitly by
    the rollout code via `update`, frozen otherwise.
    """

    def __init__(self, dim: int, eps: float = 1e-2, init_var: float = 1.0) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.full((dim,), float(init_var)))
        self.register_buffer("count", torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / torch.sqrt(self.var + self.eps)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Parallel-variance update with a batch `x` of shape `(B, dim)`."""
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean)
        n = x.shape[0]
        if n == 0:
            return
        b_mean, b_var = x.mean(0), x.var(0, unbiased=False)
        if self.count.item() == 0:
            self.mean.copy_(b_mean)
            self.var.copy_(b_var)
            self.count.fill_(n)
            return
        tot = self.count + n
        delta = b_mean - self.mean
        self.mean.add_(delta * n / tot)
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / tot
        self.var.copy_(m2 / tot)
        self.count.copy_(tot)


def update_normalisers(modules, obs: torch.Tensor | None = None,
                       latent: torch.Tensor | None = None) -> None:
    """Update the running normalisers `obs_norm` / `latent_norm` of each module (a policy, a
    value net, a critic) with a batch of observations and / or latents; a module declares
    None (or lacks the attribute) where it has no such normaliser (method.md §5.0)."""
    for m in modules:
        for name, x in (("obs_norm", obs), ("latent_norm", latent)):
            norm = getattr(m, name, None)
            if x is not None and norm is not None:
                norm.update(x)
