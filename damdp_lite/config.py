"""Config dataclasses: every field typed, documented once and validated once.

A field is declared with its type, a default, an optional range rule (`param(8, at_least(1))`)
and a one-line docstring under it. `Config.__post_init__` checks every field against its type
(booleans are booleans, integers are integers, numbers are finite) and its rule, so the Python
API, the CLI (`damdp-lite train --help` shows the docstrings), the widgets (tooltips) and a
loaded config.json all share one validation. A subclass may re-declare a field to change its
default only (`num_envs: int = 16`); the rule and the docstring are inherited.

    @dataclass
    class MyConfig(Config):
        lr: float = param(1e-3, positive())
        \"\"\"Adam learning rate.\"\"\"
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Rule:
    """A range rule of a field: `ok(value)` and what it allows, for the error message. For a
    tuple field it applies to every element, and `max_len` bounds the length."""

    allowed: str
    ok: Callable[[Any], bool]
    max_len: int | None = None


def at_least(low: float) -> Rule:
    return Rule(f">= {low}", lambda v: v >= low)


def between(low: float, high: float) -> Rule:
    """[low, high]: for sizes, a bound well above any sensible value that stops a typo (1e9)
    before it allocates memory."""
    return Rule(f"in [{low}, {high}]", lambda v: low <= v <= high)


WIDTHS = Rule("in [1, 4096]", lambda v: 1 <= v <= 4096, max_len=16)
"""Hidden-layer widths of a network: up to 16 layers of up to 4096 units (official: 2-3 x
256-512), which bounds the parameters and the optimiser state before anything is allocated."""

SEED = between(0, 2**31 - 1)
"""Seeds: NumPy takes seeds below 2^32, and runs use seed + offsets."""


def positive() -> Rule:
    return Rule("> 0", lambda v: v > 0)


def nonnegative() -> Rule:
    return Rule(">= 0", lambda v: v >= 0)


def unit_interval(low_open: bool = True) -> Rule:
    """(0, 1] (default) or [0, 1]."""
    if low_open:
        return Rule("in (0, 1]", lambda v: 0 < v <= 1)
    return Rule("in [0, 1]", lambda v: 0 <= v <= 1)


def one_of(*options: object) -> Rule:
    return Rule(f"one of {options}", lambda v: v in options)


def param(default: object = MISSING, rule: Rule | None = None, *,
          factory: Callable[[], object] | None = None) -> Any:
    """A dataclass field with a range rule (`rule`) kept in its metadata."""
    md = {"rule": rule} if rule is not None else {}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring under each field of a dataclass and of its bases, read from
    their source (a subclass that re-declares a field without a docstring keeps the base's).

    Shared by the widgets (tooltips) and the CLI (`--help`), so a field is documented once.
    """
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is Config:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # defined where no source is kept (a REPL): no docs
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:] + [None], strict=True):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and "ClassVar" not in ast.unparse(node.annotation):
                if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None),
                                                            ast.Constant):
                    docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def field_rules(cls: type) -> dict[str, Rule]:
    """Each field's range rule, inherited from the first class in the MRO that declares one."""
    rules: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        for f in getattr(klass, "__dataclass_fields__", {}).values():
            if "rule" in f.metadata:
                rules[f.name] = f.metadata["rule"]
    return rules


MAX_FLOAT = 1e9
"""Largest magnitude of a float field: far above any sensible value, and far enough below
float32's 3.4e38 that squares and sums of it stay finite in the networks."""


def check_value(name: str, value: object, tp: Any, rule: Rule | None = None) -> object:
    """`value` checked against the annotation `tp` and `rule`; returns it normalised
    (lists -> tuples, ints -> floats for float fields). Raises `ValueError` naming the field,
    the value and what is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return check_value(name, value, inner[0], rule)
        return value  # a union of several types is checked by the config itself
    if origin is tuple:
        elem = typing.get_args(tp)[0]
        if isinstance(value, str) or not isinstance(value, tuple | list):
            raise ValueError(f"{name}={value!r} must be a sequence of {elem.__name__}s")
        if rule is not None and rule.max_len is not None and len(value) > rule.max_len:
            raise ValueError(f"{name} has {len(value)} entries; allowed: at most {rule.max_len}")
        return tuple(check_value(f"{name}[{i}]", v, elem, rule) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r} must be True or False")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}={value!r} must be an integer"
                             + (f" {rule.allowed}" if rule else ""))
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ValueError(f"{name}={value!r} must be a finite number"
                             + (f" {rule.allowed}" if rule else ""))
        if abs(value) > MAX_FLOAT:
            raise ValueError(f"{name}={value!r} is not allowed; expected a number in "
                             f"[-{MAX_FLOAT:g}, {MAX_FLOAT:g}]"
                             + (f" and {rule.allowed}" if rule else ""))
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}={value!r} must be a string"
                             + (f", {rule.allowed}" if rule else ""))
    if rule is not None and not rule.ok(value):
        raise ValueError(f"{name}={value!r} is not allowed; expected {rule.allowed}")
    return value


def check_device(name: str, device: str) -> None:
    """A torch device this machine has: "cpu", or "cuda"/"cuda:N" when CUDA is available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name}={device!r} is not a torch device; expected 'cpu' or "
                         f"'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r} but CUDA is not available here; use 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{name}={device!r} is not supported; expected 'cpu' or 'cuda'")


@dataclass
class Config:
    """Base of the config dataclasses: validation on construction, dict round trip.

    Subclasses add cross-field rules in `check()` (called after every field passed).
    """

    def __post_init__(self) -> None:
        hints, rules = typing.get_type_hints(type(self)), field_rules(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                continue  # a nested config validated itself
            setattr(self, f.name, check_value(f.name, value, hints[f.name], rules.get(f.name)))
            if f.name == "device":  # every config names its torch device `device`
                check_device("device", self.device)
        self.check()

    def check(self) -> None:
        """Cross-field rules; raise `ValueError` naming the fields."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of `to_dict` (unknown keys are an error naming them)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; allowed: "
                             f"{sorted(names)}")
        return cls(**d)
