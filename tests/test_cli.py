"""The `damdp-lite` command, run as a subprocess like a user would (CleanRL-style smoke tests)."""

import json
import shutil
import subprocess
import sys

import pytest

EXE = shutil.which("damdp-lite") or None

_BOTH = ("ppo", "diffppo", "reppo", "diffreppo", "sac", "diffsac")  # notebooks 05, 06
_LABELS = {"HalfCheetah-v5": (*_BOTH, "wpo", "diffwpo"), "Hopper-v5": _BOTH}
SHIPPED = [f"{e}_{a}_s{s}" for e, names in _LABELS.items() for a in names for s in range(3)]
"""The 42 shipped MuJoCo runs (damdp_lite/shipped/mujoco)."""


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "damdp_lite.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("damdp_lite ")
    out = run("fit-sampler", "--help")
    assert out.returncode == 0
    assert "Number of denoising steps K" in out.stdout  # help comes from the field docstrings
    assert "(default: (64, 64))" in out.stdout


def test_fit_sampler_json_tiny_budget():
    out = run("fit-sampler", "--steps", "5", "--num-steps", "2", "--batch-size", "64", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["num_steps"] == 2 and res["exact_mode_masses"] == [0.5, 0.5]
    assert res["j_bound"] <= res["j_marginal"] + 4 * res["j_bound_se"]
    assert res["j_marginal"] <= res["t_log_z"] + 1e-9


@pytest.mark.parametrize("args,field", [
    (["--num-steps", "0"], "num_steps=0"),
    (["--temperature", "-1"], "temperature=-1.0"),
    (["--step-size-schedule", "foo"], "step_size_schedule='foo'"),
    (["--noising-step-pairing", "next"], "noising_step_pairing='next'"),
    (["--batch-size", "1"], "batch_size=1"),
])
def test_bad_input_one_line_exit_2(args, field):
    out = run("fit-sampler", "--steps", "1", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], out.stderr


def test_unknown_choice_exits_2():
    out = run("fit-sampler", "--target", "banana")
    assert out.returncode == 2 and "invalid choice" in out.stderr


# ---- train / evaluate / reproduce -------------------------------------------------------------

TINY = ["--num-envs", "2", "--num-env-steps", "8", "--update-epochs", "1", "--num-minibatches",
        "2", "--num-steps", "2", "--hidden-sizes", "16", "--value-hidden-sizes", "16",
        "--eval-episodes", "1", "--json"]


@pytest.mark.parametrize("sub", ["train", "evaluate", "reproduce"])
def test_subcommand_help(sub):
    out = run(sub, "--help")
    assert out.returncode == 0 and "usage: damdp-lite " + sub in out.stdout


def test_train_help_comes_from_the_configs():
    out = run("train", "--help")
    assert "chain steps per env step used in each epoch" in out.stdout  # PPOConfig field doc
    assert "Evaluate every this many iterations" in out.stdout  # RunConfig field doc


@pytest.mark.parametrize("args,needle", [
    (["--env", "Nope-v0"], "env_id='Nope-v0' is not allowed; expected a registered Gymnasium id"),
    (["--env", "CartPole-v1"], "env_id='CartPole-v1' has action space Discrete(2)"),
    (["--algo", "banana"], "algo='banana' is not allowed; expected one of ('ppo', 'reppo'"),
    (["--steps", "-5"], "total_env_steps=-5 is not allowed; expected in [1, 1000000000000]"),
    (["--steps", "1.5e3x"], "argument --steps: invalid integer: '1.5e3x'"),
    (["--steps", "10"], "total_env_steps=10 must be >= num_envs * num_env_steps = 16"),
    (["--seed", "-1"], "seed=-1 is not allowed; expected in [0, 2147483647]"),
    (["--lr", "0"], "lr=0.0 is not allowed; expected > 0"),
    (["--lr", "nan"], "lr=nan must be a finite number > 0"),
    (["--gamma", "1.5"], "gamma=1.5 is not allowed; expected in (0, 1]"),
    (["--num-steps", "0"], "num_steps=0 is not allowed; expected in [1, 1000]"),
    (["--device", "cuda"], "device='cuda' but CUDA is not available"),
    (["--eval-episodes", "0"], "eval_episodes=0 is not allowed; expected >= 1"),
    (["--vectorization", "threads"], "vectorization='threads' is not allowed"),
])
def test_train_bad_input_one_line_exit_2(args, needle, tmp_path):
    if args[:2] == ["--device", "cuda"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    out = run("train", "--run-dir", str(tmp_path / "r"), *TINY[:-1], *args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_train_evaluate_reproduce_tiny(tmp_path):
    run_dir = tmp_path / "run"
    out = run("train", "--algo", "diffppo", "--env", "Hopper-v5", "--steps", "32", "--seed", "3",
              "--run-dir", str(run_dir), *TINY)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["iterations"] == 2 and res["env_steps"] == 32
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["format"] == 2 and cfg["algo"] == "ppo" and cfg["label"] == "diffppo"
    assert cfg["config"]["seed"] == 3 and cfg["config"]["policy"]["num_steps"] == 2
    assert cfg["config"]["policy"]["kind"] == "diffusion" and cfg["config"]["env_id"] == "Hopper-v5"

    out = run("evaluate", str(run_dir), "--episodes", "2", "--video",
              str(tmp_path / "v.gif"), "--max-frames", "5", "--json")
    assert out.returncode == 0, out.stderr
    ev = json.loads(out.stdout.strip().splitlines()[-1])
    assert ev["episodes"] == 2 and (tmp_path / "v.gif").stat().st_size > 0

    out = run("reproduce", str(run_dir), "--run-dir", str(tmp_path / "again"), "--json")
    assert out.returncode == 0, out.stderr
    a = (run_dir / "progress.csv").read_text().splitlines()
    b = (tmp_path / "again" / "progress.csv").read_text().splitlines()
    drop = lambda line: line.split(",")[:12]  # noqa: E731  (columns before the wall clock)
    assert [drop(x) for x in a] == [drop(x) for x in b]


@pytest.mark.parametrize("args,needle", [
    (["evaluate", "/nonexistent/run"], "run_dir='/nonexistent/run' has no config.json"),
    (["evaluate", ".", "--episodes", "x"], "argument --episodes: invalid integer: 'x'"),
    (["reproduce", "NoSuchRun"], "name='NoSuchRun' is neither a shipped run"),
])
def test_evaluate_reproduce_bad_input(args, needle):
    out = run(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_reproduce_lists_shipped_runs():
    out = run("reproduce", "--list", "--json")
    assert out.returncode == 0, out.stderr
    shipped = json.loads(out.stdout)["shipped"]
    assert sorted(SHIPPED) == [row["name"] for row in shipped]


# ---- --algo / --policy, aliases, reproduce --list (in process: `cli.main`) -----------------

TOY = ["--env", "damdp_lite/TurningDoubleWell-v0", "--steps", "32", "--num-envs", "2",
       "--num-env-steps", "8", "--update-epochs", "1", "--num-minibatches", "2",
       "--hidden-sizes", "16", "--value-hidden-sizes", "16", "--eval-episodes", "1", "--quiet"]


def main(capsys, *args: str) -> tuple[int, str, str]:
    """`damdp-lite ARGS` in this process: (exit code, stdout, stderr)."""
    from damdp_lite.cli import main as cli_main

    capsys.readouterr()
    try:
        code = cli_main(list(args))
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_base_name_with_policy_diffusion_is_the_diff_alias(tmp_path, capsys):
    for name, algo in (("a", ["--algo", "ppo", "--policy", "diffusion"]),
                       ("b", ["--algo", "diffppo"])):
        code, _, err = main(capsys, "train", *algo, *TOY, "--num-steps", "2",
                            "--run-dir", str(tmp_path / name))
        assert code == 0, err
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert a == b  # the same run, recorded the same way
    assert a["algo"] == "ppo" and a["label"] == "diffppo"
    assert a["config"]["policy"]["kind"] == "diffusion" and a["config"]["policy"]["num_steps"] == 2
    rows = [(tmp_path / d / "progress.csv").read_text().splitlines() for d in "ab"]
    drop = lambda line: line.split(",")[:12]  # noqa: E731  (columns before the wall clock)
    assert [drop(x) for x in rows[0]] == [drop(x) for x in rows[1]] and len(rows[0]) == 3
    # a base name without --policy is the Gaussian version (ppo = Gaussian PPO)
    code, _, err = main(capsys, "train", "--algo", "ppo", *TOY, "--run-dir", str(tmp_path / "c"))
    assert code == 0, err
    c = json.loads((tmp_path / "c" / "config.json").read_text())
    assert c["label"] == "ppo" and c["config"]["policy"]["kind"] == "gaussian"


@pytest.mark.parametrize("args,needles", [
    (["--algo", "dppo", "--temperature", "0.5"],
     ["--temperature 0.5 contradicts --algo dppo", "temperature = 0.0"]),
    (["--algo", "ppo", "--policy", "gaussian", "--num-steps", "4"],
     ["num_steps", "does not apply to policy='gaussian'"]),
    (["--algo", "diffppo", "--policy", "gaussian"],
     ["--policy gaussian contradicts --algo diffppo"]),
    (["--algo", "ppo", "--kl-bound", "0.1"], ["--kl-bound does not apply to --algo ppo"]),
    (["--algo", "diffsac", "--update-epochs", "2"],
     ["--update-epochs does not apply to --algo diffsac"]),
])
def test_contradicting_algo_policy_and_options_exit_2_with_one_line(args, needles, tmp_path,
                                                                    capsys):
    code, out, err = main(capsys, "train", *args, "--steps", "64", "--quiet",
                          "--run-dir", str(tmp_path / "r"))
    lines = err.strip().splitlines()
    assert code == 2 and out == "", err
    assert len(lines) == 1 and all(n in lines[0] for n in needles), err
    assert lines[0].startswith("damdp-lite train: error: ")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_reproduce_list_prints_a_table_of_the_shipped_runs(capsys):
    code, out, err = main(capsys, "reproduce", "--list")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "env", "algo", "policy", "seed", "env_steps",
                                "final_return", "eval_return"]
    assert len(lines) == 1 + 42 == 1 + len(SHIPPED)
    cells = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(cells) == sorted(SHIPPED)
    assert cells["HalfCheetah-v5_diffwpo_s2"][1:5] == ["HalfCheetah-v5", "wpo", "diffusion", "2"]
    assert cells["Hopper-v5_ppo_s1"][1:5] == ["Hopper-v5", "ppo", "gaussian", "1"]


def test_reproduce_list_json_rows_have_the_keys(capsys):
    from damdp_lite.algos import ALGOS
    from damdp_lite.policies import POLICIES

    code, out, err = main(capsys, "reproduce", "--list", "--json")
    assert code == 0, err
    rows = json.loads(out)["shipped"]
    assert len(rows) == 42
    for row in rows:
        assert list(row) == ["name", "env", "algo", "policy", "seed", "env_steps",
                             "final_return", "eval_return"], row
        assert row["algo"] in ALGOS and row["policy"] in POLICIES
        label = ALGOS[row["algo"]].label(row["policy"])
        assert row["name"] == f"{row['env']}_{label}_s{row['seed']}"
        assert isinstance(row["env_steps"], int) and row["env_steps"] > 0
        assert isinstance(row["final_return"], float)
        assert row["eval_return"] is None or isinstance(row["eval_return"], float)


# ---- defects found in review: each one line, exit 2 ---------------------------------------------


def _tiny_ppo(run_dir, *extra):
    return ["train", "--algo", "dppo", "--env", "damdp_lite/TurningDoubleWell-v0", "--steps", "16",
            "--num-envs", "2", "--num-env-steps", "8", "--update-epochs", "1",
            "--num-minibatches", "2", "--num-steps", "2", "--hidden-sizes", "16",
            "--value-hidden-sizes", "16", "--eval-episodes", "1", "--json", "--run-dir",
            str(run_dir), *extra]


def test_config_json_that_is_not_an_object_is_one_line(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("[1, 2]")
    out = run(*_tiny_ppo(run_dir))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "config.json" in lines[0] and "expected a JSON object" in lines[0]


def test_video_of_an_env_that_cannot_render_is_one_line(tmp_path):
    run_dir = tmp_path / "r"
    assert run(*_tiny_ppo(run_dir)).returncode == 0
    out = run("evaluate", str(run_dir), "--episodes", "1", "--video", str(tmp_path / "v.gif"))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "cannot render" in lines[0] and not (tmp_path / "v.gif").exists()


@pytest.mark.parametrize("label", ["a/b", "../../escaped", ".."])
def test_label_must_be_a_directory_name(tmp_path, label):
    out = run(*_tiny_ppo(tmp_path / "r", "--label", label))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and f"label={label!r}" in lines[0], out.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_started_with_an_alias_resumes_with_its_base_form(tmp_path):
    """`--algo dppo` is `--algo ppo --policy diffusion --temperature 0`: the label is a name."""
    run_dir = tmp_path / "r"
    assert run(*_tiny_ppo(run_dir)).returncode == 0
    base = [a if a != "dppo" else "ppo" for a in _tiny_ppo(run_dir)]
    out = run(*base, "--policy", "diffusion", "--temperature", "0")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["resumed_from"] == 1
    assert json.loads((run_dir / "config.json").read_text())["label"] == "dppo"


def test_too_many_layers_is_refused_before_allocating(tmp_path):
    out = run(*_tiny_ppo(tmp_path / "r", "--hidden-sizes", *["4096"] * 40))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "hidden_sizes has 40 entries; allowed: at most 16" in lines[0]
