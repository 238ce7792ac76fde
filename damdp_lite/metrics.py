"""Measurements of sampled actions against the exact optimum: per-state statistics of the
turning double-well (notebook 04), histograms, and mode-mass errors and tanh saturation
(`box_saturation`) of the bandits (notebook 03). The plots of these numbers are in `plotting`."""

from __future__ import annotations

import numpy as np

from .utils import to_numpy

TURNING_HALF_WIDTH = 0.05
"""Half-width h of the box window of `window_density` (a histogram bin of width 0.1 centred
on the point); the mode std of the exact optimum at T = 0.05 is about 0.11."""


def window_density(actions, centres, half_width: float = TURNING_HALF_WIDTH) -> np.ndarray:
    """Box-kernel density estimate p_hat(c) = #{|a - c| < h} / (n 2h) at each centre c.

    `actions`: `(..., n)` samples; `centres`: `(C,)`. Returns `(..., C)`. Unbiased for the
    window average of the density, (1/2h) int_{c-h}^{c+h} p(a) da; binomial standard error
    sqrt(P (1 - P) / n) / 2h with P the window's mass.
    """
    if not half_width > 0:
        raise ValueError(f"half_width={half_width!r} must be > 0")
    a = to_numpy(actions)[..., None]  # (..., n, 1)
    c = np.asarray(centres, dtype=float).reshape(-1)  # (C,)
    return (np.abs(a - c) < half_width).mean(axis=-2) / (2.0 * half_width)


def turning_state_stats(actions, half_width: float = TURNING_HALF_WIDTH,
                        mass_range: tuple[float, float] = (0.3, 0.7),
                        valley_factor: float = 0.5, one_sided_mass: float = 0.9
                        ) -> dict[str, np.ndarray]:
    """Per-state figures of the turning double-well (notebook 04) from action samples.

    `actions`: `(S, n)`, n samples in each of S states. Returns `{name: (S,) array}`:
    `mass_pos` (fraction with a > 0), `dens_0`, `dens_m05`, `dens_p05` (`window_density` at
    0, -0.5, +0.5), `valley_ratio` = dens_0 / min(dens_m05, dens_p05) (inf when that min is
    0), `std`, `mean`, `tv_mass` = |mass_pos - 0.5| (total variation to the exact masses
    0.5 / 0.5), and the booleans
    `bimodal` = mass_pos in `mass_range` and dens_0 < `valley_factor` * min(dens_m05, dens_p05),
    `one_sided` = max(mass_pos, 1 - mass_pos) > `one_sided_mass`.
    """
    a = to_numpy(actions).astype(float)
    if a.ndim != 2:
        raise ValueError(f"actions has shape {a.shape}; expected (S, n)")
    dens = window_density(a, (0.0, -0.5, 0.5), half_width)  # (S, 3)
    d0, dm, dp = dens[:, 0], dens[:, 1], dens[:, 2]
    peak = np.minimum(dm, dp)
    with np.errstate(divide="ignore", invalid="ignore"):
        valley = np.where(peak > 0, d0 / np.where(peak > 0, peak, 1.0), np.inf)
    mass = (a > 0).mean(axis=1)
    lo, hi = mass_range
    return {"mass_pos": mass, "dens_0": d0, "dens_m05": dm, "dens_p05": dp,
            "valley_ratio": valley, "std": a.std(axis=1), "mean": a.mean(axis=1),
            "tv_mass": np.abs(mass - 0.5),
            "bimodal": (mass >= lo) & (mass <= hi) & (d0 < valley_factor * peak),
            "one_sided": np.maximum(mass, 1.0 - mass) > one_sided_mass}


