"""Off-screen MuJoCo rendering that degrades instead of failing (`MUJOCO_GL`).

MuJoCo reads `MUJOCO_GL` once, when it is first imported, and with `egl` or `osmesa` it loads
that OpenGL library at once. Where the library is missing, `import mujoco` itself fails, and with
it every MuJoCo env, even one that never renders: `gym.make("Hopper-v5")` under `MUJOCO_GL=egl`
without `libEGL.so.1` raises `AttributeError: 'NoneType' object has no attribute
'eglQueryString'`. So, before MuJoCo is imported, `check_offscreen_gl` loads the libraries the
requested backend needs the way PyOpenGL will, and when one is missing switches `MUJOCO_GL` to
the other off-screen backend, or to `disable` (envs work, `render()` does not), with one warning
line. Child processes (async vector envs) inherit the switched variable.

| `MUJOCO_GL` | libraries (Debian package)                           | notes                      |
|-------------|------------------------------------------------------|----------------------------|
| `egl`       | `libEGL.so.1` (`libegl1`) and `libGL` / `libOpenGL`  | GPU or Mesa's CPU renderer |
| `osmesa`    | `libOSMesa.so` (`libosmesa6`)                        | CPU only, slower           |

A failure that only shows when a frame is drawn (a library that loads but finds no device) is
turned into `RenderingUnavailable` by `render_frame`, one line saying why.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from typing import Any

import numpy as np

OFFSCREEN_BACKENDS = ("egl", "osmesa")
"""The `MUJOCO_GL` values that render without a display, in the order they are tried."""

GL_LIBRARIES: dict[str, tuple[tuple[str, ...], ...]] = {
    "egl": (("EGL",), ("OpenGL", "GL", "GLESv2", "GLESv1_CM")),
    "osmesa": (("OSMesa",),),
}
"""Per backend, the libraries PyOpenGL loads (`lib<name>.so[.N]`): one of each tuple must load."""

DEBIAN_PACKAGES = {"egl": "libegl1 libgl1", "osmesa": "libosmesa6"}
"""What to install for each backend on Debian / Ubuntu (also in binder/apt.txt)."""

_why_off: str | None = None  # why this process switched rendering off (None: it did not)


class RenderingUnavailable(RuntimeError):
    """Frames cannot be rendered in this process; the message says why, in one line."""


class RenderingWarning(RuntimeWarning):
    """`MUJOCO_GL` was switched because the requested backend cannot load."""


def library_loads(name: str) -> bool:
    """Whether `lib<name>.so` or `lib<name>.so.N` (N = 9..0) loads, as PyOpenGL tries them."""
    for filename in [f"lib{name}.so", *(f"lib{name}.so.{i}" for i in range(9, -1, -1))]:
        try:
            ctypes.CDLL(filename)
        except OSError:
            continue
        return True
    return False


def missing_library(backend: str) -> str | None:
    """The first library `backend` ("egl" or "osmesa") needs that does not load, or None."""
    for alternatives in GL_LIBRARIES[backend]:
        if not any(library_loads(name) for name in alternatives):
            return f"lib{alternatives[0]}.so"
    return None


def check_offscreen_gl() -> str:
    """Make `import mujoco` safe under the current `MUJOCO_GL`; returns the value in force.

    Only `egl` and `osmesa` are checked, and only while MuJoCo is not imported yet (after that
    its choice is fixed). When the requested backend's library does not load, `MUJOCO_GL` (and a
    matching `PYOPENGL_PLATFORM`) becomes the other backend if that one loads, else `disable`,
    and a `RenderingWarning` says so in one line. Cheap: a few `dlopen` calls.
    """
    global _why_off
    requested = os.environ.get("MUJOCO_GL", "").strip().lower()
    if requested not in OFFSCREEN_BACKENDS or "mujoco" in sys.modules:
        return requested
    missing = missing_library(requested)
    if missing is None:
        return requested
    chosen = next((b for b in OFFSCREEN_BACKENDS
                   if b != requested and missing_library(b) is None), "disable")
    os.environ["MUJOCO_GL"] = chosen
    if os.environ.get("PYOPENGL_PLATFORM", "").strip().lower() == requested:
        if chosen == "disable":
            del os.environ["PYOPENGL_PLATFORM"]
        else:
            os.environ["PYOPENGL_PLATFORM"] = chosen
    why = f"MUJOCO_GL={requested} cannot load {missing} (Debian: {DEBIAN_PACKAGES[requested]})"
    if chosen == "disable":
        others = [f"{b} cannot load {missing_library(b)}" for b in OFFSCREEN_BACKENDS
                  if b != requested]
        _why_off = f"{why}, {', '.join(others)}: MuJoCo envs work but render no frames"
        warnings.warn(f"{_why_off} (MUJOCO_GL=disable)", RenderingWarning, stacklevel=2)
    else:
        warnings.warn(f"{why}; using MUJOCO_GL={chosen}", RenderingWarning, stacklevel=2)
    return chosen


def rendering_off_reason() -> str | None:
    """Why frames cannot be rendered in this process (`MUJOCO_GL=disable`), else None."""
    if os.environ.get("MUJOCO_GL", "").strip().lower() not in ("disable", "disabled", "off",
                                                               "false", "0"):
        return None
    return _why_off or f"MUJOCO_GL={os.environ['MUJOCO_GL']} turns MuJoCo's rendering off"


def render_frame(env: Any) -> np.ndarray:
    """`env.render()`, an RGB frame `(H, W, 3)` uint8; `RenderingUnavailable` (one line, with
    the backend and the original error) when the GL backend cannot draw."""
    why = rendering_off_reason()
    if why is not None:
        raise RenderingUnavailable(why)
    try:
        frame = env.render()
    except Exception as err:  # noqa: BLE001 - GL backends raise anything from OSError to GLError
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise RenderingUnavailable(
            f"off-screen rendering with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!s} failed "
            f"({type(err).__name__}: {first})") from err
    if frame is None:
        raise RenderingUnavailable("the env returned no frame (was it made with "
                                   "render_mode='rgb_array'?)")
    return frame
