"""Pure plotting functions: data and parameters in, a matplotlib `Figure` out; they never train.

`setup_style()` sets the one house style (figure size, dpi, fonts, colour-blind-safe cycle).

**One visual convention.** Every figure takes its colours and line styles from `style(label)`,
which reads the policy kind and the algorithm from a curve's label:

- diffusion policies ("diff", "DA-MDP", "DME", "diffusion": DiffPPO, DA-MDP REPPO, DA-MDP WPO,
  DiffSAC) are blue; DPPO (DiffPPO at T = 0, or a diffusion label with "T = 0") sky blue;
- Gaussian policies ("Gaussian", "PPO", "REPPO", "ME-WPO", "WPO", "SAC") are orange;
- the optimum / target ("target", "optimum", "exact", "π*", "T log Z") is black;
- references are grey: the random policy dashed, a pinned (constant) action dotted, a published
  anchor dash-dot (`reference_lines`).

Within a family the algorithm sets the line style and marker (PPO solid/circle, REPPO
dashed/square, WPO dash-dot/triangle, SAC dotted/diamond), so DA-MDP REPPO, DA-MDP WPO and
DiffSAC on one axes are three blue curves that can be told apart. `styles_for(labels)` gives the
styles of all curves of one axes, with labels that would look alike (two diffusion runs with
different K) set apart by shade; labels of no known kind get the other colours of the palette.
Every plotting function ends with a legend.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping, Sequence

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .targets import Target
from .utils import to_numpy

PALETTE = sns.color_palette("colorblind")
COLORS = {"diffusion": PALETTE[0], "gaussian": PALETTE[1], "target": "black", "optimum": "black",
          "dppo": PALETTE[9], "reference": "0.5",
          "previous": PALETTE[0], "same": PALETTE[9]}
"""Colour per policy family (diffusion blue, Gaussian orange), the optimum/target (black), DPPO
(the T = 0 diffusion variant, sky blue) and references (grey); "previous"/"same" are the two
noising-step pairings, both diffusion."""

OTHER_COLORS = (PALETTE[2], PALETTE[4], PALETTE[5], PALETTE[3], PALETTE[6], PALETTE[8])
"""Colours of labels of no known kind (green, purple, brown, vermillion, pink, yellow): never
blue, orange, black or grey."""

ALGORITHM_STYLES = {"PPO": {"ls": "-", "marker": "o"}, "REPPO": {"ls": "--", "marker": "s"},
                    "WPO": {"ls": "-.", "marker": "^"}, "SAC": {"ls": ":", "marker": "D"}}
"""Line style and marker per algorithm, the same in both policy families."""

REFERENCE_STYLES = {"random": {"color": COLORS["reference"], "ls": "--"},
                    "pinned": {"color": COLORS["reference"], "ls": ":"},
                    "anchor": {"color": COLORS["reference"], "ls": "-."}}
"""Grey reference lines: the random policy dashed, a pinned action dotted, a published anchor
dash-dot."""

REFERENCE_LABELS = {"random": "random policy", "pinned": "pinned action", "anchor": "published"}
"""Default legend labels of `reference_lines`."""

_KIND_PATTERNS = (  # first match wins: references, then diffusion before Gaussian, then target
    ("random", re.compile(r"\brandom\b")),
    ("pinned", re.compile(r"pinned|constant action|zero action|fixed action")),
    ("anchor", re.compile(r"published|anchor|cleanrl|\bpaper\b|reported")),
    ("dppo", re.compile(r"dppo")),
    ("diffusion", re.compile(r"diff(?!er)|da-mdp|\bdme\b|dme-")),
    ("gaussian", re.compile(r"gaussian|ppo|wpo|sac(?![a-z])")),
    ("target", re.compile(r"target|optimum|optimal|exact|π\*|pi\^?\*|log\s*z")),
)
_ALGORITHM_PATTERNS = (("REPPO", re.compile(r"reppo")), ("WPO", re.compile(r"wpo")),
                       ("SAC", re.compile(r"sac(?![a-z])")), ("PPO", re.compile(r"ppo")))
_T_ZERO = re.compile(r"(?:\bt|\\mathcal\{t\}|\\mathcal t)\s*\$?\s*=\s*\$?\s*0(?![\d.])")
_LINE_STYLES = ("-", "--", "-.", ":")
_SHADES = (0.45, -0.35, 0.65, -0.55, 0.25, -0.2)


def setup_style() -> None:
    """House style: 4x3 in figures, 90 dpi, readable fonts, a colour-blind-safe cycle."""
    plt.rcParams.update({
        "figure.figsize": (4.0, 3.0), "figure.dpi": 90, "savefig.dpi": 90,
        "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 8,
        "axes.prop_cycle": plt.cycler(color=PALETTE), "axes.spines.top": False,
        "axes.spines.right": False, "figure.constrained_layout.use": True,
    })


# ---------------------------------------------------------------------------------------------
# The visual convention: one style per label
# ---------------------------------------------------------------------------------------------


def label_kind(label: str) -> str | None:
    """What a curve label names: "diffusion", "dppo" (diffusion at T = 0), "gaussian",
    "target", "random", "pinned", "anchor", or None (no known kind).

    E.g. "DA-MDP WPO" -> "diffusion", "ME-WPO" -> "gaussian", "DiffPPO, T = 0" -> "dppo",
    r"$\\mathcal{T}\\log Z$" -> "target", "random policy" -> "random"."""
    text = label.lower()
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return _AT_T_ZERO.get(kind, kind) if _T_ZERO.search(text) else kind
    return None


_AT_T_ZERO = {"diffusion": "dppo"}
"""A label kind at T = 0 that has a name of its own (a diffusion policy at T = 0 is DPPO)."""


def label_algorithm(label: str) -> str | None:
    """The algorithm a curve label names: "PPO" (also DiffPPO, DPPO), "REPPO", "WPO" (ME-WPO,
    DA-MDP WPO), "SAC" (DiffSAC), or None."""
    if label_kind(label) in (None, "target", "random", "pinned", "anchor"):
        return None
    text = label.lower()
    return next((name for name, p in _ALGORITHM_PATTERNS if p.search(text)), None)


def style(label: str) -> dict[str, object]:
    """Line keyword arguments `{"color", "ls", "marker"}` of a curve, from its label alone
    (deterministic): the colour from the policy kind (`label_kind`: diffusion blue, DPPO sky
    blue, Gaussian orange, target black, references grey), the line style and marker from the
    algorithm (`ALGORITHM_STYLES`; solid and no marker when none is named; DPPO marks "v").
    A label of no known kind gets one of `OTHER_COLORS`, chosen by a hash of the label
    (`styles_for` picks them in order instead, so that they differ within one axes)."""
    kind = label_kind(label)
    if kind in REFERENCE_STYLES:
        return {**REFERENCE_STYLES[kind], "marker": None}
    if kind == "target":
        return {"color": COLORS["target"], "ls": "-", "marker": None}
    algo = label_algorithm(label)
    out = {"color": None, "ls": "-", "marker": None, **ALGORITHM_STYLES.get(algo, {})}
    if kind is None:
        out["color"] = OTHER_COLORS[zlib.crc32(label.encode()) % len(OTHER_COLORS)]
    else:
        out["color"] = COLORS[kind]
    if kind == "dppo":  # told from DiffPPO by its marker too, not by the shade alone
        out["marker"] = "v"
    return out


def _shade(color, f: float) -> tuple[float, float, float]:
    """`color` mixed toward white (f > 0) or black (f < 0) by |f|."""
    rgb = np.array(mcolors.to_rgb(color))
    return tuple(float(c) for c in (rgb + (1 - rgb) * f if f > 0 else rgb * (1 + f)))


def styles_for(labels: Sequence[str], overrides: Mapping[str, Mapping] | None = None
           ) -> dict[str, dict[str, object]]:
    """`style(label)` for every curve of one axes, made distinct: labels of no known kind take
    `OTHER_COLORS` in order, and labels whose styles would coincide (e.g. "diffusion K=2" and
    "diffusion K=8") keep their colour family in lighter or darker shades (and, where no
    algorithm fixes it, other line styles).
    `overrides[label]` (keyword arguments) is applied last. Returns `{label: style}`."""
    out: dict[str, dict[str, object]] = {}
    others = 0
    for label in labels:
        if label in out:
            continue
        out[label] = style(label)
        if label_kind(label) is None:
            out[label]["color"] = OTHER_COLORS[others % len(OTHER_COLORS)]
            others += 1
    groups: dict[tuple, list[str]] = {}
    for label, s in out.items():
        groups.setdefault((mcolors.to_hex(s["color"]), str(s["ls"]), s["marker"]), []).append(label)
    for members in groups.values():
        for j, label in enumerate(members[1:], start=1):
            s = out[label]
            s["color"] = _shade(s["color"], _SHADES[(j - 1) % len(_SHADES)])
            if s["marker"] is None:  # an algorithm keeps its line style and marker
                first = _LINE_STYLES.index(s["ls"]) if s["ls"] in _LINE_STYLES else 0
                s["ls"] = _LINE_STYLES[(first + j) % len(_LINE_STYLES)]
    for label, extra in (overrides or {}).items():
        if label in out:
            out[label].update(extra)
    return out


def _line_kw(s: Mapping[str, object], n_points: int | None = None) -> dict[str, object]:
    """Keyword arguments of `ax.plot` from a style: markers only on curves of `n_points` points
    (about 8 marks per curve), none on densities (`n_points=None`)."""
    kw = {k: v for k, v in s.items() if k != "marker"}
    if s.get("marker") and n_points:
        kw.update(marker=s["marker"], markevery=max(1, n_points // 8), ms=4)
    return kw


def reference_lines(ax: Axes, random: float | None = None, pinned: float | None = None,
                    anchor: float | None = None, labels: Mapping[str, str] | None = None
                    ) -> list[Line2D]:
    """Grey horizontal reference levels on a return plot: the return of the random policy
    (dashed), of a pinned constant action (dotted) and a published anchor (dash-dot), each
    labelled for the legend (`REFERENCE_LABELS`, or `labels["random" | "pinned" | "anchor"]`,
    e.g. `{"pinned": "a = 0"}`). Levels left None are not drawn. Returns the lines drawn."""
    names = {**REFERENCE_LABELS, **(labels or {})}
    lines = []
    for kind, value in (("random", random), ("pinned", pinned), ("anchor", anchor)):
        if value is not None:
            lines.append(ax.axhline(float(value), lw=1.1, label=names[kind],
                                    **REFERENCE_STYLES[kind]))
    return lines


def _levels(ax: Axes, levels: Mapping[str, float] | None) -> None:
    """Horizontal levels `{label: value}` in the house style: the target black, references grey
    (`reference_lines` styles), a level of a policy family (e.g. "best Gaussian") dotted in its
    colour, and any other level (a threshold such as "1: no dip") a grey dotted reference."""
    st = styles_for(list(levels or {}))
    for label, value in (levels or {}).items():
        s, kind = st[label], label_kind(label)
        ls = s["ls"] if kind in ("target", *REFERENCE_STYLES) else ":"
        color = s["color"] if kind is not None else COLORS["reference"]
        ax.axhline(value, color=color, ls=ls, lw=1.1, label=label)


# ---------------------------------------------------------------------------------------------
# Toy samplers (notebooks 00, 01 and 03): densities, chains, 2-D samples, training of the bound
# ---------------------------------------------------------------------------------------------


def target_density_1d(target: Target, temperature: float, grid) -> np.ndarray:
    """pi*(x) = exp(r(x)/T) / Z on a 1-D grid (latent targets) or on actions in [-1, 1]."""
    g = torch.as_tensor(to_numpy(grid), dtype=torch.float64)[:, None]
    return np.exp(to_numpy(target.log_density(g, temperature)))


def plot_density_1d(curves: Mapping[str, tuple], target: Target, temperature: float,
                    samples: Mapping[str, object] | None = None, xlim=(-2.2, 2.2),
                    title: str = "", bins: int = 120,
                    styles: Mapping[str, Mapping] | None = None) -> Figure:
    """Marginal densities `{label: (grid, density)}` and sample histograms `{label: x}` over the
    exact target density (black line, lightly filled), on one axis with fixed limits. Colours
    and line styles follow the labels (`styles_for`); `styles`: extra line keyword arguments per
    curve label (e.g. `{"before training": {"ls": "--"}}`)."""
    st = styles_for([*curves, *(samples or {})], styles)
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    grid = np.linspace(*xlim, 801)
    dens = target_density_1d(target, temperature, grid)
    ax.fill_between(grid, dens, color="0.9", lw=0)
    ax.plot(grid, dens, color=COLORS["target"], lw=1.0, label=r"target $e^{r/\mathcal{T}}/Z$")
    for label, x in (samples or {}).items():
        ax.hist(to_numpy(x).reshape(-1), bins=bins, range=xlim, density=True, histtype="step",
                color=st[label]["color"], alpha=0.6, label=f"{label} (samples)")
    for label, (g, d) in curves.items():
        ax.plot(to_numpy(g), to_numpy(d), label=label, **{"lw": 1.6, **_line_kw(st[label])})
    ax.set_xlim(*xlim)
    ax.set_xlabel(r"$a^0$")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_chain_1d(latents, n_show: int = 60, title: str = "",
                  label: str = r"diffusion chains $a^K \to a^0$") -> Figure:
    """Trajectories a^K -> a^0 of `n_show` chains; `latents` `(K + 1, B)` or `(K + 1, B, 1)`
    indexed by k (as `ChainSample.latents`). `label`: the legend entry of the chains."""
    lat = to_numpy(latents).reshape(latents.shape[0], -1)
    K = lat.shape[0] - 1
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    steps = np.arange(K, -1, -1)
    color = style(label)["color"] if label_kind(label) else COLORS["diffusion"]
    for b in range(min(n_show, lat.shape[1])):
        ax.plot(K - steps, lat[steps, b], color=color, alpha=0.25, lw=0.8,
                label=label if b == 0 else None)
    ax.set_xticks(range(K + 1), [str(k) for k in steps])
    ax.set_xlabel(r"diffusion index $k$ (denoising runs $K \to 0$)")
    ax.set_ylabel(r"$a^k$")
    ax.set_title(title)
    ax.legend(loc="upper right", frameon=False)
    return fig


_CMAPS = {"diffusion": "Blues", "dppo": "Blues", "gaussian": "Oranges", "target": "Greys"}


def plot_samples_2d(samples: Mapping[str, object], target: Target, temperature: float,
                    lim: float | None = None, bins: int = 80, title: str = "") -> Figure:
    """The exact 2-D target density next to a 2-D histogram of each sampler, equal aspect,
    identical axes, in the colour map of each label's family (diffusion blues, Gaussian
    oranges, target greys); a legend under the panels names them. `samples`: `{label: (n, 2)}`
    in the target's domain."""
    lim = lim or max(abs(target.bounds[0]), abs(target.bounds[1]))
    n = len(samples) + 1
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.1), sharex=True, sharey=True,
                             layout="constrained")
    xs = torch.linspace(-lim, lim, 201, dtype=torch.float64)
    mesh = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    dens = torch.softmax(target.reward(mesh) / temperature, 0).reshape(201, 201)
    axes[0].imshow(to_numpy(dens), origin="lower", extent=(-lim, lim, -lim, lim), cmap="Greys")
    axes[0].set_title(r"target $e^{r/\mathcal{T}}/Z$")
    handles = [Patch(color=plt.get_cmap("Greys")(0.7), label=r"target $e^{r/\mathcal{T}}/Z$")]
    for i, (ax, (label, x)) in enumerate(zip(axes[1:], samples.items(), strict=True)):
        x = to_numpy(x)
        cmap = _CMAPS.get(label_kind(label) or "", ("Greens", "Purples", "Reds")[i % 3])
        ax.hist2d(x[:, 0], x[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], cmap=cmap)
        ax.set_title(label)
        handles.append(Patch(color=plt.get_cmap(cmap)(0.7), label=label))
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlabel(r"$a_1$")
    axes[0].set_ylabel(r"$a_2$")
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    return fig


