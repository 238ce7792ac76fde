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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/damdp-lite/damdp_lite/blob/main/notebooks/02_maxent_rl_to_damdp.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/damdp-lite/damdp_lite/HEAD?urlpath=lab/tree/notebooks/02_maxent_rl_to_damdp.ipynb)

# %% [markdown]
# *This notebook is generated from `notebooks/src/02_maxent_rl_to_damdp.py` (jupytext): edit that file, then run `make notebooks-sync`.*

# %% [markdown]
# # 02 · From MaxEnt RL to the diffusion-augmented MDP
#
# Notebook 01 fitted a diffusion sampler to one target density, with no states and no time. Reinforcement learning
# needs both: a policy acts in many states, one step after another, and what it does now changes what it sees next.
# This notebook builds the bridge, in four steps:
#
# 1. **MaxEnt RL in sequential form**, on a grid world small enough to solve exactly: soft values, the soft Bellman
#    backup and the soft-optimal policy $\pi^*\propto e^{Q^*/\mathcal T}$.
# 2. **The diffusion-augmented MDP (DA-MDP)**: comparing whole trajectories, noising chains included, turns every denoising
#    step into an MDP step. One environment step becomes $K$ augmented transitions, and we watch the package's rollout
#    code write them.
# 3. **The per-step ratio**: why DiffPPO's importance ratio covers one denoising step, not the whole chain (measured).
# 4. **The actor advantage, `dest_loss` and DPPO**: the two corrections that make PPO follow the gradient of the MaxEnt
#    objective on the DA-MDP, and why DPPO is the same algorithm at $\mathcal T=0$.
#
# Nothing here trains a policy. Everything is either exact (dynamic programming, quadrature) or measured on the
# package's own functions.

# %% [markdown]
# **Learning goals**
# - *Compute* soft values and the soft-optimal policy of a small MDP by soft value iteration, and *explain* what the
#   temperature does to it (robustness, exploration, several optimal routes).
# - *Derive* the DA-MDP from the trajectory KL and *trace* one environment step through $K$ augmented transitions
#   of a real rollout.
# - *Measure* the variance of the per-step and the whole-chain importance ratio as $K$ grows.
# - *Derive* DiffPPO's actor advantage and its `dest_loss` from the policy gradient, and *check* the result numerically.
# - *Implement* augmented GAE with per-augmented-step discounting (exercise 2.1) and the clipped per-step PPO loss
#   with `dest_loss` (exercise 2.2).
#
# **Prerequisites:** notebook 01 (the per-step log-ratio $\ell_k$ and the chain bound); PPO and GAE at the level of
# Spinning Up (Schulman et al. 2017, arXiv 1707.06347; 2015, arXiv 1506.02438). Symbols are listed in
# [`../docs/notation.md`](../docs/notation.md), method names across the paper's versions in
# [`../docs/glossary.md`](../docs/glossary.md).
# **Estimated time:** reading ~45 min, exercises ~30 min. Running top to bottom takes well under a minute on 2 CPU
# cores; the last cell prints the measured time.

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

import copy
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from matplotlib.lines import Line2D

import damdp_lite as dl
from damdp_lite import exercises, plotting, soft_rl
from damdp_lite.algos import PPOConfig, actor_advantage, dest_loss, policy_loss, ppo_loss, resolve
from damdp_lite.algos.ppo import ValueNetwork
from damdp_lite.damdp import (
    augmented_discounts,
    collect_rollout,
    gae,
    make_vector_env,
    per_augmented_step,
    soft_reward_current,
    soft_reward_next,
)
from damdp_lite.policies import build_policy

SMOKE = dl.smoke()  # DAMDP_SMOKE=1 shrinks every loop (CI); the teaching defaults otherwise
torch.set_num_threads(1)  # same numbers on every run (floats can differ between CPU models); these toys do not gain from more
torch.set_printoptions(precision=4)
np.set_printoptions(precision=4, suppress=True)
dl.seed_everything(0)
plotting.setup_style()
NOTEBOOK_START = time.perf_counter()
BLUE, BLACK, GREY = (plotting.COLORS[k] for k in ("diffusion", "optimum", "reference"))  # the suite's colours
print(f"damdp_lite {dl.__version__} | torch {torch.__version__} | SMOKE={SMOKE}")

# %% [markdown]
# ## 1 · MaxEnt RL in sequential form
#
# ### Why entropy?
#
# Standard RL looks for a policy that maximises the expected discounted return. Maximum-entropy (MaxEnt) RL adds the
# entropy of the policy in every visited state, weighted by a temperature $\mathcal T\ge0$. For a policy $q(a\mid s)$
# (we keep $\pi$ for the *target* side: $\pi^*$ below, the noising kernel later),
# $$J(q)=\mathbb E_q\Big[\sum_{t\ge0}\gamma^t\big(r(s_t,a_t)+\mathcal T\,\mathcal H(q(\cdot\mid s_t))\big)\Big]. \tag{1}$$
# Three reasons to want the extra term:
# - **Several optima are kept.** When two actions are equally good, the MaxEnt optimum uses both instead of picking
#   one arbitrarily (Ziebart, *Modeling Purposeful Adaptive Behavior with the Principle of Maximum Causal Entropy*,
#   PhD thesis, CMU 2010; Haarnoja et al. 2017, *Soft Q-Learning*, arXiv 1702.08165, whose multi-goal environment is
#   `damdp_lite/MultiGoal-v0`).
# - **Robustness.** A policy that keeps every good option still works when one of them disappears; MaxEnt RL provably
#   solves a class of robust RL problems (Eysenbach & Levine 2022, arXiv 2103.06257).
# - **Exploration and stable learning.** The entropy bonus keeps the policy stochastic while its value estimates are
#   still wrong; SAC (Haarnoja et al. 2018, arXiv 1801.01290) is the best-known algorithm built on it.
#
# ### Soft values and the soft Bellman backup
#
# The optimum of (1) satisfies soft versions of the Bellman equations (Ziebart 2010; Levine 2018, arXiv 1805.00909):
# $$Q^*(s,a)=r(s,a)+\gamma\,\mathbb E_{s'\sim P(\cdot\mid s,a)}\big[V^*(s')\big], \tag{2}$$
# $$V^*(s)=\mathcal T\log\sum_a\exp\big(Q^*(s,a)/\mathcal T\big), \tag{3}$$
# $$\pi^*(a\mid s)=\exp\big((Q^*(s,a)-V^*(s))/\mathcal T\big)\;\propto\;e^{Q^*(s,a)/\mathcal T}. \tag{4}$$
# (3) is a *soft maximum*: $\max_aQ\le V\le\max_aQ+\mathcal T\log|\mathcal A|$, and $V\to\max_aQ$ as $\mathcal T\to0$, where
# (2)–(3) become the ordinary Bellman optimality equations. Substituting (2) into (3) gives the **soft Bellman backup**
# $V\leftarrow\mathcal BV$, a $\gamma$-contraction, so iterating it from any start converges to $V^*$: **soft value
# iteration**. Equation (4) is notebook 01's $\pi^*=e^{r/\mathcal T}/Z$ with the one-step reward replaced by the soft
# action value, and $V^*(s)=\mathcal T\log Z(s)$.
#
# `damdp_lite/soft_rl.py` writes one function per equation: `soft_q_values` (2), `soft_state_values` (3),
# `soft_optimal_policy` (4), `soft_bellman_backup` and `soft_value_iteration`.
#
# ### A grid world with two equally good routes
#
# Start `S` and goal `G` are separated by a wall; the routes over the top and along the bottom both take six steps.
# Every step costs 1, the goal ends the episode, and a move into a wall or off the grid leaves the agent in place.

