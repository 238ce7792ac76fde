"""The real-browser tests run only from `make browser` (DAMDP_BROWSER=1): they need Chromium and
the `playwright` package and take minutes, so `make unit` (pytest tests/) does not collect them.
(This folder is a package, `browser`, so that this file does not shadow tests/conftest.py.)"""

import os

collect_ignore_glob = [] if os.environ.get("DAMDP_BROWSER") == "1" else ["test_*.py"]
