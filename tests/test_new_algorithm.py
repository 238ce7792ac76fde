"""A new algorithm is one file: `tests/vpg_algo.py` registers `--algo vpg` and edits nothing else,
and the CLI (train, resume, --help), the config.json record and the widget panel run it with
either policy (the "declared protocol" of design.md: the learner only calls `ChainPolicy`)."""

import csv
import json
import logging
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import vpg_algo  # noqa: E402, F401  (registers --algo vpg)

from damdp_lite import cli, widgets  # noqa: E402
from damdp_lite.algos import ALGOS  # noqa: E402

TURNING = "damdp_lite/TurningDoubleWell-v0"
TINY = ["--env", TURNING, "--steps", "128", "--num-envs", "4", "--num-env-steps", "16",
        "--hidden-sizes", "16", "--eval-episodes", "1", "--quiet", "--json"]
POLICY_ARGS = {"gaussian": [], "diffusion": ["--num-steps", "2"]}


def main(capsys, *args: str) -> tuple[int, str, str]:
    """`damdp-lite ARGS` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_vpg_is_registered_and_in_the_train_help(capsys):
    assert ALGOS["vpg"].config_cls is vpg_algo.VPGConfig
    assert ALGOS["vpg"].learner_cls is vpg_algo.VPG
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["train", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    assert "vpg: vanilla policy gradient (a test of the registry)" in text
    assert "0.05 (vpg)" in text  # its own default of --temperature is shown


@pytest.mark.parametrize("kind", ["gaussian", "diffusion"])
def test_vpg_trains_through_the_cli_and_resumes(kind, tmp_path, capsys):
    run_dir = tmp_path / kind
    args = ["train", "--algo", "vpg", "--policy", kind, *TINY, *POLICY_ARGS[kind],
            "--run-dir", str(run_dir)]
    code, out, err = main(capsys, *args)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["iterations"] == 2 and summary["env_steps"] == 128
    record = json.loads((run_dir / "config.json").read_text())
    assert record["format"] == 2 and record["algo"] == "vpg"
    assert record["label"] == {"gaussian": "vpg", "diffusion": "diffvpg"}[kind]
    assert record["config"]["policy"]["kind"] == kind
    assert record["config"]["policy"].get("num_steps", 1) == (2 if kind == "diffusion" else 1)
    assert record["config"]["num_envs"] == 4 and record["config"]["env_id"] == TURNING
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*vpg_algo.VPG.CSV_FIELDS, "eval_return", "eval_length", "sps"]
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert rows[-1]["eval_return"] != "" and math.isfinite(float(rows[-1]["eval_return"]))
    assert (run_dir / "policy.pt").exists() and (run_dir / "checkpoint.pt").exists()
    before = (run_dir / "progress.csv").read_text()
    # the same command again: resumes from the final checkpoint, nothing left to run
    code, out, err = main(capsys, *args)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["iterations"] == 0
    assert (run_dir / "progress.csv").read_text() == before


def widgets_in(box):
    """Every widget inside `box`, depth first (the Train button sits in an HBox with its bar)."""
    for child in box.children:
        yield child
        yield from widgets_in(child) if hasattr(child, "children") else ()


@pytest.mark.parametrize("kind", ["gaussian", "diffusion"])
def test_vpg_panel_trains_either_policy(kind, monkeypatch, caplog):
    shown = []
    monkeypatch.setattr(widgets, "display", shown.append)  # the figure the Output area shows
    panel = widgets.algo_panel(
        "vpg", ["lr", "num_steps"],
        {"lr": dict(min=1e-4, max=1e-2, log=True), "num_steps": dict(min=1, max=8, value=2)},
        env_id=TURNING, total_env_steps=128, num_envs=4, num_env_steps=16, hidden_sizes=(16,))
    controls = {getattr(c, "description", ""): c for c in widgets_in(panel)}
    assert set(controls) >= {"policy", "lr", "num_steps", "Train"}
    assert set(controls["policy"].options) == {"gaussian", "diffusion"}
    controls["policy"].value = kind
    with caplog.at_level(logging.WARNING):
        controls["Train"].click()
    errors = [r.getMessage() for r in caplog.records if "Exception in callback" in r.getMessage()]
    assert errors == [], errors[0][:500] if errors else ""
    assert len(shown) == 1 and isinstance(shown[0], plt.Figure)
    (line,) = shown[0].axes[0].lines
    assert line.get_label() == kind and list(line.get_xdata()) == [64, 128]
    assert not controls["Train"].disabled  # re-enabled after the run
