"""Checker of notebook 03's exercise 3.1 (box-window density estimate): accepts the reference
and a correct learner version, rejects broken variants, falls back when not attempted."""

import numpy as np
import pytest

from damdp_lite import exercises
from damdp_lite.metrics import window_density


def torch_solution(actions, centres, half_width):
    inside = (actions[..., None] - centres).abs() < half_width  # (S, n, C)
    return inside.double().mean(dim=-2) / (2 * half_width)


def numpy_solution(actions, centres, half_width):
    a, c = np.asarray(actions), np.asarray(centres)
    return (np.abs(a[..., None] - c) < half_width).sum(-2) / (2 * half_width * a.shape[-1])


def half_window(actions, centres, half_width):  # divides by h instead of 2h
    return 2 * torch_solution(actions, centres, half_width)


def counts_not_normalised(actions, centres, half_width):  # a count, not a density
    return (actions[..., None] - centres).abs().lt(half_width).double().sum(-2)


def pooled_over_states(actions, centres, half_width):  # (C,) instead of (S, C)
    return torch_solution(actions.reshape(1, -1), centres, half_width)[0]


def stub(actions, centres, half_width):
    raise NotImplementedError("Exercise 3.1: write the box-window density estimate")


@pytest.mark.parametrize("fn", [torch_solution, numpy_solution, window_density])
def test_window_density_checker_accepts_correct_answers(fn, capsys):
    assert exercises.check_window_density(fn) is fn
    assert capsys.readouterr().out == "Exercise 3.1: all checks passed.\n"


@pytest.mark.parametrize("broken", [half_window, counts_not_normalised])
def test_window_density_checker_rejects_wrong_values(broken, capsys):
    with pytest.raises(AssertionError, match="Exercise 3.1: wrong values"):
        exercises.check_window_density(broken)
    assert capsys.readouterr().out == ""


def test_window_density_checker_rejects_wrong_shape():
    with pytest.raises(AssertionError, match=r"Exercise 3.1: expected an array of shape"):
        exercises.check_window_density(pooled_over_states)


def test_window_density_checker_falls_back_on_not_implemented(capsys):
    fn = exercises.check_window_density(stub)
    assert fn is window_density
    assert capsys.readouterr().out == (
        "Exercise 3.1 not attempted; continuing with the reference implementation.\n")


def test_window_density_cases_are_valid_and_tie_free():
    for case in exercises._window_density_cases():
        a, c, h = case["actions"], case["centres"], case["half_width"]
        assert a.dim() == 2 and c.dim() == 1 and h > 0 and a.abs().max() < 1
        # no sample on a window edge, so "<" and "<=" give the same answer
        assert ((a[..., None] - c).abs() - h).abs().min() > 1e-9
