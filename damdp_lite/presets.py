"""Named presets of the toy experiments, in one place: the benchmark scripts that made the
shipped results, the notebooks that show them and the tests all import them from here.

Each preset is a dict of flat config fields (the algorithm's and the policy's, by name); a
`*_config` function turns a method name into a validated config. The MuJoCo presets are the
`mujoco()` classmethods of the algorithm configs.

    turning_config("diffppo", seed=0)       notebook 04 (PPO family), notebook 06 (REPPO)
    multigoal_config("diffsac", seed=0)     notebook 08 (the multi-goal toy)
    turning_multi_config("gmm", "diffppo")  notebook 08 (turning multi-well and GMM)
    bandit_config(DOUBLE_WELL_ID, 0.25, 0, **DIFFUSION_1D)        notebook 03
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .algos import PPOConfig, REPPOConfig, SACConfig
from .algos.common import AlgoConfig
from .chain import ChainPolicy
from .policies import build_policy, policy_to_dict, tunable_fields
from .utils import seed_everything

# ---------------------------------------------------------------------------------------------
# The turning double-well (notebooks 04 and 06; benchmarks/toys_turning.py)
# ---------------------------------------------------------------------------------------------

TURNING_ID = "damdp_lite/TurningDoubleWell-v0"
TURNING_TEMPERATURE = 0.05
"""The rebuttal's DME-PPO temperature (method.md §6)."""

PPO_TURNING = dict(
    env_id=TURNING_ID, num_envs=64, num_env_steps=8, total_env_steps=245_760,
    update_epochs=4, num_minibatches=4, lr=3e-3, gamma=0.99, gae_lambda=0.9,
    hidden_sizes=(64, 64), value_hidden_sizes=(64, 64), tanh_jacobian=True)
"""PPOConfig fields shared by every PPO run: 480 iterations of 64 x 8 env steps."""

PPO_TURNING_METHODS: dict[str, dict] = {
    "diffppo": dict(policy="diffusion", num_steps=8, noising_step_pairing="same",
                    temperature=TURNING_TEMPERATURE),
    "gaussian_ppo": dict(policy="gaussian", temperature=TURNING_TEMPERATURE),
    "dppo": dict(policy="diffusion", num_steps=8, noising_step_pairing="same",
                 temperature=0.0, lr=1e-3),
}
"""Per-method PPOConfig fields. DPPO is DiffPPO at T = 0 (method.md §5.3), except lr 1e-3:
at T = 0 nothing bounds the step sizes or the intermediate latents (|a^k| reached ~700), the
per-step ratios become ill-conditioned after the collapse, and with lr 3e-3 one of three seeds
diverged to saturated actions (a = -1, return 0) late in training."""

REPPO_TURNING = dict(
    env_id=TURNING_ID, num_envs=64, num_env_steps=8, total_env_steps=491_520,
    update_epochs=4, num_minibatches=4, lr=3e-3, gamma=0.917, td_lambda=0.9,
    hidden_sizes=(64, 64), critic_hidden_sizes=(64, 64), tanh_jacobian=True, action_clip=1.0,
    temperature_init=TURNING_TEMPERATURE, auto_temperature=False, v_min=-1.0, v_max=5.0,
    num_bins=121, kl_bound=0.1)
"""REPPOConfig fields of the REPPO runs: 960 iterations of 64 x 8 env steps, T fixed at 0.05 so
that the same exact optimum applies; the toy REPPO config of method.md §6 for kl_bound and the
critic, except:
- lr 3e-3 (DiffPPO's here) and 491,520 env steps: at lr 1e-3 and 61,440 steps DA-MDP REPPO
  stays a centred hump (valley ratio 1.3-1.4 in all 8 states); at lr 3e-3 its valley ratio
  falls slowly (1.29 after 60 iterations, 0.88 after 480) and crosses 0.5 after ~800;
- the critic's support: the returns here are below 3, so the HL-Gauss bins span [-1, 5]
  (width 0.05) instead of [-100, 200] (width 1, against reward differences of 0.15 between
  a = 0 and a = 0.5);
- gamma = 0.917 per augmented step (0.5 per env step; the optimum does not depend on gamma
  here) so that the critic's targets settle within the budget."""

