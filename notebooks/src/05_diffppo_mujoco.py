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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/damdp-lite/damdp_lite/blob/main/notebooks/05_diffppo_mujoco.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/damdp-lite/damdp_lite/HEAD?urlpath=lab/tree/notebooks/05_diffppo_mujoco.ipynb)

# %% [markdown]
# *This notebook is generated from `notebooks/src/05_diffppo_mujoco.py` (jupytext): edit that file, then run `make notebooks-sync`.*

# %% [markdown]
# # 05 · DiffPPO on MuJoCo: the runner, the CLI, throughput and shipped results
#
# Notebooks 03 and 04 trained DiffPPO on toys where the optimum is known. Here the *same* `PPO`
# class (no line of it knows whether the policy is a diffusion chain or a Gaussian) runs on Gymnasium
# MuJoCo v5: HalfCheetah and Hopper. Around it sit the pieces a real run needs: a vector-env layer,
# a training runner that writes a run directory and resumes bit-identically, a `damdp-lite` command,
# a throughput benchmark against Stable-Baselines3, and three seeds per method of shipped results. Method names
# across the paper's versions are listed in [`docs/glossary.md`](../docs/glossary.md).
#
# *The end result of §3, the learning curves of the shipped runs, is the first figure after the setup cell.*

# %% [markdown]
# **Learning goals**
# - *Run* DiffPPO and its Gaussian base, PPO, from the CLI or from Python, and *resume* an interrupted run exactly.
# - *Read* learning curves with a bootstrap confidence band over seeds, and final scores: how many episodes each
#   rests on, and the interquartile mean (IQM, exercise 5.1).
# - *Explain* where a diffusion policy's extra wall-clock goes (env, denoising chain, update) and which
#   levers close the gap: batching the chain across envs, and $\kappa<K$ chain steps per env step in the update.
# - *Compare* our numbers with published anchors honestly (different env versions, budgets and metrics).
#
# **Prerequisites:** notebooks 02–04 (DiffPPO, soft rewards, the per-step ratio; [`docs/method.md`](../docs/method.md) derives them).
# **Estimated time:** reading ~30 min. Running top to bottom on 2 CPU cores: under 3 minutes, most of it the
# live run of §5 (the last cell prints the time); under `DAMDP_SMOKE=1` (CI) well under a minute. The shipped
# 1M-step runs are **not** re-run here: they took hours of CPU (`benchmarks/mujoco_runs.py`).

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
import shutil
import tempfile
import time
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import gymnasium as gym
import torch
from IPython.display import Image, Markdown, Video, display

import damdp_lite as dl
from damdp_lite import exercises, plotting, report, results, widgets
from damdp_lite.algos import PPOConfig, resolve
from damdp_lite.envs.make import set_offscreen_gl
from damdp_lite.policies import policy_kind, tunable_fields
from damdp_lite.train import RunConfig, algo_config, config_diff, evaluate_policy, load_policy, load_run, train

SMOKE = dl.smoke()  # DAMDP_SMOKE=1 shrinks every loop (CI); the full notebook otherwise
torch.set_num_threads(1)  # 1 thread: measured fastest for these MLPs, and reproducible output
set_offscreen_gl("egl")  # MuJoCo renders off-screen (MUJOCO_GL); set before the first render
plotting.setup_style()
NOTEBOOK_START = time.perf_counter()
HERE = Path.cwd()
FIGURES = HERE / "figures" / "generated"  # what this notebook saves (git-ignored)
FIGURES.mkdir(parents=True, exist_ok=True)
print(f"damdp_lite {dl.__version__}, torch {torch.__version__}, SMOKE={SMOKE}")

# %% [markdown]
# **End result** (§3): learning curves of the shipped runs,
# PPO (Gaussian, orange) and DiffPPO (blue) on HalfCheetah-v5 and Hopper-v5, 3 seeds each, 1M env steps, with the
# random policy (grey, dashed) and CleanRL's PPO (grey, dash-dot) for reference.

# %%
Image(filename=results.shipped("figures/05_curves.png"))

# %% [markdown]
# ## 1 · From toys to MuJoCo: what changes, what does not
#
# The learner is unchanged: `collect_rollout` runs the $K$-step chain inside the agent (batched over the
# envs), writes $K$ augmented transitions per env step, and `ppo_loss` applies the per-step ratio, the
# actor advantage and `dest_loss` of `damdp_lite/algos/ppo.py`. What is new lives around it:
#
# | concern | where | what it does |
# |---|---|---|
# | vector env | `envs/make.py` `make_vector_env` | `SyncVectorEnv` (faster than async on 2 cores) or `AsyncVectorEnv`, same-step autoreset: truncations bootstrap from `info["final_obs"]` |
# | normalisation | `RunningNorm` in the policy and value nets | running mean/var of the observation **and of the latent** $a^k$, updated every augmented step (`damdp_lite.damdp.collect_rollout`) |
# | reward scale | `ScaleReward` | divides $r$ by the running std of the discounted return; logged returns stay raw |
# | action bounds | `policy.to_action` | $\operatorname{clip}(\tanh a^0)$ rescaled to the env's Box |
# | exact resume | `EnvSnapshot`, `PPO.state_dict` | physics state (`mj_getState`), env RNGs, time limits, nets, Adam, every generator |
# | runner | `train.py` `train` | run directory, `progress.csv` appended each iteration, evaluations, atomic checkpoints |
#
# One more lever is specific to diffusion: in each epoch the update may use only $\kappa$ of the $K$ chain
# steps of every env step, drawn at random (`diffusion_steps_per_update`). The surrogate is an expectation
# over $k$, so every $k$ is still sampled uniformly; the update then costs about $\kappa$ times a Gaussian's.
# The MuJoCo preset `PPOConfig.mujoco` uses $K=8$, $\kappa=2$ (a Gaussian has $K=1$, so $\kappa$ does not apply).
# `algo_config(name, **fields)` builds the preset of a command-line algorithm name, as `damdp-lite train --algo NAME` does:

