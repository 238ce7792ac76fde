"""The config layer (`damdp_lite.config`, `algos.common`, `policies`): every field validated by
type and range on construction, the nested policy config, `build` routing flat fields, the
`defaults=` mechanism, the algorithm registry and its aliases, config.json records (formats 1
and 2), and the checks that used to fail late (a contradicting policy, empty minibatches)."""

import dataclasses
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from damdp_lite.algos import ALGOS, ALIASES, PPOConfig, REPPOConfig, SACConfig, algo_of, resolve
from damdp_lite.algos.common import AlgoConfig, check_finite, check_minibatches
from damdp_lite.config import field_docs
from damdp_lite.diffusion import DiffusionConfig, DiffusionPolicy
from damdp_lite.gaussian import GaussianConfig, GaussianPolicy
from damdp_lite.policies import (
    ENV_FIELDS,
    POLICIES,
    build_policy,
    policy_config,
    policy_kind,
    policy_to_dict,
    tunable_fields,
)
from damdp_lite.results import SHIPPED_RUNS
from damdp_lite.train import RunConfig, algo_config, config_record, parse_record, train

TURNING = "damdp_lite/TurningDoubleWell-v0"
SHIPPED = sorted(p for p in SHIPPED_RUNS.glob("*") if (p / "config.json").exists())


# ---- types and ranges -----------------------------------------------------------------------
@pytest.mark.parametrize("make,needle", [
    (lambda: PPOConfig(lr=True), "lr=True must be a finite number"),
    (lambda: PPOConfig(lr="0.1"), "lr='0.1' must be a finite number"),
    (lambda: PPOConfig(lr=float("inf")), "lr=inf must be a finite number"),
    (lambda: PPOConfig(gamma=float("nan")), "gamma=nan must be a finite number"),
    (lambda: PPOConfig(num_envs=8.0), "num_envs=8.0 must be an integer"),
    (lambda: PPOConfig(num_envs=True), "num_envs=True must be an integer"),
    (lambda: PPOConfig(seed=-1), "seed=-1 is not allowed; expected in [0, 2147483647]"),
    (lambda: PPOConfig(scale_rewards=1), "scale_rewards=1 must be True or False"),
    (lambda: PPOConfig(env_time_discounting="yes"), "env_time_discounting='yes' must be True"),
    (lambda: PPOConfig(env_id=3), "env_id=3 must be a string"),
    (lambda: PPOConfig(device="tpu"), "device='tpu'"),
    (lambda: PPOConfig(vectorization="threads"), "vectorization='threads' is not allowed"),
    (lambda: PPOConfig(value_hidden_sizes=16), "value_hidden_sizes=16 must be a sequence"),
    (lambda: PPOConfig(value_hidden_sizes="16"), "value_hidden_sizes='16' must be a sequence"),
    (lambda: PPOConfig(value_hidden_sizes=(16, 2.5)), "value_hidden_sizes[1]=2.5 must be an int"),
    (lambda: PPOConfig.build(hidden_sizes=(1.7, 2.9)), "hidden_sizes[0]=1.7 must be an integer"),
    (lambda: PPOConfig.build(num_steps=2.0), "num_steps=2.0 must be an integer"),
    (lambda: PPOConfig.build(tanh_jacobian=0), "tanh_jacobian=0 must be True or False"),
    (lambda: PPOConfig.build(policy="gaussian", init_std=float("nan")), "init_std=nan"),
    (lambda: REPPOConfig(kl_samples=0), "kl_samples=0 is not allowed; expected in [1, 1024]"),
    (lambda: REPPOConfig(actor_update="adam"), "actor_update='adam' is not allowed"),
    (lambda: REPPOConfig(v_min=300.0), "v_min=300.0 must be < v_max=200.0"),
    (lambda: SACConfig(tau=0.0), "tau=0.0 is not allowed; expected in (0, 1]"),
    (lambda: RunConfig(eval_every=1.5), "eval_every=1.5 must be an integer"),
    (lambda: RunConfig(tensorboard="no"), "tensorboard='no' must be True or False"),
])
def test_fields_are_validated_by_type_and_range_naming_the_field(make, needle):
    with pytest.raises(ValueError) as err:
        make()
    assert needle in str(err.value), str(err.value)


