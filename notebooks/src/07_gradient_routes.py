# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext.text_representation.extension,jupytext.text_representation.format_name,jupytext.notebook_metadata_filter,jupytext.cell_metadata_filter,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/damdp-lite/damdp_lite/blob/main/notebooks/07_gradient_routes.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/damdp-lite/damdp_lite/HEAD?urlpath=lab/tree/notebooks/07_gradient_routes.ipynb)

# %% [markdown]
# *This notebook is generated from `notebooks/src/07_gradient_routes.py` (jupytext): edit that file, then run `make notebooks-sync`.*

# %% [markdown]
# # 07 · Four gradient routes through one diffusion policy
#
# A diffusion policy acts through a chain $a^K\to\dots\to a^0$ whose marginal density is intractable, so "the policy
# gradient" has no single obvious form. The DA-MDP paper (arXiv 2512.02019) optimises **one denoising step at a
# time** on the diffusion-augmented MDP. Three other routes are in use: **back-propagating through the whole chain**
# (DIME, Celik et al. 2025, arXiv 2502.02316, and the paper's REPPO-DiME baseline), **dropping the entropy** (DPPO,
# Ren et al. 2024, arXiv 2409.00588) and a **likelihood-ratio surrogate built from a denoising loss** (FPO,
# McAllister et al. 2025, arXiv 2507.21053). This notebook writes all four as surrogate losses for one sampler
# ([`docs/method.md`](../docs/method.md) §5.7), checks which gradient each one estimates, and compares them on the two
# targets of notebook 01 with one budget: gradient variance, memory and time against $K$, and what they learn.
#
# *The end result of §5 is the first figure after the setup cell.*

# %% [markdown]
# **Learning goals**
# - *Write* the four routes as surrogate losses, and *say* which objective the gradient of each one estimates.
# - *Check* by Monte Carlo that the DA-MDP's per-step estimator and back-propagation through the chain estimate the same
#   gradient, and that the other two do not.
# - *Implement* the FPO-style ratio of two Monte Carlo ELBOs (exercise 7.1).
# - *Compare* variance, memory and time against $K$ and the learned densities, and *decide* where each route wins.
#
# **Prerequisites:** [`01_reverse_kl_bound`](01_reverse_kl_bound.ipynb) (the bound $J_{bound}$, the exact marginal, the dip ratio) and
# [`02_maxent_rl_to_damdp`](02_maxent_rl_to_damdp.ipynb) (the DA-MDP, per-step soft rewards, DiffPPO's clipped
# per-step surrogate); PPO's clipped ratio. Symbols as in [`docs/notation.md`](../docs/notation.md).
#
# **Estimated time:** reading ~30 min. Running top to bottom takes about a minute on 2 CPU cores at the teaching
# defaults, most of it one live training run per route (the last cell prints the measured time), and seconds with
# `DAMDP_SMOKE=1`. The multi-seed comparisons are read from `damdp_lite/shipped/07_gradient_routes.json`, made by
# `python benchmarks/gradient_routes.py` (§4 prints how long it took).

# %%
# NBVAL_IGNORE_OUTPUT
# Setup. On Colab this installs the package and what Colab lacks (under a minute), keeping Colab's own torch,
# NumPy, SciPy, Matplotlib and ipywidgets; locally `make lab` has already done it.
import os
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:  # DAMDP_INSTALL, when set, is installed instead (tests/colab/ installs a local checkout with it)
    DAMDP_INSTALL = os.environ.get("DAMDP_INSTALL", "damdp-lite @ git+https://github.com/damdp-lite/damdp_lite@main")
    # %pip install -q "$DAMDP_INSTALL"
    import damdp_lite  # noqa: F401  imported first: it says "restart" if pip replaced a package already imported

import json
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

import damdp_lite as dl
from damdp_lite import exercises, plotting, results, widgets
from damdp_lite import routes as R
from damdp_lite.diffusion import DiffusionConfig
from damdp_lite.presets import ROUTE_SAMPLER, ROUTE_TRAINING, route_config, route_policy, route_target

NOTEBOOK_START = time.perf_counter()
SMOKE = dl.smoke()  # DAMDP_SMOKE=1 shrinks every loop (CI); the teaching defaults otherwise
torch.set_num_threads(1)  # same numbers on every run (floats can differ between CPU models); these toys do not gain from more
torch.set_printoptions(precision=4)
np.set_printoptions(precision=4, suppress=True)
dl.seed_everything(0)
plotting.setup_style()
RES = json.loads(results.shipped("07_gradient_routes.json").read_text())  # benchmarks/gradient_routes.py
LABEL = {name: r["label"] for name, r in RES["routes"].items()}
print(f"damdp_lite {dl.__version__} | torch {torch.__version__} | SMOKE={SMOKE}")


def per_seed(key, target, runs=None):
    """{route label: [value of `key` in each seed's run]} from the shipped runs of one target (None: no value)."""
    runs = RES["runs"] if runs is None else runs
    return {LABEL[name]: [r.get(key) for r in runs if r["target"] == target and r["route"] == name]
            for name in RES["routes"]}


# %% [markdown]
# **End result** (§5, read from the shipped benchmark): the true MaxEnt objective $J$(marginal) of the sampler each route
# trained on the double well, per seed, with one budget. An × marks a run whose samples escaped the target's range (no
# exact $J$); the black line is the optimum $\mathcal T\log Z$, the dotted one the best any Gaussian can do.

# %%
DW = RES["targets"]["double_well"]
fig = plotting.plot_seed_bars(
    {"double well": per_seed("j_marginal", "double_well")}, r"$J$(marginal), exact",
    hlines={r"$\mathcal{T}\log Z$": DW["t_log_z"], "best Gaussian": DW["best_gaussian"]["j"]},
    title=f"What each route learns on the double well ({len(RES['seeds'])} seeds, T = {DW['temperature']})")
