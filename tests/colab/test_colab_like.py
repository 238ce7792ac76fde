"""Colab, simulated: every notebook runs top to bottom from the notebook file alone, in a fresh
virtual environment that holds only what a Colab runtime preinstalls, and installs damdp-lite
with its own setup cell, as it would on Colab.

What makes it Colab-like:

- the venv has Colab's kind of preinstalled packages, at versions at or near the lower bounds of
  pyproject.toml's ranges (`PREINSTALLED`): CPU torch 2.13.0 (the only torch here), NumPy 2.0,
  SciPy 1.13, Matplotlib 3.9, pandas 2.2, ipywidgets 7 (Colab's major version), tqdm, imageio,
  and a Jupyter kernel (ipykernel) driven by nbconvert;
- an importable stand-in `google.colab` module, so the setup cell takes its Colab branch;
- each notebook is copied alone into an empty folder (no repository around it), and a first cell
  imports `google.colab` and NumPy, as a Colab kernel has done before the user's first cell;
- `DAMDP_INSTALL` replaces the setup cell's `git+https://...` spec with a clean export of this
  checkout (its git-tracked and not-ignored files: what a clone would hold, without build/);
- `PIP_REPORT` (pip reads every option from a `PIP_*` variable) makes that `%pip install` write
  pip's `--report` JSON, from which the test asserts that no preinstalled package was replaced.

Before each notebook damdp-lite is uninstalled again, so every setup cell really installs; the
first one also installs the dependencies Colab lacks (gymnasium, MuJoCo, rliable, ...), and its
time is the one that matters (printed, and asserted under `INSTALL_LIMIT_S`).

Slow (3.5 minutes on 2 cores, measured with an empty pip cache: 50 s for the venv, then 20-25 s a
notebook, of which 8-18 s is its install cell): `make colab-test` runs it
(`DAMDP_COLAB_TEST=1`); `make unit` skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.skipif(
    os.environ.get("DAMDP_COLAB_TEST") != "1",
    reason="slow (~3.5 min, builds a venv): run with `make colab-test` (DAMDP_COLAB_TEST=1)")

PREINSTALLED = {
    "torch": "2.13.0",  # Colab's is a CUDA build; any torch >= damdp_lite.MIN_TORCH is kept
    "numpy": "2.0.2",
    "scipy": "1.13.1",
    "matplotlib": "3.9.4",
    "pandas": "2.2.2",
    "ipywidgets": "7.7.1",
    "tqdm": "4.67.1",
    "imageio": "2.37.0",
    "imageio-ffmpeg": "0.6.0",
}
"""What the Colab-like venv starts with, pinned: Colab ships these (ipywidgets 7, pandas 2.2.2 and
NumPy 2.0.2 as Colab does); each is at or near the lower bound of pyproject.toml's range, so the
ranges are tested at their low end here and at the `pinned` versions by `make test`."""

KERNEL = ["ipykernel==6.29.5", "nbconvert==7.16.6", "nbclient==0.10.2"]
"""The Jupyter side: a kernel and what executes a notebook in it (Colab runs ipykernel 6)."""

INSTALL_LIMIT_S = 120
"""The setup cell, torch preinstalled, must install damdp-lite and what Colab lacks within this."""

CELL_TIMEOUT_S = 600

PRELUDE = ("# Added by tests/colab/test_colab_like.py: what a Colab kernel has imported\n"
           "# before the first cell runs.\n"
           "import google.colab  # noqa: F401\n"
           "import numpy  # noqa: F401\n")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run `cmd`; on failure, fail the test with its last lines of output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{tail}")
    return proc


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def colab(tmp_path_factory, request) -> Iterator[dict]:
    """The Colab-like venv, a kernel spec pointing at it, a fake `google.colab`, and an export of
    this checkout to install from. Returns paths and the environment for nbconvert."""
    base = tmp_path_factory.mktemp("colab")
    venv = base / "venv"
    start = time.perf_counter()
    # the venv is made from the interpreter running the tests, without its site-packages
    _run([sys.executable, "-m", "venv", str(venv)])
    py = _venv_python(venv)
    pins = [f"{name}=={version}" for name, version in PREINSTALLED.items()]
    _run([str(py), "-m", "pip", "install", "-q", *pins, *KERNEL])
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                     ).stdout.strip())
    fake = site / "google" / "colab"  # `google` stays a namespace package (protobuf shares it)
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""Stand-in for Colab\'s module (tests/colab/)."""\n')

    data = base / "jupyter-data"  # only this kernel spec: the venv's python, nothing of the host
    _run([str(py), "-m", "ipykernel", "install", "--name", "python3", "--prefix", str(data)])

    export = base / "damdp_lite_checkout"
    files = _run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"]).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():  # tracked files deleted in the work tree are skipped
            (export / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, export / rel)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_REPORT", "VIRTUAL_ENV", "PYTHON", "JUPYTER", "MPLBACKEND"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               JUPYTER_PATH=str(data / "share" / "jupyter"),
               JUPYTER_DATA_DIR=str(base / "jupyter-user"), IPYTHONDIR=str(base / "ipython"),
               DAMDP_SMOKE="1", OMP_NUM_THREADS="1", DAMDP_INSTALL=str(export))
    _say(request, f"colab-like venv ready in {time.perf_counter() - start:.0f} s ({venv})")
    yield {"venv": venv, "python": py, "env": env, "base": base, "site": site}
    shutil.rmtree(venv, ignore_errors=True)  # 1.5 GB; the executed notebooks stay for a look


