"""The one visual convention of `damdp_lite.plotting`: a curve's style follows its label (policy
family -> colour, algorithm -> line style and marker, references grey), every plotting function
ends with a legend, and return plots carry the random-policy and pinned-action references."""

import colorsys

import matplotlib

matplotlib.use("Agg")

import gymnasium as gym  # noqa: E402
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from damdp_lite import DoubleWell1D, FourModes2D, plotting, report  # noqa: E402
from damdp_lite.envs import TurningDoubleWellEnv  # noqa: E402
from damdp_lite.plotting import COLORS, label_algorithm, label_kind, style, styles_for  # noqa: E402

DIFFUSION = ["DiffPPO", "DA-MDP PPO", "DME-PPO", "DA-MDP REPPO", "DME-REPPO", "DA-MDP WPO",
             "DiffWPO", "DiffSAC (reconstr.)", "diffusion K=8", "diffreppo"]
GAUSSIAN = ["PPO (Gaussian)", "Gaussian", "REPPO", "ME-WPO", "wpo", "SAC", "gaussian_ppo",
            "best Gaussian"]
TARGET = ["target", r"$\mathcal{T}\log Z$", "exact", r"exact $\pi^*$", "optimum"]
TURNING = "damdp_lite/TurningDoubleWell-v0"


def same_color(a, b) -> bool:
    return mcolors.to_hex(a) == mcolors.to_hex(b)


def hue(color) -> float:
    return colorsys.rgb_to_hsv(*mcolors.to_rgb(color))[0]


def legend_texts(fig) -> list[str]:
    """Every legend entry of the figure (figure legends and axes legends)."""
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


# ------------------------------------------------------------------------------------------
# style(label)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", DIFFUSION + GAUSSIAN + TARGET + ["random policy", "T = 0.25"])
def test_style_is_deterministic(label):
    first = style(label)
    assert first == style(label) and set(first) == {"color", "ls", "marker"}
    first["color"] = "red"  # a fresh dict every call: callers may change it
    assert style(label)["color"] != "red"


def test_style_colour_is_the_policy_family():
    for label in DIFFUSION:
        assert label_kind(label) == "diffusion" and same_color(style(label)["color"],
                                                              COLORS["diffusion"]), label
    for label in GAUSSIAN:
        assert label_kind(label) == "gaussian" and same_color(style(label)["color"],
                                                             COLORS["gaussian"]), label
    for label in TARGET:
        assert label_kind(label) == "target" and same_color(style(label)["color"], "black"), label
    assert not same_color(COLORS["diffusion"], COLORS["gaussian"])


def test_algorithms_of_one_family_are_told_apart_by_line_style_and_marker():
    for family in (["DA-MDP PPO", "DA-MDP REPPO", "DA-MDP WPO", "DiffSAC"],
                   ["PPO", "REPPO", "ME-WPO", "SAC"]):
        st = [style(label) for label in family]
        assert [label_algorithm(label) for label in family] == ["PPO", "REPPO", "WPO", "SAC"]
        assert len({mcolors.to_hex(s["color"]) for s in st}) == 1  # one family, one colour
        assert len({s["ls"] for s in st}) == 4 and len({s["marker"] for s in st}) == 4
    # the same algorithm in both families: same line style and marker, other colour
    for diff, gauss in (("DA-MDP REPPO", "REPPO"), ("DA-MDP WPO", "ME-WPO"), ("DiffSAC", "SAC")):
        d, g = style(diff), style(gauss)
        assert (d["ls"], d["marker"]) == (g["ls"], g["marker"])
        assert not same_color(d["color"], g["color"])


def test_dppo_is_the_t0_variant_of_diffusion():
    for label in ("DPPO", "dppo", "DiffPPO, T = 0", r"DiffPPO, $\mathcal{T}=0$"):
        assert label_kind(label) == "dppo", label
        assert same_color(style(label)["color"], COLORS["dppo"])
    for label in ("DiffPPO, T = 0.05", "DiffPPO, T=0.2"):
        assert label_kind(label) == "diffusion", label
    assert style("DPPO") != style("DiffPPO")
    assert abs(hue(COLORS["dppo"]) - hue(COLORS["diffusion"])) < 0.05  # still a blue