plt.show()

# %% [markdown]
# ## 1 · One objective, four gradient estimates
#
# The setting is notebook 01's: no state, a reward $r(a^0)$, a temperature $\mathcal T$ and a $K$-step sampler with prior
# $p_0$, denoising kernels $q_\theta$ and noising kernels $\pi_\theta$. The certified objective is
# $$J_{bound}(\theta)=\mathbb E\big[r(a^0)\big]+\mathcal T\,\mathcal H(p_0)-\mathcal T\,\mathbb E\Big[\textstyle\sum_{k=1}^K\ell_k\Big],\qquad
# \ell_k=\log q_\theta(a^{k-1}\mid a^k)-\log\pi_\theta(a^k\mid a^{k-1}). \tag{1}$$
# Per chain write the soft return $G=r(a^0)-\mathcal T\sum_k\ell_k$ and the return-to-go of the step $a^k\to a^{k-1}$
# (both are the TD($\lambda$) target $G$ of [`docs/notation.md`](../docs/notation.md) at $\gamma=\lambda=1$ with $V\equiv0$),
# $G_k=r(a^0)-\mathcal T\sum_{j\le k}\ell_j$: the sum of the DA-MDP's per-step soft rewards from that step on
# ([`docs/method.md`](../docs/method.md) §4.4). Each route below is a scalar loss $L$ whose gradient estimates $-\nabla_\theta J$
# for one batch of $B$ chains (`damdp_lite/routes.py`).
#
# **(a) The DA-MDP, one step at a time** ([`docs/method.md`](../docs/method.md) §4.3, §5.3; the paper, arXiv 2512.02019).
# Each chain is $K$ augmented transitions; each has its own ratio $w_\theta=q_\theta(a^{k-1}\mid a^k)/q_{old}(a^{k-1}\mid a^k)$,
# its own advantage $\hat A$ (from $G_k$, centred by the batch mean) and its own clip:
# $$L_a=K\Big[-\operatorname{mean}_{\text{transitions}}\min\big(w_\theta\hat A,\ \operatorname{clip}(w_\theta,1\pm\epsilon_{clip})\hat A\big)+L_{dest}\Big],\qquad
# L_{dest}=-\mathcal T\operatorname{mean}_{\text{unclipped}}\big[\operatorname{sg}(w_\theta)\log\pi_\theta(a^k\mid a^{k-1})\big]. \tag{2}$$
# $L_{dest}$ (`algos.ppo.dest_loss`, [`docs/method.md`](../docs/method.md) §4.3) is the paper's appendix-G term: $\ell_k$
# depends on $\theta$ also through $\log\pi_\theta$ (the noising kernel shares the step sizes), which the ratio does not
# see; it gives the noising kernel's step sizes their gradient and is 0 at $\mathcal T=0$. This is DiffPPO's actor loss (`algos.ppo.policy_loss`, `dest_loss`, `actor_advantage`),
# times $K$ so that it refers to a whole chain. On-policy ($w=1$) its expected gradient is $-\nabla J_{bound}$, up to an
# $O(1/B)$ bias from using the batch's own mean as the baseline (the same holds for (c)).
#
# **(b) Through the whole chain** (notebook 01; DIME, arXiv 2502.02316). Reparameterise every step,
# $a^{k-1}=\mu_\theta(a^k)+\sqrt{2\eta_k}\,\varepsilon_k$, and differentiate (1) end to end:
# $$L_b=-\operatorname{mean}_{\text{chains}}\Big[r(a^0)+\mathcal T\mathcal H(p_0)-\mathcal T\textstyle\sum_k\ell_k\Big]. \tag{3}$$
# That is `bound.bound_loss` itself (`routes.pathwise_bound_loss`). Unbiased for the same gradient as (a); it uses
# $\nabla_a r$, which (a) never does.
#
# **(c) DPPO** (arXiv 2409.00588): (2) at $\mathcal T=0$, i.e. soft rewards without the $-\mathcal T\ell_k$ terms:
# $$L_c=L_a\big|_{\mathcal T=0},\qquad \mathbb E\,\nabla L_c=-\nabla\,\mathbb E\big[r(a^0)\big]. \tag{4}$$
#
# **(d) FPO-style** (arXiv 2507.21053). Treat $a^0$ as the action and replace its intractable likelihood ratio by a ratio of
# Monte Carlo evidence lower bounds (ELBOs). With the noising chain as the variational posterior,
# $\log q_\theta(a^0)\ge\mathbb E_{a^{1:K}\sim\pi_\theta(\cdot\mid a^0)}\big[\log p_0(a^K)+\sum_k\ell_k\big]$, estimated from $M$ draws of a
# noising chain and one step $k_m\sim U\{1..K\}$ each:
# $$\widehat{\mathrm{ELBO}}(a^0)=\frac1M\sum_{m=1}^M\Big[\log p_0(a^K_m)+K\,\ell_{k_m}\Big],\qquad
# \hat r=\exp\big(\widehat{\mathrm{ELBO}}_\theta-\operatorname{sg}\widehat{\mathrm{ELBO}}_{old}\big),\qquad
# L_d=-\operatorname{mean}_{\text{chains}}\min\big(\hat rA,\ \operatorname{clip}(\hat r,1\pm\epsilon_{clip})A\big), \tag{5}$$
# with the same draws in both ELBOs and $A=G-\operatorname{mean}G$ (the whole chain is one action, so only a state baseline is
# allowed, and there is no state).
#
# > **Note** FPO itself builds its ratio from conditional flow-matching losses, $\exp(\hat L_{CFM,old}-\hat L_{CFM,\theta})$, with
# > shared draws of flow time and noise; it relates that loss to an ELBO. Our analogue (5) is the *exact* ELBO of this
# > discrete chain: every step weighted alike, the noising chain in place of the interpolation path, drawn under the old
# > parameters and held fixed (here it shares $\eta$ with the policy, FPO's path has no parameters), and it needs the
# > normalised noising kernel (`noising_drift_at="conditioning"`, [`docs/method.md`](../docs/method.md) §9, D1). Its gradient
# > follows $\nabla\mathrm{ELBO}$ at the noising chain's latents, not $\nabla\log q_\theta(a^0)$, and it never sees how $\theta$ changes the
# > *path* to $a^0$, the part of $J_{bound}$ that keeps the bound's gap small. So it is biased for $\nabla J_{bound}$.
#
# > **Note** No route here has a learned critic: the advantages are Monte Carlo returns (GAE over the augmented steps at
# > $\gamma=\lambda=1$ with $V\equiv0$), so that all four get the same information. DiffPPO adds a learned $V(\tilde s)$ baseline,
# > which lowers the variance of (a) further (open question 1).

