"""Every notebook, run the way a reader runs it: JupyterLab in a real browser (headless Chromium).

`make browser` runs this file (it is not collected by `make unit`: see conftest.py here). One
JupyterLab server (`jupyter lab --no-browser`, a random token, `DAMDP_SMOKE=1`, `MUJOCO_GL=egl`)
serves notebooks/; for each notebook, a fresh page and kernel clear the stored outputs, run all
cells from the Run menu, and wait. Then, per notebook (`manifest.json` beside this file):

- every code cell ran, in order, on the fresh kernel (prompts [1]..[N]);
- no cell failed: no traceback or error in any output, no kernel-died dialog;
- the widgets rendered *as widgets* (at least the manifest's count of each kind of element,
  and no widget's text repr such as `VBox(children=...)`), and no description is cut off;
- each training panel's Train button, clicked (budget sliders set to their minimum first),
  showed progress while it trained ("n/N iterations"), ended with "done in ...", and the output
  area under the panel gained the figure.

Last, no file under notebooks/ that git tracks (or does not ignore) was changed by running
them. Screenshots go to tests/browser/screenshots/ (git-ignored), with report.json (timings and
widget counts) and jupyterlab.log.

Nothing here downloads a browser: Chromium is Debian's (tests/browser/install_chromium.sh), driven
by the Python package `playwright` through `executable_path`. Without Chromium or playwright the
tests skip, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
HERE = Path(__file__).resolve().parent
SHOTS = HERE / "screenshots"
MANIFEST = {k: v for k, v in json.loads((HERE / "manifest.json").read_text()).items()
            if not k.startswith("_")}
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")

CODE = ".jp-NotebookPanel .jp-CodeCell"
PROMPTS = f"{CODE} .jp-InputArea-prompt"
PANEL = ".widget-vbox:has(> .widget-hbox > button.widget-button:text-is('Train'))"
STATUS = ".widget-hbox > div.widget-label"  # the panel's status line (a W.Label)
WIDGET_REPR = re.compile(r"^(VBox|HBox|Box|interactive|IntSlider|FloatSlider|FloatLogSlider|"
                         r"Dropdown|Button|Output|IntProgress|FloatProgress|Label)\(")
ERROR_LINE = re.compile(r"^\w*(Error|Exception)\b|Traceback \(most recent call last\)", re.M)
report: dict[str, dict] = {}


def find_chromium() -> str | None:
    """Debian's Chromium; the environment variable CHROMIUM names another executable."""
    if os.environ.get("CHROMIUM"):
        path = shutil.which(os.environ["CHROMIUM"])
        return path if path and os.access(path, os.X_OK) else None
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.access(path, os.X_OK):
            return path
    return None


