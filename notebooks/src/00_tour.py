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
# - *Run* a diffusion sampler on a bimodal target and see it cover both modes.
#
# **Prerequisites:** none. **Estimated time:** ~10 min reading; running top to bottom ~10 s on 2 CPU cores
# (measured: see the last cell), ~8 s with `DAMDP_SMOKE=1`.

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
from damdp_lite import exercises, plotting, widgets
from damdp_lite.config import field_docs

SMOKE = dl.smoke()  # DAMDP_SMOKE=1 shrinks every loop (CI); the teaching defaults otherwise
torch.set_num_threads(1)  # same numbers on every run (floats can differ between CPU models); these toys do not gain from more
torch.set_printoptions(precision=4)
np.set_printoptions(precision=4, suppress=True)
dl.seed_everything(0)
plotting.setup_style()
NOTEBOOK_START = time.time()
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
# | # | notebook | what you learn |
# |---|---|---|
# | 00 | this tour | the suite, the protocol, a one-minute demo |
# | 01 | `01_reverse_kl_bound` | the reverse-KL bound of a diffusion sampler, its gap, $K$ and the noising kernel |
# | 02 | `02_multimodal_bandits` | DA-MDP PPO vs MaxEnt PPO on bandits with exact optima; the bound's gap under RL |
# | 03 | `03_turning_wells` | the paper's multimodal figure: DiffPPO bimodal in every state, Gaussian PPO and DPPO not |
# | 04 | `04_diffppo_mujoco` | DiffPPO on Gymnasium MuJoCo: the training loop, the CLI, throughput, shipped runs |
# | 05 | `05_reppo_wpo_sac` | the other DA-MDP algorithms: REPPO, WPO and SAC, on the toy and on MuJoCo |

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
# | `step(obs, a_k, k)` | $a\sim\pi(\cdot\mid s)$, $\ell=\log\pi(a\mid s)$ | $a^{k-1}\sim q(\cdot\mid a^k,s)$, $\ell_k=\log q-\log\pi_{noise}$ |
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
# $e^{r/\mathcal T}/Z$ has two equal modes. We train a $K=4$ diffusion sampler by maximising the bound of notebook 01,
# and draw its exact marginal density before and after.

# %%
# NBVAL_IGNORE_OUTPUT
target, T = dl.DoubleWell1D(), 0.25
sampler = dl.DiffusionPolicy(dl.DiffusionConfig.teaching(
    obs_dim=0, action_dim=1, num_steps=4, squash="identity", hidden_sizes=(64, 64)))
grid = torch.linspace(-4, 4, 1601, dtype=torch.float64)
before = dl.marginal_density_1d(sampler, grid)
t0 = time.time()
dl.fit_sampler(sampler, target, T, steps=20 if SMOKE else 300, batch_size=256, lr=5e-3, seed=0)
after = dl.marginal_density_1d(sampler, grid)
mass = target.mode_masses(sampler.sample(20_000, generator=torch.Generator().manual_seed(1)).a_0)
print(f"trained in {time.time() - t0:.1f} s; mass on x < 0 / x >= 0: {mass.numpy().round(3)} (exact 0.5 / 0.5)")
fig = plotting.plot_density_1d({"diffusion, before": (grid, before), "diffusion, after": (grid, after)},
                               target, T, title="A diffusion sampler learns both modes")
plt.show()

# %% [markdown]
# ## Where things live
#
# ```
# damdp_lite/  chain.py (the protocol)   diffusion.py   gaussian.py   policies.py (build_policy)   config.py
#              targets.py   bound.py   envs/ (toy Gymnasium envs)   algos/ (PPO, REPPO / WPO, SAC)
#              train.py (the one training loop)   presets.py (the toy configs)   metrics.py   results.py
#              shipped/ (the shipped results)   plotting.py   widgets.py   exercises.py   cli.py
# notebooks/   src/ (the sources: 00_tour.py, ...)   00_tour.ipynb, 01_reverse_kl_bound.ipynb, ...
# tests/   benchmarks/
# ```
# The maths follows the paper's naming: the policy is the *denoising* kernel $q$, the *noising* kernel is $\pi$, the
# diffusion index $k$ counts down from $K$ to 0, and the temperature is `temperature` ($\mathcal T$), never `alpha`.
#
# ## Summary
# - `make lab` opens the notebooks; `make test` checks everything, notebooks included.
# - Gaussian and diffusion policies share one protocol; algorithms never branch on which one they get.
# - Even a four-step diffusion sampler covers both modes of a bimodal target. Notebook 01 explains the objective it maximises.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"notebook ran in {time.time() - NOTEBOOK_START:.0f} s (SMOKE={SMOKE})")