# %%
# NBVAL_CHECK_OUTPUT
mdp = soft_rl.two_route_grid(gamma=0.95)
S0 = mdp.start
print("\n".join(mdp.layout))
print(f"{mdp.num_states} states, actions {soft_rl.ACTIONS}, gamma = {mdp.gamma}, "
      f"reward {mdp.rewards[S0, 0].item():g} per step")

T = 0.3
res = soft_rl.soft_value_iteration(mdp, T)
print(f"\nT = {T}: soft value iteration converged in {res.iterations} backups; "
      f"max |B V* - V*| < 1e-8: {res.residual < 1e-8}")
print(f"V*(S) = {res.v[S0].item():.4f}")
print("pi*(. | S) =", {a: round(p, 4) for a, p in zip(soft_rl.ACTIONS, res.policy[S0].tolist(), strict=True)})
live = ~mdp.terminal  # the policy at the goal is never used
print("pi* = exp((Q* - V*) / T) in every non-terminal state, rows summing to 1:",
      torch.allclose(res.policy[live], torch.exp((res.q[live] - res.v[live, None]) / T))
      and torch.allclose(res.policy.sum(-1), torch.ones(mdp.num_states, dtype=torch.float64)))

# %% [markdown]
# At $\mathcal T=0.3$ the start state sends equal mass up and down: $\pi^*$ is **bimodal**, one mode per route. It
# also keeps some mass on the two useless moves (left and right just bump into walls), the price of the entropy bonus.
# Ordinary value iteration ($\mathcal T=0$) finds the same two routes but returns *one* deterministic greedy policy:
# `argmax` breaks the tie towards the first action. The soft-optimal policy at $\mathcal T\to0$ is the limit of (4):
# uniform over the tied actions.

# %%
def draw_policy(ax, mdp, policy, title, color):
    """Arrows from each cell, length proportional to the probability of each move; walls dark, S and G marked."""
    rows, cols = len(mdp.layout), len(mdp.layout[0])
    for i, row in enumerate(mdp.layout):
        for j, c in enumerate(row):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fc="0.25" if c == "#" else "white", ec="0.8"))
            if c in "SG":
                ax.text(j, i, c, ha="center", va="center", fontsize=11, color="0.4", weight="bold")
    for s, (i, j) in enumerate(mdp.cells):
        if mdp.terminal[s]:
            continue
        for p, (di, dj) in zip(policy[s].tolist(), soft_rl.MOVES, strict=True):
            if p > 1e-3:
                ax.arrow(j, i, 0.42 * p * dj, 0.42 * p * di, width=0.03, head_width=0.11 * min(1, 4 * p),
                         length_includes_head=True, color=color)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


res0 = soft_rl.soft_value_iteration(mdp, 0.0)
greedy = soft_rl.greedy_policy(res0.q)
panels = [(greedy, "greedy (value iteration, T = 0)", GREY),
          (res0.policy, r"$\pi^*$, $\mathcal{T}\to0$", BLACK)]
panels += [(soft_rl.soft_value_iteration(mdp, t).policy, rf"$\pi^*$, $\mathcal{{T}}={t}$", BLACK) for t in (0.3, 0.6)]
fig, axes = plt.subplots(2, 2, figsize=(7.0, 3.6))
for ax, (pol, title, color) in zip(axes.flat, panels, strict=True):
    draw_policy(ax, mdp, pol, title, color)
fig.legend(handles=[Line2D([], [], color=GREY, lw=2, label="greedy policy (ties to the first action)"),
                    Line2D([], [], color=BLACK, lw=2, label=r"soft-optimal $\pi^*$ (arrow length = probability)")],
           loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.06))
fig.suptitle("Two equally short routes: one is chosen at T = 0, both are kept by $\\pi^*$")
plt.show()

# %% [markdown]
# **What the temperature does.** Sweeping $\mathcal T$ shows the three regimes: near 0, $\pi^*$ is the greedy policy
# with its ties shared; at moderate $\mathcal T$ it spreads mass over worse actions too; when the entropy bonus per
# step, at most $\mathcal T\log|\mathcal A|$, outweighs the step cost, wandering becomes worth more than arriving.
# The right panel asks how *robust* each policy is: we block the top route (a wall in its middle cell), keep the policy
# computed on the open grid, and compute exactly the probability of reaching `G` within 30 steps.

# %%
HORIZON = 30
blocked = soft_rl.two_route_grid(gamma=0.95, blocked=True)
print("blocked grid:\n" + "\n".join(blocked.layout))
temps = np.geomspace(0.01, 3.0, 12 if SMOKE else 60)
sweep = [soft_rl.soft_value_iteration(mdp, float(t)) for t in temps]
start_probs = np.array([r.policy[S0].tolist() for r in sweep])  # (len(temps), A)
reach_open = [soft_rl.reach_probability(mdp, r.policy, HORIZON) for r in sweep]
reach_blocked = [soft_rl.reach_probability(blocked, soft_rl.transfer_policy(r.policy, mdp, blocked), HORIZON)
                 for r in sweep]
greedy_open = soft_rl.reach_probability(mdp, greedy, HORIZON)
greedy_blocked = soft_rl.reach_probability(blocked, soft_rl.transfer_policy(greedy, mdp, blocked), HORIZON)
T_wander = -mdp.rewards.max().item() / math.log(mdp.num_actions)  # T log|A| = step cost

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.0))
for a, ls in zip(range(mdp.num_actions), ("-", "--", ":", "-."), strict=True):
    ax1.plot(temps, start_probs[:, a], color=BLACK, ls=ls, label=rf"$\pi^*$({soft_rl.ACTIONS[a]} | S)")
ax1.set(xscale="log", xlabel=r"temperature $\mathcal{T}$", ylabel="probability", title="The soft-optimal policy at S")
ax1.legend(frameon=False)
ax2.plot(temps, reach_open, color=BLACK, label=r"$\pi^*$, open grid")
ax2.plot(temps, reach_blocked, color=BLACK, ls="--", label=r"$\pi^*$, top route blocked")
ax2.axhline(greedy_open, color=GREY, lw=1.2, label="greedy, open grid")
ax2.axhline(greedy_blocked, color=GREY, ls="--", lw=1.2, label="greedy, top route blocked")
ax2.axvline(T_wander, color=GREY, ls=":", lw=1, label=r"$\mathcal{T}\log|\mathcal{A}|$ = step cost")
ax2.set(xscale="log", xlabel=r"temperature $\mathcal{T}$", ylabel=f"P(reach G within {HORIZON} steps)",
        title="Robustness: the policy of the open grid, run on both", ylim=(-0.03, 1.03))
ax2.legend(frameon=False, fontsize=7)
plt.show()

