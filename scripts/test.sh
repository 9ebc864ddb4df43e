#!/usr/bin/env bash
# The test command (README): installs build dependencies, compiles every kernel for sm_90a, runs the CPU
# test suite, installs the library and builds the find_package consumer against the installed tree.
# On a machine with a Hopper GPU it then runs the GPU suite (scripts/gpu_suite.sh build test).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${FLASHMLA_BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc)}"

bash scripts/install_deps.sh

echo "== configure and build (every CUDA source compiled for sm_90a)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$build/install"
cmake --build "$build" -j "$jobs"

echo "== CPU tests"
ctest --test-dir "$build" -L cpu -j "$jobs" --output-on-failure

echo "== install + find_package consumer"
cmake --install "$build" >/dev/null
cmake -S examples/consumer -B "$build/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$build/install"
cmake --build "$build/consumer" -j "$jobs"
"$build/consumer/flashmla_example"

echo "== Python sources compile"
python3 -m py_compile python/flash_mla/*.py tests/python/*.py

if nvidia-smi -L 2>/dev/null | grep -q "H100\|H200\|H800\|H20"; then
  echo "== Hopper GPU found: GPU suite"
  bash scripts/gpu_suite.sh build test
else
  echo "GPU tests SKIPPED: no NVIDIA GPU on this machine (run 'bash scripts/gpu_suite.sh' on a Hopper GPU)"
fi