# %%
# NBVAL_CHECK_OUTPUT
for algo, policy in (("ppo", "gaussian"), ("ppo", "diffusion"), ("dppo", "diffusion")):
    cfg = algo_config(algo, policy=policy)
    print(f"--algo {algo} --policy {policy:9s} policy={policy_kind(cfg.policy):9s} K={cfg.policy.num_steps} "
          f"kappa={cfg.diffusion_steps_per_update} "
          f"T={cfg.temperature:g} envs={cfg.num_envs}x{cfg.num_env_steps} epochs={cfg.update_epochs} "
          f"minibatches={cfg.num_minibatches} lr={cfg.lr:g} gamma_aug={cfg.gamma:.6f} lambda_aug={cfg.gae_lambda:.6f}")


# %% [markdown]
# $\gamma$ and $\lambda$ are set per **augmented** step so that $K$ of them make the env-step values 0.99 and 0.95
# (`damdp_lite.damdp.per_augmented_step`): `gamma_aug` above is $0.99^{1/8}$. `--algo ppo --policy diffusion` is DiffPPO (alias `--algo diffppo`),
# `--algo ppo` alone is PPO with a Gaussian policy, and `--algo dppo` is DiffPPO at $\mathcal T=0$.
#
# ## 2 · The runner and the command line
#
# ```bash
# damdp-lite train --algo ppo --policy diffusion --env HalfCheetah-v5 --steps 1e6 --seed 0  # runs/HalfCheetah-v5_diffppo_s0
# damdp-lite train --algo diffppo --env HalfCheetah-v5 --steps 1e6 --seed 0  # the same run (alias): resumes from the checkpoint
# damdp-lite train --algo ppo --env HalfCheetah-v5 --steps 1e6 --seed 0      # PPO (Gaussian): runs/HalfCheetah-v5_ppo_s0
# damdp-lite evaluate runs/HalfCheetah-v5_diffppo_s0 --episodes 10 --video cheetah.mp4
# damdp-lite reproduce --list                                    # a table of the shipped runs of §3 and their scores
# damdp-lite reproduce HalfCheetah-v5_diffppo_s0                 # re-run one from its config.json
# ```
#
# Every option of `train` is a field of `RunConfig` (where and how the run is logged), of the algorithm's config
# (`PPOConfig`: env, budget, seed, PPO's fields) or of its nested policy config (`DiffusionConfig` / `GaussianConfig`),
# documented once in the dataclass (`damdp-lite train --help` prints those docstrings). Bad input is one line naming
# the field, and exit code 2. From Python the same run is `train(algo_config("ppo", policy="diffusion", ...), RunConfig(...))`;
# `train(config)` without a `RunConfig` trains in memory (notebooks 03 and 04).
#
# A run directory holds `config.json`, `progress.csv` (one row per iteration, appended as it goes),
# `checkpoint.pt` (written atomically; tensors, numbers and strings only, read without unpickling) and `policy.pt` at the end.
# Resuming drops the rows written after the last checkpoint and recomputes them, so **an interrupted run and
# an uninterrupted one write the same file** on CPU, except the wall-clock columns. The cell below checks that
# on a tiny Hopper run, interrupted after iteration 3 with the checkpoint at iteration 2:

# %%
# NBVAL_CHECK_OUTPUT
def tiny(**fields):  # a few seconds: DiffPPO with 2 envs x 8 env steps, K = 2, small nets
    return algo_config("ppo", policy="diffusion", num_envs=2, num_env_steps=8, update_epochs=2, num_minibatches=2,
                       num_steps=2, hidden_sizes=(16,), value_hidden_sizes=(16,), **fields)

class Interrupt(Exception):
    pass

def crash_at_3(row):
    if row["iteration"] == 3:
        raise Interrupt

tmp = Path(tempfile.mkdtemp())
cfg_tiny = tiny(env_id="Hopper-v5", total_env_steps=2 * 8 * 6)
kw = dict(eval_every=2, eval_episodes=2, checkpoint_every=2)
a, b = RunConfig(run_dir=str(tmp / "a"), **kw), RunConfig(run_dir=str(tmp / "b"), **kw)
train(cfg_tiny, a, progress=False)
try:
    train(cfg_tiny, b, progress=False, callback=crash_at_3)
except Interrupt:
    print("interrupted after iteration 3; rows on disk:", len(results.read_progress(tmp / "b" / "progress.csv")))
res = train(cfg_tiny, b, progress=False)
print("resumed at iteration", res.resumed_from)
ra, rb = (results.read_progress(tmp / d / "progress.csv") for d in "ab")
same = all(np.allclose([x[k] for k in x if k not in ("elapsed_s", "sps")],
                       [y[k] for k in y if k not in ("elapsed_s", "sps")], rtol=0, atol=0, equal_nan=True)
           for x, y in zip(ra, rb, strict=True))
print(f"{len(ra)} rows each; identical apart from wall-clock columns: {same}")
shutil.rmtree(tmp)

# %% [markdown]
# ## 3 · Shipped results: HalfCheetah-v5 and Hopper-v5, PPO vs DiffPPO, 3 seeds
#
# `python benchmarks/mujoco_runs.py --steps 1000000` trained every (env, algorithm, seed) with the
# presets of the time (each run's `config.json` records its settings; the diffusion preset has changed since:
# `PPOConfig.mujoco`), 1M env steps each, two runs at a time on the 2-core CPU (so the minutes below are
# contended wall-clock). Each run's `config.json` and `progress.csv` ship with the package in
# `damdp_lite/shipped/mujoco/` (`results.summarise` reads them there); `damdp-lite reproduce NAME` re-runs one
# with its recorded settings. The cell below prints every field in which the recorded configs differ from today's
# preset (`algo_config`), so the numbers of this section belong to the recorded settings, not to the current preset.

