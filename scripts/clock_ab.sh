#!/usr/bin/env bash
# Phase clocks of several builds on the same rows, in one call: each build (a `git archive` tar,
# as for ab_grid.sh) is compiled with FLASHMLA_EXPERIMENT_PHASE_CLOCKS and flashmla_bench runs every
# row twice per build, alternating builds. Prints each run's table row and the consumers' and
# producer's cycles per page by phase (src/kernels/sm90/phase_clocks.cuh says what each phase is).
# The clock builds spill where the plain ones do not: compare their periods with the plain
# build's time and clock before reading their phases (docs/perf-log.md, entry 58).
#
# A build may also be a prebuilt flashmla_bench made with that flag (an executable file): it runs as
# it is.
#
#   bash scripts/clock_ab.sh "128,1,32,8192 128,2,16,8192" ab-main.tar ab-x.tar
#   bash scripts/clock_ab.sh "128,1,128,8192" bins/clk-a/flashmla_bench bins/clk-b/flashmla_bench
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
rows="$1"; shift
(( $# >= 1 )) || { echo "usage: clock_ab.sh \"ROWS\" BUILD [BUILD ...]   (BUILD: a git archive tar or a prebuilt flashmla_bench)"; exit 2; }
work="$root/clock-work"
rm -rf "$work" && mkdir -p "$work" "$out"
jobs=$(( $(nproc) / $# > 1 ? $(nproc) / $# : 1 ))
bins=()
for i in $(seq 1 $#); do
  build="${!i}"
  bins[$i]="$work/build-$i/bench/flashmla_bench"
  if [ -f "$build" ] && [ -x "$build" ]; then
    bins[$i]="$(cd "$(dirname "$build")" && pwd)/$(basename "$build")"
    continue
  fi
  mkdir -p "$work/src-$i" && tar xf "$build" -C "$work/src-$i" || { echo "clock_ab: cannot extract $build"; exit 1; }
  (cmake -S "$work/src-$i" -B "$work/build-$i" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
     -DFLASHMLA_EXTRA_CUDA_FLAGS="-DFLASHMLA_EXPERIMENT_PHASE_CLOCKS" >"$out/clock-build-$i.txt" 2>&1 &&
   cmake --build "$work/build-$i" -j "$jobs" --target flashmla_bench >>"$out/clock-build-$i.txt" 2>&1) &
done
wait
for i in $(seq 1 $#); do
  [ -x "${bins[$i]}" ] || { echo "clock_ab: build of ${!i} failed"; tail -20 "$out/clock-build-$i.txt"; exit 1; }
done
for row in $rows; do
  IFS=, read -r b s_q h_q s_k <<<"$row"
  varlen=0; [ "$b" = 128 ] && varlen=1
  for round in 1 2; do
    for i in $(seq 1 $#); do
      echo "== $row ${!i} (round $round)"
      "${bins[$i]}" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" \
        --causal 1 --repeats 3 --iters 10 2>&1 | grep -E "phase_clocks|^\| [0-9]"
    done
  done
done
