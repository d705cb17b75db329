#!/usr/bin/env bash
# Installs the Debian packages fn2e builds against, when any is missing: as root directly (containers
# often have no sudo), otherwise through sudo. Used by Tools/setup.sh and .ci/run. Open MPI is not
# needed to build or to run one process (fn2e loads it at run time under mpirun); the tests run
# 2-rank trainings and recipes with it.
set -euo pipefail
packages=(libopenblas-dev libprotobuf-c-dev protobuf-c-compiler libstb-dev pkg-config openmpi-bin libopenmpi-dev)
command -v apt-get >/dev/null 2>&1 || { echo "system packages: no apt-get here; install ${packages[*]} yourself"; exit 0; }
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "system packages: ${missing[*]} missing, and this user is not root and has no sudo: install them as root" >&2
    exit 1
fi
echo "system packages: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y "${missing[@]}"
