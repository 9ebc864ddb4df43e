#!/usr/bin/env bash
# Installs what building and testing flashmla needs on a Debian machine, from Debian's packages.
# The CUDA toolkit (nvcc >= 13.0) is expected on the machine already: it is not in Debian's main archive.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
[ -f /usr/lib/x86_64-linux-gnu/cmake/GTest/GTestConfig.cmake ] || [ -f /usr/lib/cmake/GTest/GTestConfig.cmake ] \
  || need_apt+=(libgtest-dev)
[ -d /usr/src/googletest ] || need_apt+=(googletest)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install_deps: installing ${need_apt[*]} from Debian"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

NVCC="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [ ! -x "$NVCC" ]; then
  echo "install_deps: nvcc not found (set CUDACXX or put CUDA >= 13.0 on PATH); it is needed to compile the sm_90a kernels" >&2
  exit 1
fi
echo "install_deps: ok ($("$NVCC" --version | tail -1))"
