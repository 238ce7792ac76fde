"""Training panels (`damdp_lite.widgets`): every Train button shows progress while it trains, the
status line says how it ended, and no description is cut off. Clicked here without a kernel; the
real-browser test (tests/browser/) clicks them in JupyterLab."""

import logging

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import damdp_lite as dl  # noqa: E402
from damdp_lite import widgets  # noqa: E402
from damdp_lite.algos import PPOConfig  # noqa: E402
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
                       layout=widgets.LAYOUT)  # as notebooks 04 and 05 build theirs
    widgets.training_panel({"algo": extra, **controls}, lambda **_: None)
    longest = max(len(f) for f in fields)
    width = max(150, widgets.CHAR_PX * longest + 12)
    for w in [extra, *controls.values()]:
        assert w.style.description_width == f"{width}px"
        assert w.layout.width == f"{width + widgets.CONTROL_PX}px"
    assert widgets.LAYOUT.width == "420px"  # the shared default is left alone