# %%
soft_blocked = soft_rl.transfer_policy(res.policy, mdp, blocked)  # pi* at T = 0.3, computed on the open grid
reach_soft_blocked = soft_rl.reach_probability(blocked, soft_blocked, HORIZON)
up, down = soft_rl.ACTIONS.index("up"), soft_rl.ACTIONS.index("down")
p_down = res.policy[S0, down].item() / (res.policy[S0, up] + res.policy[S0, down]).item()
i_best = int(np.argmax(reach_blocked))
display(Markdown(
    f"**Reading.** The greedy policy reaches `G` in {HORIZON} steps with probability {greedy_open:.0f} on the open grid and "
    f"{greedy_blocked:.0f} once its route is blocked: it walks up and pushes against the new wall forever. The soft-optimal "
    f"policy of the open grid at $\\mathcal T={T}$, run on the blocked one, still arrives with probability "
    f"{reach_soft_blocked:.2f}: of the moves that leave `S`, a fraction {p_down:.2f} goes down, along the route that is still "
    f"open. What goes up is mostly stuck as well, since $\\pi^*$ was computed for the open grid; only at higher temperatures "
    f"is it random enough for some of it to turn back (at most {max(reach_blocked):.2f}, at $\\mathcal T={temps[i_best]:.2f}$). "
    f"The robustness comes from keeping both routes. Above "
    f"$\\mathcal T\\approx{T_wander:.2f}$, where $\\mathcal T\\log|\\mathcal A|$ equals the step cost, the entropy bonus pays "
    f"for wandering and $\\pi^*$ stops heading for the goal (probability {reach_open[-1]:.2f} at $\\mathcal T={temps[-1]:.1f}$, "
    f"open grid). The temperature trades reward against all three benefits of entropy; choosing it is part of the "
    f"problem."))

# %% [markdown]
# ## 2 · From the trajectory KL to the augmented MDP
#
# ### MaxEnt RL is a KL between trajectory distributions
#
# Write $p_q(\tau)=p(s_0)\prod_tq(a_t\mid s_t)P(s_{t+1}\mid s_t,a_t)$ for the distribution of trajectories under policy
# $q$, and let the *target* distribution reweight the same dynamics by the rewards:
# $p^*(\tau)\propto p(s_0)\prod_tP(s_{t+1}\mid s_t,a_t)\,e^{r(s_t,a_t)/\mathcal T}$. Then
# $$\mathcal T\,\mathrm{KL}\big(p_q\,\|\,p^*\big)=\text{const}-\mathbb E_q\Big[\sum_t r(s_t,a_t)+\mathcal T\,\mathcal H(q(\cdot\mid s_t))\Big], \tag{5}$$
# the undiscounted form of (1); with deterministic dynamics the target's distribution of $a_t$ given $s_t$ is the $\pi^*$
# of (4) with $\gamma=1$ (Levine 2018 discusses stochastic dynamics and the discount). For a Gaussian policy every term is known.
# For a diffusion policy $q(a^0\mid s)$ the entropy in (5) is intractable, exactly as in notebook 01.
#
# ### Extend every action by its chain
#
# Notebook 01's trick applies at every time step. On the policy side keep the whole chain,
# $p_0(a_t^K)\prod_{k=1}^Kq_\theta(a_t^{k-1}\mid a_t^k,s_t)$; on the target side append to each action the noising chain
# $\prod_k\pi_\theta(a_t^k\mid a_t^{k-1},s_t)$. Marginalising the latents can only shrink a KL (the chain rule of KL), so
# the KL between the extended trajectory distributions bounds (5) from above, and every density in it is known:
# $$\mathcal T\,\mathrm{KL}_{\text{extended}}=\text{const}-\mathbb E\Big[\sum_t\Big(r(s_t,a^0_t)-\mathcal T\sum_{k=1}^K\ell_{k,t}\Big)\Big]
# -\mathcal T\,\mathcal H(p_0)\cdot(\text{number of steps}),\qquad
# \ell_{k,t}=\log q_\theta(a^{k-1}_t\mid a^k_t,s_t)-\log\pi_\theta(a^k_t\mid a^{k-1}_t,s_t). \tag{6}$$
# The prior entropy does not depend on $\theta$. What is left is a **sum of per-denoising-step rewards**: each
# $-\mathcal T\ell_{k,t}$ depends on one step of one chain, and the environment reward arrives once per chain. That is
# an MDP whose steps are the denoising steps, the **diffusion-augmented MDP**:
#
# | | DA-MDP |
# |---|---|
# | state | $\tilde s=(s,a^k,k)$ |
# | action | the next latent $a^{k-1}\sim q_\theta(\cdot\mid\tilde s)$ |
# | transition, $k>1$ | $(s,a^{k-1},k-1)$: the environment does not move |
# | transition, $k=1$ | the environment steps with $\tanh(a^0)$ to $s'$; a fresh prior sample $a'^K$ starts the next chain: $(s',a'^K,K)$ |
# | reward | $\tilde R=r(s,a^0)\,\mathbb 1[k=1]$, plus the entropy term $-\mathcal T\ell_k$ |
# | discount | $\gamma_{aug}$ per augmented step |
#
# Any MaxEnt RL algorithm can now run on the DA-MDP with $-\mathcal T\ell_k$ where it had $-\mathcal T\log q(a\mid s)$:
# the policy's "action" is always a single Gaussian denoising step with a known density. The discount: an algorithm's
# `gamma` is applied on every augmented step (`damdp.augmented_discounts`). The MuJoCo presets set it to
# $\gamma_{aug}=\gamma^{1/K}$ (`damdp.per_augmented_step`), so that $K$ augmented steps discount as much as one
# environment step, and so does this notebook; the turning-wells toy of notebook 04 keeps the official choice,
# $\gamma$ itself on every augmented step. The option `env_time_discounting` discounts only at $k=1$ instead. The method
# reference [`../docs/method.md`](../docs/method.md) §4 lists every element with its source.
#
# ### One environment step, $K$ augmented transitions: the package's rollout
#
# `damdp.collect_rollout` runs the chain inside the agent: per environment step it draws $a^K$, calls the policy's
# `step` $K$ times, squashes $a^0$ and steps the environment once, writing $K$ rows. Here: an untrained $K=4$ policy on
# the multi-goal environment, 2 environments, 3 environment steps.

# %%
K_DEMO, T_DEMO = 4, 0.1
GAMMA_ENV, LAMBDA_ENV = 0.99, 0.95  # per environment step (the MuJoCo preset's values)
envs = make_vector_env("damdp_lite/MultiGoal-v0", 2)
torch.manual_seed(0)
demo_policy = build_policy(dl.DiffusionConfig(num_steps=K_DEMO, hidden_sizes=(32, 32)),
                           envs.single_observation_space.shape[0], envs.single_action_space)
value_net = ValueNetwork(2, 2, (32, 32))  # V(s, a^k, k), used from section 4 on
obs, _ = envs.reset(seed=0)
ro, _ = collect_rollout(envs, demo_policy, value_net, 3, obs, torch.Generator().manual_seed(0))
envs.close()

gamma_aug = per_augmented_step(GAMMA_ENV, K_DEMO)
gamma_e = augmented_discounts(ro.k, gamma_aug)  # gamma_aug on every augmented step
lambda_e = augmented_discounts(ro.k, per_augmented_step(LAMBDA_ENV, K_DEMO))
r_current = soft_reward_current(ro.reward, ro.ell, T_DEMO)  # PPO: R~ - T ell_k (this step's entropy)
r_next = soft_reward_next(ro.reward, ro.next_ell, T_DEMO, gamma_e, ro.terminated)  # REPPO, SAC: next step's
print(f"rollout: {ro.k.shape[0]} rows x {ro.k.shape[1]} envs = {ro.num_transitions} augmented transitions "
      f"= {ro.num_transitions // K_DEMO} env steps x K = {K_DEMO}")
print(f"gamma_aug = {GAMMA_ENV}^(1/{K_DEMO}) = {gamma_aug:.6f}; gamma_aug^K = {gamma_aug**K_DEMO:.6f}")
print("\nenv 0, first two env steps:")
print("row  k  next k   R~       ell_k    R~ - T ell_k   R~ - gamma_e T ell(s~', x')  gamma_e")
for i in range(2 * K_DEMO):
    print(f"{i:3d}  {ro.k[i, 0].item()}  {ro.next_k[i, 0].item():5d}  {ro.reward[i, 0].item():8.3f}  "
          f"{ro.ell[i, 0].item():7.3f}  {r_current[i, 0].item():11.3f}  {r_next[i, 0].item():20.3f}"
          f"                {gamma_e[i, 0].item():.4f}")