def test_values_are_normalised_on_construction():
    cfg = PPOConfig(lr=1, value_hidden_sizes=[16, 16])
    assert cfg.lr == 1.0 and type(cfg.lr) is float  # an int is a number
    assert cfg.value_hidden_sizes == (16, 16)  # a JSON list is a tuple
    assert PPOConfig.build(hidden_sizes=[8]).policy.hidden_sizes == (8,)


# ---- the nested policy ------------------------------------------------------------------------
def test_build_routes_policy_fields_into_the_nested_policy():
    cfg = PPOConfig.build(num_steps=8, hidden_sizes=(32,), lr=1e-3, tanh_jacobian=True)
    assert type(cfg.policy) is DiffusionConfig and cfg.lr == 1e-3
    assert (cfg.policy.num_steps, cfg.policy.hidden_sizes, cfg.policy.tanh_jacobian) == \
        (8, (32,), True)
    assert cfg.policy.step_size_schedule == "constant"  # PPO's policy default (eta_k = 0.5)
    assert REPPOConfig.build(num_steps=8).policy.step_size_schedule == "linear"  # REPPO's
    gauss = PPOConfig.build(policy="gaussian", init_std=0.5, hidden_sizes=(8,), action_clip=0.9)
    assert type(gauss.policy) is GaussianConfig and gauss.policy.num_steps == 1
    assert (gauss.policy.init_std, gauss.policy.hidden_sizes, gauss.policy.action_clip) == \
        (0.5, (8,), 0.9)
    # the policy as a kind, a dict or a config: the same nested config
    as_dict = PPOConfig(policy={"kind": "diffusion", "num_steps": 8, "hidden_sizes": (32,),
                                "tanh_jacobian": True})
    assert as_dict.policy == cfg.policy
    as_config = PPOConfig(policy=cfg.policy)
    assert as_config.policy == cfg.policy
    assert PPOConfig.build(policy=cfg.policy, num_steps=3).policy.num_steps == 3
    # the device of the run is the policy's
    assert cfg.policy.device == cfg.device == "cpu"


def test_a_policy_field_the_kind_lacks_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"num_steps does not apply to policy='gaussian'"):
        PPOConfig.build(policy="gaussian", num_steps=4)
    with pytest.raises(ValueError, match=r"init_std does not apply to policy='diffusion'"):
        PPOConfig.build(policy="diffusion", init_std=0.5)
    with pytest.raises(ValueError, match=r"num_steps does not apply to policy='gaussian'"):
        PPOConfig(policy={"kind": "gaussian", "num_steps": 4})
    with pytest.raises(ValueError, match=r"unknown PPOConfig field\(s\) \['banana'\]"):
        PPOConfig.build(banana=1)
    with pytest.raises(ValueError, match=r"kl_bound"):  # REPPO's field, not PPO's
        PPOConfig.build(kl_bound=0.1)
    with pytest.raises(ValueError, match=r"policy='flow' is not allowed"):
        PPOConfig(policy={"kind": "flow"})


def test_policy_factory():
    assert set(POLICIES) == {"diffusion", "gaussian"}
    assert "num_steps" in tunable_fields("diffusion") and "num_steps" not in tunable_fields(
        "gaussian")
    assert not set(ENV_FIELDS) & set(tunable_fields("diffusion") + tunable_fields("gaussian"))
    d = policy_to_dict(policy_config("diffusion", num_steps=3))
    assert d["kind"] == "diffusion" and d["num_steps"] == 3 and not set(ENV_FIELDS) & set(d)
    assert policy_config(d) == policy_config("diffusion", num_steps=3)  # a dict back
    assert policy_kind(GaussianConfig()) == "gaussian"
    with pytest.raises(ValueError, match="is not a policy config"):
        policy_kind(PPOConfig())
    bounded = gym.spaces.Box(-2.0, 3.0, (2,))
    p = build_policy(policy_config("diffusion", num_steps=2, hidden_sizes=(8,)), 5, bounded)
    assert isinstance(p, DiffusionPolicy) and (p.obs_dim, p.action_dim, p.num_steps) == (5, 2, 2)
    assert p.squash_mode == "tanh" and p.action_low.tolist() == [-2.0, -2.0]
    g = build_policy(policy_config("gaussian", hidden_sizes=(8,)), 3,
                     gym.spaces.Box(-np.inf, np.inf, (1,)))
    assert isinstance(g, GaussianPolicy) and g.squash_mode == "identity" and g.num_steps == 1


