#!/usr/bin/env bash
# Nsight Compute profile of the decode kernel on benchmark rows: stall reasons per SASS
# instruction, scheduler and pipe statistics. Needs the build/ tree (scripts/gpu_suite.sh build,
# or any CMake build of flashmla_bench). Writes $OUT/ncu-<row>.{ncu-rep,details.csv,source.csv}.
#
#   bash scripts/profile_ncu.sh "128,1,128,8192" "128,1,16,8192"      (rows: b,s_q,h_q,s_k)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
bench="${BENCH:-build/bench/flashmla_bench}"
ncu --version >"$out/ncu-version.txt" 2>&1
ncu --help >"$out/ncu-help.txt" 2>&1
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  tag="b${b}-sq${s_q}-h${h_q}-sk${s_k}"
  rep="$out/ncu-$tag"
  ncu --clock-control none -k regex:mla_decode --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section SchedulerStats --section WarpStateStats --section SourceCounters --section Occupancy \
    --import-source yes -f -o "$rep" \
    "$bench" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 \
    --repeats 1 --iters 2 --warmup 1 >"$rep.log" 2>&1
  echo "ncu $tag rc=$?"
  ncu -i "$rep.ncu-rep" --page details --csv >"$rep.details.csv" 2>&1
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass >"$rep.source.csv" 2>&1 ||
    ncu -i "$rep.ncu-rep" --page source --csv >"$rep.source.csv" 2>&1
  echo "exports $tag: $(wc -c <"$rep.details.csv") B details, $(wc -c <"$rep.source.csv") B source"
done
