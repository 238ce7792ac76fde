#!/bin/bash
# Checks the Binder set-up as far as a machine without Docker or conda can:
#
#   1. a clean copy of the repository (the working tree as git would commit it; --head: a clone
#      of HEAD);
#   2. a fresh venv from binder/environment.yml's pins, with pip (conda-forge only adds
#      python=3.11 and pip there, so pip installs exactly what Binder's build installs);
#   3. binder/postBuild, run as Binder runs it;
#   4. the installed size of that environment, against SIZE_LIMIT_MB;
#   5. every notebook executed in it (DAMDP_SMOKE=1, MUJOCO_GL=egl; --full: full mode) while the
#      resident memory of the whole process tree (the executing process standing in for the
#      Jupyter server, the kernel, its children) is sampled every 0.1 s, against MEM_LIMIT_MB;
#   6. `repo2docker --no-build` (pip-installed into a venv of its own), which needs no Docker:
#      the binder/ files must parse, and the Dockerfile it writes must install binder/apt.txt's
#      packages, use binder/environment.yml and run binder/postBuild.
#
# Limits (override with the environment variables):
#   MEM_LIMIT_MB=2048   mybinder.org gives a session 2 GB of memory at most (1 GB guaranteed).
#   SIZE_LIMIT_MB=2500  our own budget for the environment, not a Binder rule (Binder has no
#                       hard image-size limit, but big images build and start slowly): the CPU
#                       torch wheel is most of it; a CUDA torch, which brings ~4 GB of nvidia
#                       wheels, would break it - the mistake this check is for.
#
# Usage: bash binder/check.sh [--head] [--full] [--keep]   (about 4-6 min on 2 cores, most of it
# pip downloading; exits 1 when a check fails). Needs python3.11 (PYTHON=...) and network access
# to the package index. Work files go to a temporary folder (kept with --keep).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3.11}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-2048}
SIZE_LIMIT_MB=${SIZE_LIMIT_MB:-2500}
REPO2DOCKER_VERSION=${REPO2DOCKER_VERSION:-2026.4.0}
SOURCE=worktree SMOKE=1 KEEP=0
for arg in "$@"; do
  case "$arg" in
    --head) SOURCE=head ;;
    --full) SMOKE=0 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: bash binder/check.sh [--head] [--full] [--keep]" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d -t binder-check.XXXXXX)
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
FAILED=0
say() { echo "binder-check: $*"; }
fail() { echo "binder-check: FAIL: $*"; FAILED=1; }
elapsed() { echo "$(( $(date +%s) - START )) s"; }

# 1. a clean copy
REPO="$WORK/repo"
if [ "$SOURCE" = head ]; then
  git clone --quiet --depth 1 "file://$ROOT" "$REPO"
  say "source: clone of HEAD ($(git -C "$REPO" rev-parse --short HEAD))"
else
  mkdir -p "$REPO"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | xargs -0 cp --parents -t "$REPO")
  say "source: the working tree as git would commit it ($(find "$REPO" -type f | wc -l) files)"
fi

# 2. the environment, from binder/environment.yml's pins
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { fail "PYTHON=$PYTHON is not Python 3.11, which binder/environment.yml pins"; exit 1; }
ENV="$WORK/env"
"$PYTHON" -m venv "$ENV"
"$ENV/bin/python" - "$REPO/binder/environment.yml" "$WORK/requirements.txt" <<'PY'
import sys, urllib.request
lines, out, in_pip = open(sys.argv[1]).read().splitlines(), [], False
for line in lines:
    text = line.split("#", 1)[0].rstrip()
    if text.strip() == "- pip:":
        in_pip = True
        continue
    if in_pip and text.strip().startswith("- "):
        out.append(text.strip()[2:].strip())
    elif in_pip and text.strip():
        in_pip = False
assert out, "binder/environment.yml has no pip section"
for i, req in enumerate(out):
    if req.startswith("--extra-index-url"):
        url = req.split()[1]
        try:
            urllib.request.urlopen(url, timeout=10)
        except OSError as err:
            print(f"binder-check: {url} cannot be reached here ({type(err).__name__}); "
                  f"installing without it (Binder uses it)")
            out[i] = ""
open(sys.argv[2], "w").write("\n".join(r for r in out if r) + "\n")
PY
say "installing $(grep -c '==' "$WORK/requirements.txt") pinned packages into a fresh venv ..."
t0=$(date +%s)
"$ENV/bin/python" -m pip install -q -r "$WORK/requirements.txt" 2>&1 | grep -v "^WARNING: Location" || true
"$ENV/bin/python" -c "import torch, mujoco, gymnasium, ipywidgets, jupyterlab" \
  || { fail "the pinned environment did not install"; exit 1; }
say "pip install: $(( $(date +%s) - t0 )) s; torch $("$ENV/bin/python" -c 'import torch; print(torch.__version__)')"

# 3. postBuild, as Binder runs it: from the repository root, the environment first on PATH
(cd "$REPO" && PATH="$ENV/bin:$PATH" bash binder/postBuild >/dev/null) \
  && say "binder/postBuild: ok" || fail "binder/postBuild failed"
