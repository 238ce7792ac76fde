"""Shared fixtures: single-threaded, deterministic torch; small policy factories; the exact-resume
check of the learners (test_reppo.py, test_wpo.py, test_sac.py)."""

import os

import pytest
import torch
from hypothesis import settings
from torch import nn

from damdp_lite import DiffusionConfig, DiffusionPolicy

try:  # submitit's logger keeps the sys.stdout / sys.stderr of the moment it is imported:
    import submitit  # noqa: F401  here that is the session's streams, not a test's capture
except ImportError:  # pragma: no cover - a dependency
    pass

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
# CI replays the same hypothesis examples every run; locally they vary (and find new cases).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same torch RNG state: weights built inside a test are fixed."""
    torch.manual_seed(0)


def make_policy(**kw) -> DiffusionPolicy:
    """A state-free 1-D diffusion policy with a small control net (f ~ 0 at init)."""
    base = dict(obs_dim=0, action_dim=1, hidden_sizes=(16,))
    return DiffusionPolicy(DiffusionConfig(**{**base, **kw}))


def randomise_control(policy: DiffusionPolicy, seed: int = 0, scale: float = 0.5) -> None:
    """Give the control network non-trivial weights so that f_theta != 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.control_net.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))


class AffineControl(nn.Module):
    """f(a, s) = g + h a (method.md I5): makes a K = 1 chain an exactly Gaussian policy."""

    def __init__(self, g: float, h: float) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.tensor(float(g)))
        self.h = nn.Parameter(torch.tensor(float(h)))

    def forward(self, a_k, obs_n, a_n, k):
        return self.g + self.h * a_k


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def assert_resumes_exactly(learner_cls, cfg, iterations: int = 4) -> list[dict]:
    """Run `iterations` straight, and again with a save/load into a fresh learner halfway:
    the rows must be identical (nan == nan). Returns the straight run's rows."""
    a = learner_cls(cfg)
    rows_a = [a.train_iteration() for _ in range(iterations)]
    a.close()
    b = learner_cls(cfg)
    rows_b = [b.train_iteration() for _ in range(iterations // 2)]
    state = b.state_dict()
    b.close()
    c = learner_cls(cfg)
    c.load_state_dict(state)
    rows_b += [c.train_iteration() for _ in range(iterations - iterations // 2)]
    c.close()
    same = lambda x, y: x == y or (x != x and y != y)  # noqa: E731
    assert all(same(ra[key], rb[key]) for ra, rb in zip(rows_a, rows_b, strict=True)
               for key in ra)
    return rows_a
