"""The `damdp-lite` command, run as a subprocess like a user would (CleanRL-style smoke tests)."""

import json
import shutil
import subprocess
import sys

import pytest

EXE = shutil.which("damdp-lite") or None


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
