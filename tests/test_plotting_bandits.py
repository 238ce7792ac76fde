"""Data behind notebook 03's figures (style.md §4: test the data functions, not pixels)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from damdp_lite import FourModes2D  # noqa: E402
from damdp_lite.metrics import mode_mass_errors  # noqa: E402
from damdp_lite.plotting import plot_mode_masses, plot_traces  # noqa: E402


def test_mode_mass_errors_values():
    err = mode_mass_errors([0.3, 0.2, 0.1, 0.4], [0.25, 0.25, 0.25, 0.25])
    assert err["max_abs_dev"] == pytest.approx(0.15)
    assert err["tv"] == pytest.approx(0.5 * (0.05 + 0.05 + 0.15 + 0.15))
    same = mode_mass_errors(torch.tensor([0.5, 0.5]), np.array([0.5, 0.5]))
    assert same == {"max_abs_dev": 0.0, "tv": 0.0}


def test_mode_mass_errors_of_a_one_mode_policy_against_the_exact_masses():
    # a policy that covers only RD of the four-mode bandit: TV = 1 - exact mass of RD
    exact = FourModes2D(mode_rewards=(3.0, 0.0, 1.5, 5.0), sigma_r=0.1).softmax_masses(2.0)
    err = mode_mass_errors(torch.tensor([0.0, 0.0, 0.0, 1.0]), exact)
    assert err["tv"] == pytest.approx(1 - float(exact[3]))
    assert err["max_abs_dev"] == pytest.approx(1 - float(exact[3]))


def test_mode_mass_errors_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected two"):
        mode_mass_errors([0.5, 0.5], [1 / 3] * 3)


def test_bandit_figures_build():
    fig = plot_mode_masses({"diffusion": [0.24, 0.26, 0.25, 0.25], "gaussian": [0, 0, 0, 1]},
                           [0.25] * 4, ("LU", "LD", "RU", "RD"))
    assert len(fig.axes) == 1
    plt.close(fig)
    fig = plot_traces({"diffusion": ([0, 10, 20], [-5.0, -1.0, -0.5])}, {"T log Z": -0.0134},
                      ylabel="J_bound")
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)


def test_box_saturation_counts_edge_and_corner_mass():
    from damdp_lite.metrics import box_saturation

    a = torch.tensor([[0.0, 0.0], [0.995, 0.2], [-0.96, 0.97], [0.999, -0.999]])
    # edge: rows 1 and 3 (max |a_i| > 0.99); corners: rows 2 and 3 (min |a_i| > 0.95)
    assert box_saturation(a) == {"frac_edge": 0.5, "frac_corners": 0.5}
    w = torch.tensor([0.7, 0.1, 0.1, 0.1])  # a density on grid points instead of samples
    out = box_saturation(a, weights=w)
    assert np.isclose(out["frac_edge"], 0.2) and np.isclose(out["frac_corners"], 0.2)
    with pytest.raises(ValueError, match=r"actions has shape \(4,\); expected \(n, d\)"):
        box_saturation(a[:, 0])


def test_box_saturation_of_a_squashed_wide_gaussian_matches_its_normal_tails():
    """tanh(x), x ~ N(0, s^2 I): a coordinate lands beyond 0.99 when |x| > atanh(0.99)."""
    import math

    from damdp_lite.metrics import box_saturation

    s, n = 3.0, 400_000
    x = torch.tanh(s * torch.randn(n, 2, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64))
    one = math.erfc(math.atanh(0.99) / (s * math.sqrt(2)))  # P(|x_i| > atanh 0.99)
    both = math.erfc(math.atanh(0.95) / (s * math.sqrt(2))) ** 2
    out = box_saturation(x)
    assert abs(out["frac_edge"] - (1 - (1 - one) ** 2)) < 4e-3
    assert abs(out["frac_corners"] - both) < 4e-3