def plot_training_curves(histories: Mapping[str, Sequence[float]], t_log_z: float,
                         references: Mapping[str, float] | None = None, smooth: int = 20,
                         title: str = "") -> Figure:
    """Minibatch J_bound per training step (moving average over `smooth` steps) for each run,
    with T log Z (black) and other reference levels `{label: value}` as horizontal lines."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    st = styles_for(list(histories))
    for label, j in histories.items():
        j = np.asarray(j, dtype=float)
        w = max(1, min(smooth, len(j)))
        ma = np.convolve(j, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(len(ma)) + w - 1, ma, label=label, **_line_kw(st[label], len(ma)))
    _levels(ax, {r"$\mathcal{T}\log Z$": t_log_z, **(references or {})})
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$J_{bound}$ (minibatch)")
    ax.set_title(title)
    ax.legend(frameon=False, loc="lower right")
    return fig


def plot_bound_vs_steps(rows: Sequence[Mapping], t_log_z: float,
                        best_gaussian: float | None = None, title: str = "") -> Figure:
    """J_bound and J(marginal) against K, one line pair per noising-step pairing (shades of
    the diffusion blue; J(marginal) solid circles, J_bound dashed squares).

    `rows`: dicts with keys `K`, `pairing`, `j_bound`, `j_marginal`. J is in reward units
    (E[r] + T H).
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    pairings = sorted({r["pairing"] for r in rows})
    st = styles_for([f"diffusion, {p}" for p in pairings])
    for pairing in pairings:
        rs = sorted((r for r in rows if r["pairing"] == pairing), key=lambda r: r["K"])
        K = [r["K"] for r in rs]
        col = st[f"diffusion, {pairing}"]["color"]
        ax.plot(K, [r["j_marginal"] for r in rs], "o-", color=col,
                label=rf"$J$(marginal), {pairing}")
        ax.plot(K, [r["j_bound"] for r in rs], "s--", color=col, mfc="white",
                label=rf"$J_{{bound}}$, {pairing}")
    levels = {r"$\mathcal{T}\log Z$": t_log_z}
    if best_gaussian is not None:
        levels["best Gaussian"] = best_gaussian
    _levels(ax, levels)
    ax.set_xscale("log", base=2)
    Ks = sorted({r["K"] for r in rows})
    ax.set_xticks(Ks, [str(k) for k in Ks])
    ax.set_xlabel(r"denoising steps $K$")
    ax.set_ylabel("objective (reward units)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


# ---------------------------------------------------------------------------------------------
# Turning double-well (notebook 04): per-state action statistics, histogram grid, paths
# ---------------------------------------------------------------------------------------------

def plot_state_histograms(counts: Mapping[str, object], edges, target=None, reward=None,
                          state_labels: Sequence[str] | None = None,
                          colors: Mapping[str, object] | None = None, title: str = "") -> Figure:
    """Small multiples of per-state action histograms: rows = methods, columns = states.

    Args:
        counts: `{label: (S, bins)}` histogram counts (pool seeds by summing them first).
        edges: bin edges `(bins + 1,)`, shared by every row (fixed action range).
        target: optional `(grid, density)` of the exact optimum e^{r/T}/Z, drawn in black on
            every panel: `density` `(G,)` when the optimum is the same in every state, `(S, G)`
            when it differs (row s on column s, e.g. the turning GMM's heading bins).
        reward: optional `(grid, r)`, drawn in light grey scaled so that r = 1 is the top of
            the panel.
        state_labels: one column title per state (default "s0", "s1", ...).
        colors: `{label: colour}` (default: the house colours, `styles_for`).
    Returns the figure (a legend under the panels); y-axes are shared within a row.
    """
    edges = np.asarray(edges, dtype=float)
    width = np.diff(edges)
    labels = list(counts)
    st = styles_for(labels)
    S = to_numpy(counts[labels[0]]).shape[0]
    fig, axes = plt.subplots(len(labels), S, figsize=(1.25 * S + 0.6, 1.55 * len(labels) + 0.8),
                             sharex=True, sharey="row", squeeze=False, layout="constrained")
    handles = []
    for i, label in enumerate(labels):
        c = to_numpy(counts[label]).astype(float)
        dens = c / (c.sum(axis=1, keepdims=True) * width)  # (S, bins)
        top = dens.max()
        if target is not None:
            top = max(top, float(np.max(to_numpy(target[1]))))
        top *= 1.1
        col = (colors or {}).get(label, st[label]["color"])
        handles.append(Patch(color=col, alpha=0.55, label=label))
        for s in range(S):
            ax = axes[i, s]
            if reward is not None:
                ax.fill_between(to_numpy(reward[0]), 0, to_numpy(reward[1]) * top, color="0.92",
                                lw=0)
            ax.stairs(dens[s], edges, color=col, fill=True, alpha=0.55)
            if target is not None:
                tgt = np.asarray(to_numpy(target[1]))
                ax.plot(to_numpy(target[0]), tgt[s] if tgt.ndim == 2 else tgt,
                        color=COLORS["target"], lw=0.8)
            ax.set_ylim(0, top)
            ax.set_xlim(edges[0], edges[-1])
            if i == 0:
                ax.set_title(state_labels[s] if state_labels else f"s{s}", fontsize=8)
            if i == len(labels) - 1:
                ax.set_xlabel(r"$a$")
        axes[i, 0].set_ylabel(f"{label}\ndensity", fontsize=8)
    if target is not None:
        handles.append(Line2D([], [], color=COLORS["target"], lw=0.8,
                              label=r"optimum $e^{r/\mathcal{T}}/Z$"))
    if reward is not None:
        handles.append(Patch(color="0.92", label="reward r(a)"))
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
               frameon=False, fontsize=7)
    return fig