def test_chain_policy_is_a_declared_abstract_protocol():
    from damdp_lite.chain import ChainPolicy

    with pytest.raises(TypeError, match="abstract"):
        ChainPolicy()
    for kind in POLICIES:
        for jac in (False, True):
            p = build_policy(policy_config(kind, hidden_sizes=(8,), tanh_jacobian=jac), 2,
                             gym.spaces.Box(-1.0, 1.0, (1,)))
            assert isinstance(p, ChainPolicy) and p.tanh_jacobian is jac
            assert isinstance(p.obs_norm, torch.nn.Module | None)
            assert isinstance(p.latent_norm, torch.nn.Module | None)


# ---- config dicts and config.json -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["diffusion", "gaussian"])
@pytest.mark.parametrize("name", ["ppo", "reppo", "wpo", "sac"])
def test_to_dict_from_dict_round_trip_through_json(name, kind):
    cfg = ALGOS[name].config(policy=kind)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["policy"]["kind"] == kind and not set(ENV_FIELDS) & set(d["policy"])
    back = type(cfg).from_dict(d)
    assert back == cfg and algo_of(back) is ALGOS[name]
    with pytest.raises(ValueError, match=r"unknown .*Config fields \['banana'\]"):
        type(cfg).from_dict({**d, "banana": 1})


PRESET_CHANGES = {
    "algo": ("scale_rewards", "v_min", "v_max", "num_bins", "kl_estimator",
             "entropy_target_mult", "auto_temperature"),
    "policy": ("prior_std", "tanh_jacobian", "hidden_init", "state_dependent_std",
               "per_dim_step_sizes", "learn_friction")}
"""Fields the MuJoCo presets changed after the format-1 runs were recorded (the levers that make
the DA-MDP methods learn, `algos.common.DIFFUSION_MUJOCO`, REPPO's and SAC's own Gaussian
bases, WPO's parametrisation, DA-MDP REPPO's fixed temperature): a format-1 record keeps its own
values of these."""


def _preset_of_record(record: dict) -> AlgoConfig:
    """The preset a format-1 record was written from: its old algorithm name (a base name was the
    Gaussian version) with the run's env, budget and seed, and the record's own values of the
    fields the presets have changed since (`PRESET_CHANGES`; a field the record lacks takes its
    class default, which is the old behaviour)."""
    old = record["run"]
    spec, implied = resolve(old["algo"])
    kind = {} if "policy" in implied else {"policy": "gaussian"}
    preset = algo_config(old["algo"], env_id=old["env_id"],
                         total_env_steps=old["total_env_steps"], seed=old["seed"], **kind)
    flat = record["algo_config"]
    defaults = spec.config_cls()
    algo = {k: flat.get(k, getattr(defaults, k)) for k in PRESET_CHANGES["algo"]
            if hasattr(preset, k)}
    policy_defaults = type(preset.policy)()
    policy = {k: flat.get(k, getattr(policy_defaults, k)) for k in PRESET_CHANGES["policy"]
              if hasattr(preset.policy, k)}
    return dataclasses.replace(preset, **algo,
                               policy=dataclasses.replace(preset.policy, **policy))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_format_1_records_load_as_their_presets_and_round_trip(path):
    record = json.loads((path / "config.json").read_text())
    assert "format" not in record and isinstance(record["algo_config"]["policy"], str)  # format 1
    preset = _preset_of_record(record)
    run, cfg = parse_record(record)
    assert cfg == preset and run.label == record["run"]["algo"]
    assert path.name == f"{cfg.env_id}_{run.label}_s{cfg.seed}"
    if not ALGOS[algo_of(cfg).name].preset:  # WPO's fields come from its preset (parse_record)
        assert type(cfg).from_dict(record["algo_config"]) == preset  # an old flat dict
    new = json.loads(json.dumps(config_record(cfg, run)))
    assert new["format"] == 2 and new["algo"] == algo_of(cfg).name and new["label"] == run.label
    assert parse_record(new) == (run, cfg)
    assert config_record(*parse_record(new)[::-1]) == new