def test_references_are_grey_with_one_line_style_each():
    kinds = {"random policy": ("random", "--"), "pinned action a = 0": ("pinned", ":"),
             "CleanRL PPO v4 @ 1M": ("anchor", "-."),
             "published (paper, Table 2)": ("anchor", "-.")}
    for label, (kind, ls) in kinds.items():
        s = style(label)
        assert label_kind(label) == kind and s["ls"] == ls and same_color(s["color"], "0.5")


def test_styles_for_sets_alike_labels_apart_within_their_family():
    st = styles_for(["diffusion, before", "diffusion, after", "diffusion K=2", "Gaussian",
                     "Gaussian, seed 1"])
    keys = {(mcolors.to_hex(s["color"]), s["ls"], s["marker"]) for s in st.values()}
    assert len(keys) == len(st)  # all distinct
    for label in ("diffusion, before", "diffusion, after", "diffusion K=2"):
        assert abs(hue(st[label]["color"]) - hue(COLORS["diffusion"])) < 0.05, label
    assert abs(hue(st["Gaussian, seed 1"]["color"]) - hue(COLORS["gaussian"])) < 0.05
    assert same_color(st["diffusion, before"]["color"], COLORS["diffusion"])  # the first keeps it
    # labels of no known kind: other colours, in order, never a family's or grey/black
    other = styles_for(["a", "b", "c"])
    colours = [mcolors.to_hex(s["color"]) for s in other.values()]
    assert colours == [mcolors.to_hex(c) for c in plotting.OTHER_COLORS[:3]]
    reserved = {mcolors.to_hex(c) for c in (COLORS["diffusion"], COLORS["gaussian"],
                                            COLORS["dppo"], "black", "0.5")}
    assert not reserved & {mcolors.to_hex(c) for c in plotting.OTHER_COLORS}
    assert styles_for(["SAC"], {"SAC": {"lw": 3}})["SAC"]["lw"] == 3


# ------------------------------------------------------------------------------------------
# Reference lines and return plots
# ------------------------------------------------------------------------------------------


def test_reference_lines_are_grey_and_labelled():
    fig, ax = plt.subplots()
    lines = plotting.reference_lines(ax, random=-3.0, pinned=12.5, anchor=100.0,
                                     labels={"pinned": "pinned action a = 0"})
    assert [ln.get_label() for ln in lines] == ["random policy", "pinned action a = 0",
                                                "published"]
    assert [ln.get_linestyle() for ln in lines] == ["--", ":", "-."]
    assert [ln.get_ydata()[0] for ln in lines] == [-3.0, 12.5, 100.0]
    assert all(same_color(ln.get_color(), COLORS["reference"]) for ln in lines)
    assert plotting.reference_lines(ax, pinned=1.0)[0].get_label() == "pinned action"
    assert plotting.reference_lines(ax) == []
    plt.close(fig)


def summary(final: float, seeds: int = 3) -> dict:
    grid = np.linspace(1e4, 1e5, 20)
    mean = final * grid / grid[-1]
    return {"grid": grid, "mean": mean, "low": mean - 5, "high": mean + 5, "seeds": seeds}