# %% [markdown]
# ## 2 · The routes in the package
#
# `routes.ROUTES` names them; `routes.train_route(name, policy, target, config)` trains any of them with one budget:
# each iteration draws $B$ fresh chains, then takes `update_epochs` Adam steps on them. The likelihood-ratio routes
# (a, c, d) re-weight the stored samples by their ratios, with PPO's clip; the pathwise route (b) replays the stored noise
# at the current parameters. The budget is the preset `ROUTE_TRAINING` in `damdp_lite/presets.py`.

# %%
# NBVAL_CHECK_OUTPUT
for name, route in R.ROUTES.items():
    print(f"{name:10s} {route.label:32s} estimates {route.estimates}")
print("ROUTE_TRAINING =", ROUTE_TRAINING)
print("sampler =", ROUTE_SAMPLER)

# %% [markdown]
# ## 3 · Which gradient does each route estimate? A live check
#
# Take one fixed sampler (the double-well sampler after a short fit with notebook 01's pathwise training; the cell prints
# how many steps) and draw many independent
# batches. Per route, average the per-batch gradients: an unbiased route for $-\nabla J_{bound}$ points where the pathwise
# mean points (cosine near 1, up to noise). The *relative variance* is the total variance of one batch's gradient
# (summed over parameters) over the squared norm of the mean (less its own noise): how many batches it takes to see the
# direction. `tests/test_routes.py` makes the first claim a test with standard errors. This is the shipped benchmark's
# computation for its first seed on the double well (§4), so the cell ends by comparing with the shipped numbers.

# %%
# NBVAL_IGNORE_OUTPUT
TARGET, T = route_target("double_well")
CFG = route_config("double_well", seed=0)
REF = RES["variance"]["reference"]  # the fixed policy: fit_sampler for REF["fit_steps"] steps at lr REF["lr"]
N_BATCHES = 4 if SMOKE else RES["variance"]["rows"][0]["batches"]
fixed = route_policy("double_well", seed=0)
dl.fit_sampler(fixed, TARGET, T, steps=10 if SMOKE else REF["fit_steps"], batch_size=CFG.batch_size, lr=REF["lr"], seed=0)
t0 = time.perf_counter()
GRADS = {}  # route -> (batches, parameters): one gradient per batch
for name in R.ROUTES:
    gens = (torch.Generator().manual_seed(1000), torch.Generator().manual_seed(2000))  # the benchmark's, seed 0
    GRADS[name] = torch.stack([R.route_gradient(name, fixed, TARGET, CFG, *gens) for _ in range(N_BATCHES)]).double()
ref = GRADS["pathwise"].mean(0)
print(f"sampler fitted for {10 if SMOKE else REF['fit_steps']} steps at lr {REF['lr']:g}; "
      f"{N_BATCHES} batches of {CFG.batch_size} chains per route, {time.perf_counter() - t0:.1f} s")
print("route                             cosine to pathwise   relative variance   shipped (seed 0): cosine, rel. var.")
for name, g in GRADS.items():
    mean, total = g.mean(0), g.var(0).sum()
    signal = mean @ mean - total / len(g)
    rel = f"{float(total / signal):10.2f}" if signal > 0 else "  (noise > signal)"
    row = next(r for r in RES["variance"]["rows"] if (r["target"], r["seed"], r["route"]) == ("double_well", 0, name))
    print(f"{LABEL[name]:32s} {float(mean @ ref / (mean.norm() * ref.norm())):10.3f} {rel:>18s}"
          f"   {row['cos_to_pathwise']:8.3f} {row['relative_variance']:8.2f}")

# %% [markdown]
# Two invariants hold exactly at the old parameters, whatever the seed: every per-step ratio $w_\theta$ is 1 (the rollout
# stores $\log q_{old}$ with the same parameters), and so is the FPO-style ratio $\hat r$ (same draws in both ELBOs). DPPO's
# loss is the per-step loss at $\mathcal T=0$, term for term.

# %%
# NBVAL_CHECK_OUTPUT
gens = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
batch = R.draw_batch(R.get_route("per_step"), fixed, TARGET, CFG, *gens)
t = batch.prepared["transitions"]
w = torch.exp(fixed.denoise_log_prob(t["obs"], t["a_k"], t["k"], t["a_prev"]) - t["log_prob"])
print("per-step ratios at the old parameters all exactly 1:", bool((w == 1).all()), f"({len(w)} transitions)")
fpo = R.draw_batch(R.get_route("fpo_style"), fixed, TARGET, CFG, *gens).prepared
r_hat = R.fpo_ratio(fpo["draws"].log_prior, R.elbo_terms(fixed, fpo["draws"]), fpo["ell_old"], fixed.num_steps)
print("FPO-style ratios at the old parameters all exactly 1:", bool((r_hat == 1).all()), f"({len(r_hat)} actions)")
t0_rows = R.augmented_transitions(fixed, batch.sample, batch.reward, 0.0)
print("DPPO's loss is the per-step loss at T = 0:",
      torch.equal(R.dppo_surrogate(fixed, t0_rows, CFG.clip_coef), R.per_step_surrogate(fixed, t0_rows, 0.0, CFG.clip_coef)))