# %%
# NBVAL_CHECK_OUTPUT
k1 = ro.k == 1
print("k runs K, ..., 1 within each env step:", ro.k[:, 0].tolist())
print("env reward only on k = 1 rows:", bool((ro.reward[~k1] == 0).all()))
print("the env state is frozen inside the chain (k > 1: next obs = obs):",
      bool((ro.next_obs[~k1] == ro.obs[~k1]).all()))
print("k > 1: the next augmented state holds a^{k-1}:", bool((ro.next_a_k[~k1] == ro.a_prev[~k1]).all()))
print("k = 1: the next augmented state starts a fresh chain at k = K:", bool((ro.next_k[k1] == K_DEMO).all()))

# %% [markdown]
# The diagram draws the first two environment steps of environment 0 from that rollout; the numbers on the arrows
# are the rollout's own $\tilde R$ and $\ell_k$.

# %%
def draw_damdp(rollout, env, env_steps, K):
    """The augmented states of `env_steps` env steps of one env, with each transition's R~ and ell_k."""
    n = env_steps * K
    fig, ax = plt.subplots(figsize=(10.0, 3.1))
    box = dict(boxstyle="round,pad=0.3", fc="white", ec=BLUE)
    for i in range(n + 1):
        t, j = divmod(i, K)
        label = rf"$(s_{t},a^{K - j},{K - j})$" if j else rf"$(s_{t},a'^{K},{K})$" if t else rf"$(s_0,a^{K},{K})$"
        ax.text(i, 0, label, ha="center", va="center", fontsize=8, bbox=box)
    for i in range(n):
        k = int(rollout.k[i, env])
        color = BLACK if k == 1 else BLUE
        ax.annotate("", xy=(i + 0.62, 0), xytext=(i + 0.38, 0), arrowprops=dict(arrowstyle="->", color=color, lw=1.5))
        ax.text(i + 0.5, -0.33, rf"$\tilde R$={rollout.reward[i, env].item():.1f}" + "\n"
                + rf"$\ell_{k}$={rollout.ell[i, env].item():.2f}", ha="center", va="top", fontsize=7, color=color)
    spans = [(t * K, min(t * K + K - 1, n)) for t in range(env_steps + 1)]  # augmented states sharing s_t
    centres = [(lo + hi) / 2 for lo, hi in spans]
    for t, (lo, hi) in enumerate(spans):  # env states above
        ax.text(centres[t], 1.0, rf"env state $s_{t}$", ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.3", fc="0.93", ec=BLACK))
        ax.plot([lo - 0.3, hi + 0.3], [0.62, 0.62], color="0.6", lw=0.8)
        if t < env_steps:
            ax.annotate("", xy=(centres[t + 1] - 0.7, 1.0), xytext=(centres[t] + 0.7, 1.0),
                        arrowprops=dict(arrowstyle="->", color=BLACK, lw=1.5))
            ax.text((centres[t] + centres[t + 1]) / 2, 1.12, rf"env step {t}: action $\tanh(a^0_{t})$",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.7, n + 0.7)
    ax.set_ylim(-1.0, 1.45)
    ax.axis("off")
    ax.legend(handles=[Line2D([], [], color=BLUE, lw=1.5, label=r"denoising step, $k>1$: no env call, reward $-\mathcal{T}\ell_k$"),
                       Line2D([], [], color=BLACK, lw=1.5, label=r"$k=1$: the env steps, reward $\tilde R-\mathcal{T}\ell_1$")],
              loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False, fontsize=8)
    ax.set_title(f"One env step = K = {K} augmented transitions (rollout of damdp.collect_rollout, env {env})")
    return fig


fig = draw_damdp(ro, env=0, env_steps=2, K=K_DEMO)
plt.show()

# %% [markdown]
# Two soft-reward conventions appear in the table, both from `damdp_lite/damdp.py`. **V-based** algorithms (PPO) put the
# entropy of the *current* step into its reward, $r^{soft}=\tilde R-\mathcal T\ell_k$ (`soft_reward_current`). **Q-based**
# algorithms (REPPO, WPO, SAC) learn $Q(\tilde s,a^{k-1})$, whose action is already chosen, so they add the entropy of
# the *next* augmented step instead, $r^{soft}=\tilde R-\gamma_e\mathcal T\ell(\tilde s',x')$ with $x'\sim q_\theta(\cdot\mid\tilde s')$
# (`soft_reward_next`): the soft Bellman equation (2)–(3) written on the DA-MDP. Both sum to the same soft return
# along a trajectory, up to the first and last terms.
#
# **Nothing is back-propagated through the chain.** An update touches one augmented transition. The states with large $k$ learn
# about the environment reward, which arrives only at $k=1$, through the value function $V(s,a^k,k)$, which is
# learned by bootstrapping over augmented steps (GAE or TD($\lambda$)), exactly as an ordinary critic propagates a
# reward backwards over time.
#
# ## 3 · The per-step ratio against the whole-chain ratio
#
# PPO reuses a rollout for several epochs and corrects for the policy having moved with an importance ratio. On the
# DA-MDP the policy's action is one denoising step, so the ratio is **per step**,
# $$w_\theta=\frac{q_\theta(a^{k-1}\mid\tilde s)}{q_{old}(a^{k-1}\mid\tilde s)}, \tag{7}$$
# one Gaussian density ratio per augmented transition. The alternative treats the whole chain as one action; its
# density $q(a^0\mid s)$ is intractable, and the tractable stand-in is the ratio of whole chains,
# $W_\theta=\prod_{k=1}^Kw_{\theta,k}$ (the prior cancels). How do the two behave as $K$ grows? We take DiffPPO's default
# kernel (`PPOConfig.policy_defaults`), make $q_{old}$ with a non-trivial control $f_\theta$, obtain $q_\theta$ by moving every
# parameter by a small random amount (the same size for every $K$), draw chains from $q_{old}$ in random states and
# evaluate both ratios on the same chains.

# %%
# NBVAL_IGNORE_OUTPUT
KS = (1, 2, 4, 8) if SMOKE else (1, 2, 4, 8, 16, 32, 64)
N_CHAINS = 2_000 if SMOKE else 20_000
PERTURBATION, CLIP = 0.05, PPOConfig().clip_coef


def perturbed_pair(K, scale, seed=0):
    """(q_old, q_theta): a K-step diffusion policy and a copy with every parameter moved by scale * N(0, 1)."""
    torch.manual_seed(seed)
    fields = {**PPOConfig.policy_defaults["diffusion"], "num_steps": K, "hidden_sizes": (64, 64)}
    old = dl.DiffusionPolicy(dl.DiffusionConfig(obs_dim=2, action_dim=2, output_init_scale=1.0, **fields))
    new = copy.deepcopy(old)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return old, new


@torch.no_grad()
def per_step_log_ratios(old, new, n, seed=2):
    """log w_k for k = K..1 on n chains of q_old in random states: (K, n)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, old.obs_dim, generator=g)
    chain = old.sample_chain(obs, generator=g)
    return torch.stack([new.denoise_log_prob(obs, chain.latents[k], k, chain.latents[k - 1])
                        - old.denoise_log_prob(obs, chain.latents[k], k, chain.latents[k - 1])
                        for k in range(old.num_steps, 0, -1)])


ratio_rows, t0 = [], time.perf_counter()
for K in KS:
    log_w = per_step_log_ratios(*perturbed_pair(K, PERTURBATION), N_CHAINS)  # (K, n)
    w, W = log_w.exp(), log_w.sum(0).exp()
    ratio_rows.append(dict(K=K, var_step=w.var(1).mean().item(), var_chain=W.var().item(),
                           clip_step=((w - 1).abs() > CLIP).float().mean().item(),
                           clip_chain=((W - 1).abs() > CLIP).float().mean().item(),
                           var_log_chain=log_w.sum(0).var().item(), mean_chain=W.mean().item()))
print(f"{len(KS)} values of K, {N_CHAINS} chains each, in {time.perf_counter() - t0:.1f} s")
print(f"   K   Var(w) per step   Var(W) chain   Var(log W)   exp(Var log W) - 1   mean W   "
      f"outside 1 +- {CLIP}: per step   chain")
for r in ratio_rows:
    print(f"{r['K']:4d}   {r['var_step']:14.4f}   {r['var_chain']:12.4f}   {r['var_log_chain']:10.4f}   "
          f"{math.expm1(r['var_log_chain']):18.4f}   {r['mean_chain']:6.3f}   {r['clip_step']:26.3f}   {r['clip_chain']:5.3f}")

# %%
Kv = [r["K"] for r in ratio_rows]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.0))
ax1.plot(Kv, [r["var_step"] for r in ratio_rows], "o-", color=BLUE, label=r"per step $w_\theta$ (mean over $k$)")
ax1.plot(Kv, [r["var_chain"] for r in ratio_rows], "s--", color=BLUE, label=r"whole chain $W_\theta=\prod_k w_{\theta,k}$")
ax1.set(xscale="log", yscale="log", xlabel="denoising steps $K$", ylabel="variance of the ratio",
        title="Same parameter change, growing K")
ax1.set_xticks(Kv, [str(k) for k in Kv])
ax1.legend(frameon=False)
ax2.plot(Kv, [r["clip_step"] for r in ratio_rows], "o-", color=BLUE, label="per step")
ax2.plot(Kv, [r["clip_chain"] for r in ratio_rows], "s--", color=BLUE, label="whole chain")
ax2.set(xscale="log", xlabel="denoising steps $K$", ylabel=rf"fraction outside $1\pm{CLIP}$", ylim=(-0.02, 1.02),
        title="What PPO's clip would cut")
ax2.set_xticks(Kv, [str(k) for k in Kv])
ax2.legend(frameon=False)
plt.show()

# %%
first, last = ratio_rows[0], ratio_rows[-1]
step_range = [f(r["var_step"] for r in ratio_rows) for f in (min, max)]
lognormal_err = max(abs(math.expm1(r["var_log_chain"]) / r["var_chain"] - 1) for r in ratio_rows)
display(Markdown(
    f"**Reading.** Both ratios have mean 1 (the whole-chain mean stays within {max(abs(r['mean_chain'] - 1) for r in ratio_rows):.3f} "
    f"of it), but their spreads part ways. The per-step variance stays between {step_range[0]:.4f} and {step_range[1]:.4f} for "
    f"every $K$ (each $K$ is its own network, whose time embedding sees other values of $k$, so the same parameter change moves "
    f"each a little differently). The whole-chain variance grows from {first['var_chain']:.4f} at $K={first['K']}$ to "
    f"{last['var_chain']:.3f} at $K={last['K']}$, a factor {last['var_chain'] / first['var_chain']:.0f}. The reason: $\\log W$ is "
    f"a sum of $K$ per-step log-ratios, so their variances add up ({first['var_log_chain']:.4f} to {last['var_log_chain']:.3f}), and "
    f"for a near-Gaussian $\\log W$ with mean-one $W$ the ratio's variance is $e^{{\\mathrm{{Var}}\\log W}}-1$, exponential in that "
    f"sum (the table's two columns agree within {100 * lognormal_err:.0f} %). With PPO's clip $\\epsilon={CLIP}$, "
    f"{100 * last['clip_chain']:.0f} % of the whole-chain ratios at $K={last['K']}$ would fall outside the clip range, where a "
    f"sample gives no gradient, against {100 * last['clip_step']:.0f} % of the per-step ratios."))

# %% [markdown]
# **Why DiffPPO clips the per-step ratio.**
# - *Variance.* One Gaussian step carries one step's worth of change; a product of $K$ of them compounds it, and the
#   update would be driven by a few chains with huge weights.
# - *It is PPO on an MDP.* On the DA-MDP the per-step ratio *is* PPO's ratio: one state $\tilde s$, one action
#   $a^{k-1}$. PPO's trust-region argument holds state by state, and credit across the $K$ steps is carried by the value
#   function over augmented states (GAE), not by multiplying ratios.
# - *The chain's change is still bounded.* By the chain rule of KL, the KL between two whole chains is the sum over $k$
#   of the expected per-step KLs, so keeping every step close keeps the whole chain close.
#
# DPPO (Ren et al. 2024, arXiv 2409.00588) made the same choice for diffusion policies without entropy; the next section
# shows that it is DiffPPO at $\mathcal T=0$.
#
# ## 4 · The actor advantage, `dest_loss`, and DPPO as $\mathcal T=0$
#
# Fix one augmented state $\tilde s=(s,a^k,k)$ from the rollout. The part of the MaxEnt objective that the policy
# controls at this step is the soft action value minus the entropy term of the step it takes,
# $$L(\theta;\tilde s)=\mathbb E_{x\sim q_\theta(\cdot\mid\tilde s)}\big[Q(\tilde s,x)-\mathcal T\,\ell_\theta(\tilde s,x)\big],\qquad
# \ell_\theta(\tilde s,x)=\log q_\theta(x\mid\tilde s)-\log\pi_\theta(a^k\mid x,s). \tag{8}$$
# $\theta$ enters twice: through the sampling distribution and through $\ell_\theta$ itself. The score-function identity,
# with $\mathbb E_q[\nabla_\theta\log q_\theta]=0$, gives
# $$\nabla_\theta L=\mathbb E\Big[\big(Q-\mathcal T\ell_\theta\big)\,\nabla_\theta\log q_\theta(x\mid\tilde s)\Big]\;+\;\mathcal T\,\mathbb E\big[\nabla_\theta\log\pi_\theta(a^k\mid x,s)\big]. \tag{9}$$
# (Appendix G of the DA-MDP paper, arXiv 2512.02019.) Each term becomes one piece of DiffPPO's loss
# (`damdp_lite/algos/ppo.py`, method reference [`../docs/method.md`](../docs/method.md) §5.3):
#
# **The actor advantage** (first term). PPO's clipped surrogate with the per-step ratio (7) follows
# $\mathbb E[\hat A\,\nabla\log q_\theta]$ at $w=1$, so $\hat A$ must estimate $Q-\mathcal T\ell_\theta$ minus a baseline. GAE over
# augmented steps gives $A^{GAE}\approx r^{soft}+\gamma V(\tilde s')-V(\tilde s)$, with this step's entropy term
# $r^{soft}-\tilde R=-\mathcal T\ell_{old}$ frozen at rollout time. `actor_advantage` swaps it for the current parameters'
# one, and centres the result over the minibatch (the baseline):
# $$\hat A=\mathrm{sg}\Big(A^{GAE}-(r^{soft}-\tilde R)-\mathcal T\,\ell_\theta(\tilde s,a^{k-1})\Big)-\text{batch mean}. \tag{10}$$
#
# **`dest_loss`** (second term). The noising kernel $\pi_\theta$ shares the learnable step sizes $\eta_k$ (parameters $\rho$
# and friction $\phi$) with the policy, so $\ell_\theta$ depends on $\theta$ directly, not only through the sample. PPO's
# surrogate cannot see that dependence; `dest_loss` adds it:
# $$\mathcal L_{dest}=-\operatorname{mean}_{\text{active}}\big[\mathrm{sg}(w_\theta)\,\mathcal T\log\pi_\theta(a^k\mid a^{k-1},s)\big], \tag{11}$$
# over the *active* samples, those whose unclipped surrogate branch is selected ($w\hat A\le\mathrm{clip}(w)\hat A$, ties
# included): where PPO's clip stops the first term, the second stops too. The control network $f_\theta$ is not in
# $\pi_\theta$, so only $\rho$ and $\phi$ receive its gradient. The package's code of both:

# %%
print(inspect.getsource(actor_advantage))
print(inspect.getsource(dest_loss))

# %% [markdown]
# **A numerical check of (9).** We compare three gradients of (8) for a $K=4$ policy, in 16 augmented states, with the
# expectation over $x$ replaced by a fine deterministic grid of Gaussian quantiles (so the comparison is not drowned in
# Monte-Carlo noise):
# 1. the *exact* gradient, by differentiating (8) through the reparameterised sample $x=\mu_\theta+\sqrt{2\eta_k}\,\varepsilon$;
# 2. the gradient of DiffPPO's actor loss, `policy_loss` + `dest_loss` with $\hat A$ from `actor_advantage`, at $w=1$;
# 3. the same without `dest_loss`.
#
# `dest_loss` concerns the entropy term of (8), so we isolate it: $Q\equiv0$, i.e. the policy maximises its entropy
# bound alone. The control network's last layer is scaled up (`output_init_scale`) so that $f_\theta$ is far from zero, as
# after training; near $f_\theta=0$ the noising kernel almost reverses the denoising step and the correction is small.

# %%
N_NODES, N_STATES, T_CHECK, K_CHECK = (1024, 8, 0.5, 4) if SMOKE else (4096, 16, 0.5, 4)
torch.manual_seed(0)
check_policy = dl.DiffusionPolicy(dl.DiffusionConfig(obs_dim=0, action_dim=1, num_steps=K_CHECK, squash="identity",
                                                     hidden_sizes=(32, 32), output_init_scale=30.0,
                                                     noising_step_pairing="same"))
with torch.no_grad():
    chains = check_policy.sample(N_STATES, generator=torch.Generator().manual_seed(0))
k_states = torch.arange(N_STATES) % K_CHECK + 1  # every k in turn
a_states = chains.latents[k_states, torch.arange(N_STATES)]  # (N_STATES, 1): the augmented states (a^k, k)
groups = {"control net f": list(check_policy.control_net.parameters()), "step sizes rho": [check_policy.rho],
          "friction phi": [check_policy.phi]}
params = [p for ps in groups.values() for p in ps]


def Q(x):
    return torch.zeros(x.shape[0])  # the entropy term alone


def gradient_errors(n_nodes):
    """Exact gradient of (8) and DiffPPO's, with and without dest_loss, on n_nodes Gaussian quantiles per state."""
    nodes = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n_nodes) + 0.5) / n_nodes)
    a_k, k = a_states.repeat_interleave(n_nodes, 0), k_states.repeat_interleave(n_nodes)  # (B, 1), (B,)
    eps, obs = nodes.repeat(N_STATES)[:, None], torch.zeros(a_k.shape[0], 0)
    # 1. exact: differentiate (8) through the reparameterised sample
    x = check_policy.denoise_mean(obs, a_k, k) + check_policy.denoise_var(obs, a_k, k).sqrt() * eps
    g_exact = torch.autograd.grad((Q(x) - T_CHECK * check_policy.log_ratio(obs, a_k, k, x)).mean(), params)
    # 2. and 3. DiffPPO's actor loss at w = 1, on the same samples
    x = x.detach()
    log_q = check_policy.denoise_log_prob(obs, a_k, k, x)
    log_pi = check_policy.noise_log_prob(obs, a_k, k, x)
    ell_new = log_q - log_pi
    ratio = torch.exp(log_q - log_q.detach())  # w = 1, with its gradient
    ell_old = ell_new.detach()
    adv_hat = actor_advantage(advantages=Q(x) - T_CHECK * ell_old, r_soft=-T_CHECK * ell_old,
                              reward=torch.zeros_like(ell_old), ell_new=ell_new, temperature=T_CHECK)
    pg_loss, active = policy_loss(ratio, adv_hat, CLIP)
    d_loss = dest_loss(ratio, log_pi, active, T_CHECK)
    g_ppo = torch.autograd.grad(-(pg_loss + d_loss), params, retain_graph=True)
    g_no_dest = torch.autograd.grad(-pg_loss, params, retain_graph=True)
    g_dest_f = torch.autograd.grad(d_loss, groups["control net f"], allow_unused=True)
    rows, i = {}, 0
    for name, ps in groups.items():
        flat = [torch.cat([gr.reshape(-1) for gr in g[i:i + len(ps)]]) for g in (g_exact, g_ppo, g_no_dest)]
        i += len(ps)
        rows[name] = dict(norm=flat[0].norm().item(), err_dest=((flat[1] - flat[0]).norm() / flat[0].norm()).item(),
                          err_no_dest=((flat[2] - flat[0]).norm() / flat[0].norm()).item())
    f_rms = check_policy.control(obs, a_k, k).pow(2).mean().sqrt().item()
    return rows, all(gr is None or not gr.any() for gr in g_dest_f), f_rms


