"""Tabular MaxEnt RL solved exactly: the soft Bellman backup and soft value iteration.

The sequential MaxEnt objective at temperature T >= 0 is
`E[sum_t gamma^t (r(s_t, a_t) + T H(q(. | s_t)))]` (Ziebart 2010; Haarnoja et al. 2017). Its
optimum is reached by the soft-optimal policy pi*, computed here on a small finite MDP by
iterating the soft Bellman backup to its fixed point, one function per equation:

    soft_q_values        Q(s, a)   = R(s, a) + gamma sum_s' P(s' | s, a) V(s')
    soft_state_values    V(s)      = T log sum_a exp(Q(s, a) / T)     (max_a Q at T = 0)
    soft_optimal_policy  pi*(a|s)  = exp((Q(s, a) - V(s)) / T)        (uniform on argmax at T = 0)
    soft_bellman_backup  V        <- soft_state_values(soft_q_values(V)), V = 0 at terminals
    soft_policy_evaluation  V^q(s) = sum_a q(a|s) [Q^q(s, a) - T log q(a|s)], any policy q

`reach_probability` and `transfer_policy` measure a policy on a changed grid (robustness).

`grid_mdp` builds deterministic (or slippery) grid worlds from a text layout; `two_route_grid`
is the one with two equally short routes to its goal, whose pi* is bimodal at the start.
Introduced in notebook `02_maxent_rl_to_damdp`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .utils import check_int_at_least, check_nonnegative, check_positive

ACTIONS: tuple[str, ...] = ("up", "down", "left", "right")
"""Action names of `grid_mdp`, in index order."""
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
"""(row, column) displacement of each action of `grid_mdp`."""


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with S states and A actions (float64 tensors).

    Arriving in a terminal state ends the episode: V = 0 there, so its outgoing transitions and
    rewards are never used. `layout` and `cells` are only for drawing grid worlds.
    """

    transitions: torch.Tensor
    """P(s' | s, a), `(S, A, S)`, each row `transitions[s, a]` a distribution."""
    rewards: torch.Tensor
    """R(s, a), `(S, A)`."""
    terminal: torch.Tensor
    """`(S,)` bool: the episode ends on arrival."""
    gamma: float
    """Discount per step, in (0, 1) (strictly below 1: the backup is then a contraction)."""
    start: int = 0
    """Index of the start state."""
    layout: tuple[str, ...] = ()
    """Text rows of a grid world ('.' free, '#' wall, 'S' start, 'G' goal), or ()."""
    cells: tuple[tuple[int, int], ...] = field(default=())
    """(row, column) of each state of a grid world, or ()."""

    def __post_init__(self) -> None:
        P, R, term = self.transitions, self.rewards, self.terminal
        if not isinstance(P, torch.Tensor) or P.dim() != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"transitions has shape {tuple(getattr(P, 'shape', ()))}; "
                             "expected (S, A, S)")
        S, A, _ = P.shape
        if not isinstance(R, torch.Tensor) or R.shape != (S, A):
            raise ValueError(f"rewards has shape {tuple(getattr(R, 'shape', ()))}; "
                             f"expected (S, A) = ({S}, {A})")
        if not isinstance(term, torch.Tensor) or term.shape != (S,) or term.dtype != torch.bool:
            raise ValueError(f"terminal has shape {tuple(getattr(term, 'shape', ()))} and dtype "
                             f"{getattr(term, 'dtype', None)}; expected ({S},) bool")
        if (P < 0).any() or not torch.allclose(P.sum(-1), torch.ones(S, A, dtype=P.dtype),
                                               atol=1e-9):
            worst = float((P.sum(-1) - 1).abs().max())
            raise ValueError(f"transitions rows must be distributions (non-negative, summing "
                             f"to 1); largest deviation of a row sum from 1 is {worst:.3g}")
        if not (isinstance(self.gamma, int | float) and 0 < self.gamma < 1):
            raise ValueError(f"gamma={self.gamma!r} must be in (0, 1)")
        if not (isinstance(self.start, int) and 0 <= self.start < S):
            raise ValueError(f"start={self.start!r} must be a state index in [0, {S - 1}]")

    @property
    def num_states(self) -> int:
        """S."""
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        """A."""
        return self.transitions.shape[1]