# %% [markdown]
# ## 4 · Gradient variance at a fixed policy (shipped)
#
# `benchmarks/gradient_routes.py` does §3, with the same fit and number of batches, for every seed and both targets:
# the double well and notebook 01's ring of four Gaussians (its temperature, $\mathcal T\log Z$ and exact mode masses are
# printed below the figure).

# %%
# NBVAL_IGNORE_OUTPUT
V = RES["variance"]


def var_seeds(key, target):
    return {LABEL[n]: [r[key] for r in V["rows"] if r["target"] == target and r["route"] == n] for n in RES["routes"]}


fig = plotting.plot_seed_bars({t.replace("_", " "): var_seeds("relative_variance", t) for t in RES["targets"]},
                              "relative variance of one batch's gradient", log=True,
                              title=f"{V['rows'][0]['batches']} batches of {V['rows'][0]['batch_size']} chains per point")
plt.show()
print(f"ring: T = {RES['targets']['ring']['temperature']:g}, T log Z = {RES['targets']['ring']['t_log_z']:.4f}, exact mode masses "
      f"{np.round(RES['targets']['ring']['exact_mode_masses'], 3).tolist()}")
print(f"the whole benchmark took {RES['total_seconds'] / 60:.1f} min on one thread "
      f"({RES['machine']['processor']}, torch {RES['machine']['torch']})")


def med(values):
    ok = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(ok)) if ok else float("nan")


cos = {t: var_seeds("cos_to_pathwise", t) for t in RES["targets"]}
rel = {t: var_seeds("relative_variance", t) for t in RES["targets"]}
ratio = {t: med(rel[t][LABEL["per_step"]]) / med(rel[t][LABEL["pathwise"]]) for t in RES["targets"]}
where = lambda t: t.replace("_", " ")  # noqa: E731
display(Markdown(
    "- **Of the two unbiased routes, " + ("pathwise" if all(r > 1 for r in ratio.values()) else "neither")
    + " has the lower variance on both targets**: the median relative variance of the per-step route is "
    + ", ".join(f"{ratio[t]:.1f}× the pathwise one on the {where(t)}" for t in RES["targets"])
    + ". Back-propagation uses $\\nabla_a r$ and the reparameterised noise; the per-step route only sees returns.\n"
    "- **Per step is unbiased for the same gradient**: its cosine to the pathwise mean is "
    + ", ".join(f"{min(cos[t][LABEL['per_step']]):.3f} to {max(cos[t][LABEL['per_step']]):.3f} on the {where(t)}"
                for t in RES["targets"]) + " (1 up to noise).\n"
    "- **DPPO and FPO-style estimate something else**: DPPO's cosine ranges over "
    + ", ".join(f"[{min(cos[t][LABEL['dppo']]):.2f}, {max(cos[t][LABEL['dppo']]):.2f}]" for t in RES["targets"])
    + " and FPO-style's over "
    + ", ".join(f"[{min(cos[t][LABEL['fpo_style']]):.2f}, {max(cos[t][LABEL['fpo_style']]):.2f}]" for t in RES["targets"])
    + f" ({', '.join(where(t) for t in RES['targets'])}): DPPO follows $\\nabla\\mathbb E[r]$, FPO-style the ELBO's gradient. "
    "Their relative variances measure the noise around *those* directions, so they do not rank them against the other two."))

# %% [markdown]
# ## 5 · What each route learns (shipped)
#
# Every route trained each seed's sampler with the same budget, `ROUTE_TRAINING` (printed in §2): the same number of
# batches of fresh chains, Adam steps per batch and learning rate. The first figure of the notebook shows $J$(marginal)
# on the double well; here are the shape of the learned marginal and the mode masses on the ring. The shape is read from
# the dip ratio $q(0)/\max_\pm q(\pm1)$ of notebook 01: 1 or more for one hump over $0$; below 1 when the density at $0$ is
# lower than at the fuller well, which is true of two modes with a dip between them *and* of a sampler with all its mass in
# one well (ratio near 0). The mode masses, next cell, tell these two apart.

# %%
fig = plotting.plot_seed_bars(
    {"double well": per_seed("dip_ratio", "double_well")}, r"dip ratio $q(0)/\max_\pm q(\pm1)$",
    hlines={"1: no dip": 1.0, rf"exact optimum $e^{{-1/\mathcal{{T}}}}$": DW["exact_dip_ratio"]},
    title="Below 1: a dip at 0 (two modes, or near 0: one well only)")
plt.show()
RING = RES["targets"]["ring"]
ring_masses = {}
for name in RES["routes"]:
    ms = [r["mode_masses"] for r in RES["runs"] if r["target"] == "ring" and r["route"] == name]
    ring_masses[LABEL[name]] = np.mean(ms, axis=0)
fig = plotting.plot_mode_masses(ring_masses, RING["exact_mode_masses"], RING["mode_names"],
                                title=f"Ring, T = {RING['temperature']:g}: mode masses, mean of {len(RES['seeds'])} seeds")
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
runs = RES["runs"]


def pick(route, target, runs=runs):
    return [r for r in runs if r["route"] == route and r["target"] == target]


def span(values, fmt=".3f"):
    ok = [v for v in values if v is not None]
    return f"{min(ok):{fmt}} to {max(ok):{fmt}}" if ok else "none"


def f3(x):
    return "none" if x is None else f"{x:.3f}"


