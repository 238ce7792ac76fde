"""Checkers of notebook 02_maxent_rl_to_damdp's exercises: 2.1 (augmented GAE with per-augmented-
step discounting) and 2.2 (DiffPPO's clipped per-step loss with dest_loss). Each accepts the
reference and an independent correct answer, rejects wrong answers with a message naming the
failing quantity (or the known mistake), and falls back to the reference, printing one fixed line,
when the learner's stub raises NotImplementedError."""

from __future__ import annotations

import pytest
import torch

from damdp_lite import exercises
from damdp_lite.damdp import augmented_discounts, gae_loop, per_augmented_step


# ------------------------------------------------------------------ check_augmented_gae (2.1)
def written_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env, lambda_env):
    """The notebook's solution: a reverse loop, independent of damdp.gae's scan."""
    gamma, lam = gamma_env ** (1 / num_steps), lambda_env ** (1 / num_steps)
    delta = r_soft + gamma * (1 - terminated) * next_value - value
    adv = torch.zeros_like(value)
    for t in reversed(range(value.shape[0])):
        carry = 0.0 if t == value.shape[0] - 1 else (
            gamma * lam * (1 - terminated[t]) * (1 - truncated[t]) * adv[t + 1])
        adv[t] = delta[t] + carry
    return adv


def float32_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                lambda_env):
    """Correct, computed in float32 as a rollout's tensors are."""
    args = [x.float() for x in (r_soft, value, next_value, terminated, truncated)]
    return written_gae(*args, num_steps, gamma_env, lambda_env)


def package_loop_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                     lambda_env):
    """Correct, through the package's readable loop and its per-transition discounts."""
    k = torch.ones_like(value, dtype=torch.long)  # every step gets the same discount here
    return gae_loop(r_soft, value, next_value, terminated, truncated,
                    augmented_discounts(k, per_augmented_step(gamma_env, num_steps)),
                    augmented_discounts(k, per_augmented_step(lambda_env, num_steps)))[0]


def no_root(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env, lambda_env):
    return written_gae(r_soft, value, next_value, terminated, truncated, 1, gamma_env, lambda_env)


def gamma_only_at_k1(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                     lambda_env):
    """env_time_discounting: gamma_env and lambda_env at k = 1, 1 inside the chain."""
    S = value.shape[0]
    k = torch.arange(num_steps, 0, -1).repeat(S // num_steps)[:, None].expand_as(value)
    g = augmented_discounts(k, gamma_env, env_time_discounting=True)
    lam = augmented_discounts(k, lambda_env, env_time_discounting=True)
    return gae_loop(r_soft, value, next_value, terminated, truncated, g, lam)[0]


def truncation_ignored(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                       lambda_env):
    return written_gae(r_soft, value, next_value, terminated, torch.zeros_like(truncated),
                       num_steps, gamma_env, lambda_env)


def bootstraps_terminations(r_soft, value, next_value, terminated, truncated, num_steps,
                            gamma_env, lambda_env):
    """Termination treated as a truncation: stops the carry but keeps the bootstrap."""
    return written_gae(r_soft, value, next_value, torch.zeros_like(terminated),
                       ((truncated + terminated) > 0).to(value.dtype), num_steps, gamma_env,
                       lambda_env)


def returns_not_advantages(r_soft, value, next_value, terminated, truncated, num_steps,
                           gamma_env, lambda_env):
    return written_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                       lambda_env) + value


def off_by_a_little(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                    lambda_env):
    adv = written_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                      lambda_env)
    adv[3, 1] += 0.01  # one entry wrong, no known mistake
    return adv


def summed_over_envs(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                     lambda_env):
    return written_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env,
                       lambda_env).sum(-1)


def stub_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env, lambda_env):
    raise NotImplementedError("Exercise 2.1: write augmented GAE")


@pytest.mark.parametrize("fn", [exercises.augmented_gae_reference, written_gae, float32_gae,
                                package_loop_gae])
def test_gae_checker_accepts_correct_answers(fn, capsys):
    assert exercises.check_augmented_gae(fn) is fn
    assert capsys.readouterr().out == "Exercise 2.1: all checks passed.\n"


@pytest.mark.parametrize("broken, named", [
    (no_root, r"gamma_env and lambda_env used on every augmented step"),
    (truncation_ignored, "carried back across a truncation"),
    (bootstraps_terminations, r"V\(s~'\) bootstrapped at a termination"),
    (returns_not_advantages, r"the returns A \+ V, not the advantages A"),
])
def test_gae_checker_names_known_mistakes(broken, named, capsys):
    with pytest.raises(AssertionError, match=f"Exercise 2.1: wrong advantages .*{named}"):
        exercises.check_augmented_gae(broken)
    assert capsys.readouterr().out == ""