def test_parse_record_names_the_file_on_bad_input():
    with pytest.raises(ValueError, match=r"x.json is not a damdp-lite run config"):
        parse_record({"format": 2, "algo": "banana", "run": {}, "config": {}}, "x.json")
    with pytest.raises(ValueError, match=r"config.json is not a damdp-lite run config"):
        parse_record({"format": 2, "algo": "ppo", "run": {}, "config": {"lr": -1.0}})


# ---- defaults= ----------------------------------------------------------------------------------
def test_defaults_of_inherited_fields_keep_rule_docstring_and_place():
    assert (REPPOConfig().num_envs, REPPOConfig().update_epochs) == (16, 8)
    assert PPOConfig().num_envs == AlgoConfig().num_envs == 8  # the base is untouched
    assert (SACConfig().num_envs, SACConfig().num_env_steps, SACConfig().gamma) == (4, 16, 0.99)
    base_doc = field_docs(AlgoConfig)["num_envs"]
    assert base_doc and field_docs(REPPOConfig)["num_envs"] == base_doc
    assert field_docs(SACConfig)["gamma"] == field_docs(AlgoConfig)["gamma"]
    with pytest.raises(ValueError, match=r"num_envs=0 is not allowed; expected in \[1, 4096\]"):
        REPPOConfig(num_envs=0)  # the rule is inherited
    shared = [f.name for f in dataclasses.fields(AlgoConfig)]
    names = [f.name for f in dataclasses.fields(REPPOConfig)]
    assert [n for n in names if n in shared] == shared  # same order as declared in the base
    with pytest.raises(TypeError, match="banana"):
        @dataclasses.dataclass
        class Bad(AlgoConfig, defaults=dict(banana=1)):
            pass


# ---- the registry -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["diffusion", "gaussian"])
@pytest.mark.parametrize("name", ["ppo", "reppo", "wpo", "sac"])
def test_every_algorithm_builds_and_runs_with_either_policy(name, kind):
    algo = ALGOS[name]
    cfg = algo.config(policy=kind)
    assert type(cfg) is algo.config_cls and algo_of(cfg) is algo
    assert policy_kind(cfg.policy) == kind and cfg.env_id == "HalfCheetah-v5"
    assert (cfg.policy.num_steps > 1) == (kind == "diffusion")
    small = {"num_steps": 2} if kind == "diffusion" else {}
    if name == "sac":  # a run must make a gradient step: learn from the first iteration on
        small["learning_starts"] = 0
    tiny = algo.config(policy=kind, env_id=TURNING, num_envs=2, num_env_steps=8,
                       total_env_steps=16, hidden_sizes=(8,), **small)
    learner = algo.learner_cls(tiny)
    try:
        row = learner.train_iteration()
    finally:
        learner.close()
    assert isinstance(learner.policy, POLICIES[kind][1])
    assert set(row) == set(algo.learner_cls.CSV_FIELDS) - {"elapsed_s"}
    assert row["env_steps"] == 16