# %%
# NBVAL_CHECK_OUTPUT
for env in ("HalfCheetah-v5", "Hopper-v5"):
    for algo in ("ppo", "diffppo"):
        recorded = [load_run(d)[1].to_dict() for d in results.find_runs(env, algo)]
        now = algo_config("ppo", policy=recorded[0]["policy"]["kind"], env_id=env).to_dict()
        # each field on which a recorded run differs from the preset, with the value of the first run that differs
        differ = {k: (x, y) for r in reversed(recorded) for k, x, y in config_diff(r, now) if k != "seed"}
        print(f"{env:15s} {algo:8s} {len(recorded)} runs; recorded -> current preset: "
              + (", ".join(f"{k} {x} -> {y}" for k, (x, y) in sorted(differ.items())) or "no difference"))


# %% [markdown]
# The curves show the **training episodic return** (CleanRL's metric: the mean return of the episodes
# that finished in an iteration, carried forward between them), its mean over seeds and a 95%
# percentile-bootstrap band. With 3 seeds the band only reflects the spread of three numbers. Two grey
# reference levels are measured here through the same evaluation loop as the runs: the dashed **random
# policy** (uniform actions, `report.random_policy_return`) and the dotted **actions pinned at +1** (every
# coordinate at the top of its range, `report.pinned_action_return`: where a saturated policy plays).

# %%
ENVS, METHODS = ("HalfCheetah-v5", "Hopper-v5"), ("ppo", "diffppo")
LABELS = {"ppo": "PPO (Gaussian)", "diffppo": "DiffPPO (diffusion, K=8)"}
REF_EPISODES = 10  # the same in SMOKE: a few seconds, and the tables below stay checkable
RANDOM = {e: report.random_policy_return(e, episodes=REF_EPISODES) for e in ENVS}
PINNED = {e: report.pinned_action_return(e, 1.0, episodes=REF_EPISODES) for e in ENVS}
summary = {env: results.summarise(env, METHODS) for env in ENVS}
fig = plotting.plot_learning_curves(summary, anchors=results.CLEANRL_PPO_V4_1M, labels=LABELS, random=RANDOM,
                                    pinned=PINNED, reference_labels={"pinned": "actions pinned at +1"})
fig.savefig(FIGURES / "05_curves.png")  # to refresh the end-result figure: copy to damdp_lite/shipped/figures/
plt.show()

# %% [markdown]
# Two scores per run. **Final training return**: the mean of the training returns logged in the last 10% of the
# run's env steps (an iteration is logged when at least one episode finished in it; "logged" counts them per seed).
# **Evaluation return**: the mean of the episodes of the evaluation every run makes at its end (frozen
# normalisers, stochastic policy; the score `damdp-lite report` uses). The CI is a 95% percentile bootstrap over
# the 3 seeds' final training returns. The **pooled IQM** is the IQM (`results.iqm`, exercise 5.1) of the
# last-10% training returns of all three seeds pooled; n counts them. The anchor is CleanRL's PPO on **v4**
# (`damdp_lite.results.CLEANRL_PPO_V4_1M`, with its source); v5 changes model details, and CleanRL uses one env
# and no entropy term, so the comparison is indicative only.

# %%
# NBVAL_CHECK_OUTPUT
SCORES = {(r.env_id, r.method, r.seed): r for r in report.collect_runs([results.SHIPPED_RUNS])}
LOGGED, EVAL = {}, {}  # (env, algo) -> per seed: logged iterations in the last 10%, evaluation return at the end
for env in ENVS:
    for algo in summary[env]:
        runs = results.find_runs(env, algo)
        LOGGED[env, algo] = [len(results.final_returns(results.read_progress(d / "progress.csv"))) for d in runs]
        EVAL[env, algo] = [SCORES[env, algo, load_run(d)[1].seed].score for d in runs]
print(f"{'':33s}{'final training return':^53s} {'evaluation at the end':^27s}")
print(f"{'env':15s} {'algo':8s} {'steps':>8s} {'logged':>9s} {'mean':>6s} {'95% CI':>14s} {'per seed':>20s} "
      f"{'pooled IQM (n)':>15s}  {'per seed':>20s} {'mean':>5s}  minutes")
for env in ENVS:
    for algo, s in summary[env].items():
        print(f"{env:15s} {algo:8s} {min(s['env_steps']):8d} {','.join(map(str, LOGGED[env, algo])):>9s} "
              f"{s['final_mean']:6.0f} [{s['final_ci'][0]:5.0f}, {s['final_ci'][1]:5.0f}] "
              f"{', '.join(f'{x:5.0f}' for x in s['final_per_seed']):>20s} {s['final_iqm']:9.0f} ({sum(LOGGED[env, algo]):3d})  "
              f"{', '.join(f'{x:5.0f}' for x in EVAL[env, algo]):>20s} {np.mean(EVAL[env, algo]):5.0f}  "
              f"{', '.join(f'{m:.0f}' for m in s['minutes'])}")
    print(f"{env:15s} anchor: CleanRL PPO, v4, 1M steps: {results.CLEANRL_PPO_V4_1M[env]:.0f}; "
          f"random policy: {RANDOM[env]:.0f} ({REF_EPISODES} episodes)")
print("evaluation episodes per run:", sorted({r.eval_episodes for r in SCORES.values()}))