def test_learning_curves_draw_random_and_pinned_references_and_house_styles():
    summaries = {"Hopper-v5": {"reppo": summary(900), "diffreppo": summary(800),
                               "diffwpo": summary(600), "diffsac": summary(500)},
                 "HalfCheetah-v5": {"reppo": summary(1000)}}
    labels = {"reppo": "REPPO", "diffreppo": "DA-MDP REPPO", "diffwpo": "DA-MDP WPO",
              "diffsac": "DiffSAC"}
    fig = plotting.plot_learning_curves(
        summaries, anchors={"Hopper-v5": 2382.86}, labels=labels,
        random={"Hopper-v5": 18.0, "HalfCheetah-v5": -280.0}, pinned={"Hopper-v5": 80.0})
    hopper, cheetah = fig.axes
    lines = {ln.get_label(): ln for ln in hopper.lines}
    assert lines["random policy"].get_ydata()[0] == 18.0
    assert lines["pinned action"].get_ydata()[0] == 80.0
    assert lines["CleanRL PPO v4 @ 1M"].get_ydata()[0] == 2382.86
    diff = [lines[f"{n} (3 seeds)"] for n in ("DA-MDP REPPO", "DA-MDP WPO", "DiffSAC")]
    assert all(same_color(ln.get_color(), COLORS["diffusion"]) for ln in diff)
    assert len({(ln.get_linestyle(), ln.get_marker()) for ln in diff}) == 3
    assert same_color(lines["REPPO (3 seeds)"].get_color(), COLORS["gaussian"])
    texts = legend_texts(fig)
    assert {"random policy", "pinned action", "CleanRL PPO v4 @ 1M"} <= set(texts)
    cheetah_lines = {ln.get_label() for ln in cheetah.lines}
    assert "random policy" in cheetah_lines and "pinned action" not in cheetah_lines
    plt.close(fig)
    # the old call (anchors and labels only) still works
    fig = plotting.plot_learning_curves(summaries, {"Hopper-v5": 1.0}, labels)
    assert "CleanRL PPO v4 @ 1M" in legend_texts(fig)
    plt.close(fig)


