#!/bin/bash
# Installs a one-node SLURM (slurmctld, slurmd, the clients) and munge from the Debian packages,
# for tests/test_slurm_cluster.py (harness: tests/slurm_cluster.py). Idempotent and quiet: one
# line of output. When it cannot install (not root, no apt-get, apt-get fails) it says so in
# that line and exits 0: the SLURM tests then skip with their own one-line reason.
# Measured on Debian 12 (SLURM 22.05.8, munge 0.5.15): 43 packages, about 10 MB of downloads.
set -u
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(slurm-wlm munge)
NEEDED=(slurmctld slurmd sinfo sbatch squeue scancel srun munged munge unmunge)

have() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }

missing=()
for bin in "${NEEDED[@]}"; do have "$bin" || missing+=("$bin"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_slurm: ${PACKAGES[*]} already installed"
  exit 0
fi
if [ "$EUID" -ne 0 ]; then
  echo "install_slurm: not root, not installing ${PACKAGES[*]} (the SLURM tests will skip)"
  exit 0
fi
if ! have apt-get; then
  echo "install_slurm: no apt-get, not installing ${PACKAGES[*]} (the SLURM tests will skip)"
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
install() {
  apt-get install -y -qq -o DPkg::Lock::Timeout=120 "${PACKAGES[@]}" >>"$log" 2>&1
}
# Package lists may be absent (fresh image) or stale: update only when a plain install fails.
if ! install; then
  if ! { apt-get update -qq -o DPkg::Lock::Timeout=120 >>"$log" 2>&1 && install; }; then
    reason=$(grep -E '^(E|W):' "$log" | tail -n 1)
    echo "install_slurm: apt-get install ${PACKAGES[*]} failed (${reason:-see apt-get}); the SLURM tests will skip"
    exit 0
  fi
fi
for bin in "${NEEDED[@]}"; do
  have "$bin" || { echo "install_slurm: installed ${PACKAGES[*]} but $bin is missing"; exit 0; }
done
echo "install_slurm: installed ${PACKAGES[*]} in $((SECONDS - start)) s"