def grid_mdp(layout: Sequence[str], gamma: float = 0.95, step_reward: float = -1.0,
             slip: float = 0.0) -> TabularMDP:
    """A grid world from text rows: '.' free, '#' wall, 'S' start (one), 'G' goal (terminal).

    States are the non-wall cells (row-major order); actions `ACTIONS` = up, down, left, right.
    A move into a wall or off the grid stays in place. Every step costs `step_reward` (so the
    shortest routes to a goal are the best ones at T = 0). With `slip` > 0 the intended move is
    replaced, with that probability, by a uniformly random action.
    """
    rows = tuple(layout)
    if not rows or len({len(r) for r in rows}) != 1 or set("".join(rows)) - set(".#SG"):
        raise ValueError(f"layout={rows!r} must be non-empty rows of equal length made of "
                         "'.', '#', 'S', 'G'")
    if "".join(rows).count("S") != 1 or "G" not in "".join(rows):
        raise ValueError(f"layout={rows!r} must hold exactly one 'S' and at least one 'G'")
    check_nonnegative("slip", slip)
    if slip > 1:
        raise ValueError(f"slip={slip!r} must be in [0, 1]")
    cells = tuple((i, j) for i, row in enumerate(rows) for j, c in enumerate(row) if c != "#")
    index = {cell: s for s, cell in enumerate(cells)}
    S, A = len(cells), len(ACTIONS)
    move = torch.zeros(S, A, S, dtype=torch.float64)  # deterministic moves
    for s, (i, j) in enumerate(cells):
        for a, (di, dj) in enumerate(MOVES):
            move[s, a, index.get((i + di, j + dj), s)] = 1.0
    P = (1 - slip) * move + slip * move.mean(1, keepdim=True)
    terminal = torch.tensor([rows[i][j] == "G" for i, j in cells])
    start = next(s for s, (i, j) in enumerate(cells) if rows[i][j] == "S")
    R = torch.full((S, A), float(step_reward), dtype=torch.float64)
    return TabularMDP(P, R, terminal, float(gamma), start, rows, cells)


TWO_ROUTES: tuple[str, ...] = (".....",
                               "S###G",
                               ".....")
"""Start and goal separated by a wall: two routes of 6 steps, over the top and along the bottom."""


def two_route_grid(gamma: float = 0.95, blocked: bool = False) -> TabularMDP:
    """`TWO_ROUTES` as a `grid_mdp`; `blocked=True` adds a wall in the middle of the top route."""
    layout = list(TWO_ROUTES)
    if blocked:
        layout[0] = layout[0][:2] + "#" + layout[0][3:]
    return grid_mdp(layout, gamma=gamma)


# -------------------------------------------------------------------------------------------
# The soft Bellman equations, one function each
# -------------------------------------------------------------------------------------------


def _check_temperature(temperature: float) -> None:
    check_nonnegative("temperature", temperature)


def soft_q_values(mdp: TabularMDP, v: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = R(s, a) + gamma sum_s' P(s' | s, a) V(s'), `(S, A)` for `v` `(S,)`."""
    if v.shape != (mdp.num_states,):
        raise ValueError(f"v has shape {tuple(v.shape)}; expected ({mdp.num_states},)")
    return mdp.rewards + mdp.gamma * mdp.transitions @ v


def soft_state_values(q: torch.Tensor, temperature: float) -> torch.Tensor:
    """V(s) = T log sum_a exp(Q(s, a) / T), `(S,)` for `q` `(S, A)`; max_a Q(s, a) at T = 0.

    The soft maximum: max_a Q <= V <= max_a Q + T log A.
    """
    _check_temperature(temperature)
    if temperature == 0:
        return q.max(-1).values
    return temperature * torch.logsumexp(q / temperature, dim=-1)


def soft_optimal_policy(q: torch.Tensor, temperature: float) -> torch.Tensor:
    """pi*(a | s) = exp((Q(s, a) - V(s)) / T), `(S, A)`, each row summing to 1.

    At T = 0 it is the limit T -> 0: uniform over the maximising actions (ties within 1e-12).
    """
    _check_temperature(temperature)
    if temperature == 0:
        best = (q >= q.max(-1, keepdim=True).values - 1e-12).to(q.dtype)
        return best / best.sum(-1, keepdim=True)
    return torch.softmax(q / temperature, dim=-1)


def greedy_policy(q: torch.Tensor) -> torch.Tensor:
    """The greedy policy of ordinary value iteration: all mass on argmax_a Q(s, a), ties broken
    towards the first action; `(S, A)` one-hot rows."""
    return torch.nn.functional.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype)