def test_pinned_action_return_runs_the_evaluation_loop_on_a_constant_action():
    env = TurningDoubleWellEnv()
    steps = gym.spec(TURNING).max_episode_steps  # the double well's reward depends on a only
    for a in (0.0, 0.5, -0.3):
        got = report.pinned_action_return(TURNING, a, episodes=2, seed=0)
        assert got == pytest.approx(steps * float(env.reward_of_action(a)), rel=1e-5)
    assert report.pinned_action_return(TURNING, [0.5], episodes=1) == pytest.approx(
        report.pinned_action_return(TURNING, 0.5, episodes=1))
    with pytest.raises(ValueError, match=r"^action=2\.0 must lie in the action space"):
        report.pinned_action_return(TURNING, 2.0)
    with pytest.raises(ValueError, match=r"^action=\[0\.1, 0\.2\] must be one number"):
        report.pinned_action_return(TURNING, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^episodes=0"):
        report.pinned_action_return(TURNING, 0.0, episodes=0)


# ------------------------------------------------------------------------------------------
# Every plotting function ends with a legend
# ------------------------------------------------------------------------------------------


def _figures():
    """(name, figure, labels its legend must show) for every plotting function."""
    well, four = DoubleWell1D(), FourModes2D(mode_rewards=(3.0, 0.0, 1.5, 5.0), sigma_r=0.1)
    x = np.linspace(-2, 2, 101)
    rng = np.random.default_rng(0)
    yield ("plot_density_1d", plotting.plot_density_1d(
        {"diffusion, before": (x, np.exp(-x**2)), "diffusion, after": (x, np.exp(-4 * x**2))},
        well, 0.25, samples={"Gaussian": rng.normal(size=500)}),
        ["diffusion, before", "diffusion, after", "Gaussian (samples)"])
    yield ("plot_chain_1d", plotting.plot_chain_1d(rng.normal(size=(5, 10))), [])
    yield ("plot_samples_2d", plotting.plot_samples_2d(
        {"diffusion K=8": rng.uniform(-1, 1, (500, 2)), "Gaussian": rng.normal(0, .3, (500, 2))},
        four, 2.0, lim=1.0, bins=10), ["diffusion K=8", "Gaussian"])
    yield ("plot_training_curves", plotting.plot_training_curves(
        {"diffusion K=8": rng.normal(size=50), "Gaussian": rng.normal(size=50)}, -0.01,
        {"best Gaussian": -0.4}), ["diffusion K=8", "Gaussian", "best Gaussian"])
    rows = [dict(K=k, pairing=p, j_bound=-1.0 / k, j_marginal=-0.5 / k)
            for k in (1, 2, 4) for p in ("previous", "same")]
    yield ("plot_bound_vs_steps", plotting.plot_bound_vs_steps(rows, -0.01, best_gaussian=-0.4),
           ["best Gaussian"])
    counts = rng.integers(0, 10, (3, 8))
    yield ("plot_state_histograms", plotting.plot_state_histograms(
        {"DiffPPO": counts, "DPPO": counts}, np.linspace(-1, 1, 9),
        target=(x, np.exp(-x**2)), reward=(x, np.exp(-x**2))), ["DiffPPO", "DPPO"])
    yield ("plot_turning_paths", plotting.plot_turning_paths(
        {"DiffPPO": rng.normal(size=(2, 5, 2)), "PPO (Gaussian)": rng.normal(size=(2, 5, 2))}),
        ["DiffPPO", "PPO (Gaussian)", "start"])
    yield ("plot_mode_masses", plotting.plot_mode_masses(
        {"diffusion": [0.3, 0.2, 0.2, 0.3], "Gaussian": [0, 0, 0, 1]}, [0.25] * 4,
        ("LU", "LD", "RU", "RD")), ["diffusion", "Gaussian", "exact"])
    yield ("plot_seed_bars", plotting.plot_seed_bars(
        {"double well": {"DiffPPO": [1.0, 2.0, None], "DPPO (T = 0)": [3.0, 1.0, 2.0],
                         "FPO-style": [None, None]}}, "relative variance", {"1: no dip": 1.0}),
        ["DiffPPO", "DPPO (T = 0)", "seeds", "FPO-style (no value)", "no value (run escaped)",
         "1: no dip"])
    yield ("plot_traces", plotting.plot_traces(
        {"DiffPPO": ([0, 1, 2], [0.0, 0.5, 0.7])}, {r"$\mathcal{T}\log Z$": 1.0}),
        ["DiffPPO", r"$\mathcal{T}\log Z$"])
    fig, ax = plt.subplots()
    plotting.plot_returns(ax, {"DiffSAC": ([0, 1, 2], [1.0, 2.0, 3.0])}, random=0.5, pinned=0.7)
    yield ("plot_returns", fig, ["DiffSAC", "random policy", "pinned action"])
    yield ("plot_learning_curves", plotting.plot_learning_curves(
        {"Hopper-v5": {"diffppo": summary(100)}}, labels={"diffppo": "DiffPPO"},
        random={"Hopper-v5": 1.0}), ["DiffPPO (3 seeds)", "random policy"])
    rows = [{"env_steps": 1024.0 * i, "temperature": 0.01 * 1.1**i} for i in range(4)]
    yield ("plot_diagnostics", plotting.plot_diagnostics(
        {"DA-MDP REPPO s0": rows, "REPPO s0": rows}, [("temperature", "T")]),
        ["DA-MDP REPPO s0", "REPPO s0"])


def test_every_plotting_function_ends_with_a_legend():
    made = {}
    for name, fig, expected in _figures():
        texts = legend_texts(fig)
        assert texts, f"{name}: no legend"
        assert set(expected) <= set(texts), f"{name}: legend {texts} lacks {expected}"
        made[name] = True
        plt.close(fig)
    public = {n for n in dir(plotting) if n.startswith("plot_")}
    assert public == set(made), f"plotting functions without a legend test: {public - set(made)}"


def test_families_keep_their_colours_in_figures():
    fig = plotting.plot_traces({"DiffPPO": ([0, 1], [0, 1]), "PPO (Gaussian)": ([0, 1], [1, 0])},
                               {"random policy": 0.1, "exact": 0.9})
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert same_color(lines["DiffPPO"].get_color(), COLORS["diffusion"])
    assert same_color(lines["PPO (Gaussian)"].get_color(), COLORS["gaussian"])
    assert lines["random policy"].get_linestyle() == "--"
    assert same_color(lines["random policy"].get_color(), COLORS["reference"])
    assert same_color(lines["exact"].get_color(), "black")
    plt.close(fig)


def test_plot_diagnostics_draws_each_run_in_each_panel_smoothed_over_env_steps():
    """A panel per column, a line per run in its family's colour over env steps, blanks skipped,
    the trailing moving mean of what the last `smooth` rows logged, log scale and levels."""
    nan = float("nan")
    rows = [{"env_steps": 10.0 * i, "temperature": 2.0**i, "q_hat": [1.0, nan, 3.0, 5.0][i]}
            for i in range(4)]
    fig = plotting.plot_diagnostics({"DA-MDP REPPO s0": rows, "REPPO s0": rows},
                                    [("temperature", "T"), ("q_hat", "Q")],
                                    levels={"q_hat": {"lowest critic value": -1.0}},
                                    log_columns=["temperature"], smooth=2, vline=20.0, ncols=3,
                                    overrides={"REPPO s0": {"ls": ":"}})
    t_ax, q_ax, spare = fig.axes
    assert not spare.axison, "the unused panel is switched off"
    assert t_ax.get_yscale() == "log" and q_ax.get_yscale() == "linear"
    t_lines = {ln.get_label(): ln for ln in t_ax.lines}
    assert same_color(t_lines["DA-MDP REPPO s0"].get_color(), COLORS["diffusion"])
    assert same_color(t_lines["REPPO s0"].get_color(), COLORS["gaussian"])
    assert t_lines["REPPO s0"].get_linestyle() == ":", "a run's style override"
    np.testing.assert_allclose(t_lines["REPPO s0"].get_xdata(), [0, 10, 20, 30])
    np.testing.assert_allclose(t_lines["REPPO s0"].get_ydata(), [1, 1.5, 3, 6])  # 2-row mean
    q_lines = {ln.get_label(): ln for ln in q_ax.lines}
    np.testing.assert_allclose(q_lines["REPPO s0"].get_xdata(), [0, 20, 30])  # the blank skipped
    np.testing.assert_allclose(q_lines["REPPO s0"].get_ydata(), [1, 3, 4])  # logged rows only
    assert q_lines["lowest critic value"].get_ydata()[0] == -1.0
    assert [t.get_text() for t in q_ax.get_legend().get_texts()] == ["lowest critic value"]
    assert any(list(ln.get_xdata()) == [20.0, 20.0] for ln in q_ax.lines), "the budget line"
    plt.close(fig)


def test_compact_png_is_a_small_palette_png_of_the_same_figure():
    """The palette PNG keeps the figure's pixel size and colours within its palette, is smaller
    than matplotlib's RGBA PNG of a many-line figure, and a palette size out of range is refused."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    rows = [{"env_steps": float(i), "temperature": float(v)}
            for i, v in enumerate(np.exp(rng.normal(size=400)))]
    fig = plotting.plot_diagnostics({f"DA-MDP REPPO s{s}": rows[s:] for s in range(4)},
                                    [("temperature", "T")], smooth=1)
    full = io.BytesIO()
    fig.savefig(full, format="png", bbox_inches="tight")
    data = plotting.compact_png(fig, colors=32)
    small, big = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(full.getvalue()))
    assert small.format == "PNG" and small.mode == "P" and small.size == big.size
    assert len(small.getcolors(256)) <= 32
    assert len(data) < 0.6 * len(full.getvalue()), (len(data), len(full.getvalue()))
    with pytest.raises(ValueError, match="colors=1 must be an integer from 2 to 256"):
        plotting.compact_png(fig, colors=1)
    with pytest.raises(ValueError, match="colors=3.5 must be an integer"):
        plotting.compact_png(fig, colors=3.5)
    plt.close(fig)
