"""Curves, bootstrap CIs and IQM of the shipped-results reader (damdp_lite.results), which are
rliable's statistics."""

import numpy as np
import pytest
from scipy.stats import trim_mean

from damdp_lite.results import (
    bootstrap_ci,
    final_returns,
    iqm,
    on_grid,
    seeded_bootstrap,
    training_curve,
)


def test_iqm_drops_a_quarter_of_whole_values_at_each_end_as_rliable_does():
    from rliable import metrics

    assert iqm([4, 1, 3, 2]) == pytest.approx(2.5)  # n = 4: the middle two, in any order
    assert iqm(range(8)) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert iqm(range(10)) == pytest.approx(np.mean([2, 3, 4, 5, 6, 7]))  # floor(10/4) = 2
    assert iqm([0, 10, 100]) == pytest.approx(110 / 3)  # n = 3: nothing dropped, the mean
    assert iqm([5, 5, 5]) == 5 and iqm([7.0]) == 7.0
    rng = np.random.default_rng(0)
    for n in (3, 5, 6, 7, 10, 101):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25))
        assert iqm(x) == pytest.approx(metrics.aggregate_iqm(x[:, None]))
    assert isinstance(iqm(x), float)
    with pytest.raises(ValueError, match="values is empty"):
        iqm([])


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=(3, 4)), rng.normal(size=(300, 4))
    for x in (few, many):
        mean, lo, hi = bootstrap_ci(x)
        assert mean.shape == lo.shape == hi.shape == (4,)
        assert np.allclose(mean, x.mean(0)) and np.all(lo <= mean) and np.all(mean <= hi)
    w_few = np.mean(np.subtract(*bootstrap_ci(few)[2:0:-1]))
    w_many = np.mean(np.subtract(*bootstrap_ci(many)[2:0:-1]))
    assert w_many < w_few
    # 95% CI of a mean of 300 N(0, 1) draws: half-width ~ 1.96 / sqrt(300) = 0.113
    assert w_many / 2 == pytest.approx(1.96 / np.sqrt(300), rel=0.15)
    # 3 seeds: each value is resampled three times with probability 1/27 > 2.5%: [min, max]
    assert np.allclose(bootstrap_ci(few)[1], few.min(0))
    assert np.allclose(bootstrap_ci(few)[2], few.max(0))


def test_bootstrap_ci_keeps_shapes_is_seeded_and_leaves_numpys_stream_alone():
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(5, 2, 3))
    mean, lo, hi = bootstrap_ci(curves, n_boot=300)
    assert mean.shape == lo.shape == hi.shape == (2, 3)
    m0, lo0, hi0 = bootstrap_ci(curves[:, 0, 0], n_boot=300)  # (n_seeds,): 0-d results
    assert np.shape(lo0) == () and float(lo0) <= float(m0) <= float(hi0)
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    again = bootstrap_ci(curves, n_boot=300, seed=7)
    assert np.random.rand() == expected  # the global generator continues where it was
    assert np.array_equal(again[1], bootstrap_ci(curves, n_boot=300, seed=7)[1])
    assert not np.array_equal(again[1], bootstrap_ci(curves, n_boot=300, seed=8)[1])
    curves[0, 0, 0] = np.nan  # a seed without a value at a point: that point's CI is nan
    _, lo, hi = bootstrap_ci(curves, n_boot=300)
    assert np.isnan(lo[0, 0]) and np.isfinite(lo[1:, :]).all() and np.isfinite(hi[0, 1:]).all()


def test_seeded_bootstrap_silences_arch_only_inside(recwarn):
    import warnings

    with seeded_bootstrap(0) as state:
        assert isinstance(state, np.random.RandomState)
        warnings.warn("random_state is deprecated", FutureWarning, stacklevel=1)
    assert not recwarn.list
    with pytest.warns(FutureWarning):
        warnings.warn("random_state is deprecated", FutureWarning, stacklevel=1)


def test_curve_skips_blank_iterations_and_carries_forward():
    rows = [{"env_steps": s, "episode_return": r} for s, r in
            [(10, np.nan), (20, 1.0), (30, np.nan), (40, 3.0)]]
    steps, vals = training_curve(rows)
    assert steps.tolist() == [20, 40] and vals.tolist() == [1.0, 3.0]
    g = on_grid(steps, vals, np.array([10, 20, 35, 40, 50]))
    assert np.isnan(g[0]) and g[1:].tolist() == [1.0, 1.0, 3.0, 3.0]
    assert final_returns(rows, fraction=0.3).tolist() == [3.0]