REPPO_TURNING_METHODS: dict[str, dict] = {
    "diffreppo": dict(policy="diffusion", num_steps=8, noising_step_pairing="same"),
    "gaussian_reppo": dict(policy="gaussian"),
}
"""Per-method REPPOConfig fields: DA-MDP REPPO (K = 8, the DiffPPO chain) and REPPO."""

TURNING_LABELS = {"diffppo": "DiffPPO (T=0.05)", "gaussian_ppo": "Gaussian PPO (T=0.05)",
                  "dppo": "DPPO (T=0)", "diffreppo": "DA-MDP REPPO (T=0.05)",
                  "gaussian_reppo": "REPPO, tanh-Gaussian (T=0.05)"}
"""How the notebooks and the shipped JSON name each turning method."""

ETA_1, ETA_RATIO = 0.02, 2.0
"""Initial step sizes of the turning diffusion policies: eta_k = ETA_1 * ETA_RATIO^(k-1)."""

TURNING_SMOKE_ENV_STEPS = 1_024
"""Env steps of a turning run under `smoke=True` (CI)."""


def initial_step_sizes(num_steps: int, eta_1: float = ETA_1, ratio: float = ETA_RATIO
                       ) -> tuple[float, ...]:
    """Geometric initial step sizes eta_k = eta_1 ratio^(k-1), k = 1..K (row k-1)."""
    return tuple(eta_1 * ratio**i for i in range(num_steps))


def turning_config(method: str, seed: int = 0, smoke: bool = False, **overrides
                   ) -> AlgoConfig:
    """The config of a turning method (a key of `PPO_TURNING_METHODS` or
    `REPPO_TURNING_METHODS`) for one seed; a diffusion policy starts from the geometric
    `initial_step_sizes`. `overrides` are flat fields on top."""
    if method in REPPO_TURNING_METHODS:
        cls, fields = REPPOConfig, {**REPPO_TURNING, **REPPO_TURNING_METHODS[method]}
    elif method in PPO_TURNING_METHODS:
        cls, fields = PPOConfig, {**PPO_TURNING, **PPO_TURNING_METHODS[method]}
    else:
        raise ValueError(f"method={method!r} is not allowed; expected one of "
                         f"{(*PPO_TURNING_METHODS, *REPPO_TURNING_METHODS)}")
    fields.update(seed=seed, **overrides)
    if smoke:
        fields["total_env_steps"] = TURNING_SMOKE_ENV_STEPS
    if "init_step_sizes" in tunable_fields(fields["policy"]) and "init_step_sizes" not in fields:
        fields["init_step_sizes"] = initial_step_sizes(fields.get("num_steps", 1))
    return cls.build(**fields)


def seeded_policy(config: AlgoConfig, obs_dim: int, action_space: gym.spaces.Box
                  ) -> ChainPolicy:
    """`config.policy` built right after seeding with `config.seed`: the initialisation the
    shipped toy results were made with (pass it to `train(config, policy=...)`)."""
    seed_everything(config.seed)
    return build_policy(config.policy, obs_dim, action_space, config.device)


def turning_policy(config: AlgoConfig) -> ChainPolicy:
    """`seeded_policy` for the turning double-well (observation (cos, sin), action in [-1, 1])."""
    return seeded_policy(config, 2, gym.spaces.Box(-1.0, 1.0, (1,), np.float32))


# ---------------------------------------------------------------------------------------------
# The multi-goal point env and the turning multi-well / GMM (notebook 08;
# benchmarks/toys_multigoal.py)
# ---------------------------------------------------------------------------------------------

