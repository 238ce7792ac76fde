"""benchmarks/levers_ablation.py: each variant switches exactly one lever of the DA-MDP REPPO
preset back, its sweeps run and resume through the CLI, and `collect` summarises finished runs
(final evaluation return and late-training diagnostics) into JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from damdp_lite.train import algo_config, load_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import levers_ablation  # noqa: E402
import pytest  # noqa: E402

from damdp_lite.cli import main as cli_main  # noqa: E402


@pytest.mark.parametrize("algo", ["diffreppo", "diffppo"])
def test_each_variant_changes_one_preset_field(algo):
    """...of the MuJoCo preset the ablation starts from (what `run` trains on HalfCheetah-v5)."""
    variants, descriptions, _ = levers_ablation.ABLATIONS[algo]
    preset = algo_config(algo, env_id="HalfCheetah-v5")
    for name, change in variants.items():
        assert name in descriptions
        if name == "preset":
            assert change == {}
            continue
        assert len(change) == 1
        (field, value), = change.items()
        cfg = algo_config(algo, env_id="HalfCheetah-v5", **change)
        owner = cfg.policy if hasattr(cfg.policy, field) else cfg
        before = preset.policy if owner is cfg.policy else preset
        assert getattr(owner, field) == value != getattr(before, field), (algo, name)


def test_diffppo_ablation_runs_and_reports_its_clip_fraction(tmp_path):
    levers_ablation.run(tmp_path, seeds=[0], steps=2048, env="damdp_lite/TurningDoubleWell-v0",
                        variants=["dppo"], algo="diffppo")
    res = levers_ablation.collect([tmp_path], None, tmp_path / "a.json",
                                  env="damdp_lite/TurningDoubleWell-v0", algo="diffppo",
                                  steps=2048)
    assert res["algo"] == "diffppo"
    assert set(res["variants"]) == set(levers_ablation.DIFFPPO_VARIANTS)
    run = res["variants"]["dppo"]["runs"][0]
    assert 0 <= run["clip_fraction"] <= 1 and "kl_violation" not in run
    _, cfg = load_run(next((tmp_path / "dppo" / "runs").iterdir()))
    assert cfg.temperature == 0.0


def test_run_and_collect_on_a_tiny_budget(tmp_path):
    levers_ablation.run(tmp_path, seeds=[0], steps=1024, env="damdp_lite/TurningDoubleWell-v0",
                        variants=["preset", "no_jacobian"])
    out = tmp_path / "ablation.json"
    res = levers_ablation.collect([tmp_path], None, out, env="damdp_lite/TurningDoubleWell-v0",
                                  steps=1024)
    assert levers_ablation.collect([tmp_path], None, out, env="Hopper-v5", steps=1024)[
        "variants"]["preset"]["seeds"] == 0  # runs of another env are not counted
    res = levers_ablation.collect([tmp_path], None, out, env="damdp_lite/TurningDoubleWell-v0",
                                  steps=1024)
    assert json.loads(out.read_text()) == res
    for name in ("preset", "no_jacobian"):
        v = res["variants"][name]
        assert v["seeds"] == 1 and v["runs"][0]["env_steps"] == 1024
        assert v["mean_final_eval_return"] == v["runs"][0]["final_eval_return"]
        assert v["runs"][0]["evaluations"][-1] == [1024, v["runs"][0]["final_eval_return"]]
        assert 0 <= v["runs"][0]["saturated"] <= 1
    assert res["variants"]["mc_kl"]["seeds"] == 0  # not run: reported as missing, not invented
    _, cfg = load_run(next((tmp_path / "no_jacobian" / "runs").iterdir()))
    assert cfg.policy.tanh_jacobian is False and cfg.kl_estimator == "exact"


def test_collect_joins_the_seeds_of_several_roots(tmp_path):
    """Seeds run as separate batches (one RUNS_DIR each) are collected together, by seed."""
    env = "damdp_lite/TurningDoubleWell-v0"
    for root, seed in ((tmp_path / "a", 1), (tmp_path / "b", 0)):
        levers_ablation.run(root, seeds=[seed], steps=1024, env=env, variants=["no_jacobian"])
    res = levers_ablation.collect([tmp_path / "a", tmp_path / "b"], None, tmp_path / "x.json",
                                  env=env, steps=1024)
    v = res["variants"]["no_jacobian"]
    assert [r["seed"] for r in v["runs"]] == [0, 1] and v["seeds"] == 2
    assert v["source"] == "a/no_jacobian, b/no_jacobian"
    assert res["variants"]["preset"]["seeds"] == 0


def test_collect_takes_a_variant_from_another_sweep_and_checks_every_config(tmp_path):
    """`--from VARIANT=SWEEP[:LABEL]`: a variant's runs come from another sweep, by the label
    each run records (a plain `diffreppo` run there is not a `diffreppo+prior_std-3.0` one); a
    run whose config is not the variant's (another lever, another budget, other evaluations), a
    source with no such run, a seed twice or one variant from two sources is refused in one line
    naming the field, the value or the path."""
    env = "damdp_lite/TurningDoubleWell-v0"
    grid = ["--envs", env, "--steps", "1024", "--eval-every", "48", "--threads", "1"]
    levers_ablation.run(tmp_path / "abl", seeds=[0], steps=1024, env=env, variants=["prior_std_3"])
    cli_main(["sweep", str(tmp_path / "grid"), "--algos", "reppo", "--policies", "diffusion",
              "--seeds", "1", "--eval-episodes", "10", *grid, "--set", "prior_std=3.0",
              "--name-sets"])
    cli_main(["sweep", str(tmp_path / "plain"), "--algos", "reppo", "--policies", "diffusion",
              "--seeds", "2", "--eval-episodes", "10", *grid])
    cli_main(["sweep", str(tmp_path / "few"), "--algos", "reppo", "--policies", "diffusion",
              "--seeds", "3", "--eval-episodes", "2", *grid])
    label = "diffreppo+prior_std-3.0"
    assert (tmp_path / "grid" / "runs" / f"damdp_lite_TurningDoubleWell-v0_{label}_s1").is_dir()
    out = tmp_path / "x.json"

    def refused(match, roots=(tmp_path / "abl",), existing=None, steps=1024):
        with pytest.raises(ValueError, match=match) as err:
            levers_ablation.collect(list(roots), existing, out, env=env, steps=steps)
        assert "\n" not in str(err.value)

    sources = {"prior_std_3": (tmp_path / "grid", label),
               "preset": (tmp_path / "plain", "diffreppo")}
    res = levers_ablation.collect([tmp_path / "nothing"], sources, tmp_path / "ok.json", env=env,
                                  steps=1024)
    v = res["variants"]["prior_std_3"]
    assert [r["seed"] for r in v["runs"]] == [1] and v["source"].endswith(
        f"/grid, runs labelled {label}")
    assert [r["seed"] for r in res["variants"]["preset"]["runs"]] == [2]
    refused(r"prior_std = 3\.0, but the variant \{\} .* has 1\.5", (),
            {"preset": (tmp_path / "grid", label)})
    refused("total_env_steps = 1024", steps=2048)
    refused("eval_episodes = 2, but the ablation's runs have 10", (),
            {"preset": (tmp_path / "few", "diffreppo")})
    refused("no finished run labelled 'diffreppo' on", (), {"preset": (tmp_path / "grid",
                                                                       "diffreppo")})
    refused("has runs both in", existing={"prior_std_3": (tmp_path / "grid", label)})
    refused("has seed 0 twice", (tmp_path / "abl", tmp_path / "abl"))
    refused("'bogus' is not a variant", (), {"bogus": (tmp_path / "grid", label)})
    assert not out.exists()  # nothing written by a refused collect
    assert levers_ablation.parse_source(f"preset={tmp_path}", levers_ablation.VARIANTS,
                                        "diffreppo") == ("preset", tmp_path, "diffreppo")
    assert levers_ablation.parse_source("preset=a/b:lab", levers_ablation.VARIANTS,
                                        "diffreppo") == ("preset", Path("a/b"), "lab")
    for bad in ("presets=x", "preset=", "preset=:lab", "preset"):
        with pytest.raises(ValueError, match="VARIANT one of"):
            levers_ablation.parse_source(bad, levers_ablation.VARIANTS, "diffreppo")