def state_histograms(actions, bins: int = 200, lo: float = -1.0, hi: float = 1.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Counts of action samples `(S, n)` in `bins` equal bins over [lo, hi] per state.

    Returns `(counts (S, bins) int64, edges (bins + 1,))`; samples outside [lo, hi] (none for
    squashed actions) are put in the edge bins, so every row sums to n.
    """
    a = to_numpy(actions).astype(float)
    if a.ndim != 2:
        raise ValueError(f"actions has shape {a.shape}; expected (S, n)")
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.floor((a - lo) / (hi - lo) * bins), 0, bins - 1).astype(np.int64)
    counts = np.stack([np.bincount(row, minlength=bins) for row in idx])
    return counts, edges


def mode_mass_errors(measured, exact) -> dict[str, float]:
    """How far measured mode masses are from the exact ones (benchmarks.md §3).

    `measured`, `exact`: `(M,)` masses (each summing to 1). Returns `max_abs_dev`
    (max_m |measured_m - exact_m|) and `tv` (total variation, ½ sum_m |measured_m - exact_m|).
    """
    m, e = np.asarray(to_numpy(measured), float), np.asarray(to_numpy(exact), float)
    if m.shape != e.shape or m.ndim != 1:
        raise ValueError(f"measured has shape {m.shape} and exact {e.shape}; expected two (M,)")
    dev = np.abs(m - e)
    return {"max_abs_dev": float(dev.max()), "tv": float(0.5 * dev.sum())}


BOX_EDGE, BOX_CORNER = 0.99, 0.95
"""Thresholds of `box_saturation`: at the edge when max_i |a_i| > BOX_EDGE (a latent beyond
atanh(0.99) = 2.65), in a corner when min_i |a_i| > BOX_CORNER (both latents beyond 1.83)."""


def box_saturation(actions, weights=None, edge: float = BOX_EDGE,
                   corner: float = BOX_CORNER) -> dict[str, float]:
    """How much of a squashed policy sits where tanh saturates, in the box [-1, 1]^d.

    `actions`: `(n, d)` samples (or grid points); `weights`: optional `(n,)` masses summing to
    1 (a density on a grid, e.g. the exact optimum) instead of equal sample weights. Returns
    `frac_edge` (mass with max_i |a_i| > `edge`) and `frac_corners` (min_i |a_i| > `corner`).
    """
    a = np.abs(np.asarray(to_numpy(actions), float))
    if a.ndim != 2:
        raise ValueError(f"actions has shape {a.shape}; expected (n, d)")
    w = np.full(a.shape[0], 1.0 / a.shape[0]) if weights is None else np.asarray(
        to_numpy(weights), float)
    return {"frac_edge": float(w @ (a.max(-1) > edge)),
            "frac_corners": float(w @ (a.min(-1) > corner))}


def dip_ratio(grid, density) -> float:
    """q(0) / max(q(-1), q(+1)) of a 1-D density `(N,)` on `grid` `(N,)`, at the nearest grid
    points: below 1 when the density dips between the double well's modes at +-1 (the exact
    optimum has exp(-1/T)), but also when one well is filled and the other empty (then ~0), so
    read it with the mass in each well. The measure of notebook 01 and
    `benchmarks/bound_vs_K.py`."""
    g, d = np.asarray(to_numpy(grid), float), np.asarray(to_numpy(density), float)

    def at(x: float) -> float:
        return float(d[np.argmin(np.abs(g - x))])

    return at(0.0) / max(at(-1.0), at(1.0))


def goals_reached(final_positions, goals, threshold: float) -> tuple[int, np.ndarray]:
    """Which goals a set of episodes reached, from where they ended (multi-goal toy, notebook 08).

    An episode reached goal g when its final position lies strictly within `threshold` of g
    (`MultiGoalEnv` terminates there); with goals further apart than 2 `threshold` at most one
    goal qualifies.

    Args:
        final_positions: `(E, 2)` last position of each episode.
        goals: `(G, 2)` goal positions (`MultiGoalEnv.goals`).
        threshold: the goal radius, > 0 (`MultiGoalEnv.goal_threshold`, 1.0).
    Returns:
        (number of distinct goals reached by at least one episode, `(G,)` fraction of the E
        episodes that ended at each goal; the rest of the mass reached none).
    """
    if not threshold > 0:
        raise ValueError(f"threshold={threshold!r} must be > 0")
    s = np.asarray(to_numpy(final_positions), float)
    g = np.asarray(to_numpy(goals), float)
    if s.ndim != 2 or g.ndim != 2 or s.shape[1] != g.shape[1]:
        raise ValueError(f"final_positions has shape {s.shape} and goals {g.shape}; expected "
                         f"(E, 2) and (G, 2)")
    d = np.sqrt(((s[:, None, :] - g[None]) ** 2).sum(-1))  # (E, G)
    hit = d.min(-1) < threshold  # (E,)
    fractions = np.bincount(d.argmin(-1)[hit], minlength=len(g)) / max(len(s), 1)
    return int((fractions > 0).sum()), fractions
