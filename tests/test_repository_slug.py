"""One name for the GitHub repository: `[project.urls] Repository` in pyproject.toml.

The README's notebook table, the badges cell that opens every notebook and every notebook's Colab
install cell are written from that OWNER/NAME; here each is checked against it, and a failure
names the line and the text it should have. To rename the repository: edit pyproject.toml, then
`sed -i 's#OLD/SLUG#NEW/SLUG#g' README.md notebooks/src/*.py && make notebooks-sync`.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((NB_DIR / "src").glob("[0-9][0-9]_*.py"))
README = ROOT / "README.md"

# Every way our repository's OWNER/NAME appears in a link: Colab, Binder, a pip git install,
# a raw file. Other projects' github.com links (rliable, ...) match none of these.
SLUG_USES = {
    "Colab badge": re.compile(r"colab\.research\.google\.com/github/([^/\s)]+/[^/\s)]+)/"),
    "Binder badge": re.compile(r"mybinder\.org/v2/gh/([^/\s)]+/[^/\s)]+)/"),
    "pip install": re.compile(r"git\+https://github\.com/([^/\s)\"']+/[^@/\s)\"']+)"),
    "raw file": re.compile(r"raw\.githubusercontent\.com/([^/\s)]+/[^/\s)]+)/"),
}


def slug() -> str:
    """OWNER/NAME from pyproject.toml's `[project.urls] Repository`."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"]
    m = re.fullmatch(r"https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)", url)
    assert m, f"pyproject.toml: [project.urls] Repository {url!r} is not github.com/OWNER/NAME"
    return m.group(1)


def colab_url(name: str) -> str:
    return f"https://colab.research.google.com/github/{slug()}/blob/main/notebooks/{name}"


def binder_url(name: str) -> str:
    return f"https://mybinder.org/v2/gh/{slug()}/HEAD?urlpath=lab/tree/notebooks/{name}"


def badges(name: str) -> str:
    """The first cell of notebook `name` (e.g. '01_reverse_kl_bound.ipynb')."""
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(name)}) [![Binder](https://mybinder.org/badge_logo.svg)]"
            f"({binder_url(name)})")


def install_spec() -> str:
    """What every notebook's setup cell installs on Colab (unless DAMDP_INSTALL says otherwise)."""
    return f"damdp-lite @ git+https://github.com/{slug()}@main"


def _cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]


def test_slug_is_in_pyproject() -> None:
    assert slug().count("/") == 1


@pytest.mark.parametrize("path", [README, *NOTEBOOKS, *SOURCES], ids=lambda p: p.name)
def test_every_link_to_the_repository_uses_the_slug(path: Path) -> None:
    wrong = [f"line {text.count(chr(10), 0, m.start()) + 1}: {what} names {m.group(1)!r}"
             for text in [path.read_text(encoding="utf-8")]
             for what, pattern in SLUG_USES.items() for m in pattern.finditer(text)
             if m.group(1) != slug()]
    assert not wrong, (f"{path.relative_to(ROOT)}: links that do not use the repository "
                       f"{slug()!r} of pyproject.toml [project.urls]: " + "; ".join(wrong))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_badges_and_install_cell(path: Path) -> None:
    cells = _cells(path)
    assert cells[0] == badges(path.name), (
        f"{path.name}: the first cell must be exactly\n{badges(path.name)}\n"
        f"(edit notebooks/src/{path.stem}.py, then `make notebooks-sync`)")
    setup = [c for c in cells if "IN_COLAB" in c]
    assert setup, f"{path.name}: no setup cell (IN_COLAB)"
    assert f'"{install_spec()}"' in setup[0] and '%pip install -q "$DAMDP_INSTALL"' in setup[0], (
        f"{path.name}: the setup cell must install \"{install_spec()}\" via DAMDP_INSTALL "
        f"(`%pip install -q \"$DAMDP_INSTALL\"`)")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_notebook_source_badges_and_install_cell(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    name = f"{path.stem}.ipynb"
    assert f"# {badges(name)}\n" in text, f"{path.name}: the badges line must be\n# {badges(name)}"
    assert f'"{install_spec()}"' in text, (
        f"{path.name}: the setup cell must install {install_spec()!r}")


def test_readme_table_has_both_badges_of_every_notebook() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [f"{p.name}: {url}" for p in NOTEBOOKS
               for url in (colab_url(p.name), binder_url(p.name)) if f"({url})" not in text]
    assert not missing, "README.md: badge links missing or naming another repository: " + (
        "; ".join(missing))
