"""Pure plotting functions: data and parameters in, a matplotlib `Figure` out; they never train.

`setup_style()` sets the one house style (figure size, dpi, fonts, colour-blind-safe cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

from .targets import Target

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


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def target_density_1d(target: Target, temperature: float, grid) -> np.ndarray:
    """pi*(x) = exp(r(x)/T) / Z on a 1-D grid (latent targets) or on actions in [-1, 1]."""
    g = torch.as_tensor(_np(grid), dtype=torch.float64)[:, None]
    return np.exp(_np(target.log_density(g, temperature)))


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
        ax.hist(_np(x).reshape(-1), bins=bins, range=xlim, density=True, histtype="step",
                color=_color(label, i), alpha=0.6, label=f"{label} (samples)")
    for i, (label, (g, d)) in enumerate(curves.items()):
        kw = {"color": _color(label, i), "lw": 1.6, **(styles or {}).get(label, {})}
        ax.plot(_np(g), _np(d), label=label, **kw)
    ax.set_xlim(*xlim)
    ax.set_xlabel(r"$a^0$")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_chain_1d(latents, n_show: int = 60, title: str = "") -> Figure:
    """Trajectories a^K -> a^0 of `n_show` chains; `latents` `(K + 1, B)` or `(K + 1, B, 1)`
    indexed by k (as `ChainSample.latents`)."""
    lat = _np(latents).reshape(latents.shape[0], -1)
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
    axes[0].imshow(_np(dens), origin="lower", extent=(-lim, lim, -lim, lim), cmap="Greys")
    axes[0].set_title(r"target $e^{r/\mathcal{T}}/Z$")
    for ax, (label, x) in zip(axes[1:], samples.items(), strict=True):
        x = _np(x)
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