MULTIGOAL_ID = "damdp_lite/MultiGoal-v0"
MULTIGOAL_TEMPERATURE = 2.0
"""T of every multi-goal run, fixed (`auto_temperature=False`). Soft Q-Learning's multi-goal
run (Haarnoja et al. 2017, `examples/multigoal_sql.py`: reward scale 0.1 at temperature 1) is
T = 10 in the unscaled rewards of `MultiGoalEnv` (method.md §7.6). We use 2: in short probes
(seed 0, not shipped) at T = 10 DiffSAC still ended two thirds of its episodes at no goal after
16,384 env steps, and SAC reached all four goals from s0 = 0 about equally often, its centred
first steps picking the goal at random (so the goal count does not tell a multimodal policy from
a broad one); at T = 2 SAC committed to one goal and DiffSAC reached a goal in every episode
after 32,768 env steps (the shipped 3-seed runs: notebook 08)."""
MULTIGOAL_GAMMA_ENV, MULTIGOAL_LAMBDA_ENV = 0.99, 0.95
"""Per env step (Soft Q-Learning's discount 0.99), spread over the K augmented steps,
gamma = 0.99^(1/K) (method.md §10)."""

MULTIGOAL_SHARED = dict(
    env_id=MULTIGOAL_ID, temperature_init=MULTIGOAL_TEMPERATURE, auto_temperature=False,
    tanh_jacobian=True, hidden_sizes=(64, 64), critic_hidden_sizes=(128, 128))
"""Fields of every multi-goal run: a fixed MaxEnt objective with action-space entropy (the tanh
Jacobian, D2: the env clips actions to the box, as Soft Q-Learning's squashed sampler does),
2 x 64 policy networks and 2 x 128 critics (Soft Q-Learning: 2 x 128 for both)."""

SAC_MULTIGOAL = dict(
    num_envs=4, num_env_steps=16, total_env_steps=32_768, learning_starts=1_024,
    batch_size=256, gradient_steps_per_env_step=0.25, actor_lr=3e-4, critic_lr=1e-3)
"""SACConfig fields of DiffSAC and SAC (method.md §5.4): 512 iterations of 4 envs x 16 env
steps. Against Soft Q-Learning's run (100,000 env steps, one gradient step of batch 64 per env
step, lr 3e-4, learning from 100 transitions on): a third of the env steps and 0.25 gradient
steps of batch 256 per env step (the MuJoCo preset's rate; 7,952 gradient steps, 2.4-5 min per
DiffSAC run on one core of a loaded machine), the package's CleanRL-based lrs. At 16,384 env
steps DiffSAC reached no goal in about two thirds of its episodes (probes at T = 2 and 10); one
gradient step per env step did not help at 8,192 env steps (T = 10)."""

REPPO_MULTIGOAL = dict(
    num_envs=16, num_env_steps=32, total_env_steps=98_304, update_epochs=4, num_minibatches=4,
    lr=3e-3, kl_bound=0.1, kl_estimator="exact", v_min=-2_000.0, v_max=200.0, num_bins=201)
"""REPPOConfig fields of DA-MDP REPPO and REPPO (method.md §5.1): 192 iterations of 16 envs x 32
env steps (on-policy: three times SAC's env steps, in less wall clock), the turning
preset's lr 3e-3 and KL bound 0.1, the closed-form KL (§10), and a critic support sized to the
returns: an episode's reward is about -60 per step at worst (|a| = 1 costs 30 per coordinate)
and +10 at a goal, so soft returns lie within [-2000, 200] (201 bins of width 11; with
[-1500, 100] at T = 10 a DA-MDP REPPO probe clipped most of its targets)."""

MULTIGOAL_DIFFUSION = dict(policy="diffusion", num_steps=4, prior_std=1.0,
                           noising_step_pairing="same")
"""The diffusion policy of DiffSAC and DA-MDP REPPO: K = 4 (a DiffSAC probe with K = 2 at T = 2
also reached goals, but 80 % of its episodes went to one of them), sigma_0 = 1 (at the official
3 about 40 % of the initial action coordinates are pinned at the box, method.md §3, and a pinned
step costs up to 60 here: a DiffSAC probe at sigma_0 = 3, learned T, had not improved on its
initial return after 16,384 env steps), the noising pairing of the other toy presets ("same",
D13) and the algorithms' linear initial step sizes."""

MULTIGOAL_GAUSSIAN = dict(policy="gaussian", state_dependent_std=True)
"""SAC's and REPPO's own tanh-Gaussian: a state-dependent std (their papers), init std 1."""

