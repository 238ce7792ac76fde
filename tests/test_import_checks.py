"""The checks `import damdp_lite` runs first (`damdp_lite/_import_checks.py`): torch at least
`MIN_TORCH`, and no package replaced by pip after it was imported (Colab's `%pip install` in a
kernel that imported NumPy at start). Each fails with one line saying what to do."""

import subprocess
import sys
import types

import numpy
import pytest

import damdp_lite
from damdp_lite import _import_checks as checks


@pytest.mark.parametrize("version", ["2.13.0", "2.13.0+cpu", "2.13.1+cu130", "2.14.0a0+git1234",
                                     "3.0.0"])
def test_torch_at_least_min_torch_passes(version: str) -> None:
    assert checks.check_torch(version) is None  # no ImportError


@pytest.mark.parametrize("version", ["2.12.1+cu121", "2.9.0", "1.13.1", "nightly"])
def test_older_torch_fails_with_one_line(version: str) -> None:
    with pytest.raises(ImportError) as err:
        checks.check_torch(version)
    message = str(err.value)
    assert "\n" not in message
    assert f"torch {version}" in message and f"torch>={damdp_lite.MIN_TORCH}" in message
    assert "pip install" in message and "restart" in message


def test_min_torch_is_exported() -> None:
    assert damdp_lite.MIN_TORCH == checks.MIN_TORCH == "2.13"


def test_nothing_replaced_in_this_process() -> None:
    assert checks.replaced_after_import() == []


def test_a_module_older_than_its_installed_files_is_named(monkeypatch) -> None:
    """numpy's files on disk are this environment's; a loaded module claiming 1.26.0 from the
    same folder is what Colab has after pip replaced NumPy under a running kernel."""
    stale = types.SimpleNamespace(__version__="1.26.0", __file__=numpy.__file__)
    monkeypatch.setitem(sys.modules, "numpy", stale)
    assert checks.replaced_after_import() == [f"numpy 1.26.0 -> {numpy.__version__}"]
    with pytest.raises(ImportError) as err:
        checks.check_replaced_after_import()
    message = str(err.value)
    assert "\n" not in message and "numpy 1.26.0 -> " in message
    assert "Runtime > Restart session" in message


def test_a_module_loaded_from_elsewhere_is_not_judged(monkeypatch, tmp_path) -> None:
    other = types.SimpleNamespace(__version__="1.26.0", __file__=str(tmp_path / "numpy" / "x.py"))
    monkeypatch.setitem(sys.modules, "numpy", other)
    assert checks.replaced_after_import() == []


def test_import_stops_at_an_old_torch_before_anything_else() -> None:
    """End to end, in a fresh interpreter: a torch 2.9 in `sys.modules` stops `import damdp_lite`
    with the one-line message, before the package imports NumPy or SciPy itself."""
    code = ("import sys, types\n"
            "sys.modules['torch'] = types.SimpleNamespace(__version__='2.9.0+cu126')\n"
            "try:\n"
            "    import damdp_lite\n"
            "except ImportError as err:\n"
            "    print(err)\n"
            "    print('scipy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [
        "damdp_lite needs torch>=2.13, found torch 2.9.0+cu126; install a newer one "
        "(pip install 'torch>=2.13') and restart Python",
        "False",
    ]
