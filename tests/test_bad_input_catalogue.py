"""The bad-input catalogue, replayed: every failure ends in ONE stderr line (no traceback) naming
the field or file, the value and what is allowed; exit code 2 for bad input, 1 for a runtime
failure (NaN loss, unwritable directory), 130 for Ctrl-C; a failed start leaves the run directory
as it was. Only `damdp-lite --debug ...` prints a traceback.

Groups (one parametrized test each): A tracebacks that must be one line, B unclear messages that
must name the field, C silent acceptances that must be refused (or stated), D the Python API,
E the state a failure leaves behind (failed start, deleted policy.pt, Ctrl-C, NaN stop),
F `--debug`. The CLI runs as a subprocess (`python -m damdp_lite.cli`, cwd = tmp_path), so exit
codes and stderr are the real ones."""

from __future__ import annotations

import csv
import dataclasses
import errno
import importlib.util
import io
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

TURNING = "damdp_lite/TurningDoubleWell-v0"
TOY = ["--env", TURNING, "--steps", "32", "--num-envs", "2", "--num-env-steps", "8",
       "--eval-episodes", "1", "--quiet"]
PPO = ["--algo", "ppo", *TOY, "--update-epochs", "1", "--num-minibatches", "2",
       "--hidden-sizes", "16", "--value-hidden-sizes", "16"]
"""Gaussian PPO, 2 iterations of 2 envs x 8 env steps: the run every run-dir case uses."""
RUN_DIR = ("run_dir", "--run-dir")
REPPO = ["--algo", "reppo", *TOY, "--update-epochs", "1", "--num-minibatches", "2",
         "--hidden-sizes", "16", "--critic-hidden-sizes", "16", "--kl-samples", "2",
         "--num-bins", "11"]
SAC = ["--algo", "sac", *TOY, "--hidden-sizes", "16", "--critic-hidden-sizes", "16",
       "--learning-starts", "16", "--buffer-size", "256", "--batch-size", "8"]
DIFFSAC = ["--algo", "diffsac", *TOY, "--num-steps", "2", "--hidden-sizes", "16",
           "--critic-hidden-sizes", "16", "--learning-starts", "16", "--buffer-size", "256",
           "--batch-size", "8"]

STOP_AFTER_FIRST_ROW = """
import sys
import damdp_lite.train as t
real = t.train
def stop_after_first_row(*args, **kwargs):
    kwargs["callback"] = lambda row: True
    return real(*args, **kwargs)
t.train = stop_after_first_row
from damdp_lite.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""`damdp-lite ARGS` whose training stops (checkpointed) after its first row: an interrupted run
made by the very command a user types."""


# ---- helpers -------------------------------------------------------------------------------
def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "damdp_lite.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(path: Path) -> object:
    """What is at `path`: None, a file's bytes, or a directory's files (bytes) and subdirs."""
    try:
        if not os.path.lexists(path):
            return None
        if path.is_file():
            return ("file", path.read_bytes())
        return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else "dir")
                for p in sorted(path.rglob("*"))}
    except PermissionError:  # /proc and friends
        return "unreadable"


def describe(code: object, stdout: str, stderr: str) -> str:
    return (f"exit code {code}; stderr ({len(stderr.strip().splitlines())} lines):\n"
            f"{stderr[-3000:]}\nstdout:\n{stdout[-1000:]}")


def check_one_line(code: object, stdout: str, stderr: str, want_code: int,
                   needles: list) -> str:
    """Exit code `want_code`, exactly one stderr line, no traceback, and each needle in that
    line (a tuple of needles: any one of them). Returns the line."""
    why = describe(code, stdout, stderr)
    assert "Traceback" not in stderr, why
    assert code == want_code, why
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, why
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(n in lines[0] for n in options), f"none of {options} in the line; {why}"
    return lines[0]


