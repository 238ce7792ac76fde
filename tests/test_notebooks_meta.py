"""Committed notebooks are executed top to bottom, error-free, small, and follow the skeleton
(style.md §5, §10). Their outputs are tested under nbval by `make notebooks`; this checks files."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_without_errors(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"
    for i, c in enumerate(code):
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: code cell {i} has an error output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_skeleton_and_size(path):
    nb = _load(path)
    cells = nb["cells"]
    assert "colab.research.google.com" in _src(cells[0]) and "mybinder.org" in _src(cells[0]), \
        f"{path.name}: first cell must hold the Colab and Binder badges"
    assert path.name in _src(cells[0]), f"{path.name}: badges must point at this notebook"
    text = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    assert "Estimated time" in text and "goals" in text.lower(), f"{path.name}: goals/time missing"
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    assert "SMOKE" in code, f"{path.name}: no SMOKE switch"
    assert "MPLBACKEND" not in code, f"{path.name}: never set MPLBACKEND in notebooks"
    assert path.stat().st_size < 1_000_000, f"{path.name}: {path.stat().st_size} bytes (> 1 MB)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_cells_are_ignored_and_preceded_by_a_figure(path):
    """Each cell showing a widget panel is NBVAL_IGNORE_OUTPUT and comes after a static figure."""
    cells = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
    for i, c in enumerate(cells):
        src = _src(c)
        if "training_panel(" in src or "algo_panel(" in src or "interact" in src:
            assert "NBVAL_IGNORE_OUTPUT" in src, f"{path.name}: widget cell {i} not ignored"
            before = [o for cc in cells[:i] for o in cc.get("outputs", [])]
            assert any("image/png" in o.get("data", {}) for o in before), \
                f"{path.name}: widget cell {i} has no static figure before it"