def hash_notebooks_dir() -> dict[str, str]:
    """sha256 of every file under notebooks/ that git does not ignore."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z",
                            "notebooks"], cwd=ROOT, capture_output=True, check=True).stdout
    out = {}
    for name in filter(None, files.decode().split("\0")):
        path = ROOT / name
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "gone"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(settings: Path) -> None:
    """JupyterLab user settings for a test run: never autosave (the notebooks on disk stay as
    they are), keep every cell in the page (no windowing), no news pop-up."""
    for plugin, name, data in (
            ("@jupyterlab/docmanager-extension", "plugin", {"autosave": False}),
            ("@jupyterlab/notebook-extension", "tracker", {"windowingMode": "none"}),
            ("@jupyterlab/apputils-extension", "notification",
             {"fetchNews": "false", "checkForUpdates": False})):
        folder = settings / plugin
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(data))


@pytest.fixture(scope="session")
def notebooks_before() -> dict[str, str]:
    return hash_notebooks_dir()


@pytest.fixture(scope="session")
def lab(notebooks_before, tmp_path_factory):
    """A JupyterLab server on notebooks/: (base URL, token)."""
    tmp = tmp_path_factory.mktemp("lab")
    write_settings(tmp / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "DAMDP_SMOKE": "1", "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
    env.pop("MPLBACKEND", None)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.token={token}", "--notebook-dir=notebooks"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    SHOTS.mkdir(exist_ok=True)
    log = open(SHOTS / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}: "
                            f"{(SHOTS / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                api(base, token, "GET", "/api/status")
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("jupyter lab did not answer within 60 s (see screenshots/jupyterlab.log)")
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def api(base: str, token: str, method: str, path: str):
    req = urllib.request.Request(base + path, method=method,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the Python package playwright is not installed "
        "(make browser installs the pinned version)")
    path = find_chromium()
    if path is None:
        why = os.environ.get("DAMDP_CHROMIUM_STATUS") or "run `make browser`, which installs it"
        pytest.skip(f"no Chromium found ({why})")
    SHOTS.mkdir(exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()
    (SHOTS / "report.json").write_text(json.dumps(report, indent=2) + "\n")


def prompts(page) -> list[str]:
    return page.eval_on_selector_all(PROMPTS, "els => els.map(e => e.textContent.trim())")


def menu(page, top: str, command: str) -> None:
    page.click(f".lm-MenuBar-item:has-text('{top}')")
    page.click(f".lm-Menu-item[data-command='{command}']")


def run_all(page, n_code: int, timeout_s: float) -> None:
    """Clear the stored outputs, Run > Run All Cells, and wait until the kernel is idle with no
    cell queued ([*]); a failed cell stops the run, leaving the cells after it unnumbered."""
    page.wait_for_function(f"document.querySelectorAll('{CODE}').length === {n_code}",
                           timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=120_000)
    menu(page, "Edit", "editmenu:clear-all")
    assert all(p == "[ ]:" for p in prompts(page)), prompts(page)
    menu(page, "Run", "runmenu:run-all")
    page.wait_for_function(  # started: a cell is queued or done
        f"[...document.querySelectorAll('{PROMPTS}')].some(e => /\\[(\\*|\\d+)\\]/.test("
        f"e.textContent))", timeout=60_000)
    finished = f"""() => {{
        const ps = [...document.querySelectorAll('{PROMPTS}')].map(e => e.textContent);
        const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
        return !ps.some(t => t.includes('*')) && ind && ind.dataset.status === 'idle'
            || document.querySelector('.jp-Dialog') !== null;
    }}"""
    page.wait_for_function(finished, timeout=timeout_s * 1000, polling=500)
    time.sleep(1.0)  # outputs of the last cell and widget views settle
    page.wait_for_function(finished, timeout=30_000, polling=250)


def output_problems(page) -> list[str]:
    """Tracebacks, errors, dialogs and widgets shown as text instead of as widgets."""
    problems = []
    dialog = page.query_selector(".jp-Dialog")
    if dialog is not None:
        problems.append(f"dialog: {dialog.text_content()[:300]}")
    for text in page.eval_on_selector_all(
            '.jp-NotebookPanel .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]',
            "els => els.map(e => e.textContent)"):
        if ERROR_LINE.search(text):
            problems.append(f"error output: {text.strip()[:600]}")
    for text in page.eval_on_selector_all(
            '.jp-NotebookPanel .jp-RenderedText[data-mime-type="text/plain"]',
            "els => els.map(e => e.textContent)"):
        if WIDGET_REPR.match(text.strip()):
            problems.append(f"a widget shown as text, not as a widget: {text.strip()[:200]}")
    for text in page.eval_on_selector_all(".jp-NotebookPanel .jp-OutputArea-output",
                                          "els => els.map(e => e.textContent)"):
        if "Error displaying widget" in text or "model not found" in text:
            problems.append(f"widget failed to display: {text.strip()[:200]}")
    return problems


def widget_counts(page, classes) -> dict[str, int]:
    return {c: page.locator(f".jp-NotebookPanel .jupyter-widgets.{c}"
                            if c != "jupyter-widgets" else ".jp-NotebookPanel .jupyter-widgets"
                            ).count() for c in classes}


def cut_off_labels(page) -> list[str]:
    """Descriptions that do not fit their label (shown with an ellipsis)."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel label.widget-label",
        "els => els.filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => `${e.textContent} (${e.scrollWidth}px in ${e.clientWidth}px)`)")


def set_control(panel, name: str, value) -> None:
    """Give the panel's control described `name` a value as a reader would: type it into a
    slider's readout ('min': the slider's minimum) or pick it in a dropdown."""
    box = panel.locator(f".widget-inline-hbox:has(> label.widget-label:text-is('{name}'))")
    assert box.count() == 1, f"no control {name!r} in the panel"
    if box.locator("select").count():
        box.locator("select").select_option(str(value))
        return
    if value == "min":
        value = box.locator(".noUi-handle").get_attribute("aria-valuemin")
        value = str(int(float(value))) if float(value).is_integer() else value
    readout = box.locator(".widget-readout")
    readout.click()
    readout.press("Control+A")
    readout.type(str(value))
    readout.press("Enter")
    panel.page.wait_for_function("([el, v]) => Number(el.textContent.replace(/,/g, '')) "
                                 "=== Number(v)", arg=[readout.element_handle(), str(value)],
                                 timeout=10_000)


