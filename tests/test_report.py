"""`damdp-lite report` (damdp_lite.report): run discovery and scores, normalisation, rliable's
aggregates with CIs, pairs and P(improvement), report.json and figures, bad input. The runs are
copies of shipped run directories (config.json + progress.csv) with edited seeds and labels."""

import argparse
import csv
import dataclasses
import json
import shutil
import warnings

import numpy as np
import pytest
from scipy.stats import trim_mean

from damdp_lite import report
from damdp_lite.results import SHIPPED_RUNS
from damdp_lite.train import config_record, load_run

RANDOM = {"HalfCheetah-v5": -280.0, "Hopper-v5": 20.0}
"""Random-action returns given to `write_report`, so that most tests run no MuJoCo episode."""


def copy_run(name: str, dest, label: str | None = None, seed: int | None = None):
    """A shipped run's config.json and progress.csv in `dest`; a new label or seed is written as
    a format-2 config.json (the shipped ones are format 1)."""
    dest.mkdir(parents=True)
    for f in ("config.json", "progress.csv"):
        shutil.copy(SHIPPED_RUNS / name / f, dest / f)
    if label is not None or seed is not None:
        run, cfg = load_run(dest)
        run.label = label if label is not None else run.label
        cfg = dataclasses.replace(cfg, seed=cfg.seed if seed is None else seed)
        (dest / "config.json").write_text(json.dumps(config_record(cfg, run)))
    return dest


def edit_progress(run_dir, keep_rows: int | None = None, blank: str | None = None,
                  last: dict | None = None) -> None:
    """Drop all but the first `keep_rows` rows, blank the column `blank`, or set `last`'s
    columns in the last row."""
    path = run_dir / "progress.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows = rows[:keep_rows] if keep_rows is not None else rows
    for r in rows:
        if blank:
            r[blank] = ""
    rows[-1].update(last or {})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def last_eval(run_dir) -> float:
    with open(run_dir / "progress.csv", newline="") as f:
        return [float(r["eval_return"]) for r in csv.DictReader(f) if r["eval_return"]][-1]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep-like tree: runs/ holds PPO and DiffPPO, 3 seeds, HalfCheetah and Hopper."""
    root = tmp_path_factory.mktemp("sweep")
    for env in ("HalfCheetah-v5", "Hopper-v5"):
        for algo in ("ppo", "diffppo"):
            for s in range(3):
                copy_run(f"{env}_{algo}_s{s}", root / "runs" / f"{env}_{algo}_s{s}")
    (root / "sweep.json").write_text("{}")
    (root / "jobs").mkdir()
    return root


@pytest.fixture(scope="module")
def made(sweep, tmp_path_factory):
    """The report of `sweep` (200 bootstrap replications) and its directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete sweep: nothing to warn about
        runs = report.collect_runs([sweep])
    out = tmp_path_factory.mktemp("report")
    return report.write_report(runs, out, reps=200, random_scores=RANDOM), out


def test_collect_runs_finds_runs_recursively_and_skips_with_reasons(sweep, tmp_path):
    shutil.copytree(sweep / "runs", tmp_path / "a" / "runs")
    deep = tmp_path / "b" / "c"
    edit_progress(copy_run("Hopper-v5_sac_s0", deep / "unfinished"), keep_rows=10)
    edit_progress(copy_run("Hopper-v5_sac_s1", deep / "no_eval"), blank="eval_return")
    copy_run("Hopper-v5_ppo_s0", deep / "twin")  # same method, task and seed as one in a/
    (deep / "broken").mkdir()
    (deep / "broken" / "config.json").write_text("[]")
    (deep / "broken" / "progress.csv").write_text("iteration,env_steps\n")
    (deep / "not_a_run").mkdir()
    (deep / "not_a_run" / "config.json").write_text("{}")  # no progress.csv: not a run
    with pytest.warns(UserWarning, match=r"left out 4 of 16 runs: .*\(report.json: skipped\)"):
        runs = report.collect_runs([tmp_path / "a", tmp_path / "b"])
    reasons = {r.path.split("/")[-1]: r.skipped for r in runs if r.skipped}
    assert reasons["unfinished"].startswith("unfinished: 640 of 65536 env steps")
    assert reasons["no_eval"] == "no evaluation: eval_return is blank in every row"
    assert reasons["twin"].startswith("duplicate of ") and "same method, task and seed" in reasons[
        "twin"]
    assert reasons["broken"].startswith("unreadable: ")
    used = [r for r in runs if not r.skipped]
    assert len(used) == 12 and all(r.finished for r in used)
    assert {(r.method, r.algo, r.kind) for r in used} == {("ppo", "ppo", "gaussian"),
                                                           ("diffppo", "ppo", "diffusion")}
    # a run directory given itself is found, not searched below
    (one,) = report.collect_runs([tmp_path / "a" / "runs" / "Hopper-v5_ppo_s1"])
    assert (one.env_id, one.method, one.seed, one.eval_episodes) == ("Hopper-v5", "ppo", 1, 5)


