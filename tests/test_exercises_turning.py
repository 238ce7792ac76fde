"""Checker of notebook 04's exercise 4.1 (one env step as K augmented transitions): accepts the
reference, a written solution and the rows `collect_rollout` writes; names the quantity and the
mistake of broken variants; falls back when not attempted."""

import numpy as np
import pytest
import torch

from damdp_lite import exercises
from damdp_lite.damdp import collect_rollout, make_vector_env
from damdp_lite.presets import turning_config, turning_policy


def written_solution(obs, next_obs, latents, log_ratios, reward, terminated):
    """The notebook's solution, row by row (not the package's vectorised reference)."""
    K = log_ratios.shape[0]
    rows = {key: [] for key in exercises.AUGMENTED_STEP_KEYS}
    for k in range(K, 0, -1):  # rollout order: the first denoising step (k = K) first
        last = k == 1
        rows["k"].append(torch.full(reward.shape, k))
        rows["a_k"].append(latents[k])
        rows["a_prev"].append(latents[k - 1])
        rows["ell"].append(log_ratios[k - 1])
        rows["reward"].append(reward if last else torch.zeros_like(reward))
        rows["terminated"].append(terminated if last else torch.zeros_like(terminated))
        rows["next_obs"].append(next_obs if last else obs)
        rows["next_k"].append(torch.full(reward.shape, K if last else k - 1))
    return {key: torch.stack(v) for key, v in rows.items()}


def one_wrong(key, change):
    """The written solution with `out[key]` replaced by `change(out, case)`."""
    def fn(**case):
        out = written_solution(**case)
        out[key] = change(out, case)
        return out
    return fn


MISTAKES = {  # a broken answer -> what the checker must say about it
    "k counts up": (one_wrong("k", lambda o, c: o["k"].flip(0)),
                    r"wrong k .*k counts down along the rows"),
    "latents not flipped": (one_wrong("a_k", lambda o, c: c["latents"][:-1]),
                            r"wrong a_k .*latents\[k\] is a\^k"),
    "a_prev off by one": (one_wrong("a_prev", lambda o, c: o["a_k"]),
                          r"wrong a_prev .*off by one"),
    "ell not flipped": (one_wrong("ell", lambda o, c: c["log_ratios"]),
                        r"wrong ell .*log_ratios\[k - 1\] is ell_k"),
    "reward on every row": (one_wrong("reward", lambda o, c: c["reward"].expand_as(o["reward"])),
                            r"wrong reward .*on the k = 1 row only"),
    "reward on the first row": (one_wrong("reward", lambda o, c: o["reward"].flip(0)),
                                r"wrong reward .*belongs to the k = 1 row"),
    "terminated on every row": (
        one_wrong("terminated", lambda o, c: c["terminated"].expand_as(o["terminated"])),
        r"wrong terminated .*only where it steps"),
    "env state not frozen": (
        one_wrong("next_obs", lambda o, c: c["next_obs"].expand_as(o["next_obs"])),
        r"wrong next_obs .*frozen inside the chain"),
    "next_k = 0 after k = 1": (one_wrong("next_k", lambda o, c: o["k"] - 1),
                               r"wrong next_k .*fresh chain: next_k = K"),
}


def test_reference_and_written_solution_pass(capsys):
    ref = exercises.augmented_step_reference
    assert exercises.check_augmented_step(ref) is ref
    assert exercises.check_augmented_step(written_solution) is written_solution
    assert capsys.readouterr().out == "Exercise 4.1: all checks passed.\n" * 2


@pytest.mark.parametrize("name", MISTAKES)
def test_known_mistakes_are_named(name, capsys):
    broken, message = MISTAKES[name]
    with pytest.raises(AssertionError, match=r"Exercise 4\.1: " + message):
        exercises.check_augmented_step(broken)
    assert capsys.readouterr().out == ""


def test_other_wrong_values_name_the_quantity_row_k_and_env():
    broken = one_wrong("ell", lambda o, c: 2 * o["ell"])
    with pytest.raises(AssertionError, match=r"Exercise 4\.1: wrong ell \(K = 4, N = 5\) at row "
                                             r"0 \(k = 4\), env 0: got .* expected"):
        exercises.check_augmented_step(broken)


def test_wrong_shape_missing_key_and_wrong_type_are_named():
    one_row = one_wrong("reward", lambda o, c: o["reward"][-1])
    with pytest.raises(AssertionError, match=r"reward \(K = 4, N = 5\): expected shape \(4, 5\)"):
        exercises.check_augmented_step(one_row)
    with pytest.raises(AssertionError, match=r"the answer has no 'next_k'"):
        exercises.check_augmented_step(
            lambda **c: {k: v for k, v in written_solution(**c).items() if k != "next_k"})
    with pytest.raises(AssertionError, match=r"expected a dict with keys"):
        exercises.check_augmented_step(lambda **c: list(written_solution(**c).values()))


def test_falls_back_on_not_implemented(capsys):
    def stub(obs, next_obs, latents, log_ratios, reward, terminated):
        raise NotImplementedError("Exercise 4.1")

    assert exercises.check_augmented_step(stub) is exercises.augmented_step_reference
    assert capsys.readouterr().out == (
        "Exercise 4.1 not attempted; continuing with the reference implementation.\n")


def test_every_named_mistake_differs_from_the_answer_in_some_case():
    for key, named in exercises._augmented_step_mistakes(
            **next(exercises._augmented_step_cases())).items():
        want = exercises.augmented_step_reference(**next(exercises._augmented_step_cases()))[key]
        for name, wrong in named.items():
            assert not torch.equal(wrong.to(want.dtype), want), (key, name)


def test_the_reference_writes_the_rows_of_collect_rollout():
    """The exercise's layout is the package's: one env step of an untrained K = 8 turning
    policy, the chain sampled with the same generator seed as the rollout."""
    cfg = turning_config("diffppo", seed=0)
    policy = turning_policy(cfg)
    N = 6
    envs = make_vector_env(cfg.env_id, N)
    obs, _ = envs.reset(seed=3)
    ro, _ = collect_rollout(envs, policy, None, 1, obs, torch.Generator().manual_seed(5),
                            update_normalizers=False)
    envs.close()
    envs = make_vector_env(cfg.env_id, N)
    obs2, _ = envs.reset(seed=3)
    obs_t = torch.as_tensor(np.asarray(obs2, dtype=np.float32))
    chain = policy.sample_chain(obs_t, generator=torch.Generator().manual_seed(5))
    next_obs, reward, term, _, _ = envs.step(chain.action.numpy())
    envs.close()
    rows = exercises.augmented_step_reference(
        obs_t, torch.as_tensor(np.asarray(next_obs, dtype=np.float32)), chain.latents,
        chain.log_ratios, torch.as_tensor(reward, dtype=torch.float32),
        torch.as_tensor(term, dtype=torch.float32))
    for key in exercises.AUGMENTED_STEP_KEYS:
        assert torch.allclose(rows[key].to(torch.float64), getattr(ro, key).to(torch.float64),
                              atol=1e-6), key
