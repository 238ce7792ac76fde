"""README's tables of the DA-MDP grid, from its shipped reports: `damdp_grid/report` (REPPO and
PPO with their DA-MDP variants, DA-MDP REPPO with its temperature tuned as in the official code and
fixed as in the package's preset, and the preset with a narrower prior or without the tanh
Jacobian, four tasks) and `damdp_grid/wposac/report` (WPO and SAC with theirs, and DiffSAC with
faster target critics or critic targets spanning the chain, two tasks), both under
damdp_lite/shipped. Per task, each method's final evaluation return (mean over its shipped
seeds; "—" where it has no finished run), then the normalised IQM with its 95% CI over the
tasks it has (the first n seeds of every task, n the fewest any task has): aggregates of
methods with different tasks are not comparable. `tests/test_grid_results.py` checks that
README holds exactly what this prints.

    python benchmarks/grid_table.py
"""

from __future__ import annotations

import argparse
import json

from damdp_lite.results import SHIPPED

LABELS = {"reppo": "REPPO", "diffreppo": "DA-MDP REPPO, temperature tuned (official rule)",
          "diffreppo+auto_temperature-false": "DA-MDP REPPO, temperature fixed (the preset)",
          "diffreppo+prior_std-1.0": "DA-MDP REPPO, temperature fixed, σ₀ = 1",
          "diffreppo+tanh_jacobian-false": "DA-MDP REPPO, temperature fixed, no tanh Jacobian",
          "ppo": "PPO", "diffppo": "DiffPPO",
          "wpo": "ME-WPO", "diffwpo": "DA-MDP WPO", "sac": "SAC",
          "diffsac": "DiffSAC (our reconstruction)",
          "diffsac+tau-0.04": "DiffSAC, target critics at τ = 0.04",
          "diffsac+critic_target-chain": "DiffSAC, critic targets spanning the chain"}
TASKS = {"dm_control/cheetah-run-v0": "DMC cheetah-run",
         "dm_control/walker-walk-v0": "DMC walker-walk",
         "HalfCheetah-v5": "HalfCheetah-v5", "Hopper-v5": "Hopper-v5"}
REPORTS = ("report", "wposac/report")
"""The shipped reports under damdp_lite/shipped/damdp_grid, one table each."""


def table(report_dir: str = "report") -> str:
    """The markdown table of one shipped report (one line per method)."""
    path = SHIPPED / "damdp_grid" / report_dir / "report.json"
    report = json.loads(path.read_text())
    methods = report["methods"]
    tasks = [t for t in TASKS if t in report["tasks"]]
    head = ["method", *(TASKS[t] for t in tasks), "IQM, normalised [95% CI]",
            "seeds × tasks in the IQM"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in (m for m in LABELS if m in methods):
        m = methods[name]
        iqm = m["aggregate"]["IQM"]
        cells = [f"{m['scores'][t]['raw_mean']:.0f}" if t in m["scores"] else "—" for t in tasks]
        ci = f"{iqm['point']:.2f} [{iqm['ci'][0]:.2f}, {iqm['ci'][1]:.2f}]"
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells)
                     + f" | {ci} | {m['seeds']} × {len(m['scores'])} |")
    norm = report["normalisation"]
    lines.append("| random policy | " + " | ".join(f"{norm[t]['random']:.0f}" for t in tasks)
                 + " | 0 | |")
    return "\n".join(lines)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help
    for name in REPORTS:
        if (SHIPPED / "damdp_grid" / name / "report.json").exists():
            print(f"damdp_grid/{name}:\n{table(name)}\n")