MULTIGOAL_METHODS: dict[str, tuple[type, dict, dict]] = {
    "diffsac": (SACConfig, SAC_MULTIGOAL, MULTIGOAL_DIFFUSION),
    "sac": (SACConfig, SAC_MULTIGOAL, MULTIGOAL_GAUSSIAN),
    "diffreppo": (REPPOConfig, REPPO_MULTIGOAL, MULTIGOAL_DIFFUSION),
    "reppo": (REPPOConfig, REPPO_MULTIGOAL, MULTIGOAL_GAUSSIAN),
}
"""Method -> (config class, algorithm fields, policy fields)."""

MULTIGOAL_LABELS = {"diffsac": "DiffSAC", "sac": "SAC (tanh-Gaussian)",
                    "diffreppo": "DA-MDP REPPO", "reppo": "REPPO (tanh-Gaussian)"}
"""How the notebook and the shipped JSON name each multi-goal method."""

MULTIGOAL_SMOKE = {SACConfig: dict(total_env_steps=256, learning_starts=128),
                   REPPOConfig: dict(total_env_steps=1_024)}
"""Budgets of a multi-goal run under `smoke=True` (CI): 4 SAC iterations (2 learning), 2 REPPO
iterations."""


def multigoal_config(method: str, seed: int = 0, smoke: bool = False, **overrides
                     ) -> AlgoConfig:
    """The config of a multi-goal method (a key of `MULTIGOAL_METHODS`) for one seed.

    `overrides` are flat fields on top (e.g. `num_steps=2`, `temperature_init=10.0`); unless
    they set `gamma` (or REPPO's `td_lambda`), both are the per-env-step values
    `MULTIGOAL_GAMMA_ENV`, `MULTIGOAL_LAMBDA_ENV` spread over the final K."""
    if method not in MULTIGOAL_METHODS:
        raise ValueError(f"method={method!r} is not allowed; expected one of "
                         f"{tuple(MULTIGOAL_METHODS)}")
    cls, algo, policy = MULTIGOAL_METHODS[method]
    fields = {**MULTIGOAL_SHARED, **algo, **policy, "seed": seed, **overrides}
    if smoke:
        fields.update(MULTIGOAL_SMOKE[cls])
    env_values = {"gamma": MULTIGOAL_GAMMA_ENV}
    if cls is REPPOConfig:
        env_values["td_lambda"] = MULTIGOAL_LAMBDA_ENV
    return cls.build(**fields).with_env_discounts(overrides, **env_values)


TURNING_MULTI_ENVS: dict[str, dict] = {
    "multi_well": dict(env_id="damdp_lite/TurningMultiWell-v0", temperature=TURNING_TEMPERATURE,
                       total_env_steps=81_920),
    "gmm": dict(env_id="damdp_lite/TurningGMM-v0", temperature=1.0, total_env_steps=81_920),
}
"""The other two turning toys (method.md §7.4, §7.5), trained with notebook 04's PPO presets
(`turning_config`: DiffPPO and Gaussian PPO) at a third of that budget (160 iterations; about
40 s per DiffPPO run on one core). At this budget neither method separates the modes of either
toy (the shipped numbers, notebook 08 §4). Multi-well: four preferred turns, T = 0.05 as on the
double well; its optimum exp(r/T)/Z is the same in every state for any T. GMM: T = 1, the only
temperature at which the optimum is the state's Gaussian mixture itself for any discount (its
normaliser is 1 in every heading bin, §7.5)."""


def turning_multi_config(env: str, method: str, seed: int = 0, smoke: bool = False,
                         **overrides) -> AlgoConfig:
    """`turning_config(method, ...)` (a PPO method: "diffppo" or "gaussian_ppo") on the turning
    env `env` (a key of `TURNING_MULTI_ENVS`), with its T and budget; `overrides` on top."""
    if env not in TURNING_MULTI_ENVS:
        raise ValueError(f"env={env!r} is not allowed; expected one of {tuple(TURNING_MULTI_ENVS)}")
    if method not in PPO_TURNING_METHODS:
        raise ValueError(f"method={method!r} is not allowed; expected one of "
                         f"{tuple(PPO_TURNING_METHODS)}")
    return turning_config(method, seed, smoke, **{**TURNING_MULTI_ENVS[env], **overrides})


