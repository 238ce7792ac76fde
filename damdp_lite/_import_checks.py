"""Checks run once when `damdp_lite` is imported (its `__init__` imports this module first), each
failing with one line that says what was found, what is needed and what to do:

- a package that this Python process had already imported was since replaced on disk by pip
  (Colab's `%pip install` in a kernel that imported NumPy at start): the old copy stays loaded and
  extensions built for the new one fail later in confusing ways (a NumPy ABI error inside SciPy);
- torch is older than `MIN_TORCH`, the oldest version the suite is tested with.

Both are cheap: a few `importlib.metadata` look-ups and a string comparison; nothing is imported
that `damdp_lite` would not import anyway.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MIN_TORCH = "2.13"
"""The oldest torch the suite is tested with; pyproject.toml requires `torch>=2.13`."""

WATCHED = (("torch", "torch"), ("numpy", "numpy"), ("scipy", "scipy"),
           ("matplotlib", "matplotlib"), ("pandas", "pandas"), ("PIL", "pillow"),
           ("ipywidgets", "ipywidgets"))
"""(module, distribution) pairs that a kernel may have imported before `pip install damdp-lite`
and that pip would replace if their version were outside pyproject.toml's ranges."""


def replaced_after_import(watched: tuple[tuple[str, str], ...] = WATCHED) -> list[str]:
    """`["numpy 2.0.2 -> 2.4.6", ...]`: the watched modules already imported whose distribution,
    installed in the same place, now has another version (pip replaced the files after the
    import). A module loaded from elsewhere than its installed distribution is not judged."""
    loaded_now = [pair for pair in watched if pair[0] in sys.modules]
    if not loaded_now:  # the usual case: damdp_lite imports them itself
        return []
    from importlib import metadata

    replaced = []
    for module, dist in loaded_now:
        loaded = sys.modules.get(module)
        have, where = getattr(loaded, "__version__", None), getattr(loaded, "__file__", None)
        if have is None or where is None:
            continue
        try:
            installed = metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            continue
        same_place = Path(installed.locate_file(module)).resolve() == Path(where).parent.resolve()
        if same_place and str(have) != installed.version:
            replaced.append(f"{dist} {have} -> {installed.version}")
    return replaced


def check_replaced_after_import() -> None:
    """`ImportError` (one line) naming the packages pip replaced after they were imported."""
    replaced = replaced_after_import()
    if replaced:
        raise ImportError(
            f"pip replaced {', '.join(replaced)} after this Python process had imported the old "
            "version; restart the kernel (Colab: Runtime > Restart session) and run this again")


def check_torch(version: str) -> None:
    """`ImportError` (one line) unless `version` (e.g. `torch.__version__`, "2.13.0+cpu") is at
    least `MIN_TORCH`; only major.minor is compared."""
    found = re.match(r"(\d+)\.(\d+)", version)
    needed = tuple(int(x) for x in MIN_TORCH.split("."))
    if found is None or tuple(int(x) for x in found.groups()) < needed:
        raise ImportError(
            f"damdp_lite needs torch>={MIN_TORCH}, found torch {version}; install a newer one "
            f"(pip install 'torch>={MIN_TORCH}') and restart Python")


check_replaced_after_import()  # before torch and the rest are imported

import torch  # noqa: E402  (the package imports it next anyway)

check_torch(torch.__version__)