gb = DW["best_gaussian"]["j"]
esc = {(n, t): sum(r["escaped"] for r in pick(n, t)) for n in RES["routes"] for t in RES["targets"]}
one_mode = all(max(r["mode_masses"]) > 0.99 for t in RES["targets"] for r in pick("dppo", t))
minor = {n: min(min(r["mode_masses"]) for r in pick(n, "double_well")) for n in ("pathwise", "per_step")}  # emptier well
split = {n: minor[n] > 0.25 and all(r["dip_ratio"] is not None and r["dip_ratio"] < 1 for r in pick(n, "double_well"))
         for n in ("pathwise", "per_step")}  # a dip at 0 and more than a quarter of the mass in each well
mean_j = {n: np.mean([r["j_marginal"] for r in pick(n, "double_well")]) for n in ("pathwise", "per_step")}
mean_ring = {n: np.mean([r["j_bound"] for r in pick(n, "ring")]) for n in ("pathwise", "per_step")}
low = RES["lower_lr"]["runs"]
fpo_low = {t: pick("fpo_style", t, low)[0] for t in RES["targets"]}
exact_ring = ", ".join(f"{m:.2f}" for m in RING["exact_mode_masses"])
display(Markdown(
    "- **Pathwise and per step** "
    + ("both split the double well in every seed" if all(split.values()) else "do not both split the double well in every seed")
    + f": $J$(marginal) {span([r['j_marginal'] for r in pick('pathwise', 'double_well')])} (pathwise) and "
    f"{span([r['j_marginal'] for r in pick('per_step', 'double_well')])} (per step), against the best Gaussian's {gb:.3f}"
    f" and $\\mathcal T\\log Z$ = {DW['t_log_z']:.4f}; dip ratios {span([r['dip_ratio'] for r in pick('pathwise', 'double_well')], '.2f')}"
    f" and {span([r['dip_ratio'] for r in pick('per_step', 'double_well')], '.2f')}, with at least {minor['pathwise']:.2f} and"
    f" {minor['per_step']:.2f} of the mass in the emptier well. On the ring their mode masses are within a "
    f"total variation of {max(r['mode_tv'] for r in pick('pathwise', 'ring')):.2f} (pathwise) and "
    f"{max(r['mode_tv'] for r in pick('per_step', 'ring')):.2f} (per step) of the exact ({exact_ring}), and their $J_{{bound}}$ are "
    f"{span([r['j_bound'] for r in pick('pathwise', 'ring')], '.2f')} and {span([r['j_bound'] for r in pick('per_step', 'ring')], '.2f')}"
    f" ($\\mathcal T\\log Z$ = {RING['t_log_z']:.1f}). Seed means, pathwise against per step: $J$(marginal) {mean_j['pathwise']:.3f} "
    f"against {mean_j['per_step']:.3f} on the double well, $J_{{bound}}$ {mean_ring['pathwise']:.3f} against {mean_ring['per_step']:.3f} "
    "on the ring.\n"
    "- **DPPO collapses**: "
    + ("all its mass in one mode in every seed, on both targets" if one_mode else "it concentrates on fewer modes")
    + f" (dip ratio {span([r['dip_ratio'] for r in pick('dppo', 'double_well')], '.2f')}). Its $J$(marginal), "
    f"{span([r['j_marginal'] for r in pick('dppo', 'double_well')])}, is that of one well; its $J_{{bound}}$ is far lower "
    f"({span([r['j_bound'] for r in pick('dppo', 'double_well')], '.0f')}): nothing kept its final step from shrinking, "
    "and a tiny $\\eta_1$ makes the bound's gap huge.\n"
    f"- **FPO-style escaped** in {esc['fpo_style', 'double_well']} of {len(RES['seeds'])} seeds on the double well and "
    f"{esc['fpo_style', 'ring']} of {len(RES['seeds'])} on the ring: part of its samples left the target's range "
    f"(fraction {span([r['outside'] for r in pick('fpo_style', 'double_well') + pick('fpo_style', 'ring')], '.2f')}) and "
    f"$J_{{bound}}$ fell to {min(r['j_bound'] for r in runs if r['route'] == 'fpo_style'):.1e}. Its ratio is computed at the "
    "noising chain's latents, so the clip bounds the change of an ELBO estimate there, not of the chain the policy samples. "
    f"At {RES['lower_lr']['factor']:g} times the learning rate (seed {RES['lower_lr']['seed']}) it "
    + ("stays in range" if not any(r["escaped"] for r in fpo_low.values()) else "still escapes")
    + f" but learns less: $J$(marginal) {f3(fpo_low['double_well']['j_marginal'])} on the double well with "
    f"{max(fpo_low['double_well']['mode_masses']):.2f} of its mass in one well, mode-mass total variation "
    f"{fpo_low['ring']['mode_tv']:.2f} on the ring (per step at that rate: "
    f"{f3(pick('per_step', 'double_well', low)[0]['j_marginal'])} and {pick('per_step', 'ring', low)[0]['mode_tv']:.2f})."))

# %% [markdown]
# ## 6 · Memory and time per update against $K$ (shipped)
#
# One update from fresh chains: draw $B$ chains (`batch_size`, §2), the route's preparation, its loss and the backward pass. **Memory** is
# counted deterministically: the bytes autograd saves for the backward pass while the loss is built
# (`routes.saved_tensor_bytes`, with `torch.autograd.graph.saved_tensors_hooks`; each storage once, the parameters left out),
# not a reading of the process's memory. **Time** is the median of a few updates taken in turn in one process; the shared
# machine is noisy, so read the ratios to the pathwise route at the same $K$. The per-step route appears twice: with all
# $K$ chain steps of each chain in the update, and with $\kappa=1$ step per chain, drawn at random
# (`diffusion_steps_per_update`, [`docs/method.md`](../docs/method.md) §9, D11), which is still unbiased.

# %%
C = RES["costs"]
VARIANT = {(n, 0): LABEL[n] for n in RES["routes"]}
VARIANT["per_step", 1] = f"{LABEL['per_step']}, κ = 1"