def _say(request, line: str) -> None:
    """Print a line to the terminal even while pytest captures output."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        request.config.pluginmanager.get_plugin("terminalreporter").write_line(line)


def _inject_prelude(notebook: Path, out: Path) -> None:
    nb = json.loads(notebook.read_text())
    nb["cells"].insert(0, {"cell_type": "code", "execution_count": None, "id": "colab-prelude",
                           "metadata": {}, "outputs": [], "source": PRELUDE})
    out.write_text(json.dumps(nb))


def _seconds(cell: dict) -> float:
    """Run time of an executed cell from nbclient's timing metadata."""
    timing = cell["metadata"]["execution"]
    t0 = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (t1 - t0).total_seconds()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_colab_like_runtime(colab, notebook, tmp_path, request) -> None:
    py, env = colab["python"], dict(colab["env"])
    subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "damdp-lite"],
                   capture_output=True, env=env)  # every setup cell installs, as on a new runtime
    work = tmp_path / "content"  # Colab's working folder: the notebook and nothing else
    work.mkdir()
    source = work / notebook.name
    _inject_prelude(notebook, source)
    report = tmp_path / "pip-report.json"
    env["PIP_REPORT"] = str(report)

    start = time.perf_counter()
    proc = subprocess.run(
        [str(py), "-m", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
         f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}",
         "--ExecutePreprocessor.kernel_name=python3", "--output", "executed.ipynb",
         str(source)],
        cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, f"nbconvert failed:\n{proc.stderr[-4000:]}"
    executed = json.loads((work / "executed.ipynb").read_text())
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]

    errors = [(i, c, o) for i, c in enumerate(code) for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    if errors:
        i, cell, out = errors[0]
        head = "".join(cell["source"]).splitlines()[:6]
        pytest.fail(f"{notebook.name}: {len(errors)} cell(s) failed; the first, code cell {i}:\n"
                    + "\n".join(head) + f"\n... {out['ename']}: {out['evalue']}")

    setup = next(c for c in code if "IN_COLAB" in "".join(c["source"]))
    install_s = _seconds(setup)
    assert report.is_file(), (
        f"{notebook.name}: the setup cell ran no `pip install` (no report at {report})")
    installed = {_norm(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    swapped = {n: (PREINSTALLED[n], v) for n, v in installed.items() if n in PREINSTALLED}
    assert not swapped, (
        f"{notebook.name}: the Colab install replaced preinstalled packages (was, now): {swapped}")
    assert "damdp-lite" in installed, f"{notebook.name}: pip did not install damdp-lite"
    _say(request, f"{notebook.stem}: setup cell (pip install) {install_s:.0f} s, "
                  f"{len(installed)} packages installed; whole notebook {wall:.0f} s")
    assert install_s < INSTALL_LIMIT_S, (
        f"{notebook.name}: the Colab install took {install_s:.0f} s (limit {INSTALL_LIMIT_S} s)")


def test_preinstalled_versions_are_the_colab_like_ones(colab) -> None:
    """After all notebooks: the venv still holds exactly the preinstalled versions."""
    out = _run([str(colab["python"]), "-c",
                "import json, importlib.metadata as m; print(json.dumps("
                f"{{n: m.version(n) for n in {sorted(PREINSTALLED)!r}}}))"]).stdout
    have = json.loads(out)
    assert {n: v.split("+")[0] for n, v in have.items()} == PREINSTALLED, have

