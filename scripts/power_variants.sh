#!/usr/bin/env bash
# Timing-only experiment builds at the power cap: builds flashmla_bench once per variant ("name=flags",
# nvcc flags; the first is the reference), side by side, then runs each row with every variant under
# scripts/power_probe.sh --cmd (time, watts, clock), the reference once more at the end of each row to
# show the drift within the call. Logs to $OUT/power_probe.log and $OUT/power_variants.log.
#
#   POWER_ROWS="128,1,64,32768 128,1,64,8192" bash scripts/power_variants.sh "base=" \
#       "bulk=-DFLASHMLA_EXPERIMENT_BULK_PAGES"
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/power_variants.log"
read -r -a rows <<<"${POWER_ROWS:-128,1,64,32768}"
repeats="${POWER_REPEATS:-40}"
iters="${POWER_ITERS:-200}"
[ $# -ge 1 ] || { echo "usage: power_variants.sh name=flags [name=flags ...]" >&2; exit 2; }
jobs=$(( $(nproc) / $# )); [ "$jobs" -lt 1 ] && jobs=1
pids=()
for v in "$@"; do
  name="${v%%=*}"; flags="${v#*=}"
  ( cmake -S . -B "build-pv-$name" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
      -DFLASHMLA_EXTRA_CUDA_FLAGS="$flags" >"$out/pv-$name-build.txt" 2>&1 &&
    cmake --build "build-pv-$name" -j "$jobs" --target flashmla_bench >>"$out/pv-$name-build.txt" 2>&1 ) &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
  for v in "$@"; do tail -5 "$out/pv-${v%%=*}-build.txt"; done
  echo "power_variants: a variant build failed" | tee -a "$log"
  exit 1
fi
ref="${1%%=*}"
for r in "${rows[@]}"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  names=()
  for v in "$@"; do names+=("${v%%=*}"); done
  names+=("$ref")
  for name in "${names[@]}"; do
    echo "== $r $name" | tee -a "$log"
    OUT="$out" bash scripts/power_probe.sh --cmd "$name-$r" "build-pv-$name/bench/flashmla_bench" --b "$b" --s_q "$s_q" \
      --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 --repeats "$repeats" --iters "$iters" 2>&1 | tee -a "$log"
  done
done