def progress_rows(path: Path) -> list[dict]:
    """The complete rows of a progress.csv (a line being written is left out)."""
    if not path.exists():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def checkpoint_iteration(run_dir: Path) -> int:
    return int(torch.load(run_dir / "checkpoint.pt", weights_only=True)["learner"]["iteration"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Pristine tiny PPO runs of the `PPO` command: "finished" (2 of 2 iterations, policy.pt)
    and "interrupted" (1 of 2, checkpointed, no policy.pt). Cases work on copies."""
    base = tmp_path_factory.mktemp("pristine")
    out = cli("train", *PPO, "--run-dir", str(base / "finished"), cwd=base)
    assert out.returncode == 0, describe(out.returncode, out.stdout, out.stderr)
    out = subprocess.run([sys.executable, "-c", STOP_AFTER_FIRST_ROW, "train", *PPO,
                          "--run-dir", str(base / "interrupted")], cwd=base, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, describe(out.returncode, out.stdout, out.stderr)
    assert len(progress_rows(base / "interrupted" / "progress.csv")) == 1
    assert not (base / "interrupted" / "policy.pt").exists()
    return {"finished": base / "finished", "interrupted": base / "interrupted"}


def copy_run(runs: dict[str, Path], which: str, dst: Path) -> Path:
    shutil.copytree(runs[which], dst)
    return dst


@dataclasses.dataclass
class Case:
    args: list[str]
    code: int
    needles: list
    watch: list[Path] = dataclasses.field(default_factory=list)
    """Paths that must be as they were before the command."""
    absent: list[Path] = dataclasses.field(default_factory=list)
    """Paths that must not exist after the command."""
    max_seconds: float | None = None


def replay(case: Case, tmp_path: Path, timeout: float = 120) -> None:
    before = {p: snapshot(p) for p in case.watch}
    t0 = time.perf_counter()
    out = cli(*case.args, cwd=tmp_path, timeout=timeout)
    took = time.perf_counter() - t0
    check_one_line(out.returncode, out.stdout, out.stderr, case.code, case.needles)
    for p in case.watch:
        assert snapshot(p) == before[p], f"{p} changed by a failed command"
    for p in case.absent:
        assert not os.path.lexists(p), f"{p} was created by a failed command"
    if case.max_seconds is not None:
        assert took < case.max_seconds, f"took {took:.1f} s: refused only after allocating?"


# ---- A. tracebacks today: one line -----------------------------------------------------------
def _existing_file(tmp: Path, runs) -> Case:
    f = tmp / "afile"
    f.write_text("not a directory\n")
    return Case(["train", *PPO, "--run-dir", str(f)], 2, [RUN_DIR, str(f)], watch=[f])


def _parent_is_file(tmp: Path, runs) -> Case:
    f = tmp / "afile"
    f.write_text("not a directory\n")
    return Case(["train", *PPO, "--run-dir", str(f / "sub")], 2, [RUN_DIR, str(f / "sub")],
                watch=[f])


def _bad_checkpoint(kind: str) -> Callable[[Path, dict], Case]:
    def setup(tmp: Path, runs) -> Case:
        run = copy_run(runs, "interrupted", tmp / "run")
        ckpt = run / "checkpoint.pt"
        good = ckpt.read_bytes()
        if kind == "truncated":
            ckpt.write_bytes(good[: len(good) // 2])
        elif kind == "zero-byte":
            ckpt.write_bytes(b"")
        elif kind == "random-bytes":
            ckpt.write_bytes(os.urandom(4096))
        else:  # a valid torch file of the wrong structure
            torch.save({"hello": torch.zeros(3), "learner": {"iteration": "x"}}, ckpt)
        return Case(["train", *PPO, "--run-dir", str(run)], 2, ["checkpoint.pt"], watch=[run])
    return setup


def _garbage_progress(tmp: Path, runs) -> Case:
    run = copy_run(runs, "interrupted", tmp / "run")
    (run / "progress.csv").write_bytes(b"\x00garbage;;\nnot,a,csv\n1,2,3\n\xff\xfe\n")
    return Case(["train", *PPO, "--run-dir", str(run)], 2, ["progress.csv"], watch=[run])


def _policy_wrong_shape(tmp: Path, runs) -> Case:
    run = copy_run(runs, "finished", tmp / "run")
    state = torch.load(run / "policy.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.dim() == 2)
    state[name] = torch.zeros(3, 3)
    torch.save(state, run / "policy.pt")
    return Case(["evaluate", str(run), "--episodes", "1"], 2, ["policy.pt", name], watch=[run])


def _huge(args: list[str], needles: list) -> Callable[[Path, dict], Case]:
    def setup(tmp: Path, runs) -> Case:
        return Case([*args, "--run-dir", str(tmp / "r")], 2, needles, watch=[tmp / "r"],
                    max_seconds=30)
    return setup


GROUP_A = {
    "train --device tpu": lambda tmp, runs: Case(
        ["train", *PPO, "--device", "tpu", "--run-dir", str(tmp / "r")], 2, ["device", "tpu"],
        watch=[tmp / "r"]),
    "evaluate --device tpu": lambda tmp, runs: Case(
        ["evaluate", str(copy_run(runs, "finished", tmp / "run")), "--device", "tpu"], 2,
        ["device", "tpu"], watch=[tmp / "run"]),
    "fit-sampler --device tpu": lambda tmp, runs: Case(
        ["fit-sampler", "--steps", "1", "--device", "tpu"], 2, ["device", "tpu"]),
    "run-dir is an existing file": _existing_file,
    "run-dir under /proc": lambda tmp, runs: Case(
        ["train", *PPO, "--run-dir", "/proc/damdp_x"], 2, [RUN_DIR, "/proc/damdp_x"],
        absent=[Path("/proc/damdp_x")]),
    "run-dir parent is a file": _parent_is_file,
    "evaluate --seed -3": lambda tmp, runs: Case(
        ["evaluate", str(copy_run(runs, "finished", tmp / "run")), "--seed", "-3"], 2,
        ["seed", "-3"], watch=[tmp / "run"]),
    "sac --buffer-size 1e12": _huge(
        ["train", *SAC, "--buffer-size", "1e12"],
        ["buffer_size", ("1e12", "1000000000000", "1e+12")]),
    "ppo --hidden-sizes 1e9": _huge(
        ["train", *PPO, "--hidden-sizes", "1000000000"], ["hidden_sizes", "1000000000"]),
    "reppo --num-bins 1e9": _huge(
        ["train", *REPPO, "--num-bins", "1e9"], ["num_bins", ("1e9", "1000000000", "1e+09")]),
    "sac --batch-size 1e9": _huge(
        ["train", *SAC, "--batch-size", "1e9"], ["batch_size", ("1e9", "1000000000", "1e+09")]),
    "ppo --num-envs 1e9": _huge(
        ["train", *PPO, "--num-envs", "1e9"], ["num_envs", ("1e9", "1000000000", "1e+09")]),
    "checkpoint.pt truncated": _bad_checkpoint("truncated"),
    "checkpoint.pt zero-byte": _bad_checkpoint("zero-byte"),
    "checkpoint.pt random bytes": _bad_checkpoint("random-bytes"),
    "checkpoint.pt wrong structure": _bad_checkpoint("wrong-structure"),
    "progress.csv garbage": _garbage_progress,
    "policy.pt wrong shape": _policy_wrong_shape,
}


@pytest.mark.parametrize("name", list(GROUP_A))
def test_a_tracebacks_become_one_line(name, tmp_path, runs):
    replay(GROUP_A[name](tmp_path, runs), tmp_path)


# A, read-only run directory: as root `chmod` does not stop writes, so the writes are refused
# in-process (PermissionError on every write under the directory) and `cli.main` is called.
def _readonly(monkeypatch, root: Path) -> None:
    root = root.resolve()

    def under(path) -> bool:
        try:
            p = Path(os.fsdecode(path)).resolve()
        except (TypeError, ValueError):
            return False
        return p == root or root in p.parents

    def deny(path) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    real_open, real_os_open = io.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike) and any(c in mode for c in "wax+") \
                and under(file):
            raise deny(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC) \
                and under(path):
            raise deny(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(fn, *which):
        def wrapped(*args, **kwargs):
            for i in which:
                if i < len(args) and under(args[i]):
                    raise deny(args[i])
            return fn(*args, **kwargs)
        return wrapped

    real_save = torch.save

    def guarded_save(obj, f, *args, **kwargs):
        if isinstance(f, str | os.PathLike) and under(f):
            raise deny(f)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    real_mkdir = os.mkdir

    def guarded_mkdir(path, *args, **kwargs):
        if under(path) and not os.path.lexists(path):  # an existing one: FileExistsError
            raise deny(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    for name, which in (("replace", (0, 1)),
                        ("rename", (0, 1)), ("remove", (0,)), ("unlink", (0,)),
                        ("rmdir", (0,)), ("truncate", (0,))):
        monkeypatch.setattr(os, name, guard(getattr(os, name), *which))
    monkeypatch.setattr(torch, "save", guarded_save)


def _cli_in_process(capsys, *args: str) -> tuple[object, str, str]:
    """`damdp-lite ARGS` in this process: (exit code, stdout, stderr); an escaping exception is
    reported as its traceback on stderr, as the console script would print it."""
    import traceback

    from damdp_lite.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    except BaseException as err:  # noqa: BLE001  (what a user would see)
        code = f"uncaught {type(err).__name__}"
        print("".join(traceback.format_exception(err)), file=sys.stderr)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("which", ["empty", "interrupted"])
def test_a_read_only_run_dir_is_one_line_exit_1_and_left_as_it_was(which, tmp_path, runs,
                                                                   capsys, monkeypatch):
    if which == "empty":
        run = tmp_path / "run"
        run.mkdir()
    else:
        run = copy_run(runs, "interrupted", tmp_path / "run")
    before = snapshot(run)
    monkeypatch.chdir(tmp_path)
    _readonly(monkeypatch, run)
    code, out, err = _cli_in_process(capsys, "train", *PPO, "--run-dir", str(run))
    monkeypatch.undo()
    check_one_line(code, out, err, 1, [str(run)])
    assert snapshot(run) == before


# ---- B. unclear messages: name the field -----------------------------------------------------
def _garbage_config(cmd: str) -> Callable[[Path, dict], Case]:
    def setup(tmp: Path, runs) -> Case:
        run = copy_run(runs, "finished", tmp / "run")
        (run / "config.json").write_text("{not json at all\n")
        args = ["train", *PPO, "--run-dir", str(run)] if cmd == "train" else \
            ["evaluate", str(run), "--episodes", "1"]
        return Case(args, 2, [str(run / "config.json")], watch=[run])
    return setup


GROUP_B = {
    "evaluate --episodes 0": lambda tmp, runs: Case(
        ["evaluate", str(copy_run(runs, "finished", tmp / "run")), "--episodes", "0"], 2,
        [("episodes=0", "--episodes 0", "--episodes=0")], watch=[tmp / "run"]),
    "evaluate --max-frames 0 --video": lambda tmp, runs: Case(
        ["evaluate", str(copy_run(runs, "finished", tmp / "run")), "--episodes", "1",
         "--max-frames", "0", "--video", str(tmp / "v.mp4")], 2,
        [("max_frames=0", "--max-frames 0", "--max-frames=0")], watch=[tmp / "run"],
        absent=[tmp / "v.mp4"]),
    "fit-sampler --seed 1e30": lambda tmp, runs: Case(
        ["fit-sampler", "--steps", "1", "--seed", "1e30"], 2,
        ["seed", ("1e30", "1e+30", "1000000000000000019884624838656")]),
    "reppo --v-min -inf": lambda tmp, runs: Case(
        ["train", *REPPO, "--v-min", "-inf", "--run-dir", str(tmp / "r")], 2,
        ["v_min", "-inf"], watch=[tmp / "r"]),
    "reppo --num-minibatches 100000": lambda tmp, runs: Case(
        ["train", *REPPO, "--num-minibatches", "100000", "--run-dir", str(tmp / "r")], 2,
        ["num_minibatches", "100000"], watch=[tmp / "r"], max_seconds=30),
    "garbage config.json (train)": _garbage_config("train"),
    "garbage config.json (evaluate)": _garbage_config("evaluate"),
}


@pytest.mark.parametrize("name", list(GROUP_B))
def test_b_messages_name_the_field(name, tmp_path, runs):
    replay(GROUP_B[name](tmp_path, runs), tmp_path)


@pytest.mark.parametrize("which", ["finished", "interrupted"])
@pytest.mark.parametrize("form", ["./x", "x/", "absolute", "moved"])
def test_b_the_same_run_under_another_spelling_or_place_resumes(form, which, tmp_path, runs):
    run = copy_run(runs, which, tmp_path / "x")
    before = progress_rows(run / "progress.csv")
    if form == "moved":
        shutil.move(str(run), str(tmp_path / "y"))
        run, given = tmp_path / "y", "y"
    else:
        given = str(run) if form == "absolute" else form
    out = cli("train", *PPO, "--run-dir", given, cwd=tmp_path)
    assert out.returncode == 0, describe(out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    after = progress_rows(run / "progress.csv")
    assert [r["iteration"] for r in after] == ["0", "1"]
    assert after[: len(before)] == before  # resumed, not restarted
    assert (run / "policy.pt").exists()


# ---- C. silently accepted: refused (exit 2) or stated ----------------------------------------
def _nan_policy(tmp: Path, runs) -> Case:
    run = copy_run(runs, "finished", tmp / "run")
    state = torch.load(run / "policy.pt", weights_only=True)
    state = {k: (torch.full_like(v, math.nan) if v.is_floating_point() else v)
             for k, v in state.items()}
    torch.save(state, run / "policy.pt")
    return Case(["evaluate", str(run), "--episodes", "1"], 2, ["policy.pt"], watch=[run])


GROUP_C = {
    "dppo --temperature 0.5": lambda tmp, runs: Case(
        ["train", *PPO[2:], "--algo", "dppo", "--num-steps", "2", "--temperature", "0.5",
         "--run-dir", str(tmp / "r")], 2, ["temperature", "0.5"], watch=[tmp / "r"]),
    "ppo (Gaussian) --num-steps 4": lambda tmp, runs: Case(
        ["train", *PPO, "--num-steps", "4", "--run-dir", str(tmp / "r")], 2,
        ["num_steps"], watch=[tmp / "r"]),
    "sac --learning-starts 1e15": lambda tmp, runs: Case(
        ["train", *SAC, "--learning-starts", "1e15", "--run-dir", str(tmp / "r")], 2,
        ["learning_starts", ("1e15", "1e+15", "1000000000000000")], watch=[tmp / "r"],
        max_seconds=30),
    "sac --gradient-steps-per-env-step 1e-9": lambda tmp, runs: Case(
        ["train", *SAC, "--gradient-steps-per-env-step", "1e-9", "--run-dir", str(tmp / "r")],
        2, ["gradient_steps_per_env_step", ("1e-09", "1e-9")], watch=[tmp / "r"],
        max_seconds=30),
    "diffsac --entropy-target-mult -1": lambda tmp, runs: Case(
        ["train", *DIFFSAC, "--entropy-target-mult", "-1", "--run-dir", str(tmp / "r")], 2,
        ["entropy_target_mult", "-1"], watch=[tmp / "r"]),
    "fit-sampler --seed -1": lambda tmp, runs: Case(
        ["fit-sampler", "--steps", "1", "--seed", "-1"], 2, ["seed", "-1"]),
    "evaluate --video /nonexistent/dir/v.mp4": lambda tmp, runs: Case(
        ["evaluate", str(copy_run(runs, "finished", tmp / "run")), "--episodes", "1",
         "--max-frames", "3", "--video", "/nonexistent/dir/v.mp4"], 2,
        ["video", "/nonexistent/dir/v.mp4"], watch=[tmp / "run"],
        absent=[Path("/nonexistent")]),
    "evaluate policy.pt with NaN weights": _nan_policy,
}


@pytest.mark.parametrize("name", list(GROUP_C))
def test_c_silent_acceptances_are_refused(name, tmp_path, runs):
    if name.startswith("evaluate --video") and os.path.exists("/nonexistent"):
        pytest.skip("/nonexistent exists on this machine")
    replay(GROUP_C[name](tmp_path, runs), tmp_path)


def test_c_steps_not_a_multiple_of_an_iteration_is_stated(tmp_path):
    # 2500 env steps at 2 envs x 8 env steps = 16 per iteration: 156 iterations = 2496 steps
    out = cli("train", *PPO, "--steps", "2.5e3", "--eval-every", "0", "--run-dir",
              str(tmp_path / "r"), cwd=tmp_path, timeout=300)
    why = describe(out.returncode, out.stdout, out.stderr)
    assert out.returncode == 0 and "Traceback" not in out.stderr, why
    assert len(out.stderr.strip().splitlines()) <= 1, why
    said = [line for line in (out.stderr + "\n" + out.stdout).splitlines() if "2500" in line]
    assert len(said) == 1, f"no single line states 2500 -> 2496 env steps; {why}"
    assert "2496" in said[0] and "156" in said[0], why


# ---- D. the Python API: ValueError naming the field -----------------------------------------
def _api_cases() -> dict[str, tuple[Callable[[], object], str]]:
    from damdp_lite.algos import PPOConfig, REPPOConfig, SACConfig
    from damdp_lite.bound import FitConfig
    from damdp_lite.diffusion import DiffusionConfig
    from damdp_lite.gaussian import GaussianConfig
    from damdp_lite.train import RunConfig

    nan = float("nan")
    cases: dict[str, tuple[Callable[[], object], str]] = {}
    for cls, lr in ((PPOConfig, "lr"), (REPPOConfig, "lr"), (SACConfig, "actor_lr")):
        n = cls.__name__
        cases |= {
            f"{n}(scale_rewards='no')": (lambda c=cls: c(scale_rewards="no"), "scale_rewards"),
            f"{n}({lr}=True)": (lambda c=cls, f=lr: c(**{f: True}), lr),
            f"{n}(gamma=True)": (lambda c=cls: c(gamma=True), "gamma"),
            f"{n}.build(hidden_sizes=(1.7, 2.9))": (
                lambda c=cls: c.build(hidden_sizes=(1.7, 2.9)), "hidden_sizes"),
            f"{n}(device='tpu')": (lambda c=cls: c(device="tpu"), "device"),
            f"{n}(seed=True)": (lambda c=cls: c(seed=True), "seed"),
            f"{n}(num_envs=-2)": (lambda c=cls: c(num_envs=-2), "num_envs"),
            f"{n}(env_id=None)": (lambda c=cls: c(env_id=None), "env_id"),
        }
    cases |= {
        "DiffusionConfig(output_init_scale=nan)": (
            lambda: DiffusionConfig(output_init_scale=nan), "output_init_scale"),
        "DiffusionConfig(device='tpu')": (lambda: DiffusionConfig(device="tpu"), "device"),
        "DiffusionConfig(learn_friction='no')": (
            lambda: DiffusionConfig(learn_friction="no"), "learn_friction"),
        "DiffusionConfig(hidden_sizes=(1.7, 2.9))": (
            lambda: DiffusionConfig(hidden_sizes=(1.7, 2.9)), "hidden_sizes"),
        "DiffusionConfig(schedule_min=True)": (
            lambda: DiffusionConfig(schedule_min=True), "schedule_min"),
        "DiffusionConfig(num_steps=True)": (lambda: DiffusionConfig(num_steps=True),
                                            "num_steps"),
        "DiffusionConfig(time_embedding_dim=-1)": (
            lambda: DiffusionConfig(time_embedding_dim=-1), "time_embedding_dim"),
        "GaussianConfig(state_dependent_std='no')": (
            lambda: GaussianConfig(state_dependent_std="no"), "state_dependent_std"),
        "GaussianConfig(init_std=True)": (lambda: GaussianConfig(init_std=True), "init_std"),
        "GaussianConfig(log_std_min=nan)": (lambda: GaussianConfig(log_std_min=nan),
                                            "log_std_min"),
        "GaussianConfig(hidden_sizes=(1.7, 2.9))": (
            lambda: GaussianConfig(hidden_sizes=(1.7, 2.9)), "hidden_sizes"),
        "GaussianConfig(device='tpu')": (lambda: GaussianConfig(device="tpu"), "device"),
        "FitConfig(lr=True)": (lambda: FitConfig(lr=True), "lr"),
        "FitConfig(seed=True)": (lambda: FitConfig(seed=True), "seed"),
        "FitConfig(seed=-1)": (lambda: FitConfig(seed=-1), "seed"),
        "FitConfig(seed=10**30)": (lambda: FitConfig(seed=10**30), "seed"),
        "FitConfig(temperature=nan)": (lambda: FitConfig(temperature=nan), "temperature"),
        "FitConfig(steps='10')": (lambda: FitConfig(steps="10"), "steps"),
        "FitConfig(batch_size=2.5)": (lambda: FitConfig(batch_size=2.5), "batch_size"),
        "RunConfig(tensorboard='no')": (lambda: RunConfig(tensorboard="no"), "tensorboard"),
        "RunConfig(threads=True)": (lambda: RunConfig(threads=True), "threads"),
        "RunConfig(eval_every=-1)": (lambda: RunConfig(eval_every=-1), "eval_every"),
        "RunConfig(run_dir=3)": (lambda: RunConfig(run_dir=3), "run_dir"),
        "RunConfig(label=None)": (lambda: RunConfig(label=None), "label"),
        "RunConfig(checkpoint_every=0)": (lambda: RunConfig(checkpoint_every=0),
                                          "checkpoint_every"),
    }
    return cases


def _k_cases() -> dict[str, tuple[Callable[[], object], str]]:
    from damdp_lite.diffusion import DiffusionConfig, DiffusionPolicy
    from damdp_lite.gaussian import GaussianConfig, GaussianPolicy

    def diff():
        return DiffusionPolicy(DiffusionConfig(obs_dim=3, action_dim=1, num_steps=4,
                                               hidden_sizes=(8,)))

    def gauss():
        return GaussianPolicy(GaussianConfig(obs_dim=3, action_dim=1, hidden_sizes=(8,)))

    obs, a = torch.zeros(5, 3), torch.zeros(5, 1)
    k51, k3 = torch.full((5, 1), 2, dtype=torch.long), torch.full((3,), 2, dtype=torch.long)
    g51 = torch.ones((5, 1), dtype=torch.long)
    return {
        "DiffusionPolicy.noise_log_prob(k (5, 1))": (
            lambda: diff().noise_log_prob(obs, a, k51, a), "k"),
        "DiffusionPolicy.denoise_log_prob(k (5, 1))": (
            lambda: diff().denoise_log_prob(obs, a, k51, a), "k"),
        "DiffusionPolicy.log_ratio(k (5, 1))": (lambda: diff().log_ratio(obs, a, k51, a), "k"),
        "DiffusionPolicy.step(k (5, 1))": (lambda: diff().step(obs, a, k51), "k"),
        "DiffusionPolicy.noise_log_prob(k (3,) for B = 5)": (
            lambda: diff().noise_log_prob(obs, a, k3, a), "k"),
        "GaussianPolicy.log_ratio(k (5, 1))": (lambda: gauss().log_ratio(obs, a, g51, a), "k"),
    }


API_CASES = sorted(_api_cases()) + sorted(_k_cases())


@pytest.mark.parametrize("name", API_CASES)
def test_d_python_api_raises_value_error_naming_the_field(name):
    call, field = {**_api_cases(), **_k_cases()}[name]
    try:
        result = call()
    except ValueError as err:
        msg = str(err)
        assert field in msg, msg
        assert len(msg.strip().splitlines()) == 1, msg
        if field == "k":
            assert re.search(r"\bk\b", msg), msg
        return
    except Exception as err:  # noqa: BLE001
        pytest.fail(f"{name} raised {type(err).__name__}: {err}, not ValueError naming "
                    f"{field}")
    shape = tuple(result.shape) if isinstance(result, torch.Tensor) else None
    pytest.fail(f"{name} was accepted (result {type(result).__name__}"
                f"{'' if shape is None else f' of shape {shape}'})")


# ---- E. the state a failure leaves behind ---------------------------------------------------
@pytest.mark.parametrize("bad", ["--tensorboard", "--env CartPole-v1"])
def test_e_a_failed_start_leaves_no_run_directory_content(bad, tmp_path):
    if bad == "--tensorboard" and importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed here")
    run = tmp_path / "r"
    out = cli("train", *PPO, *bad.split(), "--run-dir", str(run), cwd=tmp_path)
    needles = ["tensorboard"] if bad == "--tensorboard" else ["env_id", "CartPole-v1"]
    check_one_line(out.returncode, out.stdout, out.stderr, 2, needles)
    assert not run.exists() or not any(run.iterdir()), sorted(p.name for p in run.iterdir())
    out = cli("train", *PPO, "--run-dir", str(run), cwd=tmp_path)  # the corrected command
    assert out.returncode == 0, describe(out.returncode, out.stdout, out.stderr)


def test_e_a_finished_run_without_policy_pt_writes_it_again(tmp_path, runs):
    run = copy_run(runs, "finished", tmp_path / "run")
    (run / "policy.pt").unlink()
    out = cli("train", *PPO, "--run-dir", str(run), cwd=tmp_path)
    assert out.returncode == 0, describe(out.returncode, out.stdout, out.stderr)
    assert (run / "policy.pt").exists(), "policy.pt was not written again"
    state = torch.load(run / "policy.pt", weights_only=True)
    assert state.keys() == torch.load(runs["finished"] / "policy.pt", weights_only=True).keys()


def _run_until(args: list[str], cwd: Path, progress: Path, rows: int, timeout: float = 120
               ) -> subprocess.Popen:
    """Start `damdp-lite ARGS`, wait until `progress` holds >= `rows` rows, send SIGINT."""
    proc = subprocess.Popen([sys.executable, "-m", "damdp_lite.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    while len(progress_rows(progress)) < rows:
        if proc.poll() is not None or time.perf_counter() - t0 > timeout:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the run did not reach {rows} rows; {describe(proc.returncode, out, err)}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    return proc


def test_e_ctrl_c_says_where_it_stopped_and_the_same_command_resumes(tmp_path):
    """Ctrl-C after >= 3 rows: exit 130, one line "stopped at iteration N ... run the same
    command to resume" naming the checkpoint kept (iteration M <= N, the one on disk); the
    same command then resumes at M: rows before M kept as they were, none repeated or lost."""
    run = tmp_path / "r"
    args = ["train", *PPO, "--steps", "100000", "--checkpoint-every", "2", "--run-dir", str(run)]
    proc = _run_until(args, tmp_path, run / "progress.csv", 3)
    out, err = proc.communicate(timeout=60)
    line = check_one_line(proc.returncode, out, err, 130,
                          ["stopped at iteration", "run the same command to resume"])
    n = int(re.search(r"stopped at iteration (\d+)", line).group(1))
    first = progress_rows(run / "progress.csv")
    assert [int(r["iteration"]) for r in first] == list(range(n)), line
    kept = re.search(r"checkpoint[^;]*?iteration (\d+)", line)
    assert kept, f"the line does not name the checkpoint kept: {line}"
    m = int(kept.group(1))
    assert 2 <= m <= n and checkpoint_iteration(run) == m, (line, checkpoint_iteration(run))

    proc = _run_until(args, tmp_path, run / "progress.csv", n + 2)  # the same command
    out, err = proc.communicate(timeout=60)
    check_one_line(proc.returncode, out, err, 130, ["stopped at iteration"])
    rows = progress_rows(run / "progress.csv")
    its = [int(r["iteration"]) for r in rows]
    assert its == list(range(len(its))) and len(its) >= n + 2, its  # resumed at m
    assert rows[:m] == first[:m]  # the rows before the checkpoint are kept as they were


@pytest.mark.parametrize("checkpoint_every", [1, 2])
def test_e_sac_nan_stop_names_the_iteration_resume_restarts_at(checkpoint_every, tmp_path,
                                                                monkeypatch):
    """A NaN loss at iteration 3: the message names the failed iteration and the checkpoint
    kept; that checkpoint's `learner.iteration` is the iteration the message names for it, and
    resuming restarts there (= the failed iteration when every iteration is checkpointed)."""
    from damdp_lite.algos import sac as sac_mod
    from damdp_lite.train import RunConfig, algo_config, train

    cfg = algo_config("sac", env_id=TURNING, total_env_steps=16 * 6, num_envs=2, num_env_steps=8,
                      hidden_sizes=(16,), critic_hidden_sizes=(16,), learning_starts=16,
                      buffer_size=256, batch_size=8)
    run = RunConfig(run_dir=str(tmp_path / "r"), checkpoint_every=checkpoint_every,
                    eval_episodes=1)
    state = {"bad": False}
    real_iteration, real_target = sac_mod.SAC.train_iteration, sac_mod.sac_target

    def iteration(self):
        state["bad"] = self.iteration >= 3
        return real_iteration(self)

    def target(*args, **kwargs):
        y = real_target(*args, **kwargs)
        return y * math.nan if state["bad"] else y

    monkeypatch.setattr(sac_mod.SAC, "train_iteration", iteration)
    monkeypatch.setattr(sac_mod, "sac_target", target)
    with pytest.raises(FloatingPointError) as err:
        train(cfg, run, progress=False)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1, msg
    assert re.search(r"critic_loss=nan at iteration 3\b", msg), msg
    kept = int(re.search(r"checkpoint.*iteration (\d+)", msg).group(1))
    on_disk = checkpoint_iteration(tmp_path / "r")
    assert kept == on_disk == 4 - checkpoint_every, (msg, on_disk)
    assert len(progress_rows(tmp_path / "r" / "progress.csv")) == 3
    monkeypatch.undo()
    res = train(cfg, run, progress=False)
    assert res.resumed_from == on_disk and res.history[0]["iteration"] == on_disk
    rows = progress_rows(tmp_path / "r" / "progress.csv")
    assert [int(r["iteration"]) for r in rows] == list(range(6))


# ---- F. --debug ------------------------------------------------------------------------------
def test_f_debug_prints_the_traceback_and_still_exits_2(tmp_path):
    out = cli("--debug", "train", *PPO, "--device", "tpu", "--run-dir", str(tmp_path / "r"),
              cwd=tmp_path)
    assert out.returncode == 2, describe(out.returncode, out.stdout, out.stderr)
    assert "Traceback" in out.stderr and "tpu" in out.stderr, out.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