# %%
def span(values, fmt=".0f") -> str:
    """'lo–hi' of a list of numbers (one value if they agree at this precision)."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def env_lines(env: str) -> str:
    """Each method's final training return (per seed, evaluation) and its side of the anchor."""
    anchor = results.CLEANRL_PPO_V4_1M[env]
    out = []
    for algo, s in summary[env].items():
        above = s["final_mean"] > anchor
        other = [f"{x:.0f}" for x in s["final_per_seed"] if (x > anchor) != above]
        note = f", though seed {', '.join(other)} is not" if other else ", every seed too"
        out.append(f"{LABELS[algo]} ends at {s['final_mean']:.0f} (seeds "
                   f"{', '.join(f'{x:.0f}' for x in s['final_per_seed'])}; evaluation {np.mean(EVAL[env, algo]):.0f}), "
                   f"{'above' if above else 'below'} the anchor{note}")
    return "; ".join(out)


def pairs_below(env: str, score: str) -> str:
    own = {a: (summary[env][a]["final_per_seed"] if score == "train" else EVAL[env, a]) for a in METHODS}
    n = sum(d < p for d, p in zip(own["diffppo"], own["ppo"]))
    return f"{n} of {len(own['ppo'])}"


below = all(np.mean(own[env, "diffppo"]) < np.mean(own[env, "ppo"])
            for own in ({k: summary[k[0]][k[1]]["final_per_seed"] for k in EVAL}, EVAL) for env in ENVS)
headline = ("DiffPPO ends below our PPO on both tasks, by both scores' means" if below else
            "DiffPPO does not end below our PPO on both tasks by both scores' means")
horizon = gym.spec("HalfCheetah-v5").max_episode_steps
per_seed_time = [d / p for env in ENVS for d, p in zip(summary[env]["diffppo"]["minutes"], summary[env]["ppo"]["minutes"])]
mean_time = [np.mean(summary[env]["diffppo"]["minutes"]) / np.mean(summary[env]["ppo"]["minutes"]) for env in ENVS]
steps = min(min(s["env_steps"]) for env in ENVS for s in summary[env].values())
c0 = load_run(results.find_runs("HalfCheetah-v5", "ppo")[0])[1]
hc_ci = summary["HalfCheetah-v5"]["ppo"]["final_ci"]
display(Markdown(f"""
**What the runs show** (3 seeds, {steps:,} env steps each: {steps // (c0.num_envs * c0.num_env_steps)} iterations of
{c0.num_envs} envs × {c0.num_env_steps} steps; final training returns, evaluation in brackets):

- **HalfCheetah-v5** (CleanRL's v4 anchor {results.CLEANRL_PPO_V4_1M['HalfCheetah-v5']:.0f}): {env_lines('HalfCheetah-v5')}.
- **Hopper-v5** (anchor {results.CLEANRL_PPO_V4_1M['Hopper-v5']:.0f}): {env_lines('Hopper-v5')}.
- **{headline}**; seed by seed (seed i against seed i) it is below in
  {pairs_below('HalfCheetah-v5', 'train')} seeds on HalfCheetah and {pairs_below('Hopper-v5', 'train')} on Hopper by the training
  return, {pairs_below('HalfCheetah-v5', 'eval')} and {pairs_below('Hopper-v5', 'eval')} by the evaluation. The paper's claim is about
  DMC at 50M steps with the official hyperparameters (where DiffPPO beats its PPO baseline: the paper, arXiv
  2512.02019); at 1M steps with a CPU-sized preset that was not tuned for either method we do not see it.
- **How many episodes a "final" rests on.** HalfCheetah's episodes never end early and the {c0.num_envs} envs start
  together, so all of them finish on the same env step, once every {horizon:,} steps: the last 10% holds
  {span([n for a in METHODS for n in LOGGED['HalfCheetah-v5', a]], 'd')} logged iterations per run, of {c0.num_envs} episodes each.
  On Hopper, where episodes end at different steps, it holds {span([n for a in METHODS for n in LOGGED['Hopper-v5', a]], 'd')}.
- With three seeds the bootstrap bands are wide (HalfCheetah PPO: {hc_ci[0]:.0f} to {hc_ci[1]:.0f}): the per-seed
  numbers matter more than the means.
- Wall clock, two runs sharing the 2 cores: DiffPPO took {span(mean_time, '.1f')}× as long as PPO per run on
  average over the seeds of a task ({span(per_seed_time, '.1f')}× seed by seed; {span([m for env in ENVS for m in summary[env]['diffppo']['minutes']])}
  min against {span([m for env in ENVS for m in summary[env]['ppo']['minutes']])} min). Notebook 06 compares measured ratios with the
  paper's runtime table.
"""))

# %% [markdown]
# **With today's presets.** PPO and DiffPPO with the current presets (the tanh Jacobian in the entropy, a narrower
# prior, LeCun init: `PPOConfig.mujoco`) ran again beside REPPO and DA-MDP REPPO on two DeepMind Control tasks of the
# paper's set and on HalfCheetah-v5 and Hopper-v5, each run scored by its final evaluation. Notebook 06, §4b, draws
# and tabulates those runs (`damdp_lite/shipped/damdp_grid/`) with the diagnostics each logs.
# Their PPO and DiffPPO numbers, read from the grid's shipped report (`damdp-lite report`: final evaluation over
# 10 episodes per run; "normalised" puts the random policy at 0 and the best run on the task, of any method, at 1):

# %%
# NBVAL_CHECK_OUTPUT
GRID = results.shipped("damdp_grid")
GRID_REPORT = json.loads((GRID / "report" / "report.json").read_text())


def grid_run(path: str) -> Path:
    """A run the report names ('damdp_lite/shipped/damdp_grid/...'), where this installation keeps it."""
    return GRID / Path(path).relative_to("damdp_lite/shipped/damdp_grid")