def test_a_score_is_the_last_evaluation_return_never_a_training_return(sweep, tmp_path):
    run_dir = copy_run("HalfCheetah-v5_ppo_s0", tmp_path / "r")
    edit_progress(run_dir, last={"episode_return": "1e9"})  # a huge last training return
    (run,) = report.collect_runs([run_dir])
    assert run.score == last_eval(run_dir) != 1e9
    for r in report.collect_runs([sweep]):
        assert r.score == last_eval(sweep / "runs" / r.path.split("/")[-1])


def test_normalisation_maps_random_to_0_and_the_best_run_to_1(made):
    rep, _ = made
    for task, n in rep["normalisation"].items():
        assert n["random"] == RANDOM[task]
        assert report._normalised(rep["normalisation"], task, n["random"]) == 0
        raws = [x for m in rep["methods"].values() for x in m["scores"][task]["raw"]]
        assert n["best"] == max(raws)
        for m in rep["methods"].values():
            s = m["scores"][task]
            want = (np.array(s["raw"]) - RANDOM[task]) / (n["best"] - RANDOM[task])
            assert np.allclose(s["normalised"], want)
        assert max(x for m in rep["methods"].values()
                   for x in m["scores"][task]["normalised"]) == pytest.approx(1.0)


def test_aggregates_are_rliables_on_the_normalised_scores_and_cis_bracket_them(made):
    rep, _ = made
    assert rep["metrics"] == ["IQM", "Median", "Mean", "Optimality Gap"]
    for m in rep["methods"].values():
        x = np.array([m["scores"][t]["normalised"] for t in m["tasks"]]).T  # (seeds, tasks)
        agg = m["aggregate"]
        assert agg["IQM"]["point"] == pytest.approx(trim_mean(x.reshape(-1), 0.25))
        assert agg["Mean"]["point"] == pytest.approx(x.mean())
        assert agg["Median"]["point"] == pytest.approx(np.median(x.mean(0)))
        assert agg["Optimality Gap"]["point"] == pytest.approx(1 - np.minimum(x, 1).mean())
        for est in agg.values():
            assert est["ci"][0] <= est["point"] + 1e-12 and est["point"] <= est["ci"][1] + 1e-12
        for t in m["tasks"]:
            raw = m["scores"][t]["raw"]
            assert m["scores"][t]["raw_iqm"] == pytest.approx(trim_mean(raw, 0.25))
            assert m["scores"][t]["raw_mean"] == pytest.approx(np.mean(raw))


def test_diffusion_methods_are_paired_with_their_gaussian_base(made):
    from rliable import metrics

    rep, _ = made
    (pair,) = rep["pairs"]
    assert (pair["x"], pair["y"], pair["algo"]) == ("diffppo", "ppo", "ppo")
    x, y = ([rep["methods"][k]["scores"][t]["normalised"] for t in pair["tasks"]]
            for k in ("diffppo", "ppo"))
    p = metrics.probability_of_improvement(np.array(x).T, np.array(y).T)
    assert pair["probability_of_improvement"] == pytest.approx(p)
    assert 0 <= pair["ci"][0] <= p <= pair["ci"][1] <= 1


def test_custom_labels_pair_by_suffix_and_unequal_seed_counts_use_the_first_seeds(tmp_path):
    for env in ("HalfCheetah-v5", "Hopper-v5"):
        for algo, label in (("ppo", "ppo+lr-1"), ("diffppo", "diffppo+lr-1")):
            for s in range(3 if env == "Hopper-v5" or algo == "ppo" else 2):
                copy_run(f"{env}_{algo}_s{s}", tmp_path / f"{env}_{label}_s{s}", label=label,
                         seed=s)
        copy_run(f"{env}_diffppo_s2", tmp_path / f"{env}_dppo_s2", label="dppo")  # no base
    rep = report.write_report(report.collect_runs([tmp_path]), tmp_path / "out", reps=100,
                              random_scores=RANDOM)
    assert [(p["x"], p["y"]) for p in rep["pairs"]] == [("diffppo+lr-1", "ppo+lr-1")]
    diff = rep["methods"]["diffppo+lr-1"]
    assert diff["seeds"] == 2 and diff["seeds_dropped"] == {"Hopper-v5": [2]}
    assert diff["seeds_used"] == {"HalfCheetah-v5": [0, 1], "Hopper-v5": [0, 1]}
    assert len(diff["scores"]["Hopper-v5"]["raw"]) == 3  # per-task numbers keep every seed
    assert rep["methods"]["dppo"]["kind"] == "diffusion"