coarse, _, _ = gradient_errors(N_NODES // 4)
grad_rows, dest_spares_f, f_rms = gradient_errors(N_NODES)
print(f"{N_STATES} states x {N_NODES} quantile nodes; rms of f = {f_rms:.2f}")
print(f"parameters        |exact gradient|   rel. error, with dest_loss ({N_NODES // 4} nodes)   without dest_loss")
for name, row in grad_rows.items():
    print(f"{name:16s}  {row['norm']:15.4f}   {row['err_dest']:15.4f} ({coarse[name]['err_dest']:.4f})"
          f"   {row['err_no_dest']:25.4f}")
print("dest_loss sends no gradient to the control net:", dest_spares_f)

# %%
worst, worst_coarse = (max(r["err_dest"] for r in rows.values()) for rows in (grad_rows, coarse))
display(Markdown(
    f"**Reading.** With `dest_loss`, DiffPPO's actor gradient matches the exact gradient of (8) to within "
    f"{100 * worst:.2f} % for every parameter group, and the difference shrinks as the grid is refined "
    f"({100 * worst_coarse:.2f} % with a quarter of the nodes): it is the error of the quantile grid. Without `dest_loss` the "
    f"control network's gradient is unchanged (error {100 * grad_rows['control net f']['err_no_dest']:.2f} %), but the step "
    f"sizes' gradient is off by {100 * grad_rows['step sizes rho']['err_no_dest']:.0f} % and the friction's by "
    f"{100 * grad_rows['friction phi']['err_no_dest']:.0f} %: without the correction, PPO would learn the step sizes against a "
    f"biased gradient of the entropy bound."))

# %% [markdown]
# ### DPPO is DiffPPO at $\mathcal T=0$
#
# Set $\mathcal T=0$ in (6)–(11): the soft reward is the environment reward, the actor advantage is the centred GAE
# advantage, `dest_loss` vanishes, and what remains is PPO with the per-step ratio on the denoising MDP: DPPO
# (Ren et al. 2024). In the package it is one algorithm with one more alias; the cell checks the three facts on the
# rollout of §2, with a value network for GAE.

# %%
# NBVAL_CHECK_OUTPUT
algo, implied = resolve("dppo")
print(f"--algo dppo is the '{algo.name}' algorithm with {implied}")
r0 = soft_reward_current(ro.reward, ro.ell, 0.0)
adv0, _ = gae(r0, ro.value, ro.next_value, ro.terminated, ro.truncated, gamma_e, lambda_e)
flat = {name: getattr(ro, name).reshape(ro.num_transitions, -1) for name in ("obs", "a_k", "a_prev")}
k_flat = ro.k.reshape(-1)
with torch.no_grad():
    ell_now = demo_policy.log_ratio(flat["obs"], flat["a_k"], k_flat, flat["a_prev"])
    log_pi_now = demo_policy.noise_log_prob(flat["obs"], flat["a_k"], k_flat, flat["a_prev"])
adv_hat0 = actor_advantage(adv0.reshape(-1), r0.reshape(-1), ro.reward.reshape(-1), ell_now, 0.0)
all_active = torch.ones_like(ell_now, dtype=torch.bool)
print("T = 0: soft reward = env reward:", torch.equal(r0, ro.reward))
print("T = 0: actor advantage = centred GAE advantage:", torch.allclose(adv_hat0, adv0.reshape(-1) - adv0.mean()))
print("T = 0: dest_loss = 0:", dest_loss(torch.ones_like(ell_now), log_pi_now, all_active, 0.0).item() == 0.0)

# %% [markdown]
# ## Summary
# - MaxEnt RL adds $\mathcal T\,\mathcal H(q(\cdot\mid s_t))$ to every reward. Its optimum solves the soft Bellman equations
#   (2)–(4); on a finite MDP soft value iteration finds it exactly. $\pi^*\propto e^{Q^*/\mathcal T}$ keeps every good route
#   (bimodal at the start of the grid), which is what made it robust to a blocked route; too large a $\mathcal T$ makes it
#   wander.
# - Extending every action by its noising chain bounds the trajectory KL with a sum of per-denoising-step terms
#   $-\mathcal T\ell_k$: the DA-MDP, with states $(s,a^k,k)$ and $K$ augmented transitions per environment step. Any MaxEnt RL
#   algorithm runs on it; nothing is back-propagated through the chain.
# - DiffPPO's importance ratio covers one denoising step. The whole-chain ratio compounds $K$ of them and its variance
#   grows with $K$; for long chains, clipping it would discard most samples (§3).
# - DiffPPO's actor advantage re-evaluates the current step's $\ell$ with the current parameters, and `dest_loss` adds the
#   gradient that flows through the learnable noising kernel (appendix G); together they follow the gradient of the
#   MaxEnt objective. At $\mathcal T=0$ both corrections vanish and DiffPPO is DPPO.
#
# Next: the multimodal-bandits notebook ([`03_multimodal_bandits.ipynb`](03_multimodal_bandits.ipynb)) trains diffusion and
# Gaussian policies with this PPO on bandits whose $\pi^*$ is known exactly.
#
# ## Exercises
#
# **Exercise 2.1 — augmented GAE with per-augmented-step discounting.** Write GAE over a DA-MDP rollout. Inputs, each
# `(S, N)` (rollout rows × envs, rows in rollout order, $S=L\cdot K$ for $L$ environment steps): `r_soft`, `value`
# $V(\tilde s)$, `next_value` $V(\tilde s')$ (at a truncation: the value of the true final observation), `terminated`,
# `truncated` (0/1 floats, non-zero only on $k=1$ rows); the number of denoising steps `num_steps` $K$; the
# *environment-step* discount `gamma_env` and GAE parameter `lambda_env`. Spread both over the chain
# ($x_{aug}=x_{env}^{1/K}$ on every augmented step) and return the advantages, shape `(S, N)`:
# $$\delta_t=r^{soft}_t+\gamma_{aug}(1-\text{term}_t)V(\tilde s'_t)-V(\tilde s_t),\qquad
# A_t=\delta_t+\gamma_{aug}\lambda_{aug}(1-\text{term}_t)(1-\text{trunc}_t)A_{t+1},\qquad A_{S-1}=\delta_{S-1}.$$
# The checker compares with the function DiffPPO calls (`damdp.gae`) on random rollouts, and names the mistake or the
# first entry that differs; if you skip the exercise it falls back to the reference.

# %%
def my_augmented_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env, lambda_env):
    """GAE advantages over augmented steps with gamma_env^(1/K), lambda_env^(1/K) per step: returns (S, N)."""
    raise NotImplementedError("Exercise 2.1: write augmented GAE")


