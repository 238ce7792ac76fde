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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/damdp-lite/damdp_lite/blob/main/notebooks/00_tour.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/damdp-lite/damdp_lite/HEAD?urlpath=lab/tree/notebooks/00_tour.ipynb)

# %% [markdown]
# *This notebook is generated from `notebooks/src/00_tour.py` (jupytext): edit that file, then run `make notebooks-sync`.*

# %% [markdown]
# # 00 · A tour of damdp_lite
#
# `damdp_lite` teaches and reproduces *Diffusion-Augmented MDPs for Maximum Entropy RL* (arXiv 2512.02019; earlier
# title *A Diffusion Model Framework for Maximum Entropy RL*) in plain PyTorch. It runs on a laptop CPU, on
# Binder and on Colab, and uses a GPU when there is one. This notebook shows what is in the suite, how to use it, and
# one minute of the method in action.
#
# **Learning goals**
# - *Find* your way around the notebooks, the package and the two `make` commands.
# - *Recognise* the chain-policy protocol that every algorithm in the suite is written against.
# - *Run* a diffusion sampler on a bimodal target and *measure* whether it splits into two modes.
#
# **Prerequisites:** none. **Estimated time:** ~10 min reading; running top to bottom about 10 s on 2 CPU cores
# (the last cell prints this run's time), a few seconds with `DAMDP_SMOKE=1`.

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

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import damdp_lite as dl
from IPython.display import Markdown, display

from damdp_lite import plotting
from damdp_lite.config import field_docs

SMOKE = dl.smoke()  # DAMDP_SMOKE=1 shrinks every loop (CI); the teaching defaults otherwise
torch.set_num_threads(1)  # same numbers on every run (floats can differ between CPU models); these toys do not gain from more
torch.set_printoptions(precision=4)
np.set_printoptions(precision=4, suppress=True)
dl.seed_everything(0)
plotting.setup_style()
NOTEBOOK_START = time.perf_counter()
print(f"damdp_lite {dl.__version__} | torch {torch.__version__} | SMOKE={SMOKE}")

# %% [markdown]
# ## How to use the suite
#
# | what | command |
# |---|---|
# | set everything up and open JupyterLab on `notebooks/` | `make lab` (remote box: `make lab LAB_ARGS="--no-browser --port=8899"`) |
# | set up and run all tests (unit tests + every notebook under nbval, smoke mode) | `make test` |
# | run a notebook fast, e.g. in CI | set `DAMDP_SMOKE=1` before starting Jupyter |
#
# Every notebook opens with goals and an estimated time, has a **smoke switch** (`SMOKE`) that shrinks its loops,
# draws a **static figure before every widget**, trains only behind a **button**, and ends with **exercises** whose
# checkers fall back to the reference implementation if you skip them.
#
# | notebook | what you learn |
# |---|---|
# | `00_tour` (this one) | the suite, the chain-policy protocol, a one-minute demo |
# | `01_reverse_kl_bound` | the reverse-KL bound of a diffusion sampler, its gap, $K$, $\sigma_0$ and the noising kernel (no RL yet) |
# | `02_maxent_rl_to_damdp` | MaxEnt RL in sequential form (soft values, $\pi^*\propto e^{Q^*/\mathcal T}$), the diffusion-augmented MDP, the per-step ratio, DiffPPO's actor advantage and DPPO as $\mathcal T=0$ |
# | `03_multimodal_bandits` | DiffPPO against Gaussian PPO on bandits with exact optima; the bound's gap under RL |
# | `04_turning_wells` | the paper's multimodal figure: DiffPPO bimodal in every state, Gaussian PPO and DPPO not |
# | `05_diffppo_mujoco` | DiffPPO on Gymnasium MuJoCo: the training loop, the CLI, throughput, shipped runs |
# | `06_reppo_wpo_sac` | DA-MDP REPPO, DA-MDP WPO and DiffSAC against their Gaussian bases REPPO, ME-WPO and SAC, on the toy and on MuJoCo |
# | `07_gradient_routes` | four ways to train one diffusion policy (the DA-MDP per step, back-propagation through the chain, DPPO, an FPO-style ratio): which gradient each estimates, its variance, memory and time against $K$, what each learns (after 02) |
# | `08_sequential_multimodality` | multimodality when the state matters: DiffSAC and DA-MDP REPPO against SAC and REPPO on the multi-goal point mass, and the turning multi-well and GMM against their exact optima (after 04 and 06) |
#
# The method itself is written up in [`docs/method.md`](../docs/method.md), its symbols in
# [`docs/notation.md`](../docs/notation.md) and the names it has had across the paper's versions in
# [`docs/glossary.md`](../docs/glossary.md).

