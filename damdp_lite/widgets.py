"""Control panels built from the config dataclasses (one documented field = one control).

Anything that trains runs behind a button, so headless execution stays cheap; notebooks put a
static figure made with the default values before every panel. While it trains, a panel shows a
progress bar and a status line fed by the training loops (`utils.progress_listener`). Every
panel that trains has a `seed` control (the config field; `algo_panel` and `sampler_controls`
add it) and the controls behind its lesson, which `controls_from_config` builds from field
names with sensible defaults (`FIELD_SPECS`). Core `ipywidgets` only (7 and 8), so the panels
work in JupyterLab, Binder and Colab.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from .algos.common import AlgoConfig
from .bound import FitConfig
from .config import field_docs
from .diffusion import NOISING_DRIFT_AT, NOISING_STEP_PAIRING, SCHEDULES, DiffusionConfig
from .plotting import style
from .policies import POLICIES, all_tunable_fields, tunable_fields
from .utils import progress_listener

STYLE = {"description_width": "150px"}
LAYOUT = W.Layout(width="420px")
CHAR_PX = 8
"""Width of one character of a description, in pixels (JupyterLab's 13 px UI font, rounded up)."""
CONTROL_PX = 270
"""Width of a slider or dropdown beside its description, in pixels."""


FIELD_SPECS: dict[str, dict] = {
    "seed": dict(min=0, max=2**31 - 1, text=True),
    "temperature": dict(min=1e-4, max=2.0, log=True),
    "temperature_init": dict(min=1e-4, max=1.0, log=True),
    "prior_std": dict(min=0.1, max=10.0, log=True),
    "kl_bound": dict(min=1e-3, max=1.0, log=True),
    "clip_coef": dict(min=0.02, max=0.5, step=0.01),
    "num_steps": dict(min=1, max=32),
    "lr": dict(min=1e-5, max=1e-2, log=True),
}
"""Default control of a field by name, whatever its config class: the seed a number box, the
lesson's controls (T = `temperature` / `temperature_init`, sigma_0 = `prior_std`, REPPO's
`kl_bound`, PPO's `clip_coef`, K = `num_steps`) and `lr` sliders over sensible ranges, log-scale
where the value spans decades. Booleans (`tanh_jacobian`) are checkboxes without a spec."""

_RANGE_KEYS = ("min", "max", "step", "log", "options", "text")
TOOLTIP = "tooltip" if int(W.__version__.split(".")[0]) >= 8 else "description_tooltip"
"""The tooltip trait of a described widget: `tooltip` in ipywidgets 8, `description_tooltip`
in 7 (Colab), which ignores `tooltip`."""


def controls_from_config(cls: type, fields: Sequence[str],
                         specs: Mapping[str, Mapping] | None = None) -> dict[str, W.Widget]:
    """One widget per dataclass field, its tooltip the field's docstring.

    Args:
        cls: a config dataclass (e.g. `DiffusionConfig`, `FitConfig`, `PPOConfig`; for an
            algorithm config also its policy fields by name, e.g. `prior_std`).
        fields: field names, in display order.
        specs: per-field options: `min`, `max`, `step`, `log` (log-scale float slider),
            `options` (dropdown choices), `text` (an integer box instead of a slider), `value`
            (overrides the dataclass default). A spec with any of these but `value` replaces
            the field's default spec in `FIELD_SPECS`; a spec of only `value` keeps its range.
    Returns:
        `{field: widget}`; read values with `{f: w.value for f, w in controls.items()}`. A
        slider's range is widened to hold its value (a value is never silently moved); a value
        of 0 on a log slider is an error naming the field.
    """
    specs = specs or {}
    out: dict[str, W.Widget] = {}
    for name in fields:
        default, doc = field_default_and_doc(cls, name)
        given = dict(specs.get(name, {}))
        spec = given if any(k in given for k in _RANGE_KEYS) else {**FIELD_SPECS.get(name, {}),
                                                                   **given}
        value = spec.pop("value", default)
        common = dict(description=name, style=STYLE, layout=LAYOUT, **{TOOLTIP: doc})
        if "options" in spec:
            w = W.Dropdown(options=list(spec["options"]), value=value, **common)
        elif isinstance(value, bool):
            w = W.Checkbox(value=value, **common)
        elif isinstance(value, int) and spec.get("text"):
            lo, hi = _widened(name, value, spec.get("min", 0), spec.get("max", 2**31 - 1))
            w = W.BoundedIntText(value=value, min=lo, max=hi, step=1, **common)
        elif isinstance(value, int):
            lo, hi = _widened(name, value, spec.get("min", 1), spec.get("max", 100))
            w = W.IntSlider(value=value, min=lo, max=hi, step=spec.get("step", 1),
                            continuous_update=False, **common)
        elif isinstance(value, float) and spec.get("log"):
            lo, hi = _widened(name, value, spec["min"], spec["max"], log=True)
            w = W.FloatLogSlider(value=value, base=10, min=math.log10(lo), max=math.log10(hi),
                                 step=spec.get("step", 0.05), continuous_update=False, **common)
        elif isinstance(value, float):
            lo, hi = _widened(name, value, spec.get("min", 0.0), spec.get("max", 1.0))
            w = W.FloatSlider(value=value, min=lo, max=hi, step=spec.get("step", 0.01),
                              continuous_update=False, **common)
        else:
            w = W.Text(value=str(value), **common)
        out[name] = w
    return out


def _widened(name: str, value: float, lo: float, hi: float, log: bool = False
             ) -> tuple[float, float]:
    """The range `[lo, hi]` stretched to hold `value` (sliders clip their value silently)."""
    if log and not value > 0:
        raise ValueError(f"{name}={value!r} cannot sit on a log-scale slider (values > 0); give "
                         f"specs={{{name!r}: dict(min=0.0, max=...)}} for a linear one")
    return min(lo, value), max(hi, value)


def field_default_and_doc(cls: type, name: str) -> tuple[object, str]:
    """Default and docstring of a field of config class `cls`; for an algorithm config also
    of a policy field by name (its default for this algorithm's default policy kind, else for
    the first kind that has it). `ValueError` names the field and the class."""
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    if name in by_name:
        f = by_name[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        return default, field_docs(cls).get(name, "")
    if issubclass(cls, AlgoConfig) and name in all_tunable_fields():
        kinds = [cls.policy] if isinstance(cls.policy, str) else []
        kind = next((k for k in kinds if name in tunable_fields(k)), all_tunable_fields()[name])
        policy_cls = POLICIES[kind][0]
        default = cls.policy_defaults.get(kind, {}).get(
            name, next(f.default for f in dataclasses.fields(policy_cls) if f.name == name))
        return default, field_docs(policy_cls).get(name, "")
    raise ValueError(f"field={name!r} is not a field of {cls.__name__}; expected one of "
                     f"{tuple(by_name)}")


def algo_panel(algo: str, fields: Sequence[str], specs: Mapping[str, Mapping] | None = None,
               **fixed) -> W.VBox:
    """A training panel for any registered algorithm (`--algo` name or alias): a policy
    dropdown, one control per field (the algorithm's own or a policy field by name) and a
    `seed` control (last, unless `fields` places it; leave it out by fixing it, `seed=0`).
    Train runs `train(algo_config(algo, policy=..., seed=..., **values, **fixed))` in memory
    and plots the training return against env steps, in the policy kind's house colour; a
    policy control the chosen kind lacks (K for the Gaussian) is left out of that run.
    `fixed`: fields set without a control (e.g. env_id)."""
    from .algos import resolve
    from .train import algo_config, train

    spec, implied = resolve(algo)
    kinds = [implied["policy"]] if "policy" in implied else list(POLICIES)
    controls = {"policy": W.Dropdown(options=kinds, value=kinds[0], description="policy",
                                     style=STYLE, layout=LAYOUT,
                                     **{TOOLTIP: field_docs(AlgoConfig)["policy"]})}
    fields = [f for f in fields if f != "policy"]
    if "seed" not in fields and "seed" not in fixed:
        fields.append("seed")
    controls.update(controls_from_config(spec.config_cls, fields, specs))

    def run(**values):
        # a policy field of the other kind (e.g. num_steps for the Gaussian) is left out
        kind, own = values["policy"], {f.name for f in dataclasses.fields(spec.config_cls)}
        values = {k: v for k, v in values.items()
                  if k in own or k not in all_tunable_fields() or k in tunable_fields(kind)}
        cfg = algo_config(algo, **{**fixed, **values})
        res = train(cfg, progress=False)  # the panel's bar shows the progress
        fig, ax = plt.subplots(figsize=(5, 3))
        steps = [r["env_steps"] for r in res.history]
        ax.plot(steps, [r["episode_return"] for r in res.history], label=values["policy"],
                color=style(values["policy"])["color"])
        ax.set(xlabel="env steps", ylabel="training return", title=f"{algo}, seed {cfg.seed}")
        ax.legend()
        return fig

    return training_panel(controls, run)


SAMPLER_FIELDS = ("temperature", "steps", "num_steps", "step_size_schedule",
                  "noising_step_pairing", "noising_drift_at", "seed")
"""The controls of `sampler_controls` by default."""


def sampler_controls(fields: Sequence[str] = SAMPLER_FIELDS,
                     specs: Mapping[str, Mapping] | None = None) -> dict[str, W.Widget]:
    """Notebook 01's panel: `FitConfig` fields (temperature, training steps, seed) and
    `DiffusionConfig` fields (K, the schedule, the noising-kernel flags; also e.g. `prior_std`),
    in the order of `fields`; `specs` as in `controls_from_config`. The run behind the panel
    takes every field as a keyword (`seed` included: pass it to `fit_sampler`)."""
    fit = {f.name for f in dataclasses.fields(FitConfig)}
    base = {"temperature": dict(min=0.05, max=2.0, log=True),
            "steps": dict(min=50, max=1500, step=50),
            "num_steps": dict(min=1, max=16, value=8),
            "step_size_schedule": dict(options=SCHEDULES),
            "noising_step_pairing": dict(options=NOISING_STEP_PAIRING, value="same"),
            "noising_drift_at": dict(options=NOISING_DRIFT_AT)}
    merged = {**base, **(specs or {})}
    out: dict[str, W.Widget] = {}
    for name in fields:
        cls = FitConfig if name in fit else DiffusionConfig
        out.update(controls_from_config(cls, [name], merged))
    return out


def fit_descriptions(controls: Iterable[W.Widget]) -> int:
    """Give all `controls` one description width that fits the longest description, so none is
    cut off (`diffusion_steps_per_…`) and the controls line up; each gets its own `Layout`
    `CONTROL_PX` wider. Returns the description width in pixels (at least 150)."""
    described = [w for w in controls if getattr(w, "description", "")]
    if not described:
        return 0
    width = max(150, CHAR_PX * max(len(w.description) for w in described) + 12)
    for w in described:
        w.style.description_width = f"{width}px"
        w.layout = W.Layout(width=f"{width + CONTROL_PX}px")
    return width


def progress_text(done: int, total: int, row: Mapping[str, object], elapsed: float) -> str:
    """The status line of a training panel, e.g. `12/40 iterations · 6144 env steps · return
    -3.2 · 9 s, ~30 s left`, from a `utils.progress_listener` report."""
    parts = [f"{done}/{total} iterations"]
    for key, fmt in (("env_steps", "{:.0f} env steps"), ("episode_return", "return {:.4g}"),
                     ("j_bound", "J_bound {:.4g}")):
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            parts.append(fmt.format(value))
    left = f", ~{elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
    return " · ".join(parts) + f" · {elapsed:.0f} s{left}"


def training_panel(controls: Mapping[str, W.Widget], run: Callable[..., object],
                   button: str = "Train", min_interval: float = 0.25) -> W.VBox:
    """Controls, a button, a progress bar with a status line, and an output area.

    On click, `run(**values)` is called and the figure it returns (if any) is shown in the
    output area. While it runs, the bar and the status line follow every training loop inside
    it (`train.train`, `bound.fit_sampler`: iterations done, return, time left), updated at
    most every `min_interval` seconds; at the end the line says how long it took, or that it
    failed (the traceback goes to the output area). Nothing runs until the button is pressed.
    """
    fit_descriptions(controls.values())
    btn = W.Button(description=button, button_style="primary")
    bar = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="200px",
                                                               visibility="hidden"))
    status = W.Label(value="")
    out = W.Output()

    def on_click(_):
        btn.disabled = True
        start = last = time.perf_counter()
        bar.bar_style, bar.value, bar.layout.visibility = "info", 0, "visible"
        status.value = "training..."

        def listener(done: int, total: int, row: Mapping[str, object]) -> None:
            nonlocal last
            now = time.perf_counter()
            if 0 < done < total and now - last < min_interval:
                return
            last = now
            bar.max, bar.value = max(total, 1), min(done, total)
            status.value = progress_text(done, total, row, now - start)

        with out:
            out.clear_output(wait=True)
            try:
                with progress_listener(listener):
                    fig = run(**{k: w.value for k, w in controls.items()})
                if fig is not None:
                    display(fig)
                    plt.close(fig)
            except BaseException as err:  # shown by `out`, which prints the traceback
                bar.bar_style = "danger"
                status.value = (f"failed after {time.perf_counter() - start:.0f} s: "
                                f"{type(err).__name__}")
                raise
            else:
                bar.bar_style, bar.value = "success", bar.max
                status.value = f"done in {time.perf_counter() - start:.0f} s"
            finally:
                btn.disabled = False

    btn.on_click(on_click)
    return W.VBox([*controls.values(), W.HBox([btn, bar, status]), out])
