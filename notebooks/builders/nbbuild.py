"""What every notebook builder shares: cells written as plain text, the Colab/Binder header,
notes kept in sibling markdown files, and writing the (unexecuted) notebook."""

from pathlib import Path

import nbformat as nbf

SLUG = "damdp-lite/damdp_lite"
HERE = Path(__file__).resolve().parent


class Builder:
    """Collects the cells of `notebooks/{name}` in order; `write()` saves them."""

    def __init__(self, name: str) -> None:
        self.name, self.cells = name, []
        self.md(f"""
[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/{SLUG}/blob/main/notebooks/{name}) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{SLUG}/HEAD?urlpath=lab/tree/notebooks/{name})
""")

    def md(self, text: str) -> None:
        self.cells.append(nbf.v4.new_markdown_cell(text.strip("\n")))

    def code(self, text: str) -> None:
        self.cells.append(nbf.v4.new_code_cell(text.strip("\n")))

    @staticmethod
    def notes(filename: str) -> str:
        """A markdown file beside the builders (measured findings), or "" while it is absent."""
        path = HERE / filename
        return path.read_text() if path.exists() else ""

    def write(self) -> None:
        nb = nbf.v4.new_notebook(cells=self.cells)
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                     "name": "python3"}
        nbf.write(nb, HERE.parent / self.name)
        print("wrote", self.name)
