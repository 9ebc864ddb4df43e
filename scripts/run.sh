#!/usr/bin/env bash
# The main job (README): builds flashmla and, on a Hopper GPU, runs the benchmark grid; on a machine
# without one, decodes a small case with the CPU backend and says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${FLASHMLA_BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"

bash scripts/install_deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$build/install"
cmake --build "$build" -j "$jobs"

if nvidia-smi -L 2>/dev/null | grep -q "H100\|H200\|H800\|H20"; then
  "$build/bench/flashmla_bench" --check "$@"
else
  echo "No Hopper GPU on this machine: running the CPU backend on a small case instead of the GPU benchmark."
  cmake --install "$build" >/dev/null
  cmake -S examples/consumer -B "$build/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$build/install" >/dev/null
  cmake --build "$build/consumer" -j "$jobs" >/dev/null
  "$build/consumer/flashmla_example"
fi
