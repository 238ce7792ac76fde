"""Checker of notebook 07's exercise 7.1 (the FPO-style ratio of two Monte Carlo ELBOs): accepts
the reference and written solutions; names each typical mistake; names the failing entry of
other wrong answers; falls back to the reference when not attempted."""

import pytest
import torch

from damdp_lite import exercises, routes


def written_solution(log_prior, ell_new, ell_old, num_steps):
    """The notebook's solution: log p_0 cancels, so only the log-ratios matter."""
    return torch.exp(num_steps * (ell_new - ell_old.detach()).mean(0))


def with_the_prior(log_prior, ell_new, ell_old, num_steps):
    """Also right: both ELBO estimates written out in full."""
    new = (log_prior + num_steps * ell_new).mean(0)
    old = (log_prior + num_steps * ell_old).mean(0).detach()
    return torch.exp(new - old)


MISTAKES = {  # a wrong answer -> what the checker must say about it
    "no K": (lambda lp, new, old, K: torch.exp((new - old.detach()).mean(0)),
             r"the factor K"),
    "inverted": (lambda lp, new, old, K: torch.exp(K * (old.detach() - new).mean(0)),
                 r"the ratio is inverted"),
    "summed draws": (lambda lp, new, old, K: torch.exp(K * (new - old.detach()).sum(0)),
                     r"the M draws are summed"),
    "mean of exp": (lambda lp, new, old, K: torch.exp(K * (new - old.detach())).mean(0),
                    r"the mean is outside the exp"),
    "prior on one side": (lambda lp, new, old, K: torch.exp((lp + K * new).mean(0)
                                                            - (K * old.detach()).mean(0)),
                          r"log p_0\(a\^K\) is in one ELBO only"),
    "old not detached": (lambda lp, new, old, K: torch.exp(K * (new - old).mean(0)),
                         r"the old ELBO is not detached"),
    "new detached": (lambda lp, new, old, K: torch.exp(K * (new - old).mean(0)).detach(),
                     r"the new ELBO is detached"),
    "no exp": (lambda lp, new, old, K: K * (new - old.detach()).mean(0),
               r"the log-ratio is returned"),
    "per-draw ratios": (lambda lp, new, old, K: torch.exp(K * (new - old.detach())),
                        r"shape \(5,\), one ratio per action, got \(1, 5\) \(one ratio per "
                        r"action: average the M draws inside the exp\)"),
}


def test_reference_and_written_solutions_pass(capsys):
    assert exercises.check_fpo_ratio(routes.fpo_ratio) is routes.fpo_ratio
    assert exercises.check_fpo_ratio(written_solution) is written_solution
    assert exercises.check_fpo_ratio(with_the_prior) is with_the_prior
    assert capsys.readouterr().out == "Exercise 7.1: all checks passed.\n" * 3


@pytest.mark.parametrize("name", MISTAKES)
def test_known_mistakes_are_named(name, capsys):
    broken, message = MISTAKES[name]
    with pytest.raises(AssertionError, match=r"Exercise 7\.1: .*" + message):
        exercises.check_fpo_ratio(broken)
    assert capsys.readouterr().out == ""


def test_other_wrong_values_name_the_entry():
    def off(lp, new, old, K):
        return 1.01 * written_solution(lp, new, old, K)

    with pytest.raises(AssertionError, match=r"Exercise 7\.1: wrong values for M = 1, K = 1: "
                                             r"first difference at entry \[0\] \(r_hat of "
                                             r"action 0\)"):
        exercises.check_fpo_ratio(off)


def test_not_attempted_falls_back_to_the_reference(capsys):
    def stub(log_prior, ell_new, ell_old, num_steps):
        raise NotImplementedError("Exercise 7.1: write the FPO-style ratio")

    assert exercises.check_fpo_ratio(stub) is routes.fpo_ratio
    assert capsys.readouterr().out == ("Exercise 7.1 not attempted; continuing with the "
                                       "reference implementation.\n")