def test_gae_checker_names_the_entry_that_differs():
    # discounting only at k = 1 is a valid scheme (env_time_discounting), not this exercise's:
    # no known mistake matches it, so the checker points at the first advantage that differs
    with pytest.raises(AssertionError, match=r"Exercise 2.1: wrong advantage A at row \d+ "
                                             r"\(env step \d+, k = \d, .*\), env \d .*got .*"
                                             r"expected"):
        exercises.check_augmented_gae(gamma_only_at_k1)
    with pytest.raises(AssertionError, match=r"wrong advantage A at row 3 \(env step 3, k = 1, "
                                             r"no done\), env 1 \(K = 1,"):
        exercises.check_augmented_gae(off_by_a_little)


def test_gae_checker_rejects_a_wrong_shape():
    with pytest.raises(AssertionError, match=r"Exercise 2.1: expected a tensor of shape \(5, 3\) "
                                             r"\(one advantage per augmented transition\)"):
        exercises.check_augmented_gae(summed_over_envs)


def test_gae_checker_falls_back_on_not_implemented(capsys):
    fn = exercises.check_augmented_gae(stub_gae)
    assert fn is exercises.augmented_gae_reference
    assert capsys.readouterr().out == (
        "Exercise 2.1 not attempted; continuing with the reference implementation.\n")


def test_gae_cases_have_dones_on_k1_rows_only_and_every_mistake_is_caught():
    cases = list(exercises._augmented_gae_cases())
    for case in cases:
        K = case["num_steps"]
        for done in (case["terminated"], case["truncated"]):
            rows = done.nonzero()[:, 0]
            assert len(rows) and all(int(r) % K == K - 1 for r in rows)
            assert int(rows.max()) < done.shape[0] - 1  # before the last row: the carry matters
    for name in exercises._augmented_gae_mistakes(**cases[0]):
        assert any(not torch.allclose(exercises._augmented_gae_mistakes(**c)[name],
                                      exercises.augmented_gae_reference(**c), atol=1e-5)
                   for c in cases), name