late_sat = {}  # (task, algo) -> mean over seeds of the saturated fraction over the last quarter of each run
print(f"{'task':27s} {'method':8s} {'final evaluation per seed':>27s} {'mean':>6s} {'normalised':>10s} {'saturated':>9s}")
for task in GRID_REPORT["tasks"]:
    for algo in METHODS:
        sc = GRID_REPORT["methods"][algo]["scores"][task]
        late_sat[task, algo] = np.mean([results.late_mean(results.read_progress(grid_run(r) / "progress.csv"),
                                                          "saturated") for r in sc["runs"]])
        print(f"{task:27s} {algo:8s} {', '.join(f'{x:6.0f}' for x in sc['raw']):>27s} {sc['raw_mean']:6.0f} "
              f"{np.mean(sc['normalised']):10.2f} {late_sat[task, algo]:9.2f}")
    print(f"{'':27s} random policy {GRID_REPORT['normalisation'][task]['random']:.0f}")
GRID_IQM = {a: GRID_REPORT["methods"][a]["aggregate"]["IQM"] for a in METHODS}
for algo, a in GRID_IQM.items():
    print(f"{algo:8s} normalised IQM over the four tasks {a['point']:.2f} [{a['ci'][0]:.2f}, {a['ci'][1]:.2f}]")

# %%
below_tasks = [t for t in GRID_REPORT["tasks"] if GRID_REPORT["methods"]["diffppo"]["scores"][t]["raw_mean"]
               < GRID_REPORT["methods"]["ppo"]["scores"][t]["raw_mean"]]
more_sat = [t for t in GRID_REPORT["tasks"] if late_sat[t, "diffppo"] > late_sat[t, "ppo"]]
lowest = min(x for t in GRID_REPORT["tasks"] for x in GRID_REPORT["methods"]["diffppo"]["scores"][t]["normalised"])
display(Markdown(f"""
With today's preset the lowest normalised score of any DiffPPO run is {lowest:.2f} (0 is the random policy), and
DiffPPO's mean is below PPO's on {len(below_tasks)} of {len(GRID_REPORT['tasks'])} tasks and its IQM
{GRID_IQM['diffppo']['point']:.2f} [{GRID_IQM['diffppo']['ci'][0]:.2f}, {GRID_IQM['diffppo']['ci'][1]:.2f}] is
{'below' if GRID_IQM['diffppo']['point'] < GRID_IQM['ppo']['point'] else 'at or above'} PPO's {GRID_IQM['ppo']['point']:.2f} [{GRID_IQM['ppo']['ci'][0]:.2f}, {GRID_IQM['ppo']['ci'][1]:.2f}]. On
{len(more_sat)} of {len(GRID_REPORT['tasks'])} tasks DiffPPO keeps more action coordinates saturated late in training ({span([late_sat[t, 'diffppo'] for t in GRID_REPORT['tasks']], '.2f')},
against PPO's {span([late_sat[t, 'ppo'] for t in GRID_REPORT['tasks']], '.2f')}): notebook 06, §4b, follows that lead.
"""))

# %% [markdown]
# **Which of DiffPPO's settings drive its saturation?** `benchmarks/levers_ablation.py --algo diffppo` changes one
# field of the DiffPPO preset at a time on HalfCheetah-v5 (seed 0, the grid's budget and evaluation): all $K$ chain
# steps of every env step in each update instead of $\kappa=2$, $\mathcal T=0$ (DPPO, no entropy), a narrower prior,
# and the entropy without the tanh Jacobian. `damdp_lite/shipped/levers_ablation_diffppo.json` holds the finished
# runs beside the grid's own DiffPPO runs ("preset"); diagnostics are means over the last quarter of each run.

# %%
# NBVAL_CHECK_OUTPUT
PPO_ABL = json.loads(results.shipped("levers_ablation_diffppo.json").read_text())
print(f"DiffPPO on {PPO_ABL['env_id']}, under {', '.join(f'{k} {v}' for k, v in PPO_ABL['versions'].items())}")
print(results.ablation_table(PPO_ABL, [("saturated", "saturated", "9.2f"), ("K*KL", "kl", "7.4f"),
                                       ("clip frac.", "clip_fraction", "10.2f")]))

# %%
ppo_base = {r["seed"]: r for r in PPO_ABL["variants"]["preset"]["runs"]}
ppo_done = {n: r for n, v in PPO_ABL["variants"].items() if n != "preset" for r in v["runs"]}
ppo_sat_grid = late_sat["HalfCheetah-v5", "ppo"]
lower_sat = [n for n, r in ppo_done.items() if r["saturated"] < ppo_base[r["seed"]]["saturated"]]
base_finals = ", ".join(f"{r['final_eval_return']:.0f}" for r in ppo_base.values())
base_sat = ", ".join(f"{r['saturated']:.0%}" for r in ppo_base.values())
display(Markdown(
    f"The preset's seeds end at {base_finals}, {base_sat} saturated (PPO: {ppo_sat_grid:.0%} on this task). "
    + " ".join(f"**{n}** ends at {r['final_eval_return']:.0f} against the same seed's "
               f"{ppo_base[r['seed']]['final_eval_return']:.0f}, {r['saturated']:.0%} saturated."
               for n, r in ppo_done.items())
    + f" {len(lower_sat)} of {len(ppo_done)} variants lower the saturation"
    + (f" ({', '.join(lower_sat)})" if lower_sat else "")
    + "; with one seed each, a return difference smaller than the spread of the preset's seeds is not evidence."
    + (f" DPPO ($\\mathcal T=0$) is {ppo_done['dppo']['saturated']:.0%} saturated against the same seed's "
       f"{ppo_base[ppo_done['dppo']['seed']]['saturated']:.0%} with the entropy term: DiffPPO's saturation does not come from the entropy bonus." if "dppo" in ppo_done
       and ppo_done["dppo"]["saturated"] >= ppo_base[ppo_done["dppo"]["seed"]]["saturated"] else "")))

