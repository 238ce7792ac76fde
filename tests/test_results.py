"""Curves, bootstrap CIs and IQM of the shipped-results reader (damdp_lite.results)."""

import numpy as np
import pytest

from damdp_lite.results import bootstrap_ci, final_returns, iqm, on_grid, training_curve


def test_iqm_matches_the_definition():
    assert iqm([1, 2, 3, 4]) == pytest.approx(2.5)  # middle two of four
    assert iqm(range(8)) == pytest.approx(np.mean([2, 3, 4, 5]))
    # n = 3: quartiles cut at 0.75 and 2.25 -> weights 0.25, 1, 0.25
    assert iqm([0, 10, 100]) == pytest.approx((0.25 * 0 + 10 + 0.25 * 100) / 1.5)
    assert iqm([5, 5, 5]) == 5


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=(3, 4)), rng.normal(size=(300, 4))
    for x in (few, many):
        mean, lo, hi = bootstrap_ci(x)
        assert np.allclose(mean, x.mean(0)) and np.all(lo <= mean) and np.all(mean <= hi)
    w_few = np.mean(np.subtract(*bootstrap_ci(few)[2:0:-1]))
    w_many = np.mean(np.subtract(*bootstrap_ci(many)[2:0:-1]))
    assert w_many < w_few
    # 95% CI of a mean of 300 N(0, 1) draws: half-width ~ 1.96 / sqrt(300) = 0.113
    assert w_many / 2 == pytest.approx(1.96 / np.sqrt(300), rel=0.15)


def test_curve_skips_blank_iterations_and_carries_forward():
    rows = [{"env_steps": s, "episode_return": r} for s, r in
            [(10, np.nan), (20, 1.0), (30, np.nan), (40, 3.0)]]
    steps, vals = training_curve(rows)
    assert steps.tolist() == [20, 40] and vals.tolist() == [1.0, 3.0]
    g = on_grid(steps, vals, np.array([10, 20, 35, 40, 50]))
    assert np.isnan(g[0]) and g[1:].tolist() == [1.0, 1.0, 3.0, 3.0]
    assert final_returns(rows, fraction=0.3).tolist() == [3.0]
