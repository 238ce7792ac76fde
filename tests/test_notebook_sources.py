"""Every notebook has ONE editable source: notebooks/src/<stem>.py (jupytext percent format).

The committed notebooks/<stem>.ipynb must hold exactly the cells that jupytext reads from that
source (cell types and sources; outputs and metadata are not compared). After editing a source,
`make notebooks-sync` rewrites the notebook's cells and keeps its stored outputs.
"""

from __future__ import annotations

from pathlib import Path

import jupytext  # pinned in the dev extra of pyproject.toml (`make install`)
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
SOURCES = sorted(SRC_DIR.glob("*.py"))
FIX = "run `make notebooks-sync` (after editing notebooks/src/, never the .ipynb)"
# The "generated from" note must sit among the first cells (right after the badges).
HEADER_CELLS = 3


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def _excerpt(text: str, line: int, context: int = 2) -> str:
    """Lines line-context .. line+context of text, numbered from 1, the line itself marked."""
    lines = text.splitlines() or [""]
    lo, hi = max(0, line - context), min(len(lines), line + context + 1)
    out = [f"{'>' if k == line else ' '}{k + 1:4d}| {lines[k][:160]}" for k in range(lo, hi)]
    if line >= len(lines):
        out.append(f">{line + 1:4d}| <no such line>")
    return "\n".join(out)


def _first_line_difference(a: str, b: str) -> int:
    la, lb = a.splitlines(), b.splitlines()
    for k, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return k
    return min(len(la), len(lb))


def _first_difference(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def test_there_are_notebooks_and_sources() -> None:
    assert NOTEBOOKS, "no notebooks/*.ipynb found"
    assert SOURCES, "no notebooks/src/*.py found"


def test_every_notebook_has_a_source_and_vice_versa() -> None:
    nb_stems = {p.stem for p in NOTEBOOKS}
    src_stems = {p.stem for p in SOURCES}
    no_source = sorted(nb_stems - src_stems)
    no_notebook = sorted(src_stems - nb_stems)
    assert not no_source, (
        f"notebooks without a source notebooks/src/<stem>.py: {no_source!r}; create one with "
        "`jupytext --to py:percent notebooks/<stem>.ipynb -o notebooks/src/<stem>.py`"
    )
    assert not no_notebook, f"sources without a notebook: {no_notebook!r}; {FIX}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_source_is_percent_format(source: Path) -> None:
    meta = jupytext.read(source).metadata.get("jupytext", {}).get("text_representation", {})
    assert meta.get("format_name") == "percent", (
        f"{source.relative_to(ROOT)}: the header must declare jupytext format_name 'percent' "
        f"(found {meta!r}); without it magics such as `# %pip` are read back differently"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_equal_its_source(notebook: Path) -> None:
    source = SRC_DIR / f"{notebook.stem}.py"
    if not source.is_file():
        pytest.fail(f"{notebook.name}: source {source.relative_to(ROOT)} is missing")
    expected = _cells(jupytext.read(source))
    actual = _cells(nbformat.read(notebook, as_version=4))
    if actual == expected:
        return
    i = _first_difference(actual, expected)
    where = f"{notebook.relative_to(ROOT)} disagrees with {source.relative_to(ROOT)}"
    if i >= min(len(actual), len(expected)):
        pytest.fail(
            f"{where}: {len(actual)} cells in the notebook, {len(expected)} in the source "
            f"(equal up to cell {i}); {FIX}"
        )
    (nb_type, nb_src), (src_type, src_src) = actual[i], expected[i]
    k = _first_line_difference(nb_src, src_src)
    pytest.fail(
        f"{where} at cell {i} (0-based), line {k + 1} of the cell:\n"
        f"--- notebook ({nb_type} cell):\n{_excerpt(nb_src, k)}\n"
        f"--- source ({src_type} cell):\n{_excerpt(src_src, k)}\n"
        f"{FIX}"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_names_its_source(notebook: Path) -> None:
    note = f"generated from `notebooks/src/{notebook.stem}.py`"
    cells = nbformat.read(notebook, as_version=4).cells[:HEADER_CELLS]
    assert any(c.cell_type == "markdown" and note in c.source for c in cells), (
        f"{notebook.name}: one of the first {HEADER_CELLS} cells must be a markdown line saying "
        f"'This notebook is {note} (jupytext): edit that file, then run `make notebooks-sync`.'"
    )