def cost_traces(key):
    return {VARIANT[n, k]: (C["Ks"], [r[key] for r in C["rows"] if (r["route"], r["kappa"]) == (n, k)])
            for n, k in VARIANT}


fig = plotting.plot_traces({lab: (x, np.array(y) / 2**20) for lab, (x, y) in cost_traces("saved_bytes").items()},
                           xlabel="$K$", ylabel="MiB saved for backward",
                           title="Memory of one update: the whole chain's graph grows with K")
fig.axes[0].set_xscale("log", base=2)
fig.axes[0].set_yscale("log")
plt.show()
fig = plotting.plot_traces(cost_traces("seconds_ratio_to_pathwise"), hlines={"pathwise": 1.0}, xlabel="$K$",
                           ylabel="time of one update / pathwise", title="Time of one update, relative to pathwise at the same K")
fig.axes[0].set_xscale("log", base=2)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
def cost(route, kappa, K, key):
    return next(r[key] for r in C["rows"] if (r["route"], r["kappa"], r["K"]) == (route, kappa, K))


def mib(route, kappa):
    """The saved MiB of one route over every K of the benchmark: one value if they agree to 2 decimals, else lo to hi."""
    lo, hi = (f"{f(cost(route, kappa, K, 'saved_bytes') for K in C['Ks']) / 2**20:.2f}" for f in (min, max))
    return lo if lo == hi else f"{lo} to {hi}"


k_lo, k_hi = min(C["Ks"]), max(C["Ks"])
display(Markdown(
    f"- From $K$ = {k_lo} to {k_hi} the pathwise update's saved bytes grow {cost('pathwise', 0, k_hi, 'saved_bytes') / cost('pathwise', 0, k_lo, 'saved_bytes'):.0f}×"
    f" ({cost('pathwise', 0, k_hi, 'saved_bytes') / 2**20:.1f} MiB at $K$ = {k_hi}); so do those of the per-step route when it uses all"
    f" $K$ steps ({cost('per_step', 0, k_hi, 'bytes_ratio_to_pathwise'):.2f}× pathwise): it evaluates one network call per transition,"
    " $KB$ of them.\n"
    f"- With $\\kappa=1$ the per-step update holds {mib('per_step', 1)} MiB at every $K$"
    f" ({cost('per_step', 1, k_hi, 'bytes_ratio_to_pathwise'):.3f}× pathwise at $K$ = {k_hi}): one step at a time is what lets the DA-MDP"
    f" sub-sample the chain. FPO-style holds {mib('fpo_style', 0)} MiB at every $K$ (its"
    f" {ROUTE_TRAINING['elbo_draws']} draws per action).\n"
    f"- Time at $K$ = {k_hi}, relative to pathwise: per step {cost('per_step', 0, k_hi, 'seconds_ratio_to_pathwise'):.2f}"
    f" (all steps), {cost('per_step', 1, k_hi, 'seconds_ratio_to_pathwise'):.2f} ($\\kappa=1$), DPPO"
    f" {cost('dppo', 0, k_hi, 'seconds_ratio_to_pathwise'):.2f}, FPO-style {cost('fpo_style', 0, k_hi, 'seconds_ratio_to_pathwise'):.2f}."
    " Every route still samples the whole chain to act, so no update is free of $K$; the backward pass through the chain"
    " is what only the pathwise route pays."))

# %% [markdown]
# ## 7 · Where each route wins
#
# | route | gradient of | wins when | pays with |
# |---|---|---|---|
# | (a) DA-MDP per step | $J_{bound}$, unbiased | the reward (or $Q$) is not differentiable or not worth differentiating; long chains ($\kappa$ steps per update); any MaxEnt RL algorithm applies unchanged | more variance than (b) without a critic; a value function per augmented state in RL |
# | (b) through the chain | $J_{bound}$, unbiased | $r$ or a critic is differentiable in $a$: the least variance here | memory and backward time that grow with $K$; needs $\nabla_a r$ (DIME, REPPO-DiME use a learned $Q$) |
# | (c) DPPO | $\mathbb E[r]$ | a single best action is wanted | collapses onto one mode: no multimodality, and a loose bound |
# | (d) FPO-style | an ELBO-weighted surrogate | only a denoising/flow-matching loss is available, memory must not grow with $K$ | bias, and (here) instability: the ratio lives at the noising chain's latents |
#
# ## 8 · A live run, and a panel to explore
#
# The cell below trains the four routes on the double well with the preset budget (seed 0; a few iterations under
# `DAMDP_SMOKE=1`) and draws their exact marginals. With the preset it is the seed-0 run of the shipped benchmark, so the
# numbers printed after it should equal the shipped ones (up to the CPU model).

# %%
# NBVAL_IGNORE_OUTPUT
def run_route(route, num_steps, temperature, iterations, seed):
    """Train the double-well sampler with one route; returns (policy, its evaluation, seconds)."""
    pol = route_policy("double_well", seed, num_steps=num_steps)
    cfg = route_config("double_well", seed, temperature=temperature, iterations=iterations)
    hist = R.train_route(route, pol, TARGET, cfg)
    return pol, R.evaluate_sampler(pol, TARGET, temperature, n=RES["n_eval"], seed=RES["eval_seed"]), hist.seconds


DEFAULTS = dict(route="per_step", num_steps=ROUTE_SAMPLER["num_steps"], temperature=T,
                iterations=3 if SMOKE else ROUTE_TRAINING["iterations"], seed=0)
live, TRAIN_S = {}, 0.0
for name in R.ROUTES:
    live[name] = run_route(**{**DEFAULTS, "route": name})
    TRAIN_S += live[name][2]
    ev = live[name][1]
    print(f"{LABEL[name]:32s} {live[name][2]:5.1f} s  J_bound {ev['j_bound'] if ev['j_bound'] is None else round(ev['j_bound'], 4)}"
          f"  J(marginal) {ev['j_marginal'] if ev['escaped'] else round(ev['j_marginal'], 4)}  escaped {ev['escaped']}")

