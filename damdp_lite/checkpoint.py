"""Run-directory files written with `torch.save` and read back safely.

    save_atomic(obj, path)                 write, fsync, rename; a failed write leaves no trace
    load_checkpoint(path, device)          checkpoint.pt -> {"format", "elapsed_s", "learner"}
    load_policy_weights(path, device)      policy.pt -> the policy's state_dict

Loading is `torch.load(weights_only=True)`, which only rebuilds tensors, numbers, strings and
containers of them, and nothing in a checkpoint is unpickled afterwards (env states are plain
tensors and numbers, see `envs.make.EnvSnapshot`). Every failure, from an empty or truncated
file to a wrong structure or NaN weights, is a one-line `ValueError` naming the file and what
is wrong; a failed write is a one-line `OSError`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from .envs import make as _env_make

CHECKPOINT_FORMAT = 1
"""checkpoint.pt layout: {"format": 1, "elapsed_s": float, "learner": learner.state_dict()}."""

_CHECKPOINT_KEYS = ("format", "elapsed_s", "learner")


def save_atomic(obj: object, path: str | Path) -> None:
    """`torch.save` to `path + ".tmp"`, fsync, then rename: a crash never leaves half a file.

    On any `OSError` (disk full, read-only directory, ...) the temporary file is removed, the
    file already at `path` is left as it was, and an `OSError` with the one-line message
    "could not write {path}: {strerror}" is raised (its `errno` is the original one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        new = OSError(f"could not write {path}: {err.strerror or _one_line(err)}")
        new.errno = err.errno  # the message stays one line (no "[Errno n]" prefix)
        raise new from None
    with contextlib.suppress(OSError):  # make the rename itself durable, where possible
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A run's `checkpoint.pt`, loaded with `weights_only=True` onto `device` and checked.

    Returns `{"format": 1, "elapsed_s": float, "learner": dict}` where the learner's state has
    at least `iteration` (int), `gen` and `torch_rng` (uint8 tensors), `obs` (tensor), `envs`
    (a `vector_env_state`, checked by `envs.make.check_vector_env_state`) and `policy` (a
    state_dict of finite tensors). Raises a one-line `ValueError` naming the file and what is
    wrong otherwise: missing, empty, truncated or not a PyTorch file, objects other than
    tensors / numbers / strings (refused, never built), a wrong structure.
    """
    ckpt = _load(path, device, "checkpoint")
    where = f"{path} is not a damdp-lite checkpoint:"
    if not isinstance(ckpt, dict):
        raise ValueError(f"{where} it holds {_env_make._kind_of(ckpt)}, expected a dict with "
                         f"keys {', '.join(map(repr, _CHECKPOINT_KEYS))}")
    try:
        _env_make._check_keys("keys", ckpt, _CHECKPOINT_KEYS)
    except ValueError as err:
        raise ValueError(f"{where} {err}") from None
    if type(ckpt["format"]) is not int or ckpt["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{where} 'format' is {_env_make._show(ckpt['format'])}, expected "
                         f"{CHECKPOINT_FORMAT}")
    elapsed = ckpt["elapsed_s"]
    if not (_env_make._is_number(elapsed) and math.isfinite(elapsed) and elapsed >= 0):
        raise ValueError(f"{where} 'elapsed_s' must be a finite number >= 0, got "
                         f"{_env_make._show(elapsed)}")
    learner = ckpt["learner"]
    if not isinstance(learner, dict):
        raise ValueError(f"{where} 'learner' must be a dict (a learner's state_dict), got "
                         f"{_env_make._kind_of(learner)}")
    missing = [k for k in ("iteration", "gen", "torch_rng", "obs", "envs", "policy")
               if k not in learner]
    if missing:
        raise ValueError(f"{where} 'learner' lacks {', '.join(map(repr, missing))}")
    it = learner["iteration"]
    if not (_env_make._is_int(it) and it >= 0):
        raise ValueError(f"{where} learner 'iteration' must be an int >= 0, got "
                         f"{_env_make._show(it)}")
    try:
        _env_make._check_tensor("learner 'gen'", learner["gen"], dtype=torch.uint8, ndim=1)
        _env_make._check_tensor("learner 'torch_rng'", learner["torch_rng"], dtype=torch.uint8,
                                ndim=1)
        _env_make._check_tensor("learner 'obs'", learner["obs"])
        _env_make.check_vector_env_state(learner["envs"], where="learner 'envs'")
    except ValueError as err:
        raise ValueError(f"{where} {err}") from None
    _check_weights(learner["policy"], f"{path}", "learner 'policy'")
    return ckpt


def load_policy_weights(path: str | Path, device: str | torch.device = "cpu"
                        ) -> dict[str, torch.Tensor]:
    """A run's `policy.pt` (the policy's `state_dict`), loaded with `weights_only=True` onto
    `device`. One-line `ValueError` naming the file: the load failures of `load_checkpoint`,
    anything but a non-empty dict of str -> tensor, and NaN / inf weights."""
    state = _load(path, device, "policy weights file")
    _check_weights(state, f"{path}", "it")
    return state


# ---------------------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _load(path: str | Path, device: str | torch.device, what: str) -> Any:
    """`torch.load(weights_only=True)` with every failure turned into a one-line ValueError."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ValueError(f"{path} could not be read: {err.strerror or _one_line(err)}") from None
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a {what}")
    if size == 0:
        raise ValueError(f"{path} is empty (0 bytes): not a {what}; the write that made it did "
                         f"not finish")
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"  # what torch.save writes
        with warnings.catch_warnings():  # torch notes pickle protocols it does not expect
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, ...
        raise ValueError(f"{path} {_load_failure(err, what, is_zip)}") from None


