#!/usr/bin/env bash
# Performance experiments: builds the benchmark once per variant (nvcc flags below), side by side,
# then times the same rows with each. Logs to $OUT/experiments.log. Variants are "name=flags";
# the first is the reference. Not part of the supported build: the flags switch on
# experiment-only code paths (see src/kernels/sm90/decode_wgmma_kernel.cuh).
#
#   bash scripts/experiment_variants.sh "base=" "chunk36=-DFLASHMLA_SCORE_STEPS_PER_CHUNK=36"
#
# EXPERIMENT_POWER=1: at the power cap instead. Each row runs with every variant under
# scripts/power_probe.sh --cmd (time, watts, clock; EXPERIMENT_REPEATS x EXPERIMENT_ITERS calls,
# default 40 x 200), then with the reference once more to show the drift within the call; only the
# benchmark is built (no GPU tests, so no GoogleTest needed).
#
#   EXPERIMENT_POWER=1 EXPERIMENT_ROWS="128,1,64,32768" bash scripts/experiment_variants.sh "base=" \
#       "bulk=-DFLASHMLA_EXPERIMENT_BULK_PAGES"
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/experiments.log"
default_rows="128,1,128,8192 128,1,16,8192 1,1,128,32768 4,1,16,32768"
read -r -a rows <<<"${EXPERIMENT_ROWS:-$default_rows}"
power="${EXPERIMENT_POWER:-0}"
[ $# -ge 1 ] || { echo "usage: experiment_variants.sh name=flags [name=flags ...]" >&2; exit 2; }
config=(-DFLASHMLA_BUILD_TESTS=OFF)
targets=(flashmla_bench)
if [ "$power" != 1 ]; then
  config=()
  [ -f .deps/googletest/CMakeLists.txt ] && config=(-DFLASHMLA_GTEST_SOURCE_DIR="$root/.deps/googletest")
  targets+=(flashmla_gpu_tests)
fi
jobs=$(( $(nproc) / $# )); [ "$jobs" -lt 1 ] && jobs=1
pids=()
for v in "$@"; do
  name="${v%%=*}"; flags="${v#*=}"
  ( cmake -S . -B "build-exp-$name" -G Ninja -DCMAKE_BUILD_TYPE=Release "${config[@]}" \
      -DFLASHMLA_EXTRA_CUDA_FLAGS="$flags" >"$out/exp-$name-build.txt" 2>&1 &&
    cmake --build "build-exp-$name" -j "$jobs" --target "${targets[@]}" >>"$out/exp-$name-build.txt" 2>&1 ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "a variant build failed" | tee -a "$log"; done

if [ "$power" = 1 ]; then
  names=()
  for v in "$@"; do names+=("${v%%=*}"); done
  names+=("${1%%=*}")
  for r in "${rows[@]}"; do
    IFS=, read -r b s_q h_q s_k <<<"$r"
    varlen=0; [ "$b" = 128 ] && varlen=1
    for name in "${names[@]}"; do
      echo "== $r $name" | tee -a "$log"
      OUT="$out" bash scripts/power_probe.sh --cmd "$name-$r" "build-exp-$name/bench/flashmla_bench" --b "$b" \
        --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 --repeats "${EXPERIMENT_REPEATS:-40}" \
        --iters "${EXPERIMENT_ITERS:-200}" 2>&1 | tee -a "$log"
    done
  done
  exit 0
fi
for v in "$@"; do
  name="${v%%=*}"
  for r in "${rows[@]}"; do
    IFS=, read -r b s_q h_q s_k <<<"$r"
    varlen=0; [ "$b" = 128 ] && varlen=1
    line=$("build-exp-$name/bench/flashmla_bench" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" \
      --causal 1 2>&1 | grep -E '^\| [0-9]' | head -1)
    echo "$name | $line" | tee -a "$log"
  done
done