# %% [markdown]
# <details><summary>Hint 1</summary>
#
# The per-augmented-step values are `gamma_env ** (1 / num_steps)` and `lambda_env ** (1 / num_steps)`: after $K$
# augmented steps, one environment step, the discount is `gamma_env` again. They do not depend on $k$.
# </details>
#
# <details><summary>Hint 2</summary>
#
# Compute every $\delta_t$ first (one line, all rows at once). Then walk the rows backwards, `for t in reversed(range(S))`,
# carrying the running advantage of the next row; at the last row nothing is carried.
# </details>
#
# <details><summary>Hint 3</summary>
#
# A termination ends the episode: no bootstrap in $\delta_t$ and nothing carried. A truncation only stops the carry:
# its $\delta_t$ still bootstraps from `next_value`, which the rollout evaluated at the true final observation.
# </details>

# %%
# NBVAL_CHECK_OUTPUT
augmented_gae = exercises.check_augmented_gae(my_augmented_gae)
# use it: a longer rollout of the multi-goal env (episodes end by truncation after 30 env steps), against the
# pipeline of damdp_lite/algos/ppo.py: soft rewards, augmented_discounts, gae
envs = make_vector_env("damdp_lite/MultiGoal-v0", 2)
obs, _ = envs.reset(seed=1)
ro_long, _ = collect_rollout(envs, demo_policy, value_net, 40, obs, torch.Generator().manual_seed(1))
envs.close()
r_soft_long = soft_reward_current(ro_long.reward, ro_long.ell, T_DEMO)
yours = augmented_gae(r_soft_long, ro_long.value, ro_long.next_value, ro_long.terminated, ro_long.truncated,
                      K_DEMO, GAMMA_ENV, LAMBDA_ENV)
