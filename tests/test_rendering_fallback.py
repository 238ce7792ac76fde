"""Env creation survives an off-screen GL backend that cannot load (`damdp_lite/envs/render.py`).

Without the fallback, `MUJOCO_GL=egl` on a machine without `libEGL.so.1` makes `import mujoco`,
hence every MuJoCo env, fail with `'NoneType' object has no attribute 'eglQueryString'`. The
subprocess tests hide the libraries from `ctypes` (which PyOpenGL loads them with), reproduce
that very error first, then check that the package works around it; the in-process tests check
the choice of backend for every combination of loadable libraries."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from damdp_lite.envs import render
from damdp_lite.envs.render import RenderingUnavailable, RenderingWarning

# Prepended to a subprocess: `ctypes.CDLL("libEGL.so...")` / `("libOSMesa.so...")` fail as they do
# where the libraries are not installed (PyOpenGL and render.library_loads both load through it).
HIDE = textwrap.dedent("""
    import ctypes, os
    HIDDEN = tuple(os.environ["HIDE_LIBS"].split(","))
    _init = ctypes.CDLL.__init__
    def _refuse(self, name, *args, **kwargs):
        if name and os.path.basename(str(name)).startswith(HIDDEN):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        _init(self, name, *args, **kwargs)
    ctypes.CDLL.__init__ = _refuse
""")


def run_hidden(code: str, hide: str = "libEGL,libOSMesa", gl: str = "egl"):
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    env.update(MUJOCO_GL=gl, HIDE_LIBS=hide, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", HIDE + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_hidden_egl_reproduces_the_failure_without_the_fallback():
    proc = run_hidden("import mujoco")
    assert proc.returncode != 0
    assert "'NoneType' object has no attribute" in proc.stderr.strip().splitlines()[-1]


def test_mujoco_envs_work_without_any_offscreen_backend():
    proc = run_hidden("""
        import json, os, warnings
        import gymnasium as gym
        from damdp_lite.envs.make import make_vector_env
        from damdp_lite.envs.render import RenderingUnavailable, render_frame
        envs = make_vector_env("Hopper-v5", 2)
        obs, _ = envs.reset(seed=0)
        out = {"obs": list(obs.shape), "gl": os.environ["MUJOCO_GL"]}
        envs.step(envs.action_space.sample())
        envs.close()
        try:
            make_vector_env("Hopper-v5", 1, render_mode="rgb_array")
        except RenderingUnavailable as err:
            out["vector"] = str(err)
        env = gym.make("Hopper-v5", render_mode="rgb_array")
        env.reset(seed=0)
        try:
            render_frame(env)
        except RenderingUnavailable as err:
            out["frame"] = str(err)
        print(json.dumps(out))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["obs"] == [2, 11] and out["gl"] == "disable"
    assert out["vector"] == out["frame"]
    assert out["frame"].startswith("MUJOCO_GL=egl cannot load libEGL.so (Debian: libegl1")
    assert "osmesa cannot load libOSMesa.so" in out["frame"] and "\n" not in out["frame"]
    warned = [line for line in proc.stderr.splitlines() if "RenderingWarning" in line]
    assert len(warned) == 1 and "(MUJOCO_GL=disable)" in warned[0], proc.stderr