def test_aliases_imply_their_fields():
    algo, implied = resolve("dppo")
    assert algo is ALGOS["ppo"] and implied == {"policy": "diffusion", "temperature": 0.0}
    dppo = algo_config("dppo")
    assert dppo.temperature == 0.0 and policy_kind(dppo.policy) == "diffusion"
    assert algo_config("diffppo") == algo_config("ppo", policy="diffusion")
    assert algo_config("diffppo").temperature == 2e-4
    diffwpo = algo_config("diffwpo")
    assert algo_of(diffwpo) is ALGOS["wpo"] and diffwpo.actor_update == "wasserstein"
    assert policy_kind(diffwpo.policy) == "diffusion" and diffwpo.entropy_target_mult == 8.0
    assert policy_kind(algo_config("ppo", policy="gaussian").policy) == "gaussian"
    for alias, (name, fields) in ALIASES.items():
        assert name in ALGOS and alias not in ALGOS and fields["policy"] == "diffusion", alias
        assert algo_of(algo_config(alias)) is ALGOS[name]
    assert {"diffppo", "dppo", "diffreppo", "diffwpo", "diffsac"} <= set(ALIASES)
    with pytest.raises(ValueError, match=r"algo='banana' is not allowed"):
        resolve("banana")
    with pytest.raises(ValueError, match="is not a registered algorithm config"):
        algo_of(AlgoConfig())


# ---- checks that used to fail late --------------------------------------------------------------
def test_a_given_policy_that_contradicts_the_config_is_refused_naming_the_field():
    cfg = PPOConfig.build(env_id=TURNING, num_steps=4, hidden_sizes=(8,), num_envs=2,
                          num_env_steps=8, total_env_steps=16, num_minibatches=2)
    envs = gym.make(TURNING)
    obs_dim, space = envs.observation_space.shape[0], envs.action_space
    envs.close()
    k2 = build_policy(dataclasses.replace(cfg.policy, num_steps=2), obs_dim, space)
    with pytest.raises(ValueError, match=r"contradicts config.policy: num_steps=2 \(config: 4\)"):
        train(cfg, policy=k2, progress=False)
    wide = build_policy(dataclasses.replace(cfg.policy, hidden_sizes=(16,)), obs_dim, space)
    with pytest.raises(ValueError, match=r"hidden_sizes=\(16,\) \(config: \(8,\)\)"):
        train(cfg, policy=wide, progress=False)
    gauss = build_policy(policy_config("gaussian", hidden_sizes=(8,)), obs_dim, space)
    with pytest.raises(ValueError, match=r"kind='gaussian' \(config: 'diffusion'\)"):
        train(cfg, policy=gauss, progress=False)
    other_env = build_policy(cfg.policy, obs_dim + 1, space)
    with pytest.raises(ValueError, match=r"policy has \(obs_dim, action_dim\)"):
        train(cfg, policy=other_env, progress=False)
    same = build_policy(cfg.policy, obs_dim, space)  # the one the config describes: accepted
    assert train(cfg, policy=same, progress=False).policy is same


def test_empty_minibatches_are_refused_on_construction():
    with pytest.raises(ValueError, match=r"num_minibatches=100000 must be <= the 4096"):
        REPPOConfig.build(num_minibatches=100000)  # 16 envs x 64 env steps x K = 4
    with pytest.raises(ValueError, match=r"num_minibatches=100000 must be <="):
        PPOConfig.build(num_minibatches=100000)
    # kappa < K: only kappa of the K chain steps per env step are used in an epoch
    with pytest.raises(ValueError, match=r"num_minibatches=3 must be <= the 2 augmented"):
        REPPOConfig.build(num_envs=1, num_env_steps=2, total_env_steps=2, num_steps=4,
                          diffusion_steps_per_update=1, num_minibatches=3)
    ok = REPPOConfig.build(num_envs=1, num_env_steps=2, total_env_steps=2, num_steps=4,
                           diffusion_steps_per_update=1, num_minibatches=2)
    check_minibatches(ok)


def test_the_nan_guard_names_the_loss_and_the_iteration():
    check_finite("loss", torch.tensor(1.0), 3)
    with pytest.raises(FloatingPointError, match=r"critic_loss=nan at iteration 7 \(epoch 1\); "
                                                 r"try a smaller lr"):
        check_finite("critic_loss", torch.tensor(math.nan), 7, "epoch 1")