# %% [markdown]
# ## 4 · Where the time goes: throughput
#
# `python benchmarks/throughput.py --json` times, in one process and with the same 16 envs and budget:
# raw env steps with random actions, Stable-Baselines3's PPO with its defaults, our PPO (Gaussian), and
# DiffPPO at $K=4$ and $8$. It also splits our learners' time into env stepping, the rest of the rollout
# (the denoising chain, value and log-prob passes) and the update. The shipped measurement:

# %%
# NBVAL_CHECK_OUTPUT
tp = json.loads(results.shipped("05_throughput.json").read_text())
print(f"HalfCheetah-v5, {tp['num_envs']} envs, {tp['budget']} env steps each, device {tp['device']}, {tp['threads']} torch thread")
print(f"{'learner':24s} {'env steps/s':>11s}   env   chain+rollout   update")
print(f"{'raw env (random actions)':24s} {tp['raw_env_sps']:11.0f}")
print(f"{'SB3 PPO, defaults (64x64)':24s} {tp['sb3_ppo_sps']:11.0f}")
print(f"{'SB3 PPO, 2x256 nets':24s} {tp['sb3_ppo_256_sps']:11.0f}")
for name in ("ours_ppo", "ours_diffppo_k4", "ours_diffppo_k8", "ours_ppo_64", "ours_diffppo_k8_64"):
    r = tp[name]
    print(f"{name:24s} {r['sps']:11.0f}   {r['fraction_env']:3.0%}   {r['fraction_chain_and_rollout']:13.0%}   "
          f"{r['fraction_update_and_setup']:6.0%}")
for key, val in tp["ratios"].items():
    print(f"{key:45s} {val:.2f}")

# %%
tp1 = json.loads(results.shipped("05_throughput_kappa1.json").read_text())
R = tp["ratios"]
ppo, k8 = tp["ours_ppo"], tp["ours_diffppo_k8"]
display(Markdown(f"""
**Reading the table** (measured while two of the shipped training runs shared the 2 cores; the learners run
interleaved, so they saw the same load, and the ratios are the meaningful part):

- **Against SB3 and against our PPO.** Our PPO runs at {R['ours_ppo / sb3_ppo (each at its defaults)']:.2f}× SB3's defaults,
  and DiffPPO ($K=8$, $\\kappa=2$) at {R['diffppo_k8 / ours_ppo']:.2f}× our PPO.
- **Where the time goes:** in our PPO {ppo['fraction_update_and_setup']:.0%} of the time is the update. Its cost is set by
  the network width: at SB3's 64×64 widths our PPO is {R['ours_ppo_64 / sb3_ppo (both 64x64 nets)']:.2f}× SB3, and with our
  2×256 widths on both sides ours is {R['ours_ppo / sb3_ppo_256 (both 2x256 nets)']:.2f}× SB3. So the gap to SB3's *defaults*
  is mostly the {(256 * 256) // (64 * 64)}× larger hidden layers of our MuJoCo preset (`PPOConfig.mujoco`, 2×256) that we
  kept for the Gaussian baseline, to compare like with like.
- **DiffPPO:** the env is {k8['fraction_env']:.0%} of its time; the denoising chain and the rest of the rollout take
  {k8['fraction_chain_and_rollout']:.0%} ($K$ network calls per env step, batched over the {tp['num_envs']} envs), the update
  {k8['fraction_update_and_setup']:.0%}. The update is the lever the method offers: with $\\kappa=1$ instead of 2 chain steps per
  env step, DiffPPO $K=8$ ran at {tp1['ratios']['diffppo_k8 / ours_ppo']:.2f}× our PPO in a separate interleaved pair
  (`python benchmarks/throughput.py --learners ours_ppo ours_diffppo_k8 --kappa 1`, stored in
  `damdp_lite/shipped/05_throughput_kappa1.json`). The shipped runs keep $\\kappa=2$, the preset they were trained with.
"""))

# %% [markdown]
# **Tried:** batching the chain across envs (in place from the start), one torch thread (fastest here),
# Adam's `foreach` kernels (bitwise-identical updates, slightly faster). Not tried yet:
# `torch.compile` (it changes floating-point results, hence the shipped runs' reproducibility) and
# fewer, larger minibatches (fewer optimiser steps, so it changes learning, not just speed).
#
# ## 5 · A short live run, then the panel
#
# A DiffPPO run on Hopper-v5 with today's preset at $K=4$ (not the settings of the shipped runs), small enough for a laptop (the cell prints how long it took; a few
# seconds under `SMOKE`), drawn by the same function as the panel below with the panel's default settings: the
# training return, the evaluation at the end of the run (2 episodes) and the random policy.

# %%
# NBVAL_IGNORE_OUTPUT
LIVE_STEPS = 2 * 8 * 4 if SMOKE else 40_960
RUN_LABELS = {"diffppo": "DiffPPO", "ppo": "PPO (Gaussian)", "dppo": "DPPO (DiffPPO at T = 0)"}


def random_return(env_id: str) -> float:
    """The random policy's return on `env_id` (measured once, `REF_EPISODES` episodes)."""
    if env_id not in RANDOM:
        RANDOM[env_id] = report.random_policy_return(env_id, episodes=REF_EPISODES)
    return RANDOM[env_id]


