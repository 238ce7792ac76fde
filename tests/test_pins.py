"""Keep pyproject.toml, environment.yml, binder/, the Makefile and the CI entry point in agreement.

pyproject.toml has two lists: `[project].dependencies`, the ranges a plain `pip install damdp-lite`
asks for (what Colab resolves against its preinstalled torch, NumPy, ...), and the `pinned` extra,
the exact `name==version` of every one of them that `make install` installs. Here: every range has
its pin and admits it, torch's range starts at `damdp_lite.MIN_TORCH`, and the conda files list
exactly the pins.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
ENV_YML = ROOT / "environment.yml"
BINDER_YML = ROOT / "binder" / "environment.yml"
POSTBUILD = ROOT / "binder" / "postBuild"
CI_RUN = ROOT / ".ci" / "run"
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
IMPORT_CHECKS = ROOT / "damdp_lite" / "_import_checks.py"

# name, optional [extras], "==", version -- nothing else (no markers, no ranges).
PIN_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?==(?P<ver>[^\s;,=<>!~]+)$"
)


def _name(requirement: str) -> str:
    """Normalised project name of a requirement string ('gymnasium[mujoco]==1' -> 'gymnasium')."""
    return canonicalize_name(Requirement(requirement).name)


def _pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def _ranges() -> list[str]:
    return list(_pyproject()["project"]["dependencies"])


def _runtime_pins() -> list[str]:
    return list(_pyproject()["project"]["optional-dependencies"]["pinned"])


def _dev_pins() -> list[str]:
    return list(_pyproject()["project"]["optional-dependencies"]["dev"])


def _pin_version(pin: str) -> Version:
    return Version(PIN_RE.match(pin.strip()).group("ver"))


def _load_yaml(path: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), f"{path.relative_to(ROOT)}: top level is not a mapping"
    return data


def _conda_deps(path: Path) -> list:
    deps = _load_yaml(path).get("dependencies")
    assert isinstance(deps, list), f"{path.relative_to(ROOT)}: 'dependencies' is not a list"
    return deps


def _pip_section(path: Path) -> list[str]:
    sections = [d["pip"] for d in _conda_deps(path) if isinstance(d, dict) and "pip" in d]
    rel = path.relative_to(ROOT)
    assert len(sections) == 1, f"{rel}: expected exactly one 'pip:' section, found {len(sections)}"
    entries = sections[0]
    assert isinstance(entries, list), f"{rel}: the 'pip:' section is not a list"
    bad = [e for e in entries if not isinstance(e, str)]
    assert not bad, f"{rel}: non-string entries in the 'pip:' section: {bad!r}"
    return [e.strip() for e in entries]


def _assert_no_duplicates(entries: list[str], where: str) -> None:
    seen: set[str] = set()
    dupes = [e for e in entries if e in seen or seen.add(e)]
    assert not dupes, f"{where}: duplicate entries {dupes!r}"


# (a) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["pinned", "dev"])
def test_every_extra_entry_is_exactly_pinned(group: str) -> None:
    pins = _runtime_pins() if group == "pinned" else _dev_pins()
    assert pins, f"pyproject.toml: the [{group}] extra is empty"
    unpinned = [p for p in pins if not PIN_RE.match(p.strip())]
    assert not unpinned, (
        f"pyproject.toml: these [{group}] entries are not exact 'name==version' pins: {unpinned!r}"
    )
    _assert_no_duplicates(pins, f"pyproject.toml [{group}]")
    names = [_name(p) for p in pins]
    _assert_no_duplicates(names, f"pyproject.toml [{group}] project names")


def test_dependencies_are_ranges_with_a_lower_bound() -> None:
    """A plain install keeps a preinstalled package whenever it is recent enough: no exact pins,
    and a lower bound on each (what the suite was tested with)."""
    ranges = _ranges()
    assert ranges, "pyproject.toml: [project].dependencies is empty"
    _assert_no_duplicates([_name(r) for r in ranges], "pyproject.toml [project].dependencies")
    exact = [r for r in ranges if PIN_RE.match(r.strip())]
    assert not exact, (
        f"pyproject.toml: [project].dependencies must be ranges; exact pins belong in the "
        f"'pinned' extra: {exact!r}"
    )
    no_floor = [r for r in ranges
                if not any(s.operator in (">=", "~=") for s in Requirement(r).specifier)]
    assert not no_floor, f"pyproject.toml: dependencies without a lower bound (>=): {no_floor!r}"


def test_jupyterlab_is_not_a_base_dependency() -> None:
    """A kernel that already runs (Colab, Binder, your Jupyter) needs no JupyterLab."""
    assert "jupyterlab" not in {_name(r) for r in _ranges()}, (
        "pyproject.toml: jupyterlab belongs in the 'pinned' extra only, not in dependencies"
    )


# (b) ---------------------------------------------------------------------------------------


def test_every_dependency_has_a_pin_that_its_range_admits() -> None:
    pins = {_name(p): p for p in _runtime_pins()}
    missing = [r for r in _ranges() if _name(r) not in pins]
    assert not missing, (
        f"pyproject.toml: dependencies without an exact pin in 'pinned': {missing!r}"
    )
    refused = []
    for r in _ranges():
        req, pin = Requirement(r), Requirement(pins[_name(r)])
        if not req.specifier.contains(_pin_version(pins[_name(r)]), prereleases=True):
            refused.append(f"{r} does not admit {pins[_name(r)]}")
        if req.extras != pin.extras:
            refused.append(f"{r} and {pins[_name(r)]} name different extras")
    assert not refused, "pyproject.toml: " + "; ".join(refused)


def test_torch_is_pinned_to_2_13_0_and_its_range_starts_at_min_torch() -> None:
    torch = [p for p in _runtime_pins() if _name(p) == "torch"]
    assert torch == ["torch==2.13.0"], (
        f"pyproject.toml: 'pinned' must hold exactly 'torch==2.13.0', found {torch!r}"
    )
    m = re.search(r'^MIN_TORCH = "([0-9.]+)"', IMPORT_CHECKS.read_text(), re.MULTILINE)
    assert m, f"{IMPORT_CHECKS.relative_to(ROOT)}: no MIN_TORCH = \"X.Y\" line"
    (torch_range,) = [r for r in _ranges() if _name(r) == "torch"]
    floors = [s.version for s in Requirement(torch_range).specifier if s.operator == ">="]
    assert floors and Version(floors[0]) == Version(m.group(1)), (
        f"pyproject.toml: {torch_range!r} must start at damdp_lite.MIN_TORCH ({m.group(1)}), "
        "the version checked at import"
    )


def test_make_install_installs_the_pins() -> None:
    text = MAKEFILE.read_text(encoding="utf-8")
    assert re.search(r'pip install -e "\.\[pinned,dev\]"', text), (
        'Makefile: the install stamp must run `pip install -e ".[pinned,dev]"` (exact pins)'
    )


def test_the_simulator_pins_fit_together() -> None:
    """dm-control (the DeepMind Control tasks, through shimmy) loads only under the MuJoCo it
    was built for: the mujoco range stops below 4.0 (dm-control 1.0.50 fails under mujoco 4.0:
    `MjModel` has no `flex_vertedge`), and the installed dm-control and shimmy, where they are
    the pinned ones, accept the pinned mujoco and gymnasium."""
    from importlib.metadata import PackageNotFoundError, distribution

    pins = {_name(p): p for p in _runtime_pins()}
    missing = [n for n in ("mujoco", "dm-control", "shimmy") if n not in pins]
    assert not missing, f"pyproject.toml: 'pinned' lacks {missing!r}"
    (mujoco_range,) = [r for r in _ranges() if _name(r) == "mujoco"]
    assert not Requirement(mujoco_range).specifier.contains("4.0.0"), (
        f"pyproject.toml: {mujoco_range!r} admits mujoco 4.0, under which dm-control 1.0.50 fails"
    )
    checked = []
    for dist_name, needs in (("dm-control", "mujoco"), ("shimmy", "gymnasium")):
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            continue
        if Version(dist.version) != _pin_version(pins[dist_name]):
            continue
        wanted = [Requirement(r) for r in dist.requires or []]
        wanted = [r for r in wanted if _name(str(r)) == needs and r.marker is None]
        assert wanted, f"{dist_name} {dist.version} does not require {needs}"
        for req in wanted:
            assert req.specifier.contains(_pin_version(pins[needs]), prereleases=True), (
                f"{dist_name} {dist.version} requires {req}, which refuses the pin {pins[needs]}"
            )
        checked.append(dist_name)
    if not checked:
        pytest.skip("neither dm-control nor shimmy is installed at its pinned version here")


# (c) ---------------------------------------------------------------------------------------


def test_environment_yml_pins_match_pyproject_pinned_and_dev() -> None:
    entries = _pip_section(ENV_YML)
    pins = [e for e in entries if e != "-e ."]
    assert "-e ." in entries, (
        "environment.yml: the 'pip:' section must install the package with '-e .'"
    )
    _assert_no_duplicates(pins, "environment.yml pip section")
    expected = set(_runtime_pins()) | set(_dev_pins())
    missing = sorted(expected - set(pins))
    extra = sorted(set(pins) - expected)
    assert not missing, f"environment.yml: pins from pyproject.toml missing in 'pip:': {missing!r}"
    assert not extra, (
        f"environment.yml: pins in 'pip:' not in pyproject.toml (or differing): {extra!r}"
    )


# (d) ---------------------------------------------------------------------------------------


def test_binder_environment_yml_has_exactly_the_pinned_extra() -> None:
    entries = _pip_section(BINDER_YML)
    editable = [e for e in entries if e.startswith("-e") or e.startswith("--editable")]
    assert not editable, (
        f"binder/environment.yml: no editable installs in 'pip:' (postBuild does it): {editable!r}"
    )
    pins = [e for e in entries if not e.startswith("--")]
    _assert_no_duplicates(pins, "binder/environment.yml pip section")

    dev_names = {_name(p) for p in _dev_pins()}
    dev_found = [p for p in pins if _name(p) in dev_names]
    assert not dev_found, f"binder/environment.yml: dev tools must not be installed: {dev_found!r}"

    expected = set(_runtime_pins())
    missing = sorted(expected - set(pins))
    extra = sorted(set(pins) - expected)
    assert not missing, f"binder/environment.yml: runtime pins missing in 'pip:': {missing!r}"
    assert not extra, (
        f"binder/environment.yml: pins in 'pip:' not in pyproject's 'pinned' extra: {extra!r}"
    )


# (e) ---------------------------------------------------------------------------------------


def _requires_python_lower_bound() -> tuple[int, ...]:
    spec = _pyproject()["project"]["requires-python"].strip()
    m = re.fullmatch(r">=\s*(\d+(?:\.\d+)*)", spec)
    assert m, f"pyproject.toml: cannot parse requires-python {spec!r} (expected '>=X.Y')"
    return tuple(int(x) for x in m.group(1).split("."))


@pytest.mark.parametrize("path", [ENV_YML, BINDER_YML], ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_python_pin_satisfies_requires_python(path: Path) -> None:
    rel = path.relative_to(ROOT)
    pythons = [d for d in _conda_deps(path) if isinstance(d, str) and re.match(r"python\b", d)]
    assert pythons == ["python=3.11"], f"{rel}: expected a single 'python=3.11', found {pythons!r}"
    version = tuple(int(x) for x in pythons[0].split("=", 1)[1].split("."))
    lower = _requires_python_lower_bound()
    assert version >= lower, (
        f"{rel}: {pythons[0]!r} does not satisfy pyproject.toml requires-python "
        f">={'.'.join(map(str, lower))}"
    )


# (f) ---------------------------------------------------------------------------------------


def test_binder_postbuild_installs_package_without_deps() -> None:
    assert POSTBUILD.is_file(), "binder/postBuild is missing"
    text = POSTBUILD.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text, "binder/postBuild: missing 'set -euo pipefail'"
    assert "pip install --no-deps -e ." in text, (
        "binder/postBuild: must run 'pip install --no-deps -e .' (deps come from environment.yml)"
    )
    if os.name == "posix":
        assert os.access(POSTBUILD, os.X_OK), "binder/postBuild: not executable (chmod +x)"


# (g) ---------------------------------------------------------------------------------------


def test_ci_run_calls_make_test() -> None:
    assert CI_RUN.is_file(), ".ci/run is missing"
    text = CI_RUN.read_text(encoding="utf-8")
    assert re.search(r"^\s*make test\s*$", text, re.MULTILINE), ".ci/run: must call 'make test'"
    assert "set -euo pipefail" in text, ".ci/run: missing 'set -euo pipefail'"
    if os.name == "posix":
        assert os.access(CI_RUN, os.X_OK), ".ci/run: not executable (chmod +x)"


def test_readme_documents_make_test() -> None:
    if not README.is_file():
        pytest.skip("README.md not present yet")
    text = README.read_text(encoding="utf-8")
    assert "make test" in text, "README.md: the documented test command 'make test' is missing"