def _load_failure(err: Exception, what: str, is_zip: bool) -> str:
    """What a `torch.load(weights_only=True)` exception says about the file, in one line."""
    msg = str(err)
    refused = re.search(r"GLOBAL (\S+) was not an allowed global", msg) or \
        re.search(r"Unsupported global: GLOBAL (\S+)", msg)
    if refused:
        return (f"holds objects other than tensors, numbers and strings ({refused.group(1)}) "
                f"and was not loaded: not a {what} written by damdp-lite")
    if isinstance(err, OSError) and not is_zip:
        return f"could not be read: {err.strerror or _one_line(err)}"
    if is_zip or "PytorchStreamReader failed" in msg:
        detail = re.search(r"PytorchStreamReader failed[^.]*", msg)
        detail = detail.group(0) if detail else f"{type(err).__name__}: {_one_line(err)[:120]}"
        return f"is truncated or corrupt ({detail}): not a complete {what}"
    if isinstance(err, RuntimeError) and "deserialize" in msg and "device" in msg:
        return f"could not be loaded onto the device ({msg.splitlines()[0][:160]})"
    detail = msg.split("WeightsUnpickler error:")[-1] if "WeightsUnpickler error:" in msg \
        else msg
    detail = next((line.strip() for line in detail.splitlines() if line.strip()), "")
    return (f"is not a {what} (unreadable data: {type(err).__name__}"
            f"{': ' + detail[:120] if detail else ''})")


def _check_weights(state: Any, where: str, name: str) -> None:
    """ValueError unless `state` is a non-empty dict str -> tensor with finite float values."""
    if not isinstance(state, dict) or not state:
        held = "an empty dict" if isinstance(state, dict) else _env_make._kind_of(state)
        raise ValueError(f"{where} is not a policy's weights: {name} holds {held}, expected a "
                         f"state_dict (dict of str -> tensor)")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor) \
                or value.layout != torch.strided:
            raise ValueError(f"{where} is not a policy's weights: {name} maps "
                             f"{_env_make._show(key)} to {_env_make._kind_of(value)}, expected "
                             f"str -> tensor")
        if (value.is_floating_point() or value.is_complex()) \
                and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{where} holds non-finite weights (NaN or inf in {name}[{key!r}]); "
                             f"they were not used")
