"""Figures reachable without the repository, and notebooks that never rewrite a tracked file.

- Every shipped file a notebook shows (`results.shipped("figures/...")`, the end-result figures
  at the top) exists and is package data, so it is there after a plain `pip install` (Colab).
- No markdown image points at a relative path (`![...](figures/x.png)`), which Colab cannot show.
- Every figure a notebook saves goes to `FIGURES`, `figures/generated/` next to the notebook,
  which git ignores.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
PACKAGE = ROOT / "damdp_lite"
SHIPPED_NAME = re.compile(r"results\.shipped\(f?\"([^\"]+)\"\)")
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")


def _package_data() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-data"]["damdp_lite"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_shipped_files_a_notebook_reads_are_package_data(source: Path) -> None:
    patterns = _package_data()
    for name in SHIPPED_NAME.findall(source.read_text(encoding="utf-8")):
        glob = re.sub(r"\{[^}]*\}", "*", name)  # f"figures/03_masses_{name}.png"
        found = sorted((PACKAGE / "shipped").glob(glob))
        assert found, f"{source.name}: results.shipped({name!r}): no such file in the package"
        for path in found:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(PACKAGE).as_posix()
                assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), (
                    f"{source.name}: {rel} is not package data (pyproject.toml "
                    "[tool.setuptools.package-data]): a pip-installed package would lack it")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_markdown_image_has_a_relative_path(source: Path) -> None:
    relative = [url for url in MARKDOWN_IMAGE.findall(source.read_text(encoding="utf-8"))
                if not url.startswith(("https://", "http://"))]
    assert not relative, (
        f"{source.name}: markdown images with relative paths do not show on Colab: {relative}; "
        "ship the file in damdp_lite/shipped/figures/ and show it with "
        "IPython.display.Image(filename=results.shipped('figures/...'))")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_figures_are_saved_only_to_the_ignored_folder(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    saves = re.findall(r"\.savefig\(([^,)]+)", text)
    elsewhere = [arg for arg in saves if not arg.strip().startswith("FIGURES /")]
    assert not elsewhere, f"{source.name}: saved outside figures/generated/: {elsewhere}"
    if saves:
        assert 'FIGURES = HERE / "figures" / "generated"' in text, (
            f"{source.name}: saves figures but does not define FIGURES as figures/generated/")
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "notebooks/figures/generated/" in ignored, ".gitignore: notebooks/figures/generated/"