def plot_turning_paths(paths: Mapping[str, object], lim: float | None = None,
                       colors: Mapping[str, object] | None = None, title: str = "") -> Figure:
    """x-y paths of episodes, one panel per method, equal aspect and identical limits, a legend
    under the panels.

    `paths`: `{label: (E, T + 1, 2)}` positions (e.g. `rollout_paths(...)["positions"]`);
    every path starts at the origin (black dot).
    """
    labels = list(paths)
    st = styles_for(labels)
    arrs = [to_numpy(paths[k]).astype(float) for k in labels]
    lim = lim or 1.05 * max(float(np.abs(p).max()) for p in arrs)
    fig, axes = plt.subplots(1, len(labels), figsize=(2.7 * len(labels), 3.3),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    handles = []
    for ax, label, p in zip(axes[0], labels, arrs, strict=True):
        col = (colors or {}).get(label, st[label]["color"])
        for e in range(p.shape[0]):
            ax.plot(p[e, :, 0], p[e, :, 1], color=col, lw=0.7, alpha=0.6)
        ax.plot([0], [0], "o", color="black", ms=3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(label)
        ax.set_xlabel(r"$x$")
        handles.append(Line2D([], [], color=col, lw=1.2, label=label))
    handles.append(Line2D([], [], color="black", marker="o", ls="", ms=3, label="start"))
    axes[0, 0].set_ylabel(r"$y$")
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
               frameon=False, fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------------
# Notebook 03: multimodal bandits (mode masses, training traces)
# ---------------------------------------------------------------------------------------------


def plot_mode_masses(masses: Mapping[str, object], exact, mode_names: Sequence[str],
                     tol: float | None = 0.05, title: str = "") -> Figure:
    """Grouped bars of mode masses per policy, with the exact masses as black ticks and an
    optional grey ±`tol` band. `masses`: `{label: (M,)}`; `exact`: `(M,)`."""
    M = len(mode_names)
    st = styles_for(list(masses))
    fig, ax = plt.subplots(figsize=(max(3.2, 1.1 * M + 1.6), 3.0))
    width = 0.8 / max(1, len(masses))
    for i, (label, m) in enumerate(masses.items()):
        x = np.arange(M) - 0.4 + (i + 0.5) * width
        ax.bar(x, to_numpy(m), width=width * 0.95, color=st[label]["color"], label=label)
    e = np.asarray(to_numpy(exact), float)
    for j in range(M):
        if tol:
            ax.fill_between([j - 0.45, j + 0.45], e[j] - tol, e[j] + tol, color="0.6",
                            alpha=0.25, lw=0, label=f"exact ± {tol:g}" if j == 0 else None)
        ax.plot([j - 0.45, j + 0.45], [e[j], e[j]], color=COLORS["target"], lw=1.6,
                label="exact" if j == 0 else None)
    ax.set_xticks(range(M), list(mode_names))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mass")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_traces(traces: Mapping[str, tuple], hlines: Mapping[str, float] | None = None,
                xlabel: str = "env steps", ylabel: str = "", ylim=None, marker: str = "o",
                title: str = "") -> Figure:
    """Lines `{label: (x, y)}` (e.g. J_bound or a mode mass along training) with horizontal
    reference levels `{label: value}` (the target black, references grey, others dotted), on
    one axis. Points are marked with `marker` (`marker=""` for dense curves); an algorithm named
    in a label sets its own marker."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    st = styles_for(list(traces))
    for label, (x, y) in traces.items():
        kw = {k: v for k, v in st[label].items() if k != "marker"}
        mk = (st[label]["marker"] or marker) if marker else None
        ax.plot(to_numpy(x), to_numpy(y), marker=mk or None, ms=3, label=label, **kw)
    _levels(ax, hlines)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_seed_bars(values: Mapping[str, Mapping[str, Sequence]], ylabel: str,
                   hlines: Mapping[str, float] | None = None, log: bool = False,
                   title: str = "") -> Figure:
    """Grouped bars of the mean over seeds with a dot per seed: `values[group][label]` holds the
    seed values of `label` in the x-group `group` (e.g. a target or a K). A value that is None
    or not finite (a run without that number) is left out of the mean and marked by an x at
    the bottom of the axis. Colours follow the labels (`styles_for`); `hlines` `{label: value}`
    are reference levels as in `plot_traces`; `log` puts the y axis on a log scale. The legend
    sits to the right of the axes."""
    groups = list(values)
    labels = list(dict.fromkeys(lab for g in groups for lab in values[g]))
    st = styles_for(labels)
    fig, ax = plt.subplots(figsize=(max(5.6, 1.6 * len(groups) + 3.6), 3.0))
    width, missing = 0.8 / max(1, len(labels)), False
    for i, label in enumerate(labels):
        named = False
        for j, group in enumerate(groups):
            vals = [float(v) if v is not None else np.nan for v in values[group].get(label, [])]
            ok = [v for v in vals if np.isfinite(v)]
            x = j - 0.4 + (i + 0.5) * width
            if ok:
                ax.bar(x, float(np.mean(ok)), width=0.95 * width, color=st[label]["color"],
                       alpha=0.85, label=None if named else label)
                named = True
                ax.plot([x] * len(ok), ok, "o", color="0.15", ms=2.5,
                        label="seeds" if i == j == 0 else None)
            for _ in range(len(vals) - len(ok)):
                missing = True
                ax.plot(x, 0.02, "x", color=st[label]["color"], ms=6, mew=1.5,
                        transform=ax.get_xaxis_transform(), clip_on=False)
        if not named:  # no bar anywhere: the label's crosses still need a legend entry
            ax.plot([], [], "x", color=st[label]["color"], mew=1.5, label=f"{label} (no value)")
    if missing:
        ax.plot([], [], "x", color="0.3", label="no value (run escaped)")
    _levels(ax, hlines)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def write_video(frames: Sequence[np.ndarray], path: str, fps: int = 30) -> str:
    """Write RGB frames `(H, W, 3)` uint8 to `path` (.mp4 via imageio-ffmpeg, .gif via Pillow).

    Returns the path. Raises `ValueError` for no frames or another extension.
    """
    import imageio.v2 as imageio

    if len(frames) == 0:
        raise ValueError("frames is empty; render with render_mode='rgb_array' (and MUJOCO_GL)")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".gif"):
        raise ValueError(f"video={path!r} must end in .mp4 or .gif")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".mp4":
        imageio.mimwrite(path, list(frames), fps=fps, macro_block_size=1)
    else:
        imageio.mimwrite(path, list(frames), duration=1000 / fps, loop=0)
    return path


def compact_png(fig: Figure, colors: int = 64) -> bytes:
    """`fig` as a PNG of at most `colors` palette colours (`Image.quantize`), at the figure's dpi.

    A figure of many noisy lines (several runs' diagnostics) makes a large RGBA PNG; its palette
    twin is about a quarter of the size and looks the same, which keeps a notebook that shows
    several such figures small enough to open quickly on Binder and Colab."""
    import io

    from PIL import Image

    if isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256:
        raise ValueError(f"colors={colors!r} must be an integer from 2 to 256 (a PNG palette)")
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", bbox_inches="tight")
    rgba.seek(0)
    image = Image.open(rgba).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def show_compact(fig: Figure, colors: int = 64) -> None:
    """Show `fig` in a notebook as its `compact_png` and close it (so it is not shown twice).

    Use it in place of `plt.show()` for figures of many lines; save the full-colour figure
    with `fig.savefig` first if a file is wanted."""
    from IPython.display import Image, display

    data = compact_png(fig, colors)
    plt.close(fig)
    display(Image(data=data, format="png"))


# ---------------------------------------------------------------------------------------------
# Returns (notebooks 05-06)
# ---------------------------------------------------------------------------------------------


def plot_returns(ax: Axes, curves: Mapping[str, tuple], random: float | None = None,
                 pinned: float | None = None, anchor: float | None = None,
                 reference_labels: Mapping[str, str] | None = None) -> Axes:
    """Return curves `{label: (env_steps, return)}` or `{label: (env_steps, mean, low, high)}`
    (a CI band) on `ax` in the house styles, the grey `reference_lines` and a legend: what a
    training panel draws. Returns `ax`."""
    st = styles_for(list(curves))
    for label, curve in curves.items():
        x, y, *band = (to_numpy(np.asarray(c, float)) for c in curve)
        ax.plot(x, y, label=label, **_line_kw(st[label], len(x)))
        if band:
            ax.fill_between(x, band[0], band[1], color=st[label]["color"], alpha=0.2, lw=0)
    reference_lines(ax, random, pinned, anchor, reference_labels)
    ax.set(xlabel="env steps", ylabel="training episodic return")
    ax.legend(fontsize=8, frameon=False, loc="best")
    return ax


def plot_learning_curves(summaries: Mapping[str, Mapping[str, Mapping]],
                         anchors: Mapping[str, float] | None = None,
                         labels: Mapping[str, str] | None = None,
                         random: Mapping[str, float] | None = None,
                         pinned: Mapping[str, float] | None = None,
                         reference_labels: Mapping[str, str] | None = None) -> Figure:
    """One panel per env: mean training return over seeds with its 95% bootstrap CI band, in
    the house styles (`styles_for` of the labels), with grey reference levels per env.

    Args:
        summaries: `summaries[env_id][algo]`, a `damdp_lite.results.summarise` entry.
        anchors: `{env_id: return}` of a published run, dash-dot (default label "CleanRL PPO
            v4 @ 1M", `results.CLEANRL_PPO_V4_1M`).
        labels: `{algo: legend label}` (default: the algo name).
        random: `{env_id: return}` of the random policy (`report.random_policy_return`), dashed.
        pinned: `{env_id: return}` of a pinned action (`report.pinned_action_return`), dotted.
        reference_labels: legend labels of the references (`reference_lines`).
    """
    setup_style()
    fig, axes = plt.subplots(1, len(summaries), figsize=(5.2 * len(summaries), 3.6),
                             squeeze=False)
    names = {"anchor": "CleanRL PPO v4 @ 1M", **(reference_labels or {})}
    for ax, (env_id, by_algo) in zip(axes[0], summaries.items(), strict=True):
        curves = {f"{(labels or {}).get(algo, algo)} ({s['seeds']} seeds)":
                  (s["grid"], s["mean"], s["low"], s["high"]) for algo, s in by_algo.items()}
        plot_returns(ax, curves, (random or {}).get(env_id), (pinned or {}).get(env_id),
                     (anchors or {}).get(env_id), names)
        ax.set_title(env_id)
        ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_diagnostics(runs: Mapping[str, Sequence[Mapping[str, float]]],
                     panels: Sequence[tuple[str, str]],
                     levels: Mapping[str, Mapping[str, float]] | None = None,
                     log_columns: Sequence[str] = (), smooth: int = 8,
                     vline: float | None = None, ncols: int = 3,
                     overrides: Mapping[str, Mapping] | None = None) -> Figure:
    """A panel per progress.csv column, a line per run, over env steps: how the training
    diagnostics of several runs move together (e.g. a temperature that runs away).

    Args:
        runs: `{label: rows}`, rows as `results.read_progress` gives them (the label sets the
            style, as everywhere: "DA-MDP REPPO s0" blue, "REPPO s0" orange).
        panels: `(column, title)` per panel; blank (nan) values are skipped.
        levels: `{column: {label: value}}` horizontal levels of a panel (`_levels` styles).
        log_columns: columns drawn on a log scale.
        smooth: iterations (rows) in the trailing moving mean of each line (1: raw); a column
            logged now and then (an evaluation) is drawn raw where its logs are further apart.
        vline: an env-step count marked by a grey vertical line (e.g. where a budget ended).
        ncols: panels per row.
        overrides: style keys per run label (`styles_for`), e.g. `{"... fixed T s0": {"ls": ":"}}`.
    """
    setup_style()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 2.9 * nrows), squeeze=False)
    st = styles_for(list(runs), overrides)
    for ax, (column, title) in zip(list(axes.flat)[:len(panels)], panels, strict=True):
        for label, rows in runs.items():
            x = np.array([r["env_steps"] for r in rows], float)
            y = np.array([r.get(column, np.nan) for r in rows], float)
            keep = np.isfinite(y)
            if smooth > 1:  # the mean of the values logged in the last `smooth` iterations
                c = np.cumsum(np.insert(np.where(keep, y, 0.0), 0, 0.0))
                n = np.cumsum(np.insert(keep, 0, False).astype(float))
                lo = np.maximum(np.arange(len(y)) + 1 - smooth, 0)
                y = (c[1:] - c[lo]) / np.maximum(n[1:] - n[lo], 1)
            x, y = x[keep], y[keep]
            ax.plot(x, y, label=label, **_line_kw(st[label], len(x)))
        if (levels or {}).get(column):
            _levels(ax, levels[column])
            ax.legend(handles=ax.lines[-len(levels[column]):], fontsize=7, frameon=False)
        if vline is not None:
            ax.axvline(vline, color=COLORS["reference"], lw=0.8, ls="-")
        if column in log_columns:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    spare = list(axes.flat)[len(panels):]
    for ax in spare:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    n_runs = len(runs)  # the run lines come first; a panel's levels keep their own legend
    (spare[0] if spare else axes.flat[0]).legend(handles[:n_runs], names[:n_runs], fontsize=7,
                                                 frameon=False, loc="center" if spare else "best")
    return fig