# ---------------------------------------------------------------------------------------------
# Multimodal bandits (notebook 03; benchmarks/toys_bandits.py)
# ---------------------------------------------------------------------------------------------

DOUBLE_WELL_ID = "damdp_lite/DoubleWellBandit-v0"

PPO_BANDIT = dict(
    num_envs=512, num_env_steps=4, total_env_steps=120_000, update_epochs=8, num_minibatches=4,
    lr=2e-3, gamma=1.0, gae_lambda=1.0, hidden_sizes=(64, 64), value_hidden_sizes=(64, 64))
"""PPOConfig fields shared by every bandit run (diffusion and Gaussian)."""

SLOW_PPO = dict(lr=1e-3, update_epochs=4, total_env_steps=160_000)
"""The first configuration we tried (`double_well_T025_slow`): with these values the diffusion
policy stays a broad *unimodal* blob centred at 0 for the whole budget (J(marginal) about -0.46,
like the centred Gaussian), although it has 0.5 of its mass on each sign."""

DIFFUSION_1D = dict(policy="diffusion", num_steps=8, noising_step_pairing="same",
                    step_size_schedule="linear", schedule_min=0.05)
"""The diffusion policy of the double-well experiments. K and pairing chosen by measurement;
the linear schedule with min 0.05 is the official multimodal-toy one (method.md §6): eta_1 starts
at 0.084 instead of 0.5, and a narrow well needs a small final step."""

GAUSSIAN = dict(policy="gaussian")
"""MaxEnt PPO: the same code path with a Gaussian policy (init mean 0, init std 1)."""

SWEEP_KS = (1, 2, 4, 8, 16)
"""K of the J_bound / J(marginal) sweep (T = 0.25, both noising-step pairings)."""

SWEEP_ENV_STEPS = {1: 120_000, 2: 120_000, 4: 120_000, 8: 120_000, 16: 64_000}
"""Env steps per sweep run: K = 16 costs 2x K = 8 per env step and gets about half the steps."""

FOUR_MODES_SIGMA_R = 0.1
FOUR_MODES_T = 2.0
FOUR_MODES_DQL_REWARDS = (3.0, 0.0, 1.5, 5.0)
FOUR_MODES_EQUAL_REWARDS = (0.0, 0.0, 0.0, 0.0)
FOUR_MODES_ENV_STEPS = 96_000
"""Env steps per four-mode run (the 2-D env steps cost more; keeps 3 seeds x 2 policies in
about 3 minutes on 2 shared cores)."""

DIFFUSION_2D = dict(policy="diffusion", num_steps=8, noising_step_pairing="same",
                    tanh_jacobian=True, step_size_schedule="linear", schedule_min=0.05,
                    total_env_steps=FOUR_MODES_ENV_STEPS)
"""The diffusion policy of the four-mode experiments. Narrow action-space modes need a small
final step (sigma_r = 0.1 at a = 0.8 is 0.28 wide in latent units), so the step sizes start
on the linear schedule with min 0.05 of the official multimodal-toy config (method.md §6):
eta_1 = 0.084 instead of 0.5."""

DIFFUSION_2D_PRIOR1 = {**DIFFUSION_2D, "prior_std": 1.0}
"""`DIFFUSION_2D` with a narrower prior, sigma_0 = prior_std = 1 instead of the official 3. In
the box [-1, 1]^2 the modes sit at a latent atanh(0.8) = 1.1; a prior of std 3 starts most
latents far beyond it, where tanh saturates, and within the budget the chain leaves too many of
them there (piled up in the corners). With sigma_0 = 1 the same chain and budget leave far fewer
(`four_modes_*_prior1` in the shipped 03_bandits.json; notebook 03 §4)."""

GAUSSIAN_2D = dict(policy="gaussian", tanh_jacobian=True, total_env_steps=FOUR_MODES_ENV_STEPS)
"""The Gaussian of the four-mode experiments (action-space entropy, as the diffusion one)."""


def bandit_smoke(fields: dict) -> dict:
    """Tiny budgets for CI (`smoke=True`): 2 iterations of 64 envs x 2 env steps."""
    return {**fields, "num_envs": 64, "num_env_steps": 2, "total_env_steps": 256,
            "update_epochs": 1, "num_minibatches": 2}