adv_long, ret_long = gae(r_soft_long, ro_long.value, ro_long.next_value, ro_long.terminated, ro_long.truncated,
                         augmented_discounts(ro_long.k, per_augmented_step(GAMMA_ENV, K_DEMO)),
                         augmented_discounts(ro_long.k, per_augmented_step(LAMBDA_ENV, K_DEMO)))
print("the rollout holds truncations:", bool(ro_long.truncated.any()))
print("your advantages match the PPO pipeline's:", torch.allclose(yours, adv_long, rtol=1e-5, atol=1e-4))

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_augmented_gae(r_soft, value, next_value, terminated, truncated, num_steps, gamma_env, lambda_env):
#     gamma, lam = gamma_env ** (1 / num_steps), lambda_env ** (1 / num_steps)
#     delta = r_soft + gamma * (1 - terminated) * next_value - value
#     adv = torch.zeros_like(value)
#     for t in reversed(range(value.shape[0])):
#         carry = 0.0 if t == value.shape[0] - 1 else gamma * lam * (1 - terminated[t]) * (1 - truncated[t]) * adv[t + 1]
#         adv[t] = delta[t] + carry
#     return adv
# ```
# The package's `damdp.gae` computes the same recursion in $O(\log S)$ vectorised steps (`reverse_linear_scan`);
# `damdp.gae_loop` is the loop above.
# </details>
#
# **Exercise 2.2 — the clipped per-step PPO loss with `dest_loss`.** Write DiffPPO's actor loss on a minibatch of
# augmented transitions: the clipped surrogate of the per-step ratio $w=\exp(\log q_\theta-\log q_{old})$ plus
# `dest_loss` (11). Inputs, each `(B,)`: `new_log_prob` $\log q_\theta(a^{k-1}\mid\tilde s)$ and `noise_log_prob`
# $\log\pi_\theta(a^k\mid a^{k-1},s)$ (both with gradient), `old_log_prob` $\log q_{old}$, `adv_hat` $\hat A$ of (10); and the
# numbers `clip_coef` $\epsilon$ and `temperature` $\mathcal T$. Output: the loss, a 0-d tensor, to be *minimised*:
# $$\mathcal L=-\operatorname{mean}\big[\min\big(w\hat A,\ \mathrm{clip}(w,1-\epsilon,1+\epsilon)\hat A\big)\big]-\operatorname{mean}_{\text{active}}\big[\mathrm{sg}(w)\,\mathcal T\log\pi_\theta\big].$$
# The checker compares the loss *and its gradients* with respect to $\log q_\theta$ and $\log\pi_\theta$ with the package's
# `policy_loss` + `dest_loss`, so the stop-gradient and the active set are checked too.