def test_report_json_is_strict_and_the_figures_exist(made):
    rep, out = made

    def no_constants(name):
        raise AssertionError(f"report.json holds {name}")

    loaded = json.loads((out / "report.json").read_text(), parse_constant=no_constants)
    assert loaded == json.loads(json.dumps(rep))
    assert loaded["rliable_version"] == "1.2.0" and loaded["reps"] == 200
    assert loaded["seed"] == 0 and loaded["skipped"] == [] and loaded["runs_used"] == 12
    for name in ("aggregates.png", "profiles.png", "improvement.png"):
        assert (out / name).stat().st_size > 1000
    prof = loaded["profiles"]
    assert prof["tau"][0] <= 0 and prof["tau"][-1] == 1 and len(prof["tau"]) == 101
    assert list(prof["methods"]) == list(loaded["methods"]) == ["diffppo", "ppo"]
    for m in prof["methods"].values():  # the fraction of runs above tau: falls to 0 at tau = 1
        assert np.all(np.diff(m["profile"]) <= 0) and m["profile"][-1] == 0
        assert np.all(np.array(m["low"]) <= np.array(m["profile"]) + 1e-12)


def test_the_bootstrap_is_seeded(sweep, tmp_path):
    runs = [r for r in report.collect_runs([sweep]) if r.env_id == "Hopper-v5"]
    a, b, c = (report.write_report(runs, tmp_path / str(i), reps=100, seed=s,
                                   random_scores=RANDOM) for i, s in enumerate((3, 3, 4)))
    ci = lambda r: [m["aggregate"]["IQM"]["ci"] for m in r["methods"].values()]  # noqa: E731
    assert ci(a) == ci(b) != ci(c)


