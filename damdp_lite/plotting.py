"""Pure plotting functions: data and parameters in, a matplotlib `Figure` out; they never train.

`setup_style()` sets the one house style (figure size, dpi, fonts, colour-blind-safe cycle).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

from .targets import Target
from .utils import to_numpy

PALETTE = sns.color_palette("colorblind")
COLORS = {"target": "black", "diffusion": PALETTE[0], "gaussian": PALETTE[1],
          "previous": PALETTE[0], "same": PALETTE[2], "dppo": PALETTE[3]}


def setup_style() -> None:
    """House style: 4x3 in figures, 90 dpi, readable fonts, a colour-blind-safe cycle."""
    plt.rcParams.update({
        "figure.figsize": (4.0, 3.0), "figure.dpi": 90, "savefig.dpi": 90,
        "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 8,
        "axes.prop_cycle": plt.cycler(color=PALETTE), "axes.spines.top": False,
        "axes.spines.right": False, "figure.constrained_layout.use": True,
    })


def _color(label: str, i: int):
    for key, col in COLORS.items():
        if key in label.lower():
            return col
    return PALETTE[i % len(PALETTE)]



def target_density_1d(target: Target, temperature: float, grid) -> np.ndarray:
    """pi*(x) = exp(r(x)/T) / Z on a 1-D grid (latent targets) or on actions in [-1, 1]."""
    g = torch.as_tensor(to_numpy(grid), dtype=torch.float64)[:, None]
    return np.exp(to_numpy(target.log_density(g, temperature)))


def plot_density_1d(curves: Mapping[str, tuple], target: Target, temperature: float,
                    samples: Mapping[str, object] | None = None, xlim=(-2.2, 2.2),
                    title: str = "", bins: int = 120,
                    styles: Mapping[str, Mapping] | None = None) -> Figure:
    """Marginal densities `{label: (grid, density)}` and sample histograms `{label: x}` over the
    exact target density, on one axis with fixed limits. `styles`: extra line keyword
    arguments per curve label (e.g. `{"best Gaussian": {"ls": "--", "color": "0.3"}}`)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    grid = np.linspace(*xlim, 801)
    ax.fill_between(grid, target_density_1d(target, temperature, grid), color="0.85",
                    label=r"target $e^{r/\mathcal{T}}/Z$")
    for i, (label, x) in enumerate((samples or {}).items()):
        ax.hist(to_numpy(x).reshape(-1), bins=bins, range=xlim, density=True, histtype="step",
                color=_color(label, i), alpha=0.6, label=f"{label} (samples)")
    for i, (label, (g, d)) in enumerate(curves.items()):
        kw = {"color": _color(label, i), "lw": 1.6, **(styles or {}).get(label, {})}
        ax.plot(to_numpy(g), to_numpy(d), label=label, **kw)
    ax.set_xlim(*xlim)
    ax.set_xlabel(r"$a^0$")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_chain_1d(latents, n_show: int = 60, title: str = "") -> Figure:
    """Trajectories a^K -> a^0 of `n_show` chains; `latents` `(K + 1, B)` or `(K + 1, B, 1)`
    indexed by k (as `ChainSample.latents`)."""
    lat = to_numpy(latents).reshape(latents.shape[0], -1)
    K = lat.shape[0] - 1
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    steps = np.arange(K, -1, -1)
    for b in range(min(n_show, lat.shape[1])):
        ax.plot(K - steps, lat[steps, b], color=COLORS["diffusion"], alpha=0.25, lw=0.8)
    ax.set_xticks(range(K + 1), [str(k) for k in steps])
    ax.set_xlabel(r"diffusion index $k$ (denoising runs $K \to 0$)")
    ax.set_ylabel(r"$a^k$")
    ax.set_title(title)
    return fig


def plot_samples_2d(samples: Mapping[str, object], target: Target, temperature: float,
                    lim: float | None = None, bins: int = 80, title: str = "") -> Figure:
    """The exact 2-D target density next to a 2-D histogram of each sampler, equal aspect,
    identical axes. `samples`: `{label: (n, 2)}` in the target's domain."""
    lim = lim or max(abs(target.bounds[0]), abs(target.bounds[1]))
    n = len(samples) + 1
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.7), sharex=True, sharey=True)
    xs = torch.linspace(-lim, lim, 201, dtype=torch.float64)
    mesh = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    dens = torch.softmax(target.reward(mesh) / temperature, 0).reshape(201, 201)
    axes[0].imshow(to_numpy(dens), origin="lower", extent=(-lim, lim, -lim, lim), cmap="Greys")
    axes[0].set_title(r"target $e^{r/\mathcal{T}}/Z$")
    for ax, (label, x) in zip(axes[1:], samples.items(), strict=True):
        x = to_numpy(x)
        ax.hist2d(x[:, 0], x[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], cmap="Blues")
        ax.set_title(label)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlabel(r"$a_1$")
    axes[0].set_ylabel(r"$a_2$")
    if title:
        fig.suptitle(title)
    return fig