# %%
def my_ppo_actor_loss(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
    """Clipped per-step surrogate + dest_loss: returns a 0-d tensor."""
    raise NotImplementedError("Exercise 2.2: write the clipped per-step PPO loss with dest_loss")


# %% [markdown]
# <details><summary>Hint 1</summary>
#
# `w = torch.exp(new_log_prob - old_log_prob)`. The surrogate is the usual PPO one: the elementwise minimum of the
# unclipped and the clipped branch, averaged, with a minus sign because the loss is minimised.
# </details>
#
# <details><summary>Hint 2</summary>
#
# A sample is *active* when its unclipped branch is the one selected: `w * adv_hat <= clipped * adv_hat`. Inside the
# clip range both branches are equal, a tie, and the sample is active.
# </details>
#
# <details><summary>Hint 3</summary>
#
# `dest_loss` weights $\mathcal T\log\pi_\theta$ by `w.detach()` (it must not move $\log q_\theta$), keeps the active samples
# only, and divides by their number (at least 1).
# </details>

# %%
# NBVAL_CHECK_OUTPUT
ppo_actor_loss = exercises.check_ppo_actor_loss(my_ppo_actor_loss)
# use it: a perturbed copy of the demo policy against its own rollout, next to the package's ppo_loss
new_policy = copy.deepcopy(demo_policy)
gen = torch.Generator().manual_seed(3)
with torch.no_grad():
    for p in new_policy.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=gen))
mb = {"obs": ro_long.obs, "a_k": ro_long.a_k, "k": ro_long.k, "a_prev": ro_long.a_prev, "log_prob": ro_long.log_prob,
      "advantages": adv_long, "returns": ret_long, "r_soft": r_soft_long, "reward": ro_long.reward}
mb = {key: v.reshape(ro_long.num_transitions, *v.shape[2:]) for key, v in mb.items()}
_, stats = ppo_loss(new_policy, value_net, mb, CLIP, T_DEMO, vf_coef=0.5)
new_lp = new_policy.denoise_log_prob(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"])
noise_lp = new_policy.noise_log_prob(mb["obs"], mb["a_k"], mb["k"], mb["a_prev"])
adv_hat_mb = actor_advantage(mb["advantages"], mb["r_soft"], mb["reward"], new_lp - noise_lp, T_DEMO)
yours = ppo_actor_loss(new_lp, mb["log_prob"], noise_lp, adv_hat_mb, CLIP, T_DEMO)
print("your loss = ppo_loss's policy_loss + dest_loss on a real minibatch:",
      torch.allclose(yours.detach(), stats["policy_loss"] + stats["dest_loss"], atol=1e-5))

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_ppo_actor_loss(new_log_prob, old_log_prob, noise_log_prob, adv_hat, clip_coef, temperature):
#     w = torch.exp(new_log_prob - old_log_prob)
#     unclipped = w * adv_hat
#     clipped = torch.clamp(w, 1 - clip_coef, 1 + clip_coef) * adv_hat
#     active = unclipped <= clipped
#     dest = -(w.detach() * active * temperature * noise_log_prob).sum() / active.sum().clamp(min=1)
#     return -torch.min(unclipped, clipped).mean() + dest
# ```
# </details>
#
# **Open questions**
# 1. In the two-route grid, why does $\pi^*$ at the start put *exactly* the same mass on up and down at every
#    temperature, while the greedy policy cannot? What would break the symmetry?
# 2. With `env_time_discounting` ($\gamma$ only at $k=1$) instead of $\gamma^{1/K}$ on every augmented step, both discount
#    one environment step by $\gamma$. What differs between the two, and for which terms of the soft return?
# 3. The whole-chain ratio is not the ratio of the marginals $q_\theta(a^0\mid s)/q_{old}(a^0\mid s)$. Which of the two
#    would PPO need to be exact on the original MDP, and why is neither needed on the DA-MDP?
# 4. Why does the second term of (9) vanish when the noising kernel has no learnable parameters, and what does
#    `dest_loss` become for a Gaussian policy ($K=1$, no noising kernel)?
#
# <details><summary>Solutions to the open questions</summary>
#
# 1. The grid is symmetric under reflection about its middle row, which swaps up and down and maps the start to itself.
#    Soft value iteration commutes with that reflection and its fixed point is unique, so $Q^*(S,\text{up})=Q^*(S,\text{down})$ and (4)
#    gives them equal mass. A deterministic policy must choose one. Any asymmetry breaks it: a longer or costlier route, a
#    slippery row (`grid_mdp(..., slip=...)` on part of the grid), or a different number of side options along one route,
#    since at $\mathcal T>0$ routes with more near-optimal options carry more soft value.
# 2. The discount of the environment reward per environment step is the same. The entropy terms inside a chain are
#    discounted differently: with $\gamma^{1/K}$ per step, $\ell_k$ at larger $k$ (earlier in the chain) weighs slightly more
#    than $\ell_1$; with `env_time_discounting` all $K$ terms of one environment step weigh the same. The value function
#    also differs inside the chain: $V(s,a^k,k)$ with $\gamma^{1/K}$ discounts the coming environment reward by $\gamma^{(k-1)/K}$,
#    with `env_time_discounting` not at all.
# 3. PPO on the original MDP needs the marginal ratio (the policy's action is $a^0$), which is intractable; the whole-chain
#    ratio is an unbiased but high-variance stand-in for it (it has the marginal ratio as its conditional expectation given
#    $a^0$). On the DA-MDP the action is $a^{k-1}$ and the per-step ratio is exact; the extended objective is a bound on the
#    original one, and the per-step ratio is exact for *that* objective.
# 4. It is $\mathcal T\,\mathbb E[\nabla_\theta\log\pi_\theta]$, zero when $\pi$ does not depend on $\theta$. For the Gaussian policy
#    `noise_log_prob` is 0, so `dest_loss` is exactly 0 and DiffPPO's loss is MaxEnt PPO's.
# </details>
#
# **Further reading:** Ziebart 2010 (maximum causal entropy); Haarnoja et al. 2017 (arXiv 1702.08165) and 2018
# (arXiv 1801.01290); Levine 2018 (arXiv 1805.00909); the DA-MDP paper (arXiv 2512.02019) §4 and appendix G; DPPO
# (arXiv 2409.00588).

# %%
# NBVAL_IGNORE_OUTPUT
print(f"Top to bottom: {time.perf_counter() - NOTEBOOK_START:.0f} s")