def train_and_draw(cfg, algo: str):
    """Train `cfg` in a temporary run directory (one evaluation, at the end) -> (figure, result)."""
    label = RUN_LABELS[algo] + (f" (K={cfg.policy.num_steps})" if cfg.policy.num_steps > 1 else "")
    with tempfile.TemporaryDirectory() as tmp_dir:
        res = train(cfg, RunConfig(run_dir=str(Path(tmp_dir) / "run"), eval_every=0, eval_episodes=2), progress=False)
    fig_, ax = plt.subplots(figsize=(5.0, 3.3))
    plotting.plot_returns(ax, {label: results.training_curve(res.history)}, random=random_return(cfg.env_id))
    last = res.history[-1]
    ax.plot([last["env_steps"]], [last["eval_return"]], ls="", marker="*", ms=11, color=plotting.style(label)["color"],
            label="evaluation at the end")
    ax.set(ylabel="episodic return", title=f"{label} on {cfg.env_id}, seed {cfg.seed}")
    ax.legend(fontsize=8, frameon=False, loc="best")
    return fig_, res


t0 = time.perf_counter()
live_fields = dict(env_id="Hopper-v5", total_env_steps=LIVE_STEPS, seed=0)
live_cfg = tiny(**live_fields) if SMOKE else algo_config("ppo", policy="diffusion", num_steps=4, **live_fields)
fig, live = train_and_draw(live_cfg, "diffppo")
TRAIN_S = time.perf_counter() - t0
plt.show()
print(f"{LIVE_STEPS} env steps in {TRAIN_S:.0f} s")

# %% [markdown]
# The panel is built from the config dataclasses: besides the algorithm (a command-line name: `diffppo`, `ppo` =
# PPO with a Gaussian policy, `dppo`), each control is a `PPOConfig` field or a policy field, its tooltip the field's docstring:
# the seed, the budget, $K$ (the diffusion policy only; a Gaussian has $K=1$), $\kappa$ and the learning rate.
# Nothing runs until you press **Train**.

# %%
# NBVAL_IGNORE_OUTPUT
controls = {"algo": W.Dropdown(options=["diffppo", "ppo", "dppo"], value="diffppo", description="algo",
                              style=widgets.STYLE, layout=widgets.LAYOUT)}
controls.update(widgets.controls_from_config(PPOConfig, [
    "env_id", "seed", "total_env_steps", "num_steps", "diffusion_steps_per_update", "lr"], {
    "env_id": dict(options=["Hopper-v5", "HalfCheetah-v5", "InvertedPendulum-v5"], value="Hopper-v5"),
    "total_env_steps": dict(min=8_192, max=204_800, step=8_192, value=40_960),
    "num_steps": dict(value=4), "diffusion_steps_per_update": dict(min=0, max=16, value=2),
    "lr": dict(value=3e-4)}))


def run_panel(algo, env_id, seed, total_env_steps, num_steps, diffusion_steps_per_update, lr):
    _, implied = resolve(algo)  # e.g. dppo: policy="diffusion", temperature=0
    kind = implied.get("policy", "gaussian")  # as on the command line: a base name is the Gaussian version
    chain = {k: v for k, v in dict(num_steps=num_steps).items() if k in tunable_fields(kind)}
    cfg = algo_config(algo, policy=kind, env_id=env_id, seed=seed, total_env_steps=total_env_steps, lr=lr,
                      diffusion_steps_per_update=diffusion_steps_per_update, **chain)
    return train_and_draw(cfg, algo)[0]  # the panel's bar shows the progress


display(widgets.training_panel(controls, run_panel))

# %% [markdown]
# ## 6 · Video of a trained DiffPPO policy
#
# The shipped HalfCheetah DiffPPO run (seed 0) keeps its final weights (`policy.pt`, 0.3 MB). One episode,
# stochastic policy (the chain samples a fresh $a^K$ every step), rendered off-screen with `MUJOCO_GL=egl`
# (or `osmesa`). The video goes to `runs/`, which git ignores; where no off-screen backend works the cell
# says why and shows the copy kept in the repository,
# [`figures/05_diffppo_video.mp4`](figures/05_diffppo_video.mp4), instead.
# From the command line: `damdp-lite evaluate damdp_lite/shipped/mujoco/HalfCheetah-v5_diffppo_s0 --video cheetah.mp4`.

# %%
# NBVAL_IGNORE_OUTPUT
from damdp_lite.envs.render import RenderingUnavailable

SHIPPED = results.shipped("mujoco/HalfCheetah-v5_diffppo_s0")  # config.json, progress.csv, policy.pt
policy, env_id = load_policy(SHIPPED), load_run(SHIPPED)[1].env_id
FRAMES = 30 if SMOKE else 300
try:
    rets, lens, frames = evaluate_policy(policy, env_id, episodes=1, seed=10_000, render=True, max_frames=FRAMES)
    video = plotting.write_video(frames, str(HERE / "runs" / "05_diffppo_video.mp4"))  # git-ignored
    shown = f"video of the first {len(frames)} frames"
except RenderingUnavailable as err:  # no off-screen OpenGL here: the same episode, without frames
    rets, lens, _ = evaluate_policy(policy, env_id, episodes=1, seed=10_000)
    video = str(HERE / "figures" / "05_diffppo_video.mp4")
    shown = ("the repository's video of it" if Path(video).exists() else
             "no video here (the repository keeps one in notebooks/figures/05_diffppo_video.mp4)")
    print(f"No frames rendered: {err}")
print(f"{env_id}: episode return {rets[0]:.0f} over {lens[0]} steps; {shown}")
Video(video, embed=True, width=360) if Path(video).exists() else None