def test_evaluate_with_render_says_why_and_without_render_still_works(tmp_path):
    proc = run_hidden("""
        import json
        import gymnasium as gym
        from damdp_lite.envs.render import RenderingUnavailable
        from damdp_lite.policies import build_policy
        from damdp_lite.train import algo_config, evaluate_policy
        cfg = algo_config("ppo", env_id="Hopper-v5", hidden_sizes=(8,), value_hidden_sizes=(8,))
        policy = build_policy(cfg.policy, 11, gym.spaces.Box(-1.0, 1.0, (3,)))
        out = {}
        try:
            evaluate_policy(policy, "Hopper-v5", episodes=1, render=True, max_frames=3)
        except RenderingUnavailable as err:
            out["why"] = str(err)
        rets, lens, frames = evaluate_policy(policy, "Hopper-v5", episodes=1)
        out.update(lens=lens, frames=len(frames))
        print(json.dumps(out))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["why"].startswith("MUJOCO_GL=egl cannot load libEGL.so")
    assert out["frames"] == 0 and 1 <= out["lens"][0] <= 1000


def test_notebook_04_video_cell_says_why_and_shows_the_repository_video(tmp_path, monkeypatch):
    """The setup cell and the video cell of notebook 05, in a kernel that cannot load libEGL or
    libOSMesa (a sitecustomize.py hides them): one line saying why, the episode's return, the
    video kept in notebooks/figures/, no error, and nothing written."""
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    nb = nbformat.read(notebooks / "05_diffppo_mujoco.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    video = [c for c in code if "05_diffppo_video.mp4" in c.source]
    assert len(video) == 1, "notebook 05 has one video cell"
    mini = nbformat.v4.new_notebook(metadata=nb.metadata, cells=[
        nbformat.v4.new_code_cell(code[0].source), nbformat.v4.new_code_cell(video[0].source)])
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    for key, value in dict(PYTHONPATH=str(tmp_path), HIDE_LIBS="libEGL,libOSMesa",
                           MUJOCO_GL="egl", DAMDP_SMOKE="1", OMP_NUM_THREADS="1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    before = sorted(p.relative_to(notebooks) for p in notebooks.rglob("*") if p.is_file())
    NotebookClient(mini, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebooks)}}).execute()
    outs = mini.cells[1].outputs
    assert not [o for o in outs if o.output_type == "error"], outs
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream"
                   and o.name == "stdout").splitlines()
    assert text[0].startswith("No frames rendered: MUJOCO_GL=egl cannot load libEGL.so"), text
    assert text[1].startswith("HalfCheetah-v5: episode return ") and \
        text[1].endswith("the repository's video of it"), text
    html = [o for o in outs if o.output_type in ("display_data", "execute_result")]
    assert len(html) == 1 and "<video" in html[0].data["text/html"]
    assert sorted(p.relative_to(notebooks) for p in notebooks.rglob("*") if p.is_file()) == before


@pytest.fixture
def fresh_gl(monkeypatch):
    """MuJoCo not imported yet (as far as `check_offscreen_gl` can tell), a clean environment,
    and `library_loads` answering from a set the test fills in."""
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(render, "_why_off", None)
    present: set[str] = set()
    monkeypatch.setattr(render, "library_loads", lambda name: name in present)
    return present


@pytest.mark.parametrize("requested, present, chosen", [
    ("egl", {"EGL", "GL", "OSMesa"}, "egl"),
    ("egl", {"EGL", "GLESv2"}, "egl"),  # PyOpenGL falls back to GLES for GL
    ("egl", {"GL", "OSMesa"}, "osmesa"),
    ("egl", {"EGL", "OSMesa"}, "osmesa"),  # libEGL alone is not enough
    ("osmesa", {"EGL", "GL"}, "egl"),
    ("egl", {"GL"}, "disable"),
    ("osmesa", set(), "disable"),
])
def test_backend_choice(fresh_gl, monkeypatch, requested, present, chosen):
    fresh_gl.update(present)
    monkeypatch.setenv("MUJOCO_GL", requested)
    monkeypatch.setenv("PYOPENGL_PLATFORM", requested)
    if chosen == requested:
        assert render.check_offscreen_gl() == requested
        assert os.environ["PYOPENGL_PLATFORM"] == requested
        return
    with pytest.warns(RenderingWarning) as record:
        assert render.check_offscreen_gl() == chosen
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert str(record[0].message).startswith(f"MUJOCO_GL={requested} cannot load lib")
    assert os.environ["MUJOCO_GL"] == chosen
    assert os.environ.get("PYOPENGL_PLATFORM") == (None if chosen == "disable" else chosen)
    assert (render.rendering_off_reason() is None) == (chosen != "disable")
    assert render.check_offscreen_gl() == chosen  # once switched, nothing more to say


@pytest.mark.parametrize("gl", [None, "glfw", "disable"])
def test_other_values_are_left_alone(fresh_gl, monkeypatch, gl):
    if gl is None:
        monkeypatch.delenv("MUJOCO_GL", raising=False)
    else:
        monkeypatch.setenv("MUJOCO_GL", gl)
    assert render.check_offscreen_gl() == (gl or "")
    assert os.environ.get("MUJOCO_GL") == gl


def test_nothing_changes_once_mujoco_is_imported(fresh_gl, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", object())
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert render.check_offscreen_gl() == "egl" and os.environ["MUJOCO_GL"] == "egl"


class _Env:
    def __init__(self, frame=None, error=None):
        self.frame, self.error = frame, error

    def render(self):
        if self.error is not None:
            raise self.error
        return self.frame


def test_render_frame_turns_gl_errors_into_one_line(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    frame = np.zeros((4, 4, 3), np.uint8)
    assert render.render_frame(_Env(frame)) is frame
    err = RuntimeError("Cannot initialize a EGL device display.\nsecond line")
    with pytest.raises(RenderingUnavailable, match=r"^off-screen rendering with MUJOCO_GL=egl "
                       r"failed \(RuntimeError: Cannot initialize a EGL device display\.\)$"):
        render.render_frame(_Env(error=err))
    with pytest.raises(RenderingUnavailable, match="render_mode='rgb_array'"):
        render.render_frame(_Env())
    monkeypatch.setenv("MUJOCO_GL", "disable")
    monkeypatch.setattr(render, "_why_off", None)
    with pytest.raises(RenderingUnavailable, match="MUJOCO_GL=disable turns MuJoCo's rendering"):
        render.render_frame(_Env(frame))