def bandit_config(env_id: str, temperature: float, seed: int, smoke: bool = False,
                  **fields) -> PPOConfig:
    """A bandit run's PPOConfig: `PPO_BANDIT`, then `fields` (e.g. `DIFFUSION_1D`), the env,
    T and the seed (`bandit_smoke` budgets under `smoke`)."""
    cfg = {**PPO_BANDIT, **fields, "env_id": env_id, "temperature": temperature, "seed": seed}
    return PPOConfig.build(**(bandit_smoke(cfg) if smoke else cfg))


def config_fields(config: AlgoConfig) -> dict:
    """A config as flat fields (the policy's by name, its kind as `policy`), as the shipped
    JSON files record them."""
    d = {k: v for k, v in config.to_dict().items() if k not in ("policy", "device")}
    policy = policy_to_dict(config.policy)
    return {**d, "policy": policy.pop("kind"), **policy}


# ---------------------------------------------------------------------------------------------
# Four gradient routes through one diffusion policy (notebook 07; benchmarks/gradient_routes.py)
# ---------------------------------------------------------------------------------------------

ROUTE_SAMPLER = dict(obs_dim=0, squash="identity", num_steps=8, noising_step_pairing="same",
                     hidden_sizes=(64, 64))
"""DiffusionConfig fields of every route's sampler: notebook 01's sampler (K = 8, the "same"
pairing of the teaching preset, a 2 x 64 control network); `action_dim` comes from the target."""

ROUTE_TARGETS: dict[str, dict] = {
    "double_well": dict(name="double_well", kwargs={}, temperature=0.25),
    "ring": dict(name="ring", kwargs=dict(num_modes=4, radius=2.0, std=0.4), temperature=1.0),
}
"""The two targets of notebook 07 (`targets.make_target` name and arguments, T): notebook 01's
double well at T = 0.25 (exact J(marginal), dip ratio) and its ring of four Gaussians at T = 1
(log Z = 0, exact mode masses 0.25)."""

ROUTE_TRAINING = dict(iterations=200, batch_size=256, update_epochs=4, lr=1e-2, clip_coef=0.2,
                      elbo_draws=4, diffusion_steps_per_update=0, max_grad_norm=1.0)
"""`routes.RouteConfig` fields shared by every route: 200 batches of 256 chains, 4 Adam steps
on each (800 updates, 51,200 chains), lr 1e-2 (notebook 01's sweep), PPO's clip 0.2, M = 4
ELBO draws per action, all K chain steps in each per-step update."""

ROUTE_SMOKE = dict(iterations=3, batch_size=32, update_epochs=2)
"""Tiny budgets for CI (`smoke=True`)."""


def route_target(name: str):
    """`(target, T)` of a key of `ROUTE_TARGETS`."""
    from .targets import make_target

    if name not in ROUTE_TARGETS:
        raise ValueError(f"target={name!r} is not allowed; expected one of {tuple(ROUTE_TARGETS)}")
    spec = ROUTE_TARGETS[name]
    return make_target(spec["name"], **spec["kwargs"]), spec["temperature"]


def route_policy(target_name: str, seed: int = 0, **fields):
    """The sampler of notebook 07 for a target, built right after `seed_everything(seed)`
    (`ROUTE_SAMPLER`, then `fields`, e.g. num_steps)."""
    from .diffusion import DiffusionConfig, DiffusionPolicy

    target, _ = route_target(target_name)
    seed_everything(seed)
    return DiffusionPolicy(DiffusionConfig(**{**ROUTE_SAMPLER, "action_dim": target.dim,
                                              **fields}))


def route_config(target_name: str, seed: int = 0, smoke: bool = False, **overrides):
    """The `routes.RouteConfig` of a training run on a target: `ROUTE_TRAINING`, the target's T,
    the seed, `ROUTE_SMOKE` under `smoke`, then `overrides`."""
    from .routes import RouteConfig

    _, temperature = route_target(target_name)
    fields = {**ROUTE_TRAINING, "temperature": temperature, "seed": seed,
              **(ROUTE_SMOKE if smoke else {}), **overrides}
    return RouteConfig(**fields)
