"""What every algorithm shares, in one place: the base config (its shared fields declared and
documented once), the algorithm registry, the learner base (policy building, checkpoints) and
the plumbing of the updates (minibatches, the temperature loss, the NaN guard).

An algorithm file holds its config (own fields, its defaults of the shared ones), its losses
(one function per equation), its learner, and one `register(...)` call; nothing else in the
package needs an edit for `damdp-lite train --algo NAME --policy {diffusion,gaussian}`, the
widgets and `damdp_lite.train.train` to run it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from .. import envs as _envs  # noqa: F401  (registers the toy envs: env_id's rule sees them)
from ..chain import ChainPolicy
from ..config import (
    SEED,
    Config,
    Rule,
    at_least,
    between,
    nonnegative,
    one_of,
    param,
    positive,
    unit_interval,
)
from ..damdp import Rollout, per_augmented_step
from ..diffusion import DiffusionConfig
from ..envs.dmc import check_dmc_id, is_dmc_id
from ..envs.make import load_vector_env_state, make_vector_env, vector_env_state
from ..gaussian import GaussianConfig
from ..policies import (
    POLICIES,
    PolicyConfig,
    all_tunable_fields,
    build_policy,
    policy_config,
    policy_kind,
    policy_to_dict,
)
from ..utils import check_finite, check_memory, seed_everything, update_normalisers

# Re-exported, so that an algorithm file finds all its plumbing here.
__all__ = ["DiffusionConfig", "GaussianConfig", "check_finite", "check_memory",
           "update_normalisers"]

# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


@dataclass
class AlgoConfig(Config):
    """Base of every algorithm's config: the run's env, budget, seed and device, the vector env,
    the discount, and the nested policy config. Fields are validated by type and range on
    construction (`config.Config`).

    A subclass adds its own fields and sets its defaults of the shared ones with the class
    keyword `defaults=dict(...)`; `policy_defaults` gives its default policy fields per kind.
    """

    env_id: str = param("damdp_lite/TurningDoubleWell-v0", Rule(
        "a registered Gymnasium id, e.g. 'HalfCheetah-v5', 'dm_control/cheetah-run-v0' or "
        "'damdp_lite/TurningDoubleWell-v0'", lambda v: v in gym.registry))
    """Gymnasium id with a 1-D Box action space (toys `damdp_lite/*`, Gymnasium MuJoCo e.g.
    `Hopper-v5`, DeepMind Control `dm_control/<domain>-<task>-v0`)."""
    total_env_steps: int = param(50_000, between(1, 10**12))
    """Env steps over all envs and iterations (toys 1e4-1e5; MuJoCo 1e5-1e6)."""
    seed: int = param(0, SEED)
    """Seed of torch, NumPy, the env resets, every latent sample and every minibatch."""
    device: str = "cpu"
    """Torch device ("cpu", "cuda")."""
    num_envs: int = param(8, between(1, 4096))
    """Parallel envs of the vector env (CPU 4-32; official PPO 2048, REPPO 1024)."""
    num_env_steps: int = param(64, between(1, 100_000))
    """Env steps per env per iteration; K augmented transitions each (official 64)."""
    vectorization: str = param("sync", one_of("sync", "async"))
    """"sync" or "async" vector env (sync measured 2-3x faster on 2 cores)."""
    scale_rewards: bool = False
    """Divide rewards by the running std of the discounted return (logged returns stay raw)."""
    gamma: float = param(0.999, unit_interval())
    """Discount per augmented step, in (0, 1]; gamma^K per env step (official 0.999)."""
    policy: PolicyConfig | str = "diffusion"
    """The policy: "diffusion" (the DA-MDP version) or "gaussian" (the MaxEnt base, K = 1),
    or a `DiffusionConfig` / `GaussianConfig` with every policy field. (The CLI and
    `train.algo_config` read a bare algorithm name as the Gaussian base: `--algo ppo`.)"""

    policy_defaults: ClassVar[dict[str, dict]] = {}
    """Per policy kind, this algorithm's defaults of the policy fields."""

    def __init_subclass__(cls, defaults: dict[str, Any] | None = None, **kw) -> None:
        """`class PPOConfig(AlgoConfig, defaults=dict(num_envs=8))`: new defaults of inherited
        fields (they keep their type, rule, docstring and place in the field order).

        Runs before `@dataclass` reads the class: each name is re-annotated on the subclass with
        its inherited type and given the new default, which is how a dataclass subclass changes
        a default. Writing `num_envs: int = 8` in every algorithm would do the same but repeat
        the shared declarations in every file."""
        super().__init_subclass__(**kw)
        if defaults:
            own = cls.__dict__.get("__annotations__")
            if own is None:
                own = {}
                cls.__annotations__ = own
            inherited = {}
            for base in reversed(cls.__mro__[1:]):
                inherited.update(base.__dict__.get("__annotations__", {}))
            for name, value in defaults.items():
                if name not in inherited:
                    raise TypeError(f"{cls.__name__}: defaults names {name!r}, not a field of "
                                    f"its bases")
                own.setdefault(name, inherited[name])
                setattr(cls, name, value)

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.policy):  # a kind, or {"kind": ..., fields}
            spec = self.policy if isinstance(self.policy, dict) else {"kind": self.policy}
            kind = spec.get("kind", "diffusion")
            if not isinstance(kind, str) or kind not in POLICIES:
                raise ValueError(f"policy={kind!r} is not allowed; expected one of "
                                 f"{tuple(POLICIES)}")
            fields = {k: v for k, v in spec.items() if k != "kind"}
            self.policy = policy_config(kind, **{**self.policy_defaults.get(kind, {}),
                                                 **fields, "device": self.device})
        policy_kind(self.policy)  # a policy config of a known kind
        if is_dmc_id(self.env_id):  # names the suite's tasks (and a near miss) in one line
            check_dmc_id(self.env_id)
        super().__post_init__()
        if self.policy.device != self.device:
            self.policy = dataclasses.replace(self.policy, device=self.device)
        if self.total_env_steps < self.env_steps_per_iteration:
            raise ValueError(f"total_env_steps={self.total_env_steps!r} must be >= num_envs * "
                             f"num_env_steps = {self.env_steps_per_iteration}")

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def env_steps_per_iteration(self) -> int:
        return self.num_envs * self.num_env_steps

    @property
    def num_iterations(self) -> int:
        return self.total_env_steps // self.env_steps_per_iteration

    # ---- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, **fields):
        """The config from flat fields: the algorithm's own and every policy field by name
        (`num_steps=8`, `hidden_sizes=...`), routed into the nested `policy`. This is what the
        CLI, the widgets and the presets call; an unknown name is an error naming it."""
        own = {f.name for f in dataclasses.fields(cls)}
        policy_fields = all_tunable_fields()
        unknown = sorted(set(fields) - own - set(policy_fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; see "
                             f"`damdp-lite train --help`")
        flat_policy = {k: fields.pop(k) for k in list(fields) if k not in own}
        spec = fields.get("policy", cls.policy)
        if dataclasses.is_dataclass(spec):
            fields["policy"] = policy_config(spec, **flat_policy)
        elif isinstance(spec, dict):
            fields["policy"] = {**spec, **flat_policy}
        else:
            fields["policy"] = {"kind": spec, **flat_policy}
        return cls(**fields)

    @classmethod
    def preset(cls, fields: dict, shared: dict, policy: dict[str, dict] | None = None):
        """`build` from a preset: `shared` values, then the values for the chosen policy kind
        (`policy[kind]`, e.g. K only for the diffusion policy), then the caller's `fields`."""
        spec = fields.get("policy", cls.policy)
        kind = None if dataclasses.is_dataclass(spec) else (
            spec.get("kind", "diffusion") if isinstance(spec, dict) else spec)
        chosen = (policy or {}).get(kind, {}) if isinstance(kind, str) else {}
        return cls.build(**{**shared, **chosen, **fields})

    @classmethod
    def mujoco(cls, **fields):
        """CPU-scale preset for Gymnasium MuJoCo; an algorithm overrides it with its own."""
        return cls.preset(fields, dict(env_id="HalfCheetah-v5", total_env_steps=1_000_000))

    def with_env_discounts(self, keep=(), **env_values: float):
        """This config with each named field (gamma, a lambda) set per augmented step from its
        env-step value, x_aug = x_env^(1/K) with the policy's K (method.md §10); names in
        `keep` (values the caller chose) are left as they are."""
        K = self.policy.num_steps
        return dataclasses.replace(self, **{name: per_augmented_step(v, K)
                                            for name, v in env_values.items() if name not in keep})

    # ---- config.json -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        d["policy"] = {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in policy_to_dict(self.policy).items()}
        return d

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of `to_dict`; also reads a config written before the policy was nested
        (a `policy` string beside flat policy fields), so old runs load and resume."""
        d = dict(d)
        if isinstance(d.get("policy"), str):  # the flat layout of config.json format 1
            kind = d["policy"]
            policy_names = set(all_tunable_fields())
            own = {f.name for f in dataclasses.fields(cls)}
            flat = {k: d.pop(k) for k in list(d) if k in policy_names and k not in own}
            kind_fields = {f.name for f in dataclasses.fields(POLICIES[kind][0])}
            d["policy"] = {"kind": kind, **{k: v for k, v in flat.items() if k in kind_fields}}
            if d.get("log_csv", 0) is None:
                d.pop("log_csv")  # PPO's in-memory CSV log, now the runner's progress.csv
        return super().from_dict(d)


@dataclass
class EpochUpdates:
    """Fields of the algorithms that learn in epochs of minibatches over each rollout (PPO,
    REPPO, WPO). Mixed in before `AlgoConfig`: `class PPOConfig(EpochUpdates, AlgoConfig)`."""

    update_epochs: int = param(4, between(1, 10_000))
    """Passes over each rollout (official: PPO 12, REPPO/WPO 8)."""
    num_minibatches: int = param(8, between(1, 10**7))
    """Minibatches per epoch over the augmented transitions, k mixed (official 8 K = 64)."""
    max_grad_norm: float = param(0.5, positive())
    """Global gradient-norm clip of each Adam step (official 0.5)."""
    diffusion_steps_per_update: int = param(0, at_least(0))
    """kappa: chain steps per env step used in each epoch, drawn at random (0: all K), D11."""


@dataclass
class LearnedTemperature:
    """Fields of the algorithms that learn T toward an entropy target (REPPO, WPO, SAC)."""

    temperature_init: float = param(0.01, positive())
    """Initial temperature T (official ent_start 0.01); learned in log space."""
    entropy_target_mult: float = param(5.0, nonnegative())
    """m in the entropy target -m d on sum_k ell (official: REPPO 5, WPO 8; method.md §4.5)."""
    auto_temperature: bool = True
    """Learn T toward the entropy target (method.md §4.5); False keeps T = temperature_init, a
    fixed MaxEnt objective with a known optimum (the toy presets)."""


DIFFUSION_MUJOCO = dict(tanh_jacobian=True, prior_std=1.5, hidden_init="lecun_normal")
"""The diffusion policy's fields in every algorithm's MuJoCo/DMC preset, beyond the official
ones (tanh_jacobian False, prior_std 3.0; the init is the official one). Latent-space entropy
pushes the latent into tanh saturation once the policy can move (Q and the control cost are
flat there); the Jacobian reverses that, and a narrower prior starts the chain nearer the
unsaturated region."""

REWARD_RANGES: dict[str, tuple[float, float]] = {
    "dm_control/": (0.0, 1.0), "HalfCheetah": (-1.0, 12.0), "Hopper": (-1.0, 4.5),
    "Walker2d": (-1.0, 7.0), "Ant": (-2.0, 8.0), "InvertedPendulum": (0.0, 1.0),
    "InvertedDoublePendulum": (0.0, 10.0), "Pendulum": (-16.3, 0.0), "Swimmer": (-1.0, 1.0)}
"""Per-env-step reward range of a task family (id prefix): DMC rewards lie in [0, 1]; for the
Gymnasium MuJoCo tasks the range a good policy reaches (HalfCheetah: forward speed up to ~12
minus the control cost; Hopper/Walker: healthy bonus 1 plus speed)."""


def value_support(env_id: str, gamma_env: float, margin: float = 0.1
                  ) -> tuple[float, float] | None:
    """(v_min, v_max) of a critic in reward units: the per-step `REWARD_RANGES` of `env_id`
    over the effective horizon 1 / (1 - gamma_env), widened by `margin` of the span on each
    side and always holding 0. None for a task without a known range."""
    name = env_id.split(":")[-1]
    for prefix, (lo, hi) in REWARD_RANGES.items():
        if name.startswith(prefix):
            horizon = 1.0 / (1.0 - gamma_env)
            v_lo, v_hi = min(lo, 0.0) * horizon, max(hi, 0.0) * horizon
            pad = margin * (v_hi - v_lo)
            return round(v_lo - pad, 1), round(v_hi + pad, 1)
    return None


def with_value_support(config, fields: dict):
    """`config` with v_min / v_max from `value_support` unless the caller set either (or the
    rewards are scaled, when the fixed official support applies)."""
    if "v_min" in fields or "v_max" in fields or config.scale_rewards:
        return config
    support = value_support(config.env_id, config.gamma ** config.policy.num_steps)
    return config if support is None else dataclasses.replace(
        config, v_min=support[0], v_max=support[1])


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Algo:
    """One `--algo` name: its config, learner and presets."""

    name: str
    """The CLI name (ppo, reppo, wpo, sac, ...)."""
    config_cls: type
    """Its `AlgoConfig` subclass; `config_cls.mujoco(**fields)` is its preset."""
    learner_cls: type
    """Its `Learner` subclass, built as `learner_cls(config, policy=None)`."""
    description: str
    """One line for --help."""
    labels: dict = dataclasses.field(default_factory=dict)
    """Policy kind -> the paper's name, used in run names (e.g. {"diffusion": "diffppo"});
    default f"{name}-{kind}"."""
    preset: dict = dataclasses.field(default_factory=dict)
    """Fields this name sets on top of `config_cls.mujoco()` (e.g. WPO's on REPPO's config)."""
    marker: dict = dataclasses.field(default_factory=dict)
    """Field values that tell this algorithm's configs from others of the same class."""

    def label(self, kind: str) -> str:
        return self.labels.get(kind, f"{self.name}-{kind}")

    def config(self, **fields):
        """The preset config of this algorithm with `fields` (flat, policy fields included)."""
        return self.config_cls.mujoco(**{**self.preset, **fields})


ALGOS: dict[str, Algo] = {}
"""Registered algorithms by CLI name (filled by each algorithm file's `register` call)."""

ALIASES: dict[str, tuple[str, dict]] = {}
"""Older / paper names -> (algorithm, fields they imply), e.g. "dppo" -> ("ppo", diffusion, T=0)."""


def register(algo: Algo, aliases: dict[str, dict] | None = None) -> Algo:
    """Add `algo` (and its alias names) to the registry; returns it."""
    ALGOS[algo.name] = algo
    for alias, fields in (aliases or {}).items():
        ALIASES[alias] = (algo.name, dict(fields))
    return algo


def resolve(name: str) -> tuple[Algo, dict]:
    """(algorithm, implied fields) of a CLI name or alias; `ValueError` naming the choices."""
    if name in ALGOS:
        return ALGOS[name], {}
    if name in ALIASES:
        algo, fields = ALIASES[name]
        return ALGOS[algo], dict(fields)
    raise ValueError(f"algo={name!r} is not allowed; expected one of {tuple(ALGOS)} "
                     f"(aliases: {tuple(ALIASES)})")


def algo_of(config: AlgoConfig) -> Algo:
    """The registered algorithm of `config`: its class, and its `marker` field values."""
    for algo in ALGOS.values():
        if type(config) is algo.config_cls and all(
                getattr(config, k) == v for k, v in algo.marker.items()):
            return algo
    raise ValueError(f"{type(config).__name__} is not a registered algorithm config")


# ---------------------------------------------------------------------------------------------
# The learner base
# ---------------------------------------------------------------------------------------------


class Learner:
    """Base of the learners: seeding, the vector env, the policy, checkpoints, closing.

    A subclass's `__init__` calls `self.start(config, policy)`, then builds its critics and
    optimisers and sets `gen` (latent samples), `obs` and `iteration`; `train_iteration()`
    returns one history row with the `CSV_FIELDS` (but `elapsed_s`). `STATE` lists the
    attributes a checkpoint holds: modules, optimisers and buffers (their `state_dict`),
    generators (their state), learnable scalars (`nn.Parameter`, copied) or plain numbers.
    """

    STATE: tuple[str, ...] = ()
    CSV_FIELDS: tuple[str, ...] = ()

    def start(self, config: AlgoConfig, policy: ChainPolicy | None) -> tuple[int, int]:
        """Seed everything, build the vector env and the policy (or check the given one
        against `config.policy`); returns (obs_dim, action_dim). `ValueError` names the env
        or the fields on which a given policy contradicts the config."""
        seed_everything(config.seed)
        self.config = config
        self.device = torch.device(config.device)
        self.envs = make_vector_env(config.env_id, config.num_envs, config.vectorization,
                                    config.scale_rewards,
                                    gamma=config.gamma ** config.policy.num_steps)
        obs_space = self.envs.single_observation_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            self.envs.close()
            raise ValueError(f"env_id={config.env_id!r} has observation space {obs_space}; "
                             f"expected a 1-D Box")
        obs_dim, action_dim = obs_space.shape[0], self.envs.single_action_space.shape[0]
        rows = config.env_steps_per_iteration * config.policy.num_steps
        try:  # the rollout's ~20 float32 columns of augmented transitions
            check_memory(f"a rollout of num_envs={config.num_envs} x num_env_steps="
                         f"{config.num_env_steps} x K={config.policy.num_steps}",
                         rows * (4 * obs_dim + 6 * action_dim + 16) * 4)
        except ValueError:
            self.envs.close()
            raise
        if policy is None:
            policy = build_policy(config.policy, obs_dim, self.envs.single_action_space,
                                  config.device)
        try:
            check_policy_matches(policy, config.policy, obs_dim, action_dim)
        except ValueError:
            self.envs.close()
            raise
        self.policy = policy.to(self.device)
        return obs_dim, action_dim

    def state_dict(self) -> dict:
        """Everything to continue exactly; loadable with `torch.load(weights_only=True)`."""
        out = rollout_state(self)
        for name in self.STATE:
            obj = getattr(self, name)
            if isinstance(obj, torch.Generator):
                out[name] = obj.get_state()
            elif isinstance(obj, torch.Tensor):
                out[name] = obj.detach().clone()
            elif hasattr(obj, "state_dict"):
                out[name] = obj.state_dict()
            else:
                out[name] = obj
        return out

    def load_state_dict(self, state: dict) -> None:
        for name in self.STATE:
            obj = getattr(self, name)
            if isinstance(obj, torch.Generator):
                obj.set_state(state[name])
            elif isinstance(obj, torch.Tensor):
                with torch.no_grad():
                    obj.copy_(state[name])
            elif hasattr(obj, "load_state_dict"):
                obj.load_state_dict(state[name])
            else:
                setattr(self, name, state[name])
        load_rollout_state(self, state)

    def close(self) -> None:
        self.envs.close()


def check_policy_matches(policy: ChainPolicy, config: PolicyConfig, obs_dim: int,
                         action_dim: int) -> None:
    """`ValueError` unless a given policy is the one `config` describes for this env: same
    kind, same K, same tunable fields, same (obs_dim, action_dim)."""
    dims = (policy.obs_dim, policy.action_dim)
    if dims != (obs_dim, action_dim):
        raise ValueError(f"policy has (obs_dim, action_dim) = {dims}; the env needs "
                         f"{(obs_dim, action_dim)}")
    given, wanted = policy_to_dict(policy.config), policy_to_dict(config)
    diff = [k for k in wanted if given.get(k) != wanted[k]]
    if policy.num_steps != config.num_steps and "num_steps" not in diff:
        diff.insert(0, "num_steps")
    if diff:
        shown = ", ".join(f"{k}={given.get(k)!r} (config: {wanted.get(k)!r})" for k in diff[:4])
        raise ValueError(f"the given policy contradicts config.policy: {shown}; pass no policy "
                         f"or one built from config.policy")


def rollout_state(learner) -> dict:
    """The part of a checkpoint every learner has: iteration, latent generator, global torch
    RNG, current observations and each env's snapshot."""
    return {"iteration": learner.iteration, "gen": learner.gen.get_state(),
            "torch_rng": torch.get_rng_state(), "obs": torch.as_tensor(np.asarray(learner.obs)),
            "envs": vector_env_state(learner.envs)}


def load_rollout_state(learner, state: dict) -> None:
    """Inverse of `rollout_state`."""
    learner.iteration = state["iteration"]
    learner.gen.set_state(state["gen"])
    torch.set_rng_state(state["torch_rng"])
    learner.obs = state["obs"].numpy().copy()
    load_vector_env_state(learner.envs, state["envs"])


# ---------------------------------------------------------------------------------------------
# Plumbing of the updates
# ---------------------------------------------------------------------------------------------


def episode_stats(ro: Rollout) -> dict[str, float]:
    """Mean return and length of the episodes that finished in the rollout (nan if none)."""
    nan = float("nan")
    return {"episode_return": float(np.mean(ro.episode_returns)) if ro.episode_returns else nan,
            "episode_length": float(np.mean(ro.episode_lengths)) if ro.episode_lengths else nan}


def minibatch_indices(num_env_steps: int, num_steps: int, num_envs: int, kappa: int,
                      num_minibatches: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's minibatches of row indices into the flattened rollout, k mixed (§5.0).

    kappa = 0 (or >= K, e.g. a Gaussian with K = 1): a permutation of all S * N rows.
    Otherwise, per env step and env, kappa of its K chain steps drawn without replacement
    (method.md §4.3: the surrogate touches one step, so steps can be sub-sampled; the rebuttal's
    kappa = K/2, D11; each k is still sampled uniformly), then permuted. Row of (env step t, chain
    position j = K - k, env n) is (t K + j) N + n, the order of `Rollout` flattened.
    """
    K, N = num_steps, num_envs
    if kappa == 0 or kappa >= K:
        rows = torch.randperm(num_env_steps * K * N, generator=generator)
    else:
        j = torch.rand(num_env_steps, N, K, generator=generator).argsort(-1)[..., :kappa]
        t = torch.arange(num_env_steps)[:, None, None]
        n = torch.arange(N)[None, :, None]
        rows = ((t * K + j) * N + n).reshape(-1)
        rows = rows[torch.randperm(rows.numel(), generator=generator)]
    return list(torch.tensor_split(rows, num_minibatches))


def check_minibatches(config: AlgoConfig) -> None:
    """`ValueError` unless every minibatch of an epoch holds at least one transition."""
    kappa = config.diffusion_steps_per_update
    K = config.policy.num_steps
    rows = config.env_steps_per_iteration * (K if kappa == 0 or kappa >= K else kappa)
    if config.num_minibatches > rows:
        raise ValueError(f"num_minibatches={config.num_minibatches!r} must be <= the {rows} "
                         f"augmented transitions used per epoch")


def temperature_loss(temperature: torch.Tensor, ell_hat: torch.Tensor, num_steps: int,
                     target_mult: float, action_dim: int) -> torch.Tensor:
    """L_T = T sg(m d + H_hat), H_hat = -K mean ell_hat (method.md §4.5). T falls while the
    entropy estimate is above the target -m d."""
    entropy = -num_steps * ell_hat.mean()
    return temperature * (target_mult * action_dim + entropy).detach()