# %% [markdown]
# ## 7 · Exercise 5.1: the interquartile mean
#
# Aggregate scores in deep RL are reported as the **IQM**, the interquartile mean: sort the $n$ values,
# drop the $\lfloor n/4\rfloor$ lowest and the $\lfloor n/4\rfloor$ highest, and average the rest (a 25%
# trimmed mean). It is robust to one lucky or unlucky run, yet uses half of the values, unlike the median
# (Agarwal et al., *Deep RL at the edge of the statistical precipice*, NeurIPS 2021). This is what their
# library rliable computes (`rliable.metrics.aggregate_iqm`, which is `scipy.stats.trim_mean(x, 0.25)`),
# and what `damdp_lite.results.iqm` calls. For $n=4$ it is the mean of the middle two; for $n\le3$ nothing
# is dropped (the mean); for $n=10$ two values go at each end and the middle six are averaged.
#
# Write `my_iqm(values)`: a list of $n\ge1$ numbers in any order $\to$ one float, without scipy or rliable.
# The checker compares it with `results.iqm` on five lists ($n$ = 3, 4, 8, 10, 101) and names a known
# mistake (the mean, the median, unsorted values, ...). The cell then applies your function to the set
# behind the **pooled IQM** column of the table in §3: the last-10% training returns of *all* seeds of an
# algorithm, pooled (one number per logged iteration, so $n$ differs between envs and algorithms). One function,
# one name: "IQM" is always this trimmed mean, and the table says which set it is applied to; `damdp-lite report`
# applies the same function to per-run evaluation scores.
#
# <details><summary>Hint 1</summary>
#
# Sort first: `np.sort(np.asarray(values, float))`. The IQM is about ranks, not about the order the values came in.
# </details>
#
# <details><summary>Hint 2</summary>
#
# Drop whole values, the same number at both ends: `k = n // 4` (0 for $n\le3$, 1 for $n=4$ to 7, 2 for $n=10$).
# No partial weights at the 25% and 75% points.
# </details>
#
# <details><summary>Hint 3</summary>
#
# The answer is the mean of `x[k:n - k]`; return it as a Python `float`.
# </details>

# %%
def my_iqm(values):
    """Interquartile mean of a list of numbers -> float."""
    raise NotImplementedError("Exercise 5.1: write the interquartile mean")


# %%
# NBVAL_CHECK_OUTPUT
iqm = exercises.check_iqm(my_iqm)
# use it on the table's set: every last-10% training return of every seed, pooled per algorithm (the pooled IQM)
for env in ENVS:
    for algo, s in summary[env].items():
        pooled = np.concatenate([results.final_returns(results.read_progress(d / "progress.csv"))
                                 for d in results.find_runs(env, algo)])
        mine = float(iqm(pooled))
        print(f"{env:15s} {algo:8s} {pooled.size:4d} returns   your pooled IQM {mine:7.0f}   "
              f"table's pooled IQM {s['final_iqm']:7.0f}   agree: {bool(np.isclose(mine, s['final_iqm']))}")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_iqm(values):
#     x = np.sort(np.asarray(values, float))
#     k = len(x) // 4  # floor(n/4) values dropped at each end
#     return float(x[k:len(x) - k].mean())
# ```
# </details>
#
# **Open questions (no checker)**
# 1. DiffPPO's policy entropy is never computed, only the per-step log-ratios $\ell_k$. What does `mean_ell` in
#    `progress.csv` estimate, and why does it drift as the step sizes $\eta_k$ are learned?
# 2. $\kappa=2$ makes each epoch see two random chain steps per env step. Which bias would you get if
#    instead the update always used $k=1$ only?
# 3. The table's CI uses the *training* return (stochastic policy, episodes finishing within an iteration); each
#    run also has an evaluation at its end with frozen normalisers. Which way would an evaluation with more
#    episodes move the error bars, and what would it not fix?
#
# <details><summary>Answers</summary>
#
# 1. `mean_ell` is the mean of the per-step log-ratios $\ell_k=\log q_\theta(a^{k-1}\mid a^k,s)-\log\pi_\theta(a^k\mid a^{k-1},s)$
#    over the rollout's augmented steps. $K$ times it, subtracted from the prior's entropy, is the lower bound
#    $H(p_0)-\mathbb E\sum_k\ell_k\le H(q_\theta(a^0\mid s))$ on the policy's entropy, in latent space
#    without the tanh Jacobian (the shipped runs) and in action space with it (`bound.entropy_lower_bound`). It is not the entropy itself: the gap of the bound depends on how well the
#    noising kernel $\pi_\theta$ reverses the denoising chain. Both kernels use the learned $\eta_k$, so as the step
#    sizes change, `mean_ell` moves even where the action distribution does not.
# 2. The surrogate is an expectation over $k$. With $k=1$ only, the policy would be trained on its last step
#    alone: the earlier kernels would get no direct gradient (they share the network, so they drift only through
#    the $k$ input) and the value function would be fitted only at $k=1$. The chain would keep its initial early
#    steps, and the last step alone would have to shape the action distribution: a biased estimate of the
#    objective's gradient, not a cheaper unbiased one, which $\kappa$ random steps per env step are.
# 3. More evaluation episodes shrink the noise *within* each run's score (the standard error of a mean falls as
#    $1/\sqrt{n}$), and frozen normalisers remove the drift of a policy that changes while it is scored. The CI over
#    seeds would shrink only a little: with 3 seeds it is set by how far apart the seeds end, which more episodes
#    per seed do not change. Only more seeds narrow it.
# </details>
#
# **Next:** notebook 06 replaces the clipped ratio by REPPO's pathwise actor and KL trust region, and adds
# WPO and the DiffSAC reconstruction.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"Top to bottom: {time.perf_counter() - NOTEBOOK_START:.0f} s (SMOKE={SMOKE}; live training {TRAIN_S:.0f} s)")