# ------------------------------------------------------------------ check_ppo_actor_loss (2.2)
def written_loss(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    """The notebook's solution, independent of algos.ppo."""
    w = torch.exp(new_log_prob - old_log_prob)
    unclipped = w * adv_hat
    clipped = torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat
    active = unclipped <= clipped
    dest = -(w.detach() * active * temperature * noise_log_prob).sum() / active.sum().clamp(min=1)
    return -torch.min(unclipped, clipped).mean() + dest


def no_dest(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    w = torch.exp(new_log_prob - old_log_prob)
    return -torch.min(w * adv_hat, torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat).mean()


def w_not_detached(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    w = torch.exp(new_log_prob - old_log_prob)
    unclipped, clipped = w * adv_hat, torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat
    active = unclipped <= clipped
    dest = -(w * active * temperature * noise_log_prob).sum() / active.sum().clamp(min=1)
    return -torch.min(unclipped, clipped).mean() + dest


def strict_active(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    w = torch.exp(new_log_prob - old_log_prob)
    unclipped, clipped = w * adv_hat, torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat
    active = unclipped < clipped
    dest = -(w.detach() * active * temperature * noise_log_prob).sum() / active.sum().clamp(min=1)
    return -torch.min(unclipped, clipped).mean() + dest


def dest_over_all(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    w = torch.exp(new_log_prob - old_log_prob)
    unclipped, clipped = w * adv_hat, torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat
    active = unclipped <= clipped
    dest = -(w.detach() * active * temperature * noise_log_prob).mean()
    return -torch.min(unclipped, clipped).mean() + dest


def dest_scaled_twice(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef,
                      temperature):
    """Not a named mistake: T applied twice."""
    return written_loss(new_log_prob, old_log_prob, temperature * noise_log_prob, adv_hat,
                        clip_coef, temperature)


def per_sample(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    w = torch.exp(new_log_prob - old_log_prob)
    return -torch.min(w * adv_hat, torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat)


def stub_loss(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    raise NotImplementedError("Exercise 2.2: write the clipped per-step PPO loss with dest_loss")


@pytest.mark.parametrize("fn", [exercises.ppo_actor_loss_reference, written_loss])
def test_loss_checker_accepts_correct_answers(fn, capsys):
    assert exercises.check_ppo_actor_loss(fn) is fn
    assert capsys.readouterr().out == "Exercise 2.2: all checks passed.\n"


@pytest.mark.parametrize("broken, named", [
    (no_dest, "dest_loss is missing"),
    (w_not_detached, "w is not detached in dest_loss"),
    (strict_active, "the active set uses < instead of <="),
    (dest_over_all, "dest_loss is divided by B"),
])
def test_loss_checker_names_known_mistakes(broken, named, capsys):
    with pytest.raises(AssertionError, match=f"Exercise 2.2: wrong loss .*: {named}"):
        exercises.check_ppo_actor_loss(broken)
    assert capsys.readouterr().out == ""


def test_every_named_loss_mistake_is_caught_by_name():
    for name, wrong in exercises._actor_loss_mistakes().items():
        with pytest.raises(AssertionError) as err:
            exercises.check_ppo_actor_loss(wrong)
        assert name in str(err.value), (name, str(err.value))


def test_loss_checker_names_the_failing_quantity_otherwise():
    with pytest.raises(AssertionError, match=r"Exercise 2.2: wrong value of the loss L \(B = 8, "
                                             r"eps = 0.2, T = 0.5\): got .* expected"):
        exercises.check_ppo_actor_loss(dest_scaled_twice)

    def grad_only_wrong(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef,
                        temperature):  # right value, dest gradient doubled
        extra = noise_log_prob - noise_log_prob.detach()
        return written_loss(new_log_prob, old_log_prob, noise_log_prob + extra, adv_hat,
                            clip_coef, temperature)

    with pytest.raises(AssertionError, match=r"wrong value of dL/d log pi_theta \(the gradient of "
                                             r"dest_loss\) at sample \d+"):
        exercises.check_ppo_actor_loss(grad_only_wrong)


def test_loss_checker_rejects_a_per_sample_loss():
    with pytest.raises(AssertionError, match=r"Exercise 2.2: expected a 0-d tensor \(the loss L, "
                                             r"a mean over the minibatch\), got \(8,\)"):
        exercises.check_ppo_actor_loss(per_sample)


def test_loss_checker_falls_back_on_not_implemented(capsys):
    fn = exercises.check_ppo_actor_loss(stub_loss)
    assert fn is exercises.ppo_actor_loss_reference
    assert capsys.readouterr().out == (
        "Exercise 2.2 not attempted; continuing with the reference implementation.\n")


def test_loss_reference_is_the_package_ppo_loss():
    """ppo_actor_loss_reference = ppo_loss's policy_loss + dest_loss on a real policy."""
    import damdp_lite as dl
    from damdp_lite.algos.ppo import ValueNetwork, actor_advantage, ppo_loss

    torch.manual_seed(0)
    policy = dl.DiffusionPolicy(dl.DiffusionConfig(obs_dim=3, action_dim=2, num_steps=4,
                                                   hidden_sizes=(16,), output_init_scale=1.0))
    B = 64
    g = torch.Generator().manual_seed(1)
    obs, a_k = torch.randn(B, 3, generator=g), 3 * torch.randn(B, 2, generator=g)
    k = torch.randint(1, 5, (B,), generator=g)
    with torch.no_grad():
        a_prev, _ = policy.step(obs, a_k, k, generator=g)
        old = policy.denoise_log_prob(obs, a_k, k, a_prev) + 0.3 * torch.randn(B, generator=g)
    mb = dict(obs=obs, a_k=a_k, k=k, a_prev=a_prev, log_prob=old,
              advantages=torch.randn(B, generator=g), returns=torch.randn(B, generator=g),
              r_soft=torch.randn(B, generator=g), reward=torch.randn(B, generator=g))
    _, stats = ppo_loss(policy, ValueNetwork(3, 2, (16,)), mb, 0.2, 0.7, 0.5)
    new = policy.denoise_log_prob(obs, a_k, k, a_prev)
    noise = policy.noise_log_prob(obs, a_k, k, a_prev)
    adv_hat = actor_advantage(mb["advantages"], mb["r_soft"], mb["reward"], new - noise, 0.7)
    ours = exercises.ppo_actor_loss_reference(new, old, noise, adv_hat, 0.2, 0.7)
    assert torch.allclose(ours, stats["policy_loss"] + stats["dest_loss"], atol=1e-6)
    assert stats["dest_loss"].abs() > 1e-4  # the case exercises dest_loss
