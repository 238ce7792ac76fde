"""Training panels (`damdp_lite.widgets`): every Train button shows progress while it trains, the
status line says how it ended, and no description is cut off. Clicked here without a kernel; the
real-browser test (tests/browser/) clicks them in JupyterLab."""

import logging
import math

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import damdp_lite as dl  # noqa: E402
from damdp_lite import widgets  # noqa: E402
from damdp_lite.algos import PPOConfig  # noqa: E402
from damdp_lite.bound import FitConfig  # noqa: E402
from damdp_lite.train import algo_config, train  # noqa: E402
from damdp_lite.utils import progress_listener, report_progress  # noqa: E402

TURNING = "damdp_lite/TurningDoubleWell-v0"
BANDIT = "damdp_lite/DoubleWellBandit-v0"  # one-step episodes: every iteration has a return


def parts(panel: W.VBox) -> dict[str, W.Widget]:
    """The panel's button, progress bar, status line and output area."""
    (row,) = [c for c in panel.children if isinstance(c, W.HBox)]
    btn, bar, status = row.children
    return {"button": btn, "bar": bar, "status": status, "out": panel.children[-1]}


def click(btn: W.Button, caplog) -> list[str]:
    """Click and return the errors ipywidgets logged from the callback (none expected)."""
    with caplog.at_level(logging.WARNING):
        btn.click()
    return [r.getMessage() for r in caplog.records if "Exception in callback" in r.getMessage()]


def watch(widget: W.Widget, name: str) -> list:
    """Every value `widget.name` takes from now on (what the browser would be sent)."""
    seen = []
    widget.observe(lambda change: seen.append(change["new"]), names=name)
    return seen


def test_progress_listener_sees_every_iteration_of_train_and_only_inside_the_block():
    seen = []
    cfg = algo_config("ppo", env_id=TURNING, total_env_steps=4 * 16 * 3, num_envs=4,
                      num_env_steps=16, hidden_sizes=(16,), value_hidden_sizes=(16,))
    with progress_listener(lambda done, total, row: seen.append((done, total, dict(row)))):
        train(cfg, progress=False)
    assert [(d, t) for d, t, _ in seen] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [r.get("env_steps") for _, _, r in seen[1:]] == [64, 128, 192]
    report_progress(1, 1)  # outside the block: nobody listens any more
    assert len(seen) == 4


