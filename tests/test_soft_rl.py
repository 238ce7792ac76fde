"""Soft value iteration (damdp_lite/soft_rl.py): the soft Bellman backup is a gamma-contraction
whose fixed point is reached to 1e-8; T -> 0 is ordinary value iteration; pi* is a distribution
and beats every other policy on the soft objective; two hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from damdp_lite import soft_rl as sr


def random_mdp(seed: int, S: int = 7, A: int = 3, gamma: float = 0.9) -> sr.TabularMDP:
    """A stochastic MDP with one terminal state (the last)."""
    g = torch.Generator().manual_seed(seed)
    P = torch.softmax(3 * torch.randn(S, A, S, generator=g, dtype=torch.float64), -1)
    R = torch.randn(S, A, generator=g, dtype=torch.float64)
    terminal = torch.zeros(S, dtype=torch.bool)
    terminal[-1] = True
    return sr.TabularMDP(P, R, terminal, gamma)


def plain_value_iteration(mdp: sr.TabularMDP, iterations: int = 2000) -> torch.Tensor:
    """Ordinary value iteration, written independently of the package: V = max_a [R + g P V]."""
    v = torch.zeros(mdp.num_states, dtype=torch.float64)
    for _ in range(iterations):
        q = mdp.rewards + mdp.gamma * torch.einsum("sat,t->sa", mdp.transitions, v)
        v = torch.where(mdp.terminal, 0.0, q.max(-1).values)
    return v


@pytest.mark.parametrize("temperature", [0.0, 0.1, 1.0, 5.0])
def test_backup_is_a_gamma_contraction(temperature):
    for seed in range(5):
        mdp = random_mdp(seed)
        g = torch.Generator().manual_seed(100 + seed)
        v1 = 10 * torch.randn(mdp.num_states, generator=g, dtype=torch.float64)
        v2 = 10 * torch.randn(mdp.num_states, generator=g, dtype=torch.float64)
        lhs = (sr.soft_bellman_backup(mdp, v1, temperature)
               - sr.soft_bellman_backup(mdp, v2, temperature)).abs().max()
        assert lhs <= mdp.gamma * (v1 - v2).abs().max() + 1e-12


@pytest.mark.parametrize("temperature", [0.0, 0.05, 0.5, 2.0])
def test_fixed_point_is_satisfied_to_1e_8(temperature):
    for mdp in (random_mdp(0), sr.two_route_grid()):
        res = sr.soft_value_iteration(mdp, temperature)
        backed = sr.soft_bellman_backup(mdp, res.v, temperature)
        assert (backed - res.v).abs().max() < 1e-8
        assert res.residual < 1e-8
        assert torch.all(res.v[mdp.terminal] == 0)


def test_zero_temperature_is_ordinary_value_iteration_and_the_limit():
    for mdp in (random_mdp(1), random_mdp(2, gamma=0.5), sr.two_route_grid()):
        v0 = plain_value_iteration(mdp)
        assert torch.allclose(sr.soft_value_iteration(mdp, 0.0).v, v0, atol=1e-8)
        gaps = []
        for T in (1.0, 0.1, 0.01, 0.001):
            vT = sr.soft_value_iteration(mdp, T).v
            gap = (vT - v0).max().item()
            assert (vT - v0).min() >= -1e-8, "the entropy bonus can only raise V"
            assert gap <= sr.entropy_bonus_bound(mdp, T) + 1e-8
            gaps.append(gap)
        assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-2


def test_soft_optimal_policy_is_a_distribution_and_its_t0_limit_splits_ties():
    q = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.0, 0.0, 0.0, 0.0], [5.0, 4.0, 3.0, 2.0]],
                     dtype=torch.float64)
    for T in (0.0, 1e-3, 0.3, 10.0):
        pi = sr.soft_optimal_policy(q, T)
        assert pi.shape == q.shape and (pi >= 0).all()
        assert torch.allclose(pi.sum(-1), torch.ones(3, dtype=torch.float64), atol=1e-12)
    limit = torch.tensor([[0, 0.5, 0.5, 0], [0.25] * 4, [1, 0, 0, 0]], dtype=torch.float64)
    assert torch.allclose(sr.soft_optimal_policy(q, 0.0), limit)
    assert torch.allclose(sr.soft_optimal_policy(q, 1e-3), limit, atol=1e-12)
    # the deterministic greedy policy breaks the tie towards the first action
    assert sr.greedy_policy(q)[0].tolist() == [0, 1, 0, 0]
    # pi* = exp((Q - V) / T), the same rows as the softmax
    T = 0.7
    v = sr.soft_state_values(q, T)
    assert torch.allclose(sr.soft_optimal_policy(q, T), torch.exp((q - v[:, None]) / T))


def test_hand_computed_two_state_cases():
    # one state, two exits to a terminal state with rewards 0 and 1: V = T log(1 + e^(1/T))
    P = torch.zeros(2, 2, 2, dtype=torch.float64)
    P[:, :, 1] = 1.0
    R = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    mdp = sr.TabularMDP(P, R, torch.tensor([False, True]), 0.9)
    for T in (0.5, 2.0):
        res = sr.soft_value_iteration(mdp, T)
        assert res.v[0].item() == pytest.approx(T * math.log(1 + math.exp(1 / T)), abs=1e-12)
        assert res.policy[0, 1].item() == pytest.approx(1 / (1 + math.exp(-1 / T)), abs=1e-12)
    # "stay" (reward 0, back to the same state) or "exit" (reward 0, terminal), T = 1,
    # gamma = 1/2: V = log(e^(V/2) + 1), so x = e^(V/2) solves x^2 = x + 1: the golden ratio.
    P = torch.zeros(2, 2, 2, dtype=torch.float64)
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    mdp = sr.TabularMDP(P, torch.zeros(2, 2, dtype=torch.float64), torch.tensor([False, True]),
                        0.5)
    phi = (1 + math.sqrt(5)) / 2
    res = sr.soft_value_iteration(mdp, 1.0)
    assert res.v[0].item() == pytest.approx(2 * math.log(phi), abs=1e-9)
    assert res.policy[0].tolist() == pytest.approx([1 / phi, 1 / phi**2], abs=1e-9)


def test_pi_star_has_the_soft_value_and_beats_every_other_policy():
    for mdp, T in ((random_mdp(3), 0.5), (sr.two_route_grid(), 0.3)):
        res = sr.soft_value_iteration(mdp, T)
        assert torch.allclose(sr.soft_policy_evaluation(mdp, res.policy, T), res.v, atol=1e-8)
        g = torch.Generator().manual_seed(0)
        for _ in range(20):
            other = torch.softmax(2 * torch.randn(mdp.num_states, mdp.num_actions, generator=g,
                                                  dtype=torch.float64), -1)
            v_other = sr.soft_policy_evaluation(mdp, other, T)
            assert (v_other <= res.v + 1e-9).all()
            assert (v_other < res.v - 1e-6).any()


def test_two_route_grid_has_two_equal_routes_and_a_bimodal_start():
    mdp = sr.two_route_grid(gamma=0.95)
    assert mdp.layout[mdp.cells[mdp.start][0]][mdp.cells[mdp.start][1]] == "S"
    res0 = sr.soft_value_iteration(mdp, 0.0)
    six_steps = -sum(0.95**t for t in range(6))  # six steps of cost 1 to the goal
    assert res0.v[mdp.start].item() == pytest.approx(six_steps, abs=1e-10)
    up, down = sr.ACTIONS.index("up"), sr.ACTIONS.index("down")
    for T in (0.0, 0.1, 0.5):
        pi = sr.soft_value_iteration(mdp, T).policy[mdp.start]
        assert pi[up].item() == pytest.approx(pi[down].item(), abs=1e-12)
    assert sr.soft_value_iteration(mdp, 0.0).policy[mdp.start, up].item() == 0.5
    assert sr.greedy_policy(res0.q)[mdp.start].tolist() == [1, 0, 0, 0]


def test_a_blocked_route_strands_the_greedy_policy_but_not_pi_star():
    mdp, blocked = sr.two_route_grid(), sr.two_route_grid(blocked=True)
    assert blocked.num_states == mdp.num_states - 1
    greedy = sr.greedy_policy(sr.soft_value_iteration(mdp, 0.0).q)
    assert sr.reach_probability(mdp, greedy, 6) == 1.0  # the greedy route takes 6 steps
    assert sr.reach_probability(mdp, greedy, 5) == 0.0
    soft = sr.soft_value_iteration(mdp, 0.3).policy
    assert sr.reach_probability(blocked, sr.transfer_policy(greedy, mdp, blocked), 50) == 0.0
    assert sr.reach_probability(blocked, sr.transfer_policy(soft, mdp, blocked), 50) > 0.5
    with pytest.raises(ValueError, match=r"target has cells \[\(0, 2\)\] that source lacks"):
        sr.transfer_policy(soft[:-1], blocked, mdp)


@pytest.mark.parametrize("make, match", [
    (lambda: sr.TabularMDP(torch.ones(2, 2, 3), torch.zeros(2, 2), torch.zeros(2, dtype=bool),
                           0.9), r"transitions has shape \(2, 2, 3\); expected \(S, A, S\)"),
    (lambda: sr.TabularMDP(torch.ones(2, 2, 2), torch.zeros(2, 2), torch.zeros(2, dtype=bool),
                           0.9), "transitions rows must be distributions"),
    (lambda: sr.TabularMDP(torch.full((2, 2, 2), 0.5), torch.zeros(2, 3),
                           torch.zeros(2, dtype=bool), 0.9), r"rewards has shape \(2, 3\)"),
    (lambda: sr.TabularMDP(torch.full((2, 2, 2), 0.5), torch.zeros(2, 2), torch.zeros(2), 0.9),
     r"terminal has shape \(2,\) and dtype torch.float32; expected \(2,\) bool"),
    (lambda: sr.TabularMDP(torch.full((2, 2, 2), 0.5), torch.zeros(2, 2),
                           torch.zeros(2, dtype=bool), 1.0), r"gamma=1.0 must be in \(0, 1\)"),
    (lambda: sr.grid_mdp(["S..", ".G"]), "rows of equal length"),
    (lambda: sr.grid_mdp(["S.x", "..G"]), "rows of equal length"),
    (lambda: sr.grid_mdp(["...", "..G"]), "exactly one 'S'"),
    (lambda: sr.grid_mdp(["S.G"], slip=1.5), r"slip=1.5 must be in \[0, 1\]"),
    (lambda: sr.soft_value_iteration(sr.two_route_grid(), -0.1),
     r"temperature=-0.1 must be a finite number >= 0"),
    (lambda: sr.soft_q_values(sr.two_route_grid(), torch.zeros(3, dtype=torch.float64)),
     r"v has shape \(3,\); expected \(12,\)"),
])
def test_bad_input_names_the_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_value_iteration_says_when_it_runs_out_of_iterations():
    with pytest.raises(RuntimeError, match="did not reach tol=1e-10 in max_iterations=3"):
        sr.soft_value_iteration(sr.two_route_grid(), 0.5, max_iterations=3)