def train_panel(page, panel, spec: dict, shot: Path) -> dict:
    """Set the panel's controls, click Train, and wait for the status line to say how it ended;
    returns what the status line showed meanwhile and how long it took."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for name, value in spec.get("set", {}).items():
        set_control(panel, name, value)
    status = panel.locator(STATUS)
    output = panel.locator(".widget-output")
    assert output.locator("img").count() == 0, "the output area is not empty before Train"
    panel.evaluate("""el => {
        const s = el.querySelector(':scope > .widget-hbox > div.widget-label');
        el.__seen = [];
        new MutationObserver(() => el.__seen.push(s.textContent))
            .observe(s, {subtree: true, childList: true, characterData: true});
    }""")
    t0 = time.time()
    panel.locator(".widget-hbox > button:text-is('Train')").click()
    try:  # a picture of the bar mid-way, when the run is not over before it can be taken
        page.wait_for_function("el => /iterations/.test(el.textContent)",
                               arg=status.element_handle(), timeout=10_000, polling=100)
        panel.screenshot(path=str(shot.with_name(shot.stem + "_training.png")))
    except PlaywrightTimeout:
        pass
    page.wait_for_function("el => /^(done|failed)/.test(el.textContent)",
                           arg=status.element_handle(), timeout=spec["timeout_s"] * 1000,
                           polling=250)
    page.wait_for_function("el => el.querySelector('img') !== null || /^failed/.test("
                           "el.parentElement.querySelector('div.widget-label').textContent)",
                           arg=output.element_handle(), timeout=30_000)
    seconds = time.time() - t0
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(shot))
    seen = panel.evaluate("el => el.__seen")
    final = status.text_content()
    assert final.startswith("done in "), f"training failed: {final}; output: " \
        f"{output.text_content()[:800]}"
    progress = [t for t in seen if re.match(r"^\d+/\d+ iterations", t)]
    assert progress, f"no progress was shown while training (status lines: {seen})"
    assert output.locator("img").count() >= 1, "the output area did not gain the figure"
    assert panel.locator(".widget-hbox > button").is_enabled()
    return {"seconds": round(seconds, 1), "status": final, "progress_lines": len(progress),
            "last_progress": progress[-1]}


def test_manifest_lists_every_notebook():
    assert sorted(MANIFEST) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_notebook_runs_in_jupyterlab(name, lab, browser):
    base, token = lab
    spec = MANIFEST[name]
    n_code = sum(c["cell_type"] == "code"
                 for c in json.loads((NOTEBOOKS / name).read_text())["cells"])
    stem = Path(name).stem
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    entry = report.setdefault(name, {})
    try:
        t0 = time.time()
        # a workspace of its own: nothing else open, a fresh kernel
        page.goto(f"{base}/lab/workspaces/{stem}/tree/{name}?reset&token={token}")
        run_all(page, n_code, spec["timeout_s"])
        entry["run_all_s"] = round(time.time() - t0, 1)
        page.screenshot(path=str(SHOTS / f"{stem}.png"))
        got = prompts(page)
        problems = output_problems(page)
        assert not problems, "\n".join(problems)
        assert got == [f"[{i}]:" for i in range(1, n_code + 1)], \
            f"not every code cell ran, in order, on the fresh kernel: {got}"
        counts = widget_counts(page, ["jupyter-widgets", "widget-slider", "widget-dropdown",
                                      "widget-button", "widget-output", "widget-hprogress"])
        entry["widgets"] = counts
        short = {c: f"{counts[c]} < {n}" for c, n in spec["widgets"].items() if counts[c] < n}
        assert not short, f"widgets not rendered as widgets: {short}"
        assert not cut_off_labels(page), f"descriptions cut off: {cut_off_labels(page)}"
        panels = page.locator(PANEL)
        assert panels.count() == len(spec["panels"]), \
            f"{panels.count()} training panels, the manifest lists {len(spec['panels'])}"
        entry["panels"] = [train_panel(page, panels.nth(i), p, SHOTS / f"{stem}_panel{i}.png")
                           for i, p in enumerate(spec["panels"])]
        problems = output_problems(page)
        assert not problems, "\n".join(problems)
        entry["total_s"] = round(time.time() - t0, 1)
    except BaseException:
        page.screenshot(path=str(SHOTS / f"{stem}_failed.png"))
        raise
    finally:
        page.close()
        for session in api(base, token, "GET", "/api/sessions") or []:
            api(base, token, "DELETE", f"/api/sessions/{session['id']}")  # and its kernel


def test_running_them_changed_no_file_under_notebooks(lab, browser, notebooks_before):
    after = hash_notebooks_dir()
    changed = sorted(k for k in set(after) | set(notebooks_before)
                     if after.get(k) != notebooks_before.get(k))
    assert not changed, f"running the notebooks changed files git does not ignore: {changed}"