def test_summarise_scores_the_evaluations_when_asked(tmp_path):
    """`key="eval_return"`: the curve and the finals come from the evaluation column (the final
    evaluation is the run's score), not from the training returns."""
    from test_train import TURNING, tiny

    from damdp_lite.results import read_progress, summarise
    from damdp_lite.train import RunConfig, train

    for seed in (0, 1):
        train(tiny("ppo", env_id=TURNING, seed=seed, total_env_steps=16 * 6),
              RunConfig(run_dir=str(tmp_path / f"r{seed}"), eval_every=2, eval_episodes=2),
              progress=False)
    env = TURNING
    ev = summarise(env, ["ppo"], tmp_path, key="eval_return")["ppo"]
    last_eval = [training_curve(read_progress(tmp_path / f"r{s}" / "progress.csv"),
                                "eval_return")[1][-1] for s in (0, 1)]
    assert ev["final_per_seed"] == pytest.approx(last_eval) and ev["seeds"] == 2
    assert ev["mean"][-1] == pytest.approx(np.mean(last_eval))  # the curve ends at them


def test_final_fraction_zero_scores_the_last_value_alone():
    """A run that evaluates often has several evaluations in its last 10 %: `final_fraction=0`
    scores it by the final one, the default by their mean."""
    from damdp_lite.results import final_returns

    nan = np.nan
    rows = [{"env_steps": float(s), "eval_return": v}
            for s, v in zip(range(10, 110, 10), [0, nan, 1, 2, nan, 3, 4, 5, 7, 9], strict=True)]
    np.testing.assert_allclose(final_returns(rows, 0, "eval_return"), [9.0])
    np.testing.assert_allclose(final_returns(rows, 0.25, "eval_return"), [5.0, 7.0, 9.0])  # > 75
    np.testing.assert_allclose(final_returns(rows, key="eval_return"), [9.0])  # 10 %: steps > 90


def test_late_mean_averages_the_last_quarter_and_skips_blanks():
    from damdp_lite.results import late_mean

    rows = [{"kl": v} for v in [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 1.0, np.nan]]
    assert late_mean(rows, "kl") == 1.0  # rows 6-7: the blank one skipped
    assert late_mean(rows, "kl", fraction=0.5) == pytest.approx(67.0)  # 100, 100, 1
    assert np.isnan(late_mean(rows, "saturated"))  # a column the run does not log
    assert np.isnan(late_mean([{"kl": np.nan}] * 4, "kl"))
    assert late_mean(rows, "kl", fraction=0.5, statistic=np.median) == 100.0  # 100, 100, 1
    assert late_mean(rows, "kl", fraction=0.5, statistic=np.max) == 100.0


def test_ablation_table_lists_every_run_and_names_variants_without_one():
    from damdp_lite.results import ablation_table

    run = {"seed": 0, "evaluations": [[100, -5.0], [200, 12.4]], "saturated": 0.25}
    abl = {"variants": {"preset": {"change": {}, "description": "base", "runs": [run]},
                        "no_jacobian": {"change": {"tanh_jacobian": False}, "description": "d",
                                        "runs": []}}}
    lines = ablation_table(abl, [("saturated", "saturated", "9.2f")]).splitlines()
    assert lines[0] == "evaluations at env steps 100, 200 (the last is the final one)"
    assert lines[1].split() == ["variant", "seed", "evaluations", "saturated"]
    assert lines[2].split() == ["preset", "0", "-5,", "12", "0.25"]
    assert lines[3].split() == ["no_jacobian", "no", "run"]
    assert lines[5] == '  no_jacobian: {"tanh_jacobian": false}, d'


def test_ablation_paired_compares_each_variant_with_the_preset_run_of_its_seed():
    from damdp_lite.results import ablation_paired

    def runs(*finals):
        return [{"seed": s, "final_eval_return": f} for s, f in finals]

    abl = {"variants": {"preset": {"runs": runs((0, 100.0), (1, 300.0), (2, 50.0))},
                        "a": {"runs": runs((0, 80.0), (2, 90.0), (5, 1.0))},
                        "b": {"runs": runs((7, 1.0))},  # only a seed the preset lacks
                        "c": {"runs": []}}}
    out = ablation_paired(abl)
    assert set(out) == {"a", "b"}  # c has no run; the preset is not its own variant
    a = out["a"]
    assert a["seeds"] == [0, 2] and a["variant"] == [80.0, 90.0] and a["preset"] == [100.0, 50.0]
    assert a["variant_mean"] == 85.0 and a["preset_mean"] == 75.0  # the preset on seeds 0, 2
    assert a["mean_difference"] == 10.0 and a["below"] == 1
    assert a["unpaired"] == [5]  # not in the means, but named
    b = out["b"]
    assert b["seeds"] == [] and b["unpaired"] == [7] and b["below"] == 0
    assert b["variant_mean"] is None and b["mean_difference"] is None
