#!/usr/bin/env bash
# Fills .deps/ (git-ignored) with what a GPU machine without network needs to build the C++ tests:
# the GoogleTest source tree from Debian's `googletest` package. Carry `.deps` with the device call.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
mkdir -p "$root/.deps"
if [ ! -f "$root/.deps/googletest/CMakeLists.txt" ]; then
  rm -rf "$root/.deps/googletest"
  cp -r /usr/src/googletest "$root/.deps/googletest"
fi
echo "prepare_offline_deps: $root/.deps ready ($(du -sh "$root/.deps" | cut -f1))"
