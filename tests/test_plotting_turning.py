"""Data functions (`damdp_lite.metrics`) and figures of notebook 04 (turning double-well,
method.md §7.3, I7)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from damdp_lite import metrics, plotting
from damdp_lite.envs import TurningDoubleWellEnv


def sample_optimum(n: int, temperature: float, seed: int = 0) -> np.ndarray:
    """n samples of pi* = exp(r/T)/Z on [-1, 1] by inverse-CDF on a fine grid."""
    x = np.linspace(-1, 1, 400_001)
    w = np.exp(TurningDoubleWellEnv().reward_of_action(x) / temperature)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return np.interp(np.random.default_rng(seed).random(n), cdf, x)


def test_window_density_counts_a_box_window():
    a = np.array([[-0.52, -0.5, -0.46, 0.0, 0.049, 0.051, 0.5, 0.9]])
    d = metrics.window_density(a, (-0.5, 0.0, 0.5), half_width=0.05)
    np.testing.assert_allclose(d, [[3 / 8 / 0.1, 2 / 8 / 0.1, 1 / 8 / 0.1]])
    assert metrics.window_density(torch.zeros(3, 10), [0.0]).shape == (3, 1)
    with pytest.raises(ValueError, match="half_width"):
        metrics.window_density(a, [0.0], half_width=0.0)


def test_turning_state_stats_on_the_exact_optimum_i7():
    """The estimator on samples of pi* (T = 0.05): mass 0.5, valley ratio 0.0526 (the box
    window averages of pi*, by quadrature: 0.0857 / 1.6314), std 0.483."""
    n = 200_000
    a = np.stack([sample_optimum(n, 0.05, seed=s) for s in range(2)])
    st = metrics.turning_state_stats(a)
    se_mass = 0.5 / np.sqrt(n)
    np.testing.assert_allclose(st["mass_pos"], 0.5, atol=4 * se_mass)
    np.testing.assert_allclose(st["valley_ratio"], 0.0526, atol=0.006)
    np.testing.assert_allclose(st["dens_p05"], 1.631, atol=0.05)
    np.testing.assert_allclose(st["std"], 0.483, atol=0.005)
    assert st["bimodal"].all() and not st["one_sided"].any()


def test_turning_state_stats_flags():
    rng = np.random.default_rng(0)
    n = 20_000
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    bimodal = np.clip(0.5 * sign + 0.1 * rng.standard_normal(n), -1, 1)
    centred = np.clip(0.3 * rng.standard_normal(n), -1, 1)  # unimodal, mass 0.5 per side
    one_side = np.clip(0.5 + 0.03 * rng.standard_normal(n), -1, 1)  # DPPO-like collapse
    lopsided = np.clip(np.where(rng.random(n) < 0.8, 0.5, -0.5) + 0.1 * rng.standard_normal(n),
                       -1, 1)
    st = metrics.turning_state_stats(np.stack([bimodal, centred, one_side, lopsided]))
    assert st["bimodal"].tolist() == [True, False, False, False]
    assert st["one_sided"].tolist() == [False, False, True, False]
    assert st["valley_ratio"][1] > 1 and st["valley_ratio"][2] == np.inf
    assert abs(st["mass_pos"][1] - 0.5) < 0.02 and st["tv_mass"][2] == pytest.approx(0.5)
    assert st["mass_pos"][3] == pytest.approx(0.8, abs=0.02)
    assert st["std"][2] < 0.04 < 0.4 < st["std"][0]
    with pytest.raises(ValueError, match="expected \\(S, n\\)"):
        metrics.turning_state_stats(bimodal)


def test_state_histograms_rows_sum_to_n():
    a = np.array([[-1.0, -0.999, 0.0, 0.999, 1.0], [-2.0, 0.25, 0.25, 0.3, 3.0]])
    counts, edges = metrics.state_histograms(a, bins=4)
    np.testing.assert_array_equal(edges, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_array_equal(counts, [[2, 0, 1, 2], [1, 0, 3, 1]])
    assert counts.sum(1).tolist() == [5, 5]


def test_turning_figures_build():
    a = np.stack([sample_optimum(2_000, 0.05, seed=s) for s in range(8)])
    counts, edges = metrics.state_histograms(a)
    grid = np.linspace(-1, 1, 201)
    env = TurningDoubleWellEnv()
    fig = plotting.plot_state_histograms(
        {"DiffPPO": counts, "DPPO": counts}, edges,
        target=(grid, np.exp(env.optimal_log_density(grid, 0.05))),
        reward=(grid, env.reward_of_action(grid)))
    assert len(fig.axes) == 16
    plt.close(fig)
    ep = env.rollout_paths(lambda o: np.full((len(o), 1), 0.5), [0.0, 45.0], 10)
    fig = plotting.plot_turning_paths({"a": ep["positions"], "b": ep["positions"]})
    assert len(fig.axes) == 2
    plt.close(fig)
