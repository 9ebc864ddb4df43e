#!/usr/bin/env bash
# Nsight Compute profile of the decode kernel on benchmark rows: stall reasons per SASS
# instruction, scheduler, pipe and instruction statistics. Needs the build/ tree (scripts/gpu_suite.sh
# build, or any CMake build of flashmla_bench), or, with MODULE set, a Python module with FlashMLA's
# API run by scripts/row_loop.py (flash_mla, or flashmla_peer: FlashMLA itself, whose decode kernel is
# profiled the same way). Writes $OUT/ncu-<module>-<row>.{ncu-rep,details.csv,source.csv}.
#
#   bash scripts/profile_ncu.sh "128,1,128,8192" "128,1,16,8192"      (rows: b,s_q,h_q,s_k)
#   MODULE=flashmla_peer bash scripts/profile_ncu.sh "128,1,128,8192"
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
bench="${BENCH:-build/bench/flashmla_bench}"
# Our decode kernels are mla_decode_*; FlashMLA's is flash_fwd_splitkv_mla_kernel.
kernels='regex:mla_decode|flash_fwd_splitkv_mla_kernel'
module="${MODULE:-bench}"
ncu --version >"$out/ncu-version.txt" 2>&1
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  row=(--b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1)
  if [ -n "${MODULE:-}" ]; then
    # Five warm-up calls (FlashMLA plans in its first), then the first timed call is profiled.
    cmd=(python3 "$root/scripts/row_loop.py" --module "$MODULE" "${row[@]}" --repeats 1 --iters 2 --warmup 5)
    skip=5
  else
    cmd=("$bench" "${row[@]}" --repeats 1 --iters 2 --warmup 1)
    skip=2
  fi
  tag="$module-b${b}-sq${s_q}-h${h_q}-sk${s_k}"
  rep="$out/ncu-$tag"
  ncu --clock-control none -k "$kernels" --launch-skip "$skip" --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section SchedulerStats --section WarpStateStats --section SourceCounters --section Occupancy \
    --section InstructionStats --section LaunchStats \
    --import-source yes -f -o "$rep" "${cmd[@]}" >"$rep.log" 2>&1
  echo "ncu $tag rc=$?"
  ncu -i "$rep.ncu-rep" --page details --csv >"$rep.details.csv" 2>&1
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass >"$rep.source.csv" 2>&1 ||
    ncu -i "$rep.ncu-rep" --page source --csv >"$rep.source.csv" 2>&1
  echo "exports $tag: $(wc -c <"$rep.details.csv") B details, $(wc -c <"$rep.source.csv") B source"
done