def test_cmd_report_defaults_its_out_dir_and_summarises(sweep, tmp_path, monkeypatch):
    parser = argparse.ArgumentParser()
    report.add_report_args(parser)
    sub = tmp_path / "sw"
    shutil.copytree(sweep / "runs", sub / "runs", ignore=lambda d, names: [
        n for n in names if n.startswith("HalfCheetah")])
    (sub / "sweep.json").write_text("{}")  # a sweep directory: its report goes inside it
    args = parser.parse_args([str(sub), "--normalise", "none", "--reps", "1e2"])
    out = report.cmd_report(args)
    assert out["out_dir"] == str(sub / "report") and (sub / "report" / "report.json").exists()
    assert out["methods"] == ["diffppo", "ppo"] and out["tasks"] == ["Hopper-v5"]
    assert out["runs_used"] == 6 and out["skipped"] == 0 and set(out["pairs"]) == {
        "diffppo > ppo"}
    lo_point_hi = out["iqm"]["ppo"]
    assert lo_point_hi[1] <= lo_point_hi[0] <= lo_point_hi[2]
    rep = json.loads((sub / "report" / "report.json").read_text())
    assert rep["metrics"] == ["IQM", "Median", "Mean"]  # no optimality gap on raw returns
    assert rep["normalisation"]["Hopper-v5"]["random"] is None
    ppo = rep["methods"]["ppo"]
    assert ppo["aggregate"]["IQM"]["point"] == pytest.approx(
        trim_mean(ppo["scores"]["Hopper-v5"]["raw"], 0.25))
    monkeypatch.chdir(tmp_path)  # several paths (here the same runs twice): ./report
    args = parser.parse_args([str(sub), str(sub / "runs"), "--normalise", "none",
                              "--reps", "100"])
    twice = report.cmd_report(args)
    assert twice["out_dir"] == "report" and (tmp_path / "report" / "report.json").exists()
    assert twice["runs_used"] == 6 and twice["skipped"] == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(reps=50), r"^reps=50 is not allowed; expected in \[100, 1000000\]$"),
    (dict(normalise="zscore"), r"^normalise='zscore' is not allowed; expected one of"),
    (dict(seed=-1), r"^seed=-1 is not allowed"),
    (dict(random_episodes=0), r"^random_episodes=0 is not allowed"),
])
def test_bad_settings_are_one_line_value_errors(sweep, tmp_path, kwargs, match):
    runs = report.collect_runs([sweep / "runs" / "Hopper-v5_ppo_s0"])
    with pytest.raises(ValueError, match=match) as err:
        report.write_report(runs, tmp_path, random_scores=RANDOM, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_paths_and_unusable_runs_are_one_line_value_errors(sweep, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "f.txt").write_text("")
    for paths, match in [([tmp_path / "nope"], "paths: .*nope' does not exist; expected a run"),
                         ([tmp_path / "f.txt"], "paths: .*f.txt' is a file; expected a run"),
                         ([tmp_path / "empty"], "hold no run directory"),
                         ([], "paths=\\[\\] is not allowed")]:
        with pytest.raises(ValueError, match=match) as err:
            report.collect_runs(paths)
        assert "\n" not in str(err.value)
    edit_progress(copy_run("Hopper-v5_ppo_s0", tmp_path / "half"), keep_rows=3)
    with pytest.warns(UserWarning, match="left out 1 of 1 runs"):
        runs = report.collect_runs([tmp_path / "half"])
    with pytest.raises(ValueError, match=r"^runs: none of the 1 runs can be scored"):
        report.write_report(runs, tmp_path / "out", random_scores=RANDOM)
    runs = report.collect_runs([sweep / "runs" / "Hopper-v5_ppo_s0"])
    with pytest.raises(ValueError, match="on task 'Hopper-v5' no run beats random actions"):
        report.write_report(runs, tmp_path / "out", random_scores={"Hopper-v5": 1e6})
    parser = argparse.ArgumentParser()
    report.add_report_args(parser)
    with pytest.raises(ValueError, match=r"^reps=10 is not allowed"):
        report.cmd_report(parser.parse_args([str(sweep), "--reps", "10"]))


def test_random_policy_return_is_seeded_uniform_actions_through_the_evaluation_loop():
    import torch

    toy = "damdp_lite/TurningDoubleWell-v0"
    a = report.random_policy_return(toy, episodes=3, seed=0)
    assert a == report.random_policy_return(toy, episodes=3, seed=0)
    assert a != report.random_policy_return(toy, episodes=3, seed=1) and np.isfinite(a)
    cheetah = report.random_policy_return("HalfCheetah-v5", episodes=1)  # 1000 steps
    assert -1000 < cheetah < 0  # random actions pay the control cost and go nowhere
    acts = report._UniformActions(np.array([-1.0, 0.0, -np.inf]), np.array([1.0, 2.0, np.inf]))
    x = acts.act(torch.zeros(20_000, 4), torch.Generator().manual_seed(0)).double()
    assert x.shape == (20_000, 3)
    assert x[:, 0].abs().max() <= 1 and 0 <= x[:, 1].min() and x[:, 1].max() <= 2
    assert x[:, :2].mean(0).tolist() == pytest.approx([0.0, 1.0], abs=0.03)  # uniform: midpoint
    assert x[:, 2].std().item() == pytest.approx(1.0, abs=0.03)  # unbounded: N(0, 1)
    with pytest.raises(ValueError, match="env_id='Nope-v0' is not a registered"):
        report.random_policy_return("Nope-v0")


def test_a_sweep_axis_of_diffusion_only_fields_pairs_each_value_with_the_gaussian_base():
    tasks = ["Hopper-v5"]
    m = lambda kind, label: {"algo": "ppo", "kind": kind, "default_label": label,  # noqa: E731
                             "tasks": tasks}
    methods = {"diffppo+num_steps-2": m("diffusion", "diffppo"),
               "diffppo+num_steps-3+lr-0.001": m("diffusion", "diffppo"),
               "ppo": m("gaussian", "ppo"), "ppo+lr-0.001": m("gaussian", "ppo"),
               "ppo+init_std-0.5": m("gaussian", "ppo"),
               "ppofancy": m("gaussian", "ppo")}  # a custom label, not a sweep suffix
    assert sorted(report._pairs(methods)) == [
        ("diffppo+num_steps-2", "ppo"), ("diffppo+num_steps-2", "ppo+init_std-0.5"),
        ("diffppo+num_steps-3+lr-0.001", "ppo+lr-0.001")]


def test_runs_of_one_method_with_other_settings_are_named_in_a_warning(sweep, tmp_path):
    shutil.copytree(sweep / "runs" / "Hopper-v5_ppo_s0", tmp_path / "a")
    shutil.copytree(sweep / "runs" / "Hopper-v5_ppo_s1", tmp_path / "b")
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    body = cfg.get("config", cfg.get("algo_config"))
    body["lr"] = body["lr"] * 2
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="method 'ppo' on Hopper-v5: its runs differ in lr"):
        report.collect_runs([tmp_path])