# %%
# NBVAL_IGNORE_OUTPUT
if not SMOKE:
    for name in R.ROUTES:
        shipped_run = pick(name, "double_well")[0]
        same = all(live[name][1][k] == shipped_run[k] for k in ("j_bound", "j_marginal", "dip_ratio", "mode_masses"))
        print(f"{LABEL[name]:32s} identical to the shipped seed-0 run: {same}")
else:
    print("SMOKE: a few iterations only, nothing to compare with the shipped runs")

# %%
curves = {LABEL[n]: (ev["grid"], ev["density"]) for n, (_, ev, _) in live.items() if not ev["escaped"]}
gone = [f"{LABEL[n]} ({ev['outside']:.0%} of samples outside [-4, 4])" for n, (_, ev, _) in live.items() if ev["escaped"]]
fig = plotting.plot_density_1d(curves, TARGET, T, title="Exact marginals after training, seed 0"
                               + (f"\nnot drawn: {'; '.join(gone)}" if gone else ""))
plt.show()


# %% [markdown]
# **The panel** trains one route on the double well when you press **Train** and draws the exact marginal it learned:
# choose the `route`, $K$ (`num_steps`), $\mathcal T$ (`temperature`), the number of batches (`iterations`; each is `batch_size`
# chains and `update_epochs` Adam steps, §2) and the `seed`. Its defaults are the per-step route with the preset, the run above, so the static
# figure below is what the panel draws at its defaults (drawn from that run, not trained twice). Things to try: $\mathcal T=0.1$
# and $1$; $K=1$ and $K=16$; DPPO at any $\mathcal T$; FPO-style with fewer iterations, to watch it before it escapes.

# %%
def draw_run(route, evaluation, temperature, num_steps, seed):
    """The panel's figure: the exact marginal one route learned, its numbers in the title."""
    ev = evaluation
    head = f"{LABEL[route]}, K = {num_steps}, T = {temperature:.3g}, seed {seed}"
    if ev["escaped"]:
        return plotting.plot_density_1d({}, TARGET, temperature, title=f"{head}\nescaped: {ev['outside']:.0%} of samples "
                                                                       f"outside [-4, 4], J_bound {ev['j_bound']}")
    return plotting.plot_density_1d(
        {LABEL[route]: (ev["grid"], ev["density"])}, TARGET, temperature,
        title=f"{head}\nJ(marginal) {ev['j_marginal']:.3f}, J_bound {ev['j_bound']:.3f}, dip ratio {ev['dip_ratio']:.2f}")


def run_demo(route, num_steps, temperature, iterations, seed):
    """What the Train button runs: train, then draw."""
    _, ev, _ = run_route(route, num_steps, temperature, iterations, seed)
    return draw_run(route, ev, temperature, num_steps, seed)


def demo_controls():
    """route (dropdown), num_steps and iterations (sliders), temperature (log slider), seed (number box)."""
    route = W.Dropdown(options=list(R.ROUTES), value=DEFAULTS["route"], description="route", style=widgets.STYLE,
                       layout=widgets.LAYOUT)
    chain = widgets.controls_from_config(DiffusionConfig, ["num_steps"], {
        "num_steps": dict(min=1, max=16, value=DEFAULTS["num_steps"])})
    budget = widgets.controls_from_config(R.RouteConfig, ["temperature", "iterations", "seed"], {
        "temperature": dict(min=0.05, max=2.0, log=True, value=DEFAULTS["temperature"]),
        "iterations": dict(min=5, max=400, step=5, value=DEFAULTS["iterations"]),
        "seed": dict(value=DEFAULTS["seed"])})
    return {"route": route, **chain, **budget}


print("the panel's defaults are this run's:", {n: w.value for n, w in demo_controls().items()} == DEFAULTS)
fig = draw_run("per_step", live["per_step"][1], T, DEFAULTS["num_steps"], DEFAULTS["seed"])
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
# Execute this cell to enable the widget (training runs only when you press Train).
widgets.training_panel(demo_controls(), run_demo)

# %% [markdown]
# ## Summary
# - Back-propagation through the chain and the DA-MDP's per-step surrogate estimate the same gradient of $J_{bound}$;
#   DPPO drops the entropy and estimates $\nabla\mathbb E[r]$; the FPO-style ratio of ELBOs is biased and, here, unstable.
# - Through the chain has the least variance when $r$ is differentiable, but its memory grows with $K$; one step at a
#   time lets an update use any subset of chain steps, at a memory cost independent of $K$, and needs no $\nabla_a r$.
# - With one budget the two unbiased routes learn every mode on both targets; DPPO keeps one mode, and FPO-style's samples
#   escaped the target's range in the shipped runs.
#
# ## Exercises
#
# **Exercise 7.1 — the FPO-style ratio.** Write $\hat r$ of (5) ([`docs/method.md`](../docs/method.md) §5.7). Inputs, for $B$
# actions and $M$ draws each: `log_prior` $\log p_0(a^K_m)$, `ell_new` $\ell_{k_m}$ under the current parameters (it carries the
# gradient), `ell_old` $\ell_{k_m}$ under the old ones (same draws), each of shape `(M, B)`, and `num_steps` $K$. Output: the $B$
# ratios, shape `(B,)`, with gradient through `ell_new` only. The checker compares values and gradients with
# `routes.fpo_ratio` and names the mistake; if you skip the exercise it falls back to the reference. The cell after it
# then rebuilds the ratio of a real batch with your function, after one Adam step of the FPO-style route.
#
# <details><summary>Hint 1</summary>
#
# First write $\widehat{\mathrm{ELBO}}$ for the new and the old parameters: a mean over the $M$ draws (axis 0) of
# `log_prior + num_steps * ell`. One random step stands for all $K$ of them, hence the factor $K$.
# </details>
#
# <details><summary>Hint 2</summary>
#
# The ratio is the exponential of the *difference* of the two means, not the mean of per-draw ratios: FPO exponentiates a
# difference of averaged losses. `log_prior` is the same in both ELBOs, so it cancels.
# </details>
#
# <details><summary>Hint 3</summary>
#
# The old ELBO is a constant for the gradient: `.detach()` it. An ELBO is a *lower* bound on $\log q$, a loss is a
# *negative* ELBO: FPO's $\exp(L_{old}-L_\theta)$ is $\exp(\mathrm{ELBO}_\theta-\mathrm{ELBO}_{old})$ here.
# </details>

