"""damdp_lite: Diffusion-Augmented MDPs for Maximum Entropy RL, in readable PyTorch.

Public API: chain policies (`DiffusionPolicy`, `GaussianPolicy`, behind the `ChainPolicy`
protocol), their configs, targets with exact log Z, and the reverse-KL bound. The algorithms are
in `damdp_lite.algos` (one file each, registered by name), the one training loop is
`damdp_lite.train.train`, the policy factory `damdp_lite.policies`, the toy presets
`damdp_lite.presets`, and the shipped results `damdp_lite.results.shipped`.

Importing the package first checks that torch is at least `MIN_TORCH` and that pip replaced no
package this process had already imported (`_import_checks`); either fails with one line.
"""

from ._import_checks import MIN_TORCH
from .bound import (
    BoundEstimate,
    best_gaussian_1d,
    bound_loss,
    entropy_lower_bound,
    estimate_bound,
    exact_marginal_kl_1d,
    fit_sampler,
    histogram_kl,
    marginal_density_1d,
)
from .chain import ChainPolicy, ChainSample, gaussian_kl, step_kl
from .diffusion import DiffusionConfig, DiffusionPolicy, denoise_kl, step_size_schedule
from .gaussian import GaussianConfig, GaussianPolicy
from .targets import DoubleWell1D, FourModes2D, GaussianMixture2D, Target, make_target
from .utils import seed_everything, smoke

__version__ = "0.1.0"

__all__ = [
    "MIN_TORCH", "BoundEstimate", "ChainPolicy", "ChainSample", "DiffusionConfig",
    "DiffusionPolicy", "DoubleWell1D", "FourModes2D", "GaussianConfig", "GaussianMixture2D",
    "GaussianPolicy", "Target", "best_gaussian_1d", "bound_loss", "denoise_kl",
    "entropy_lower_bound", "estimate_bound", "exact_marginal_kl_1d", "fit_sampler",
    "gaussian_kl", "histogram_kl", "make_target", "marginal_density_1d", "seed_everything",
    "smoke", "step_kl", "step_size_schedule",
]