def plot_training_curves(histories: Mapping[str, Sequence[float]], t_log_z: float,
                         references: Mapping[str, float] | None = None, smooth: int = 20,
                         title: str = "") -> Figure:
    """Minibatch J_bound per training step (moving average over `smooth` steps) for each run,
    with T log Z and other reference levels as horizontal lines."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for i, (label, j) in enumerate(histories.items()):
        j = np.asarray(j, dtype=float)
        w = max(1, min(smooth, len(j)))
        ma = np.convolve(j, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(len(ma)) + w - 1, ma, color=_color(label, i), label=label)
    ax.axhline(t_log_z, color="black", ls="--", lw=1, label=r"$\mathcal{T}\log Z$")
    for i, (label, v) in enumerate((references or {}).items()):
        ax.axhline(v, color=PALETTE[(i + 4) % len(PALETTE)], ls=":", lw=1, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$J_{bound}$ (minibatch)")
    ax.set_title(title)
    ax.legend(frameon=False, loc="lower right")
    return fig


def plot_bound_vs_steps(rows: Sequence[Mapping], t_log_z: float,
                        best_gaussian: float | None = None, title: str = "") -> Figure:
    """J_bound and J(marginal) against K, one line pair per noising-step pairing.

    `rows`: dicts with keys `K`, `pairing`, `j_bound`, `j_marginal`.
    """
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for pairing in sorted({r["pairing"] for r in rows}):
        rs = sorted((r for r in rows if r["pairing"] == pairing), key=lambda r: r["K"])
        K = [r["K"] for r in rs]
        col = _color(pairing, 0)
        ax.plot(K, [r["j_marginal"] for r in rs], "o-", color=col,
                label=rf"$J$(marginal), {pairing}")
        ax.plot(K, [r["j_bound"] for r in rs], "s--", color=col, mfc="white",
                label=rf"$J_{{bound}}$, {pairing}")
    ax.axhline(t_log_z, color="black", lw=1, label=r"$\mathcal{T}\log Z$")
    if best_gaussian is not None:
        ax.axhline(best_gaussian, color=COLORS["gaussian"], ls=":", lw=1.2, label="best Gaussian")
    ax.set_xscale("log", base=2)
    Ks = sorted({r["K"] for r in rows})
    ax.set_xticks(Ks, [str(k) for k in Ks])
    ax.set_xlabel(r"denoising steps $K$")
    ax.set_ylabel("objective (nats)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


# ---------------------------------------------------------------------------------------------
# Turning double-well (notebook 03): per-state action statistics, histogram grid, paths
# ---------------------------------------------------------------------------------------------

def plot_state_histograms(counts: Mapping[str, object], edges, target=None, reward=None,
                          state_labels: Sequence[str] | None = None,
                          colors: Mapping[str, object] | None = None, title: str = "") -> Figure:
    """Small multiples of per-state action histograms: rows = methods, columns = states.

    Args:
        counts: `{label: (S, bins)}` histogram counts (pool seeds by summing them first).
        edges: bin edges `(bins + 1,)`, shared by every row (fixed action range).
        target: optional `(grid, density)` of the exact optimum e^{r/T}/Z, drawn in black on
            every panel (the optimum is the same in every state).
        reward: optional `(grid, r)`, drawn in light grey scaled so that r = 1 is the top of
            the panel.
        state_labels: one column title per state (default "s0", "s1", ...).
        colors: `{label: colour}` (default: the house colours).
    Returns the figure; y-axes are shared within a row.
    """
    edges = np.asarray(edges, dtype=float)
    width = np.diff(edges)
    labels = list(counts)
    S = to_numpy(counts[labels[0]]).shape[0]
    fig, axes = plt.subplots(len(labels), S, figsize=(1.25 * S + 0.6, 1.55 * len(labels) + 0.5),
                             sharex=True, sharey="row", squeeze=False)
    for i, label in enumerate(labels):
        c = to_numpy(counts[label]).astype(float)
        dens = c / (c.sum(axis=1, keepdims=True) * width)  # (S, bins)
        top = dens.max()
        if target is not None:
            top = max(top, float(np.max(to_numpy(target[1]))))
        top *= 1.1
        col = (colors or {}).get(label, _color(label, i))
        for s in range(S):
            ax = axes[i, s]
            if reward is not None:
                ax.fill_between(to_numpy(reward[0]), 0, to_numpy(reward[1]) * top, color="0.92",
                                lw=0)
            ax.stairs(dens[s], edges, color=col, fill=True, alpha=0.55)
            if target is not None:
                ax.plot(to_numpy(target[0]), to_numpy(target[1]), color=COLORS["target"], lw=0.8)
            ax.set_ylim(0, top)
            ax.set_xlim(edges[0], edges[-1])
            if i == 0:
                ax.set_title(state_labels[s] if state_labels else f"s{s}", fontsize=8)
            if i == len(labels) - 1:
                ax.set_xlabel(r"$a$")
        axes[i, 0].set_ylabel(f"{label}\ndensity", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_turning_paths(paths: Mapping[str, object], lim: float | None = None,
                       colors: Mapping[str, object] | None = None, title: str = "") -> Figure:
    """x-y paths of episodes, one panel per method, equal aspect and identical limits.

    `paths`: `{label: (E, T + 1, 2)}` positions (e.g. `rollout_paths(...)["positions"]`);
    every path starts at the origin (black dot).
    """
    labels = list(paths)
    arrs = [to_numpy(paths[k]).astype(float) for k in labels]
    lim = lim or 1.05 * max(float(np.abs(p).max()) for p in arrs)
    fig, axes = plt.subplots(1, len(labels), figsize=(2.7 * len(labels), 2.9),
                             sharex=True, sharey=True, squeeze=False)
    for i, (ax, label, p) in enumerate(zip(axes[0], labels, arrs, strict=True)):
        col = (colors or {}).get(label, _color(label, i))
        for e in range(p.shape[0]):
            ax.plot(p[e, :, 0], p[e, :, 1], color=col, lw=0.7, alpha=0.6)
        ax.plot([0], [0], "o", color="black", ms=3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(label)
        ax.set_xlabel(r"$x$")
    axes[0, 0].set_ylabel(r"$y$")
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------------
# Notebook 02: multimodal bandits (mode masses, training traces)
# ---------------------------------------------------------------------------------------------


def plot_mode_masses(masses: Mapping[str, object], exact, mode_names: Sequence[str],
                     tol: float | None = 0.05, title: str = "") -> Figure:
    """Grouped bars of mode masses per policy, with the exact masses as black ticks and an
    optional ±`tol` band. `masses`: `{label: (M,)}`; `exact`: `(M,)`."""
    M = len(mode_names)
    fig, ax = plt.subplots(figsize=(max(3.2, 1.1 * M + 1.6), 3.0))
    width = 0.8 / max(1, len(masses))
    for i, (label, m) in enumerate(masses.items()):
        x = np.arange(M) - 0.4 + (i + 0.5) * width
        ax.bar(x, to_numpy(m), width=width * 0.95, color=_color(label, i), label=label)
    e = np.asarray(to_numpy(exact), float)
    for j in range(M):
        if tol:
            ax.fill_between([j - 0.45, j + 0.45], e[j] - tol, e[j] + tol, color="0.6",
                            alpha=0.25, lw=0)
        ax.plot([j - 0.45, j + 0.45], [e[j], e[j]], color="black", lw=1.6,
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
    reference levels `{label: value}`, on one axis (`marker=""` for dense curves)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.0))
    for i, (label, (x, y)) in enumerate(traces.items()):
        ax.plot(to_numpy(x), to_numpy(y), marker=marker or None, ms=3, color=_color(label, i),
                label=label)
    for i, (label, v) in enumerate((hlines or {}).items()):
        ax.axhline(v, color="black" if i == 0 else PALETTE[(i + 4) % len(PALETTE)],
                   ls="--" if i == 0 else ":", lw=1, label=label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7)
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


def plot_learning_curves(summaries: Mapping[str, Mapping[str, Mapping]],
                         anchors: Mapping[str, float] | None = None,
                         labels: Mapping[str, str] | None = None) -> Figure:
    """One panel per env: mean training return over seeds with its 95% bootstrap CI band.

    `summaries[env_id][algo]` is a `damdp_lite.results.summarise` entry; `anchors[env_id]` is
    drawn as a dotted line (e.g. CleanRL's PPO at 1M steps).
    """
    setup_style()
    fig, axes = plt.subplots(1, len(summaries), figsize=(5.2 * len(summaries), 3.6),
                             squeeze=False)
    for ax, (env_id, by_algo) in zip(axes[0], summaries.items(), strict=True):
        for i, (algo, s) in enumerate(by_algo.items()):
            label = (labels or {}).get(algo, algo)
            c = _color(label, i)
            ax.plot(s["grid"], s["mean"], color=c, label=f"{label} ({s['seeds']} seeds)")
            ax.fill_between(s["grid"], s["low"], s["high"], color=c, alpha=0.2, lw=0)
        if anchors and env_id in anchors:
            ax.axhline(anchors[env_id], ls=":", color="0.3", lw=1,
                       label="CleanRL PPO v4 @ 1M")
        ax.set(title=env_id, xlabel="env steps", ylabel="training episodic return")
        ax.legend(fontsize=8, loc="upper left")
    return fig