def soft_bellman_backup(mdp: TabularMDP, v: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B V)(s) = T log sum_a exp([R(s, a) + gamma E_{s'} V(s')] / T), and 0 at terminal
    states; `(S,)` for `v` `(S,)`. A gamma-contraction in the max norm."""
    v_new = soft_state_values(soft_q_values(mdp, v), temperature)
    return torch.where(mdp.terminal, torch.zeros_like(v_new), v_new)


@dataclass
class SoftValueIteration:
    """The fixed point of the soft Bellman backup and what it implies."""

    v: torch.Tensor
    """Soft-optimal state values V*, `(S,)`."""
    q: torch.Tensor
    """Soft-optimal action values Q*, `(S, A)`."""
    policy: torch.Tensor
    """pi*(a | s), `(S, A)`."""
    iterations: int
    """Backups applied."""
    residual: float
    """max_s |(B V*)(s) - V*(s)| at the end."""


def soft_value_iteration(mdp: TabularMDP, temperature: float, tol: float = 1e-10,
                         max_iterations: int = 10_000) -> SoftValueIteration:
    """Iterate `soft_bellman_backup` from V = 0 until max |B V - V| <= `tol`.

    T = 0 is ordinary value iteration (its `policy` is the T -> 0 limit of pi*; see
    `greedy_policy` for a deterministic one). Raises `RuntimeError` if `max_iterations` are
    not enough.
    """
    _check_temperature(temperature)
    check_positive("tol", tol)
    check_int_at_least("max_iterations", max_iterations, 1)
    v = torch.zeros(mdp.num_states, dtype=mdp.rewards.dtype)
    iterations, residual = 0, math.inf
    while residual > tol:
        if iterations == max_iterations:
            raise RuntimeError(f"soft value iteration did not reach tol={tol} in max_iterations="
                               f"{max_iterations} (residual {residual:.3g})")
        v_new = soft_bellman_backup(mdp, v, temperature)
        residual = float((v_new - v).abs().max())
        v, iterations = v_new, iterations + 1
    residual = float((soft_bellman_backup(mdp, v, temperature) - v).abs().max())
    q = soft_q_values(mdp, v)
    return SoftValueIteration(v, q, soft_optimal_policy(q, temperature), iterations, residual)


def soft_policy_evaluation(mdp: TabularMDP, policy: torch.Tensor, temperature: float
                           ) -> torch.Tensor:
    """Soft value of any policy q, `(S,)`: the solution of the linear system
    V(s) = sum_a q(a|s) [R(s, a) - T log q(a|s) + gamma sum_s' P(s'|s,a) V(s')], V = 0 at
    terminals. `policy` `(S, A)`, rows summing to 1 (0 log 0 = 0)."""
    _check_temperature(temperature)
    if policy.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(f"policy has shape {tuple(policy.shape)}; expected "
                         f"({mdp.num_states}, {mdp.num_actions})")
    live = (~mdp.terminal).to(policy.dtype)  # (S,)
    log_q = torch.where(policy > 0, policy.clamp_min(1e-300).log(), torch.zeros_like(policy))
    r = live * (policy * (mdp.rewards - temperature * log_q)).sum(-1)  # (S,)
    P = live[:, None] * torch.einsum("sa,sat->st", policy, mdp.transitions)  # (S, S)
    eye = torch.eye(mdp.num_states, dtype=policy.dtype)
    return torch.linalg.solve(eye - mdp.gamma * P, r)


def transfer_policy(policy: torch.Tensor, source: TabularMDP, target: TabularMDP
                    ) -> torch.Tensor:
    """A grid policy `(S_source, A)` moved to another grid world of the same actions, cell by
    cell, `(S_target, A)`; every cell of `target` must be a cell of `source`."""
    index = {cell: s for s, cell in enumerate(source.cells)}
    missing = [cell for cell in target.cells if cell not in index]
    if not target.cells or missing:
        raise ValueError(f"target has cells {missing or 'none'} that source lacks; both must "
                         "be grid worlds (grid_mdp) and target's cells a subset of source's")
    return policy[[index[cell] for cell in target.cells]]


def reach_probability(mdp: TabularMDP, policy: torch.Tensor, horizon: int) -> float:
    """Probability that `policy` `(S, A)` reaches a terminal state within `horizon` steps from
    `mdp.start` (exact: the state distribution pushed through P, terminals absorbing)."""
    check_int_at_least("horizon", horizon, 0)
    P = torch.einsum("sa,sat->st", policy, mdp.transitions)  # (S, S)
    P = torch.where(mdp.terminal[:, None], torch.eye(mdp.num_states, dtype=P.dtype), P)
    d = torch.zeros(mdp.num_states, dtype=P.dtype)
    d[mdp.start] = 1.0
    for _ in range(horizon):
        d = d @ P
    return float(d[mdp.terminal].sum())


def entropy_bonus_bound(mdp: TabularMDP, temperature: float) -> float:
    """T log A / (1 - gamma): how far V*_T can sit above V*_0 (0 <= V*_T - V*_0 <= this)."""
    _check_temperature(temperature)
    return temperature * math.log(mdp.num_actions) / (1 - mdp.gamma)