# %%
def my_fpo_ratio(log_prior, ell_new, ell_old, num_steps):
    """r_hat = exp(ELBO_hat_new - sg(ELBO_hat_old)) of eq. (5): inputs (M, B), returns (B,)."""
    raise NotImplementedError("Exercise 7.1: write the FPO-style ratio")


# %%
# NBVAL_CHECK_OUTPUT
fpo_ratio = exercises.check_fpo_ratio(my_fpo_ratio)
# use it: one batch of the live FPO-style route's preparation, one Adam step, then the ratio by both functions
pol = route_policy("double_well", seed=0)
prep = R.draw_batch(R.get_route("fpo_style"), pol, TARGET, CFG, torch.Generator().manual_seed(0),
                    torch.Generator().manual_seed(1)).prepared
opt = torch.optim.Adam(pol.parameters(), lr=CFG.lr)
R.fpo_surrogate(pol, prep["draws"], prep["ell_old"], prep["advantages"], CFG.clip_coef).backward()
opt.step()
ell_new = R.elbo_terms(pol, prep["draws"])
mine = fpo_ratio(prep["draws"].log_prior, ell_new, prep["ell_old"], pol.num_steps)
theirs = R.fpo_ratio(prep["draws"].log_prior, ell_new, prep["ell_old"], pol.num_steps)
print("your ratio equals the package's after one update:", torch.allclose(mine, theirs, rtol=1e-5),
      "| it moved away from 1:", bool((theirs != 1).any()))

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_fpo_ratio(log_prior, ell_new, ell_old, num_steps):
#     elbo_new = (log_prior + num_steps * ell_new).mean(0)            # (B,)
#     elbo_old = (log_prior + num_steps * ell_old).mean(0).detach()   # a constant: sg
#     return torch.exp(elbo_new - elbo_old)                           # = exp(K mean(ell_new - ell_old))
# ```
# The package's `routes.fpo_ratio` also caps the log-ratio, as DiffPPO's ratio is (`algos.ppo.MAX_LOG_RATIO`).
# </details>
#
# **Open questions (no checker)**
# 1. Add a learned value $V(a^k,k)$ to route (a) as a baseline (GAE at $\lambda=1$: $\hat A_k=G_k-V(a^k,k)$). Why does it stay
#    unbiased, and why could the same baseline not be used for the FPO-style route?
# 2. Route (b) needs $\nabla_a r$. In RL, which object plays the role of $r$ for a pathwise actor (think of REPPO,
#    [`docs/method.md`](../docs/method.md) §5.1), and what does it cost to learn it?
# 3. The FPO-style ratio equals 1 at the old parameters and is clipped, yet the sampler escaped. Where, in (5), is the
#    clip measured, and where does the policy actually sample?
#
# <details><summary>Solutions to the open questions</summary>
#
# 1. $V(a^k,k)$ depends only on the augmented state, not on the action $a^{k-1}$ that step $k$ chooses, so
#    $\mathbb E[V(a^k,k)\nabla\log q_\theta(a^{k-1}\mid a^k)]=\mathbb E[V\,\mathbb E[\nabla\log q_\theta\mid a^k]]=0$ (the score identity,
#    [`docs/method.md`](../docs/method.md) I12). For the FPO-style route the action is the whole chain, $a^K$ included: a
#    baseline that reads $a^K$ is correlated with the "action" and biases it. Only a baseline of the (absent) state is allowed.
# 2. A learned critic $Q(\tilde s,a^{k-1})$ over augmented states: REPPO back-propagates $Q$ through one reparameterised step
#    (a pathwise gradient, one step at a time). Learning $Q$ costs a second network, its own loss and the bootstrapping of
#    [`docs/method.md`](../docs/method.md) §4.2; errors in $\nabla_aQ$ become errors in the actor's gradient.
# 3. The clip bounds the change of $\widehat{\mathrm{ELBO}}$ at the noising chain's latents $a^{k_m}_m,a^{k_m-1}_m$, drawn from $a^0$ by
#    $\pi_\theta$. The policy samples its own chain from $a^K\sim p_0$ through $q_\theta$, whose latents can lie elsewhere (the prior's
#    tails, for example). A step that leaves the ELBO estimate within $1\pm\epsilon$ can change $q_\theta$ a lot where it samples;
#    with an unbounded reward such as $-(x^2-1)^2$, a few far samples then dominate the next batch's advantages.
# </details>
#
# **Further reading:** [`docs/method.md`](../docs/method.md) §5.7 (the four routes) and §4.3 (why one step at a time); the
# DA-MDP paper (arXiv 2512.02019); DIME (arXiv 2502.02316); DPPO (arXiv 2409.00588); FPO (arXiv 2507.21053).
#
# **Next:** notebook 08, *sequential multimodality* (08_sequential_multimodality.ipynb), moves from one-step targets to
# episodes in which several different behaviours are optimal.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"Top to bottom: {time.perf_counter() - NOTEBOOK_START:.0f} s (SMOKE={SMOKE}; live training {TRAIN_S:.0f} s)")
