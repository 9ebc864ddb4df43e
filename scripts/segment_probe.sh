#!/usr/bin/env bash
# Where the time outside the page loop goes: per-CTA cycles and page phases from the phase-clock
# build (FLASHMLA_EXPERIMENT_PHASE_CLOCKS), and the decode / combine / metadata kernel durations
# from Nsight Compute (one metric, clocks not locked), on the given rows (b,s_q,h_q,s_k).
# Logs to $OUT/segment_probe.log.
#
#   bash scripts/segment_probe.sh 128,1,128,4096 128,1,128,8192
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/segment_probe.log"
jobs=$(( $(nproc) / 2 ))
build() {  # name flags
  cmake -S . -B "build-probe-$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
    -DFLASHMLA_EXTRA_CUDA_FLAGS="$2" >"$out/probe-$1-build.txt" 2>&1 &&
    cmake --build "build-probe-$1" -j "$jobs" --target flashmla_bench >>"$out/probe-$1-build.txt" 2>&1
}
build plain "" & build clocks "-DFLASHMLA_EXPERIMENT_PHASE_CLOCKS" &
wait
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  args=(--b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1)
  echo "== $r" | tee -a "$log"
  build-probe-plain/bench/flashmla_bench "${args[@]}" 2>&1 | grep -E '^\| [0-9]' | head -1 | tee -a "$log"
  build-probe-clocks/bench/flashmla_bench "${args[@]}" --repeats 3 --iters 10 2>&1 | grep phase_clocks | tee -a "$log"
  ncu --clock-control none --metrics gpu__time_duration.sum -k regex:"mla_" --launch-skip 6 --launch-count 9 \
    build-probe-plain/bench/flashmla_bench "${args[@]}" --repeats 1 --iters 10 --warmup 2 --rotate 0 2>&1 |
    grep -E "mla_[a-z_]+kernel|gpu__time_duration" | sed -E 's/\(([0-9]+, ){2}[0-9]+\)x\(([0-9]+, ){2}[0-9]+\)//' | tee -a "$log"
done