# %% [markdown]
# ## The one idea: a chain policy
#
# The paper's claim is that *any* MaxEnt RL algorithm runs unchanged on the diffusion-augmented MDP. In code:
# every algorithm is written once against a **chain policy** and never asks which kind it has.
#
# | method | `GaussianPolicy` | `DiffusionPolicy` |
# |---|---|---|
# | `num_steps` | $K=1$ | $K\ge1$ |
# | `init_latent(obs)` | zeros (ignored) | prior sample $a^K\sim\mathcal N(0,\sigma_0^2)$ |
# | `step(obs, a_k, k)` | $a\sim q_\theta(\cdot\mid s)$, $\ell=\log q_\theta(a\mid s)$ | $a^{k-1}\sim q_\theta(\cdot\mid a^k,s)$, $\ell_k=\log q_\theta(a^{k-1}\mid a^k,s)-\log\pi_\theta(a^k\mid a^{k-1},s)$ |
# | `to_action(a_0)` | $\mathrm{clip}(\tanh a)$ rescaled to the action box | the same |

# %%
# NBVAL_CHECK_OUTPUT
obs = torch.zeros(5, 3)  # (B, obs_dim)
for policy in (dl.GaussianPolicy(dl.GaussianConfig(obs_dim=3, action_dim=2)),
               dl.DiffusionPolicy(dl.DiffusionConfig(obs_dim=3, action_dim=2, num_steps=4))):
    s = policy.sample_chain(obs, generator=torch.Generator().manual_seed(0))
    print(f"{type(policy).__name__:16s} K={policy.num_steps}  latents {tuple(s.latents.shape)}"
          f"  log-ratios {tuple(s.log_ratios.shape)}  actions {tuple(s.action.shape)}"
          f"  in [-1, 1]: {bool((s.action.abs() <= 1).all())}")

# %% [markdown]
# Every hyperparameter lives in a documented dataclass; the same dataclass feeds the widgets (and, later, the CLI and
# the checkpoints). Bad values fail at once, with the field, the value and what is allowed:

# %%
# NBVAL_CHECK_OUTPUT
try:
    dl.DiffusionConfig(num_steps=0)
except ValueError as err:
    print("ValueError:", err)
print("num_steps:", field_docs(dl.DiffusionConfig)["num_steps"])

# %% [markdown]
# ## One minute of the method
#
# Target: the double well $r(x)=-(x^2-1)^2$ at temperature $\mathcal T=0.25$, whose MaxEnt optimum
# $\pi^*(x)=e^{r(x)/\mathcal T}/Z$ has two equal modes at $x=\pm1$. We train a $K=4$ diffusion sampler by maximising
# the bound of notebook `01_reverse_kl_bound`, and draw its exact marginal density (quadrature, no sampling) before
# and after.
#
# Two modes are a claim about the *shape* of the density, so we measure the shape: the **dip ratio**
# $q(0)/\max_\pm q(\pm1)$, the density between the wells over the density at the higher well. One hump centred at 0 has a
# ratio above 1; two modes have a ratio below 1; $\pi^*$ itself has $e^{-1/\mathcal T}$. The mass on each side of 0 is no
# evidence: a single broad hump at 0 also puts half of its mass on each side.

# %%
# NBVAL_IGNORE_OUTPUT
target, T = dl.DoubleWell1D(), 0.25
DEMO_STEPS = 20 if SMOKE else 800
grid = torch.linspace(-4, 4, 1601, dtype=torch.float64)


def dip_ratio(density):
    """q(0) / max(q(-1), q(+1)) of a density on `grid`: below 1 only if there is a dip between the wells."""
    at = lambda x: float(density[torch.argmin((grid - x).abs())])  # noqa: E731
    return at(0.0) / max(at(-1.0), at(1.0))


dl.seed_everything(0)  # the sampler's initial weights
sampler = dl.DiffusionPolicy(dl.DiffusionConfig.teaching(
    obs_dim=0, action_dim=1, num_steps=4, squash="identity", hidden_sizes=(64, 64)))
