"""Exercise checkers (style.md §5): each accepts the reference, rejects broken variants with an
`AssertionError`, and falls back to the reference, printing one fixed line, when the learner's
stub still raises `NotImplementedError`."""

import math
import re

import pytest
import torch

from damdp_lite import exercises
from damdp_lite.damdp import soft_reward_current
from damdp_lite.diffusion import noise_kernel_log_prob


def _gauss_log_prob(x, mean, var):
    return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)


# ----------------------------------------------------------------------------- check_noise_log_prob
def written_noise_log_prob(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    """An independent, correct solution (the notebook's), not the package function."""
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    var = (2 * eta).expand_as(mean)
    return _gauss_log_prob(a_k, mean, var).sum(-1)


def drift_always_at_a_prev(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    return written_noise_log_prob(a_k, a_prev, eta, prior_std, "conditioning")


def drift_swapped(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    other = "evaluated" if drift_at == "conditioning" else "conditioning"
    return written_noise_log_prob(a_k, a_prev, eta, prior_std, other)


def variance_eta(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    return _gauss_log_prob(a_k, mean, eta.expand_as(mean)).sum(-1)


def two_eta_as_std(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    return _gauss_log_prob(a_k, mean, ((2 * eta) ** 2).expand_as(mean)).sum(-1)


def no_drift(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    return _gauss_log_prob(a_k, a_prev, (2 * eta).expand_as(a_prev)).sum(-1)


def drift_sign_flipped(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev + eta * drift_arg / prior_std**2
    return _gauss_log_prob(a_k, mean, (2 * eta).expand_as(mean)).sum(-1)


def drift_over_sigma(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std
    return _gauss_log_prob(a_k, mean, (2 * eta).expand_as(mean)).sum(-1)


def latents_swapped(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    return written_noise_log_prob(a_prev, a_k, eta, prior_std, drift_at)


def no_normalising_constant(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    return (-0.5 * (a_k - mean) ** 2 / (2 * eta)).sum(-1)


def unknown_mistake(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    return written_noise_log_prob(a_k, a_prev, eta, prior_std, drift_at) + 0.1 * a_k.sum(-1)


def not_summed(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    drift_arg = a_prev if drift_at == "conditioning" else a_k
    mean = a_prev - eta * drift_arg / prior_std**2
    return _gauss_log_prob(a_k, mean, (2 * eta).expand_as(mean))


def stub_noise(a_k, a_prev, eta, prior_std, drift_at="conditioning"):
    raise NotImplementedError("Exercise 1.1: write the noising-kernel log-density")


@pytest.mark.parametrize("fn", [noise_kernel_log_prob, written_noise_log_prob])
def test_noise_checker_accepts_the_reference(fn, capsys):
    assert exercises.check_noise_log_prob(fn) is fn
    assert capsys.readouterr().out == "Exercise 1.1: all checks passed.\n"


@pytest.mark.parametrize("broken, named", [
    (drift_always_at_a_prev, "drift_at='evaluated', prior_std=3.0: check the drift's argument"),
    (drift_swapped, "drift_at='conditioning', prior_std=3.0: check the drift's argument"),
    (variance_eta, "check the variance: the kernel's variance is 2 eta, not eta"),
    (two_eta_as_std, "check the variance: 2 eta is the variance, not the standard deviation"),
    (no_drift, "check the mean: it is a^{k-1} - eta x / sigma_0^2; the prior's drift is missing"),
    (drift_sign_flipped, "check the drift's sign"),
    (drift_over_sigma, "check the drift's scale: divide by sigma_0^2"),
    (latents_swapped, "check which latent is random"),
    (no_normalising_constant, "check the normalising constant"),
])
def test_noise_checker_names_the_wrong_quantity(broken, named, capsys):
    with pytest.raises(AssertionError) as err:
        exercises.check_noise_log_prob(broken)
    assert str(err.value).startswith("Exercise 1.1: wrong log pi(a^k | a^(k-1)) for ")
    assert named in str(err.value), str(err.value)
    assert capsys.readouterr().out == ""


def test_noise_checker_reports_an_unknown_mistake_with_its_case():
    with pytest.raises(AssertionError, match=(
            r"Exercise 1.1: wrong values for log pi\(a\^k \| a\^\(k-1\)\) with "
            r"drift_at='conditioning', prior_std=3.0, eta shape \(1,\): ")):
        exercises.check_noise_log_prob(unknown_mistake)


def test_noise_checker_rejects_wrong_shape():
    with pytest.raises(AssertionError, match=(
            r"Exercise 1.1: expected a tensor of shape \(5,\) \(one log-density per batch row, "
            r"summed over the d action dimensions\), got torch.Size\(\[5, 1\]\)")):
        exercises.check_noise_log_prob(not_summed)


def test_noise_checker_falls_back_on_not_implemented(capsys):
    fn = exercises.check_noise_log_prob(stub_noise)
    assert fn is noise_kernel_log_prob
    assert capsys.readouterr().out == (
        "Exercise 1.1 not attempted; continuing with the reference implementation.\n")


def test_checker_number_is_used_in_messages(capsys):
    exercises.check_noise_log_prob(stub_noise, number="9.9")
    assert capsys.readouterr().out.startswith("Exercise 9.9 not attempted")


# ----------------------------------------------------------------------------- check_soft_reward
def written_soft_reward(reward, ell, temperature):
    return reward - temperature * ell


def entropy_sign_flipped(reward, ell, temperature):
    return reward + temperature * ell


def temperature_missing(reward, ell, temperature):
    return reward - ell


def divided_by_temperature(reward, ell, temperature):
    return reward / temperature - ell


def summed_over_envs(reward, ell, temperature):
    return (reward - temperature * ell).sum(-1)


def stub_soft(reward, ell, temperature):
    raise NotImplementedError("Exercise 3.1: write the soft reward")


@pytest.mark.parametrize("fn", [soft_reward_current, written_soft_reward])
def test_soft_reward_checker_accepts_the_reference(fn, capsys):
    assert exercises.check_soft_reward(fn) is fn
    assert capsys.readouterr().out == "Exercise 3.1: all checks passed.\n"


def entropy_on_k1_rows_only(reward, ell, temperature):
    return torch.where(reward != 0, reward - temperature * ell, torch.zeros_like(reward))


def reward_left_out(reward, ell, temperature):
    return -temperature * ell


def entropy_scaled(reward, ell, temperature):  # no known mistake: the entry is reported
    return reward - 1.1 * temperature * ell


@pytest.mark.parametrize("broken, message", [
    (entropy_sign_flipped, "the sign of the entropy term"),
    (temperature_missing, "the temperature"),
    (divided_by_temperature, "the scale"),
    (entropy_on_k1_rows_only, "which rows pay"),
    (reward_left_out, "the env reward")])
def test_soft_reward_checker_names_known_mistakes(broken, message, capsys):
    with pytest.raises(AssertionError, match=f"Exercise 3.1: wrong soft rewards for "
                                             f"temperature=0.25: check {message}"):
        exercises.check_soft_reward(broken)
    assert capsys.readouterr().out == ""


def test_soft_reward_checker_reports_other_wrong_values(capsys):
    with pytest.raises(AssertionError, match="Exercise 3.1: wrong values"):
        exercises.check_soft_reward(entropy_scaled)
    assert capsys.readouterr().out == ""


def test_soft_reward_checker_rejects_wrong_shape():
    with pytest.raises(AssertionError, match=r"Exercise 3.1: expected a tensor of shape"):
        exercises.check_soft_reward(summed_over_envs)


def test_soft_reward_checker_falls_back_on_not_implemented(capsys):
    fn = exercises.check_soft_reward(stub_soft)
    assert fn is soft_reward_current
    assert capsys.readouterr().out == (
        "Exercise 3.1 not attempted; continuing with the reference implementation.\n")


def test_soft_reward_cases_put_the_env_reward_on_k1_rows_only():
    for case in exercises._soft_reward_cases():
        S, N = case["reward"].shape
        assert case["ell"].shape == (S, N)
        # rows are k = K..1 per env step; only the last row of each env step may be non-zero
        nonzero_rows = (case["reward"] != 0).any(-1).nonzero().flatten().tolist()
        K = S // len(nonzero_rows) if nonzero_rows else S
        assert nonzero_rows == [i for i in range(S) if i % K == K - 1]


# ----------------------------------------------------------------------------- check_iqm (4.1)


def test_check_iqm_passes_a_correct_answer_and_rejects_a_mean_and_a_median(capsys):
    import numpy as np

    def sorted_iqm(values):  # the notebook's solution
        x = np.sort(np.asarray(values, float))
        k = len(x) // 4
        return float(x[k:len(x) - k].mean())

    assert exercises.check_iqm(sorted_iqm) is sorted_iqm
    assert capsys.readouterr().out.strip() == "Exercise 5.1: all checks passed."
    for wrong, name in [(lambda values: float(np.mean(values)), "the plain mean"),
                        (lambda values: float(np.median(values)), "the median")]:
        with pytest.raises(AssertionError, match=f"Exercise 5.1: wrong values .*{name}"):
            exercises.check_iqm(wrong)


def test_check_iqm_accepts_scipy_and_a_tensor_and_names_the_other_known_mistakes(capsys):
    import numpy as np
    from scipy.stats import trim_mean

    def fractional(values):  # the definition exercise 5.1 used before rliable's
        x = np.sort(np.asarray(values, float))
        n = len(x)
        w = np.clip(np.minimum(np.arange(1, n + 1), 0.75 * n)
                    - np.maximum(np.arange(n), 0.25 * n), 0, None)
        return float((w * x).sum() / w.sum())

    def unsorted(values):
        k = len(values) // 4
        return float(np.mean(values[k:len(values) - k]))

    def asymmetric(values):
        x, n = np.sort(values), len(values)
        return float(x[int(0.25 * n):int(0.75 * n)].mean())

    for right in (lambda values: trim_mean(values, 0.25),
                  lambda values: torch.tensor(trim_mean(values, 0.25))):
        assert exercises.check_iqm(right) is right
    for wrong, name in [(fractional, "the fractional-weight IQM"), (unsorted, "sort them first"),
                        (asymmetric, r"x\[int\(0.25 n\):int\(0.75 n\)\]")]:
        with pytest.raises(AssertionError, match=f"Exercise 5.1: wrong values .*{name}"):
            exercises.check_iqm(wrong)
    with pytest.raises(AssertionError, match="expected a number of shape"):
        exercises.check_iqm(lambda values: [0.0])
    capsys.readouterr()


def test_iqm_cases_tell_the_iqm_from_each_known_mistake():
    from damdp_lite.results import iqm

    for name in exercises._iqm_mistakes(list(range(10))):  # every mistake is caught by a case
        assert any(abs(exercises._iqm_mistakes(case["values"]).get(name, float("nan"))
                       - iqm(case["values"])) > 1e-6 for case in exercises._iqm_cases())


def test_check_iqm_falls_back_to_the_reference(capsys):
    from damdp_lite.results import iqm

    def stub(values):
        raise NotImplementedError

    fn = exercises.check_iqm(stub)
    assert capsys.readouterr().out == (
        "Exercise 5.1 not attempted; continuing with the reference implementation.\n")
    assert fn is iqm and fn([1.0, 2.0, 3.0, 4.0]) == 2.5


# ------------------------------------------------------------------ check_reppo_actor_loss (5.1)


def _actor_loss_answer(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):
    inside = kl.detach() < kl_bound
    return torch.where(inside, temperature.detach() * ell_hat - q_hat,
                       lagrangian.detach() * kl).mean()


def test_check_reppo_actor_loss_passes_a_correct_answer(capsys):
    assert exercises.check_reppo_actor_loss(_actor_loss_answer) is _actor_loss_answer
    assert capsys.readouterr().out.strip() == "Exercise 6.1: all checks passed."


def test_check_reppo_actor_loss_rejects_missing_stop_gradients_and_switch():
    def no_sg(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):  # T gets a gradient
        return torch.where(kl < kl_bound, temperature * ell_hat - q_hat, lagrangian * kl).mean()

    def no_switch(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):
        return (temperature.detach() * ell_hat - q_hat + lagrangian.detach() * kl).mean()

    def per_state(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):  # forgot the mean
        return torch.where(kl < kl_bound, temperature.detach() * ell_hat - q_hat,
                           lagrangian.detach() * kl)

    for wrong in (no_sg, no_switch):
        with pytest.raises(AssertionError, match="Exercise 6.1: wrong values"):
            exercises.check_reppo_actor_loss(wrong)
    with pytest.raises(AssertionError, match=r"Exercise 6.1: expected a 0-d tensor .* got \(6,\)"):
        exercises.check_reppo_actor_loss(per_state)


def test_check_reppo_actor_loss_shows_the_first_entry_that_differs():
    """The message names the failing quantity, its index, and what it got and expected."""
    def no_sg_t(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):  # value right, dL/dT not
        return torch.where(kl < kl_bound, temperature * ell_hat - q_hat,
                           lagrangian.detach() * kl).mean()

    def no_sg_lambda(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):
        return torch.where(kl < kl_bound, temperature.detach() * ell_hat - q_hat,
                           lagrangian * kl).mean()

    def kl_pushed_inside(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):
        inside = kl.detach() < kl_bound  # same value, but a gradient on kl inside the region
        loss = torch.where(inside, temperature.detach() * ell_hat - q_hat,
                           lagrangian.detach() * kl)
        return (loss + inside * (kl - kl.detach())).mean()

    def summed(ell_hat, q_hat, kl, temperature, lagrangian, kl_bound):  # sum, not mean
        return torch.where(kl.detach() < kl_bound, temperature.detach() * ell_hat - q_hat,
                           lagrangian.detach() * kl).sum()

    case = next(exercises._reppo_actor_cases())
    B = case["q_hat"].shape[0]
    want = exercises._value_and_gradients(_actor_loss_answer, "6.1")(**case)
    first_inside = int((case["kl"] < case["kl_bound"]).nonzero()[0])
    expected = {
        no_sg_t: rf"entry \[{3 * B + 1}\] \(dL/dT, which must be 0: .*detach\(\)\): got "
                 rf"-?[0-9.e-]+, expected 0$",
        no_sg_lambda: rf"entry \[{3 * B + 2}\] \(dL/dlambda, which must be 0: .*\): got "
                      rf"-?[0-9.e-]+, expected 0$",
        kl_pushed_inside: rf"entry \[{2 * B + 1 + first_inside}\] \(dL/dkl\[{first_inside}\]; "
                          rf"state {first_inside} is inside the trust region, so it should be "
                          rf"0 with B = {B}\): got {1 / B:.6g}, expected 0$",
        summed: rf"entry \[0\] \(the loss L: .*\): got {B * want[0].item():.6g}, "
                rf"expected {want[0].item():.6g}$",
    }
    for wrong, pattern in expected.items():
        with pytest.raises(AssertionError) as err:
            exercises.check_reppo_actor_loss(wrong)
        msg = str(err.value)
        assert msg.startswith(f"Exercise 6.1: wrong values for {B} states, "
                              f"kl_bound={case['kl_bound']}: first difference at "), msg
        assert re.search(pattern, msg), (wrong.__name__, msg)


def test_check_shows_the_index_of_the_first_entry_that_differs():
    """Any checker: the (row, column) of the first wrong entry of a 2-D answer, or "the value"
    of a 0-d one, with what it got and what was expected."""
    def reference(x):
        return 2 * x

    def one_wrong(x):
        out = 2 * x
        out[..., 1, 2] += 0.5
        return out

    def describe(case):
        return f"a {'x'.join(map(str, case['x'].shape)) or '0-d'} case"

    grid = [dict(x=torch.arange(12.0).reshape(3, 4))]
    with pytest.raises(AssertionError, match=r"^Exercise 9.9: wrong values for a 3x4 case: first "
                       r"difference at entry \[1, 2\]: got 12.5, expected 12$"):
        exercises._check(one_wrong, reference, grid, "9.9", "one number per entry", describe)
    with pytest.raises(AssertionError, match=r"^Exercise 9.9: wrong values for a 0-d case: first "
                       r"difference at the value: got 7, expected 6$"):
        exercises._check(lambda x: x + 4, reference, [dict(x=torch.tensor(3.0))], "9.9",
                         "one number", describe)


def test_check_reppo_actor_loss_falls_back_to_the_reference(capsys):
    from damdp_lite.algos.reppo import reppo_actor_loss

    def stub(**_):
        raise NotImplementedError

    assert exercises.check_reppo_actor_loss(stub) is reppo_actor_loss
    assert "6.1 not attempted" in capsys.readouterr().out