def test_fit_sampler_reports_each_step():
    seen = []
    pol = dl.DiffusionPolicy(dl.DiffusionConfig(obs_dim=0, action_dim=1, num_steps=2,
                                                squash="identity", hidden_sizes=(8,)))
    with progress_listener(lambda done, total, row: seen.append((done, total, row["j_bound"]))):
        dl.fit_sampler(pol, dl.DoubleWell1D(), 0.5, steps=5, batch_size=16)
    assert [(d, t) for d, t, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert all(isinstance(j, float) for _, _, j in seen)


def test_progress_text():
    row = {"env_steps": 6144, "episode_return": -3.21, "j_bound": float("nan")}
    assert widgets.progress_text(12, 40, row, 9.4) == (
        "12/40 iterations · 6144 env steps · return -3.21 · 9 s, ~22 s left")
    assert widgets.progress_text(0, 40, {}, 0.2) == "0/40 iterations · 0 s"
    assert widgets.progress_text(40, 40, {"j_bound": 0.5}, 30) == (
        "40/40 iterations · J_bound 0.5 · 30 s")


def test_train_button_shows_progress_then_done(monkeypatch, caplog):
    shown = []
    monkeypatch.setattr(widgets, "display", shown.append)
    controls = widgets.controls_from_config(PPOConfig, ["total_env_steps", "lr"], {
        "total_env_steps": dict(min=64, max=512, step=64, value=256),
        "lr": dict(min=1e-4, max=1e-2, log=True, value=3e-3)})

    def run(total_env_steps, lr):
        cfg = algo_config("ppo", env_id=BANDIT, total_env_steps=total_env_steps, lr=lr,
                          num_envs=4, num_env_steps=16, hidden_sizes=(16,),
                          value_hidden_sizes=(16,))
        res = train(cfg, progress=False)
        fig, ax = plt.subplots()
        ax.plot([r["env_steps"] for r in res.history])
        return fig

    panel = widgets.training_panel(controls, run, min_interval=0.0)
    p = parts(panel)
    assert isinstance(p["bar"], W.IntProgress) and isinstance(p["status"], W.Label)
    assert p["bar"].layout.visibility == "hidden" and p["status"].value == ""  # before a click
    values, texts = watch(p["bar"], "value"), watch(p["status"], "value")
    assert click(p["button"], caplog) == []
    assert values[-4:] == [1, 2, 3, 4] and p["bar"].max == 4  # one step per iteration
    assert texts[0] == "training..." and texts[1].startswith("0/4 iterations")
    assert any(t.startswith("2/4 iterations · 128 env steps · return ") for t in texts)
    assert p["status"].value.startswith("done in ") and p["bar"].bar_style == "success"
    assert p["bar"].layout.visibility == "visible" and not p["button"].disabled
    assert len(shown) == 1 and isinstance(shown[0], plt.Figure)


def test_updates_are_throttled_but_the_last_one_always_shows(monkeypatch, caplog):
    monkeypatch.setattr(widgets, "display", lambda fig: None)

    def run(n):
        for i in range(n + 1):
            report_progress(i, n)

    panel = widgets.training_panel({"n": W.IntSlider(value=50, min=1, max=100,
                                                     description="n")}, run, min_interval=60)
    p = parts(panel)
    values = watch(p["bar"], "value")
    assert click(p["button"], caplog) == []
    assert values == [50]  # 0 (already shown) and 50: the 49 in between are within 60 s
    assert p["status"].value.startswith("done in ")


def test_a_failing_run_says_so_and_frees_the_button(monkeypatch, caplog):
    def run(x):
        report_progress(1, 10)
        raise ValueError("lr=-1 must be a finite number > 0")

    panel = widgets.training_panel({"x": W.IntSlider(value=1, description="x")}, run)
    p = parts(panel)
    errors = click(p["button"], caplog)  # without a kernel the Output area re-raises: logged
    assert len(errors) == 1
    assert p["status"].value.startswith("failed after ") and "ValueError" in p["status"].value
    assert p["bar"].bar_style == "danger" and not p["button"].disabled


@pytest.mark.parametrize("fields", [
    ["total_env_steps", "diffusion_steps_per_update", "lr"], ["lr"], ["env_id", "temperature"]])
def test_descriptions_fit_and_line_up(fields):
    controls = widgets.controls_from_config(PPOConfig, fields, {
        "env_id": dict(options=["Hopper-v5"], value="Hopper-v5")})
    extra = W.Dropdown(options=["ppo"], value="ppo", description="algo", style=widgets.STYLE,
                       layout=widgets.LAYOUT)  # as notebooks 05 and 06 build theirs
    widgets.training_panel({"algo": extra, **controls}, lambda **_: None)
    longest = max(len(f) for f in fields)
    width = max(150, widgets.CHAR_PX * longest + 12)
    for w in [extra, *controls.values()]:
        assert w.style.description_width == f"{width}px"
        assert w.layout.width == f"{width + widgets.CONTROL_PX}px"
    assert widgets.LAYOUT.width == "420px"  # the shared default is left alone



# ------------------------------------------------------------------------------------------
# Seed controls and the lesson's controls
# ------------------------------------------------------------------------------------------


def controls_of(panel: W.VBox) -> dict[str, W.Widget]:
    """The panel's widgets by description, depth first (the Train button sits in an HBox)."""
    out = {}
    for child in panel.children:
        for w in (child.children if isinstance(child, W.HBox) else (child,)):
            out.setdefault(getattr(w, "description", ""), w)
    return out


@pytest.mark.parametrize("cls_name, field, kind", [
    ("PPOConfig", "seed", W.BoundedIntText), ("FitConfig", "seed", W.BoundedIntText),
    ("PPOConfig", "prior_std", W.FloatLogSlider), ("PPOConfig", "tanh_jacobian", W.Checkbox),
    ("PPOConfig", "clip_coef", W.FloatSlider), ("PPOConfig", "num_steps", W.IntSlider),
    ("PPOConfig", "temperature", W.FloatLogSlider), ("FitConfig", "temperature", W.FloatLogSlider),
    ("REPPOConfig", "kl_bound", W.FloatLogSlider),
    ("REPPOConfig", "temperature_init", W.FloatLogSlider), ("SACConfig", "prior_std",
                                                            W.FloatLogSlider)])
def test_lesson_fields_get_sensible_controls_without_specs(cls_name, field, kind):
    """sigma_0, the tanh Jacobian, the clip / KL bound, K, T and the seed: the right widget,
    the config's default value (not clipped), a range around it, the docstring as tooltip."""
    import damdp_lite.algos as algos

    cls = FitConfig if cls_name == "FitConfig" else getattr(algos, cls_name)
    (w,) = widgets.controls_from_config(cls, [field]).values()
    default, doc = widgets.field_default_and_doc(cls, field)
    assert type(w) is kind and w.value == default and w.description == field
    assert doc and getattr(w, widgets.TOOLTIP) == doc  # description_tooltip in ipywidgets 7
    if isinstance(w, W.FloatLogSlider):  # a log range of at least two decades around the value
        assert w.min <= math.log10(default) <= w.max and w.max - w.min >= 2
    elif hasattr(w, "min"):
        assert w.min <= default <= w.max and w.max > w.min
    if field == "seed":
        assert w.min == 0 and w.max == 2**31 - 1


def test_specs_replace_or_keep_the_default_range_and_values_are_never_clipped():
    (t,) = widgets.controls_from_config(PPOConfig, ["temperature"], {
        "temperature": dict(min=0.0, max=0.5, step=0.01, value=0.0)}).values()
    assert type(t) is W.FloatSlider and (t.min, t.max, t.value) == (0.0, 0.5, 0.0)  # DPPO: T = 0
    (k,) = widgets.controls_from_config(PPOConfig, ["num_steps"], {
        "num_steps": dict(value=12)}).values()  # only a value: the default range stays
    assert (k.min, k.max, k.value) == (1, 32, 12)
    (k,) = widgets.controls_from_config(PPOConfig, ["num_steps"], {
        "num_steps": dict(min=1, max=8, value=64)}).values()
    assert (k.max, k.value) == (64, 64)  # widened, not moved to 8
    (n,) = widgets.controls_from_config(PPOConfig, ["total_env_steps"], {
        "total_env_steps": dict(min=20_480, max=491_520, step=20_480, value=4_096)}).values()
    assert (n.min, n.value) == (4_096, 4_096)
    with pytest.raises(ValueError, match=r"^temperature=0\.0 cannot sit on a log-scale slider"):
        widgets.controls_from_config(PPOConfig, ["temperature"], {"temperature": dict(value=0.0)})


def fake_train(seen: list):
    """A stand-in for `train.train` that records the config and returns a two-row history."""
    class Result:
        history = [{"env_steps": 64, "episode_return": 1.0},
                   {"env_steps": 128, "episode_return": 2.0}]

    def train(cfg, progress=True, **_):
        seen.append(cfg)
        return Result()

    return train


def test_algo_panel_has_a_seed_control_and_trains_with_its_value(monkeypatch, caplog):
    import damdp_lite.train as train_module

    seen, shown = [], []
    monkeypatch.setattr(train_module, "train", fake_train(seen))
    monkeypatch.setattr(widgets, "display", shown.append)
    panel = widgets.algo_panel("ppo", ["lr"], env_id=BANDIT, total_env_steps=128, num_envs=4,
                               num_env_steps=16)
    c = controls_of(panel)
    assert list(c)[:3] == ["policy", "lr", "seed"]  # the seed comes last among the fields
    assert type(c["seed"]) is W.BoundedIntText and c["seed"].value == PPOConfig().seed
    for seed in (7, 3):
        c["seed"].value = seed
        assert click(c["Train"], caplog) == []
        assert seen[-1].seed == seed
        assert shown[-1].axes[0].get_title() == f"ppo, seed {seed}"
    assert shown[-1].axes[0].get_legend() is not None
    # placed by the caller, or fixed (then no control)
    c = controls_of(widgets.algo_panel("ppo", ["seed", "lr"], env_id=BANDIT))
    assert list(c)[:3] == ["policy", "seed", "lr"]
    panel = widgets.algo_panel("ppo", ["lr"], env_id=BANDIT, seed=11, total_env_steps=128,
                               num_envs=4, num_env_steps=16)
    c = controls_of(panel)
    assert "seed" not in c
    assert click(c["Train"], caplog) == [] and seen[-1].seed == 11


def test_the_seed_changes_what_the_panel_trains(monkeypatch, caplog):
    """End to end: two seeds give two training curves, the same seed the same curve."""
    shown = []
    monkeypatch.setattr(widgets, "display", shown.append)
    panel = widgets.algo_panel("ppo", ["lr"], env_id=BANDIT, total_env_steps=192, num_envs=4,
                               num_env_steps=16, hidden_sizes=(16,), value_hidden_sizes=(16,))
    c = controls_of(panel)
    curves = []
    for seed in (0, 1, 0):
        c["seed"].value = seed
        assert click(c["Train"], caplog) == []
        curves.append(list(shown[-1].axes[0].lines[0].get_ydata()))
    assert curves[0] == curves[2] and curves[0] != curves[1]


def test_sampler_controls_include_a_seed_that_reaches_the_run(caplog):
    controls = widgets.sampler_controls()
    assert list(controls) == list(widgets.SAMPLER_FIELDS) and list(controls)[-1] == "seed"
    assert type(controls["seed"]) is W.BoundedIntText and controls["seed"].value == 0
    assert controls["num_steps"].value == 8 and controls["noising_step_pairing"].value == "same"
    got = []
    panel = widgets.training_panel(controls, lambda **values: got.append(values))
    controls["seed"].value = 5
    assert click(parts(panel)["button"], caplog) == []
    assert got[-1]["seed"] == 5 and got[-1]["temperature"] == FitConfig().temperature
    more = widgets.sampler_controls([*widgets.SAMPLER_FIELDS, "prior_std"])
    assert type(more["prior_std"]) is W.FloatLogSlider
    assert more["prior_std"].value == dl.DiffusionConfig(obs_dim=0, action_dim=1).prior_std