(cd "$WORK" && "$ENV/bin/python" -c "import damdp_lite, sys; sys.exit(not damdp_lite.__file__.startswith('$REPO'))") \
  || fail "after postBuild, damdp_lite is not imported from the repository copy"

# 4. installed size
SIZE_MB=$(du -sm "$ENV" | cut -f1)
say "environment size: $SIZE_MB MB (limit $SIZE_LIMIT_MB MB); largest: $(du -sm "$ENV"/lib/python3.11/site-packages/* | sort -rn | head -n 4 | awk '{printf "%s %s MB, ", $2, $1}' | sed "s#$ENV/lib/python3.11/site-packages/##g; s/, \$//")"
[ "$SIZE_MB" -le "$SIZE_LIMIT_MB" ] || fail "the environment takes $SIZE_MB MB > $SIZE_LIMIT_MB MB"

# 5. every notebook, with the memory of the process tree sampled
mkdir -p "$WORK/jupyter-data" "$WORK/jupyter-config"
(cd "$REPO/notebooks" && DAMDP_SMOKE=$SMOKE MUJOCO_GL=egl OMP_NUM_THREADS=1 \
  JUPYTER_DATA_DIR="$WORK/jupyter-data" JUPYTER_CONFIG_DIR="$WORK/jupyter-config" \
  "$ENV/bin/python" - "$MEM_LIMIT_MB" 2> >(grep -v "Kernel is running over TCP" >&2) <<'PY') \
  || FAILED=1
import glob, sys, threading, time
import nbformat, psutil
from nbclient import NotebookClient

limit_mb, me, peak_all = float(sys.argv[1]), psutil.Process(), 0.0
print(f"binder-check: notebooks (DAMDP_SMOKE={__import__('os').environ['DAMDP_SMOKE']}), "
      f"peak resident memory of the process tree (limit {limit_mb:.0f} MB):")
failed = False
for path in sorted(glob.glob("*.ipynb")):
    peak = {"tree": 0.0, "kernel": 0.0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            procs = [me, *me.children(recursive=True)]
            rss = {}
            for p in procs:
                try:
                    rss[p.pid] = (p.memory_info().rss, " ".join(p.cmdline()))
                except psutil.Error:
                    pass
            peak["tree"] = max(peak["tree"], sum(r for r, _ in rss.values()) / 2**20)
            kern = [r for r, cmd in rss.values() if "ipykernel" in cmd]
            peak["kernel"] = max(peak["kernel"], max(kern, default=0) / 2**20)
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    nb, t0, err = nbformat.read(path, as_version=4), time.time(), ""
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": "."}}).execute()
    except Exception as e:  # noqa: BLE001 - report any failure of a cell in one line
        err = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''}"
    done.set()
    thread.join()
    peak_all = max(peak_all, peak["tree"])
    ok = not err and peak["tree"] <= limit_mb
    failed |= not ok
    print(f"binder-check:   {path:30s} {time.time() - t0:5.0f} s  kernel {peak['kernel']:5.0f} MB  "
          f"tree {peak['tree']:5.0f} MB  {'ok' if ok else 'FAIL ' + (err or 'over the limit')}")
print(f"binder-check: peak memory {peak_all:.0f} MB of {limit_mb:.0f} MB")
sys.exit(1 if failed else 0)
PY

# 6. repo2docker --no-build
R2D="$WORK/r2d"
"$PYTHON" -m venv "$R2D"
if "$R2D/bin/python" -m pip install -q "jupyter-repo2docker==$REPO2DOCKER_VERSION" 2>/dev/null; then
  if "$R2D/bin/repo2docker" --no-build --no-run --debug "$REPO" >"$WORK/dockerfile.txt" 2>&1; then
    apt=$( { sed 's/#.*//' "$REPO/binder/apt.txt" 2>/dev/null || true; } | tr -s ' \n' '\n' \
           | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
    install=$(grep -m1 'apt-get install --yes --no-install-recommends' "$WORK/dockerfile.txt" || true)
    if [ -z "$apt" ]; then
      fail "binder/apt.txt is missing or empty (MuJoCo's off-screen rendering needs its libraries)"
    fi
    for pkg in $apt; do
      [[ " $install " == *" $pkg "* ]] \
        || fail "repo2docker's Dockerfile does not apt-get install $pkg (binder/apt.txt)"
    done
    grep -q 'binder/environment.yml' "$WORK/dockerfile.txt" \
      || fail "repo2docker's Dockerfile does not use binder/environment.yml"
    grep -q 'binder/postBuild' "$WORK/dockerfile.txt" \
      || fail "repo2docker's Dockerfile does not run binder/postBuild"
    say "repo2docker $REPO2DOCKER_VERSION --no-build: ok ($(grep -m1 '^FROM' "$WORK/dockerfile.txt"), conda env from binder/environment.yml, apt: $apt, postBuild)"
  else
    fail "repo2docker --no-build failed: $(tail -n 1 "$WORK/dockerfile.txt")"
  fi
else
  say "repo2docker: pip could not install jupyter-repo2docker==$REPO2DOCKER_VERSION; not checked"
fi

if [ "$FAILED" = 0 ]; then say "all checks passed in $(elapsed)"; else say "FAILED after $(elapsed)"; fi
exit "$FAILED"