before = dl.exact_marginal_kl_1d(sampler, target, T, grid=grid)
t0 = time.perf_counter()
dl.fit_sampler(sampler, target, T, steps=DEMO_STEPS, batch_size=256, lr=1e-2, seed=0)
train_s = time.perf_counter() - t0
after = dl.exact_marginal_kl_1d(sampler, target, T, grid=grid)
best_gaussian = dl.best_gaussian_1d(target, T)["j"]  # the best J any Gaussian reaches (quadrature)
dip = {"untrained": dip_ratio(before["density"]), "trained": dip_ratio(after["density"])}
print(f"trained {DEMO_STEPS} steps in {train_s:.1f} s")
print(f"dip ratio q(0)/max q(+-1): untrained {dip['untrained']:.2f}, trained {dip['trained']:.2f},"
      f" exact pi* {np.exp(-1 / T):.3f}")
print(f"J(marginal): untrained {before['j_marginal']:.3f}, trained {after['j_marginal']:.3f};"
      f" best Gaussian {best_gaussian:.3f}; T log Z {T * target.log_z(T):.3f}")
two_modes = dip["trained"] < 1
fig = plotting.plot_density_1d(
    {"diffusion, untrained": (grid, before["density"]),
     f"diffusion, after {DEMO_STEPS} steps": (grid, after["density"])}, target, T,
    styles={"diffusion, untrained": {"ls": ":", "lw": 1.2, "color": plotting.COLORS["diffusion"]},
            f"diffusion, after {DEMO_STEPS} steps": {"ls": "-", "color": plotting.COLORS["diffusion"]}},
    title=(f"After {DEMO_STEPS} steps: two modes (dip ratio {dip['trained']:.2f})" if two_modes
           else f"After {DEMO_STEPS} steps: still one hump (dip ratio {dip['trained']:.2f})"))
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
# What the numbers above say (this text is written from them)
mass_pos = float(after["density"][grid >= 0].sum() * (grid[1] - grid[0]))
if two_modes:
    verdict = (f"After {DEMO_STEPS} steps the sampler has **two modes**: its density between the wells is "
               f"{dip['trained']:.2f} times its density at the higher well (the target's ratio is "
               f"{np.exp(-1 / T):.3f}"
               + (": the valley is still shallower than the target's)." if dip["trained"] > np.exp(-1 / T)
                  else ")."))
else:
    verdict = (f"After {DEMO_STEPS} steps the sampler has **not** split: its dip ratio is {dip['trained']:.2f}, "
               "not below 1 (with `DAMDP_SMOKE=1` the run is far too short).")
better = after["j_marginal"] > best_gaussian
display(Markdown(
    f"Untrained, the chain just reproduces its broad prior (dip ratio {dip['untrained']:.2f}). {verdict} "
    f"Its true MaxEnt objective $J$(marginal) is {after['j_marginal']:.3f}, "
    + ("above" if better else "not above")
    + f" the best any Gaussian can reach, {best_gaussian:.3f}. It has {mass_pos:.2f} of its mass on $x\\ge0$, "
    "but a single hump at 0 would have about half there too: the dip, not the mass split, shows the two modes."))

# %% [markdown]
# ## Where things live
#
# ```
# damdp_lite/  chain.py (the protocol)   diffusion.py   gaussian.py   policies.py (build_policy)   config.py
#              targets.py   bound.py   envs/ (toy Gymnasium envs)   algos/ (PPO, REPPO / WPO, SAC)
#              train.py (the one training loop)   presets.py (the toy configs)   metrics.py   results.py
#              shipped/ (the shipped results)   plotting.py   widgets.py   exercises.py   cli.py
# docs/        method.md (the method reference)   notation.md (symbols)   glossary.md (names across paper versions)
# notebooks/   src/ (the sources: 00_tour.py, ...)   00_tour.ipynb, 01_reverse_kl_bound.ipynb, ...
# tests/   benchmarks/
# ```
# The maths follows one notation ([`docs/notation.md`](../docs/notation.md)): the policy is the *denoising* kernel
# $q_\theta$, the *noising* kernel is $\pi_\theta$ and the MaxEnt optimum is $\pi^*$ ($\pi$ never names the learned
# policy), the diffusion index $k$ counts down from $K$ to 0, and the temperature is `temperature` ($\mathcal T$), never
# `alpha`.
#
# ## Summary
# - `make lab` opens the notebooks; `make test` checks everything, notebooks included.
# - Gaussian and diffusion policies share one protocol; algorithms never branch on which one they get.
# - A four-step diffusion sampler trained on the bound can split into the two modes of a bimodal target, which no
#   Gaussian can; whether it did is read from the shape of its density (the dip ratio), not from its mass split.
#   Notebook `01_reverse_kl_bound` derives the objective it maximises.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"Top to bottom: {time.perf_counter() - NOTEBOOK_START:.0f} s")
