"""Checker of notebook 08's exercise 8.1 (which goals the episodes reached): accepts the
reference and a written solution; names the quantity and the mistake of broken variants; falls
back when not attempted."""

import numpy as np
import pytest
import torch

from damdp_lite import exercises, metrics
from damdp_lite.envs import MultiGoalEnv


def written_solution(final_positions, goals, threshold):
    """The notebook's solution, episode by episode (not the package's vectorised reference)."""
    fractions = torch.zeros(goals.shape[0], dtype=torch.float64)
    for s in final_positions:
        d = torch.linalg.norm(goals - s, dim=1)  # (G,)
        if d.min() < threshold:
            fractions[d.argmin()] += 1.0 / final_positions.shape[0]
    return int((fractions > 0).sum()), fractions


def test_reference_and_written_solution_pass(capsys):
    assert exercises.check_goals_reached(exercises.goals_reached_reference) \
        is exercises.goals_reached_reference
    assert capsys.readouterr().out == "Exercise 8.1: all checks passed.\n"
    assert exercises.check_goals_reached(written_solution) is written_solution


def test_numpy_answers_pass(capsys):
    def numpy_answer(final_positions, goals, threshold):
        count, frac = metrics.goals_reached(final_positions.numpy(), goals.numpy(), threshold)
        return np.int64(count), frac

    exercises.check_goals_reached(numpy_answer)
    assert capsys.readouterr().out == "Exercise 8.1: all checks passed.\n"


def test_not_attempted_falls_back(capsys):
    def stub(final_positions, goals, threshold):
        raise NotImplementedError("Exercise 8.1")

    assert exercises.check_goals_reached(stub) is exercises.goals_reached_reference
    assert "not attempted" in capsys.readouterr().out


def with_mistake(name_part):
    """An answer that returns the checker's own wrong value for the named mistake."""
    def fn(final_positions, goals, threshold):
        mistakes = exercises._goals_mistakes(final_positions, goals, threshold)
        (wrong,) = [v for k, v in mistakes.items() if name_part in k]
        return wrong
    return fn


@pytest.mark.parametrize("name_part, quantity", [
    ("radius is strict", "fractions"),
    ("not the squared distance", "fractions"),
    ("far from every goal", "fractions"),
    ("not over the episodes that reached", "fractions"),
    ("not counts of episodes", "fractions"),
    ("not of episodes that reached one", "count"),
])
def test_known_mistakes_are_named(name_part, quantity):
    with pytest.raises(AssertionError, match=rf"Exercise 8\.1: wrong {quantity} .*{name_part}"):
        exercises.check_goals_reached(with_mistake(name_part))


def test_hand_written_mistakes_are_named():
    def le_threshold(final_positions, goals, threshold):  # <= instead of <
        d = torch.cdist(final_positions, goals)
        hit = d.min(1).values <= threshold
        frac = torch.bincount(d.argmin(1)[hit], minlength=len(goals)).double() / len(d)
        return int((frac > 0).sum()), frac

    with pytest.raises(AssertionError, match="radius is strict"):
        exercises.check_goals_reached(le_threshold)

    def hard_coded_goals(final_positions, goals, threshold):  # ignores the goals argument
        return written_solution(final_positions, torch.as_tensor(MultiGoalEnv.goals), threshold)

    with pytest.raises(AssertionError, match=r"fractions \(E = 5 episodes, G = 3 goals"):
        exercises.check_goals_reached(hard_coded_goals)


def test_wrong_shapes_and_types_are_named():
    with pytest.raises(AssertionError, match="expected a pair"):
        exercises.check_goals_reached(lambda final_positions, goals, threshold: 4)
    with pytest.raises(AssertionError, match=r"fractions .*expected shape \(4,\)"):
        exercises.check_goals_reached(
            lambda final_positions, goals, threshold: (4, torch.zeros(3)))
    with pytest.raises(AssertionError, match="count .*expected one number"):
        exercises.check_goals_reached(
            lambda final_positions, goals, threshold: (torch.zeros(2), torch.zeros(4)))


def test_metric_counts_hand_made_trajectories():
    """goals_reached on trajectories built by hand and run through the env: two episodes walk
    to (5, 0), one to (0, -5), one takes three half steps towards (-5, 0) and stops at
    (-1.5, 0), one stands still for the whole 30 steps."""
    env = MultiGoalEnv()
    velocity = {0: [1, 0], 1: [1, 0], 2: [0, -1], 3: [-0.5, 0], 4: [0, 0]}
    horizon = {3: 3}
    finals = []
    for i, v in velocity.items():
        env.reset(options={"position": (0.0, 0.0)})
        obs = np.zeros(2)
        for _ in range(horizon.get(i, 30)):
            obs, _, terminated, _, _ = env.step(np.asarray(v, float))
            if terminated:
                break
        finals.append(obs)
    finals = np.array(finals)
    assert np.allclose(finals[3], [-1.5, 0.0]) and np.allclose(finals[0], [5.0, 0.0])
    count, frac = metrics.goals_reached(finals, env.goals, env.goal_threshold)
    assert count == 2
    assert frac.tolist() == [0.4, 0.0, 0.0, 0.2]
    # the env's own goal_index agrees with the metric on every final position
    idx = env.goal_index(finals)
    assert np.bincount(idx[idx >= 0], minlength=4).tolist() == [2, 0, 0, 1]


def test_metric_rejects_bad_input():
    with pytest.raises(ValueError, match="threshold=0"):
        metrics.goals_reached(np.zeros((3, 2)), MultiGoalEnv.goals, 0)
    with pytest.raises(ValueError, match=r"final_positions has shape \(3,\)"):
        metrics.goals_reached(np.zeros(3), MultiGoalEnv.goals, 1.0)
