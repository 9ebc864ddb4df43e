#!/usr/bin/env bash
# Where a decode call's time goes between its CTAs: the CTA-span build (FLASHMLA_EXPERIMENT_CTA_SPANS)
# records, for the last call of each row, every CTA's start (after the PDL wait), end (after its last
# epilogue), clock, KV pages and request segments. Per row this prints the call time, the span of the
# decode CTAs, the spread of their end times, and a least-squares split of each CTA's duration into
# microseconds per KV page and per request segment (meaningful where the segment counts vary between
# CTAs, as on the b = 128 varlen rows). Logs to $OUT/cta_spans.log, per-CTA CSVs to $OUT/cta_spans/.
#
#   bash scripts/cta_spans.sh 128,1,128,4096 128,1,64,4096          (builds build-spans/ first)
#   BENCH=path/to/spans/flashmla_bench ITERS=200 bash scripts/cta_spans.sh 128,1,128,4096
#   FLAGS=-DFLASHMLA_EXPERIMENT_RESIDENT_PAGES bash scripts/cta_spans.sh 128,1,128,32768   (cycles a page)
#   BENCH_ARGS="--sm_parts 66" TAG=_66 bash scripts/cta_spans.sh 1,1,16,32768   (extra bench options; CSV name suffix)
# With FLAGS=-DFLASHMLA_EXPERIMENT_PAGE_TIMELINE the CSVs also hold each CTA's page issues and landings
# (scripts/page_timeline.py bins them into the grid's stream over time).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out/cta_spans"
log="$out/cta_spans.log"
bench="${BENCH:-}"
if [ -z "$bench" ]; then
  cmake -S . -B build-spans -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
    -DFLASHMLA_EXTRA_CUDA_FLAGS="-DFLASHMLA_EXPERIMENT_CTA_SPANS ${FLAGS:-}" >"$out/cta_spans/build.txt" 2>&1 &&
    cmake --build build-spans --target flashmla_bench >>"$out/cta_spans/build.txt" 2>&1 || { echo "build failed"; exit 1; }
  bench=build-spans/bench/flashmla_bench
fi
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  csv="$out/cta_spans/${r//,/_}${TAG:-}.csv"
  run=$(FLASHMLA_CTA_SPANS_CSV="$csv" "$bench" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" \
    --causal 1 --iters "${ITERS:-20}" ${BENCH_ARGS:-} 2>&1)
  us=$(echo "$run" | grep -E '^\| [0-9]' | head -1 | cut -d'|' -f6 | tr -d ' ')
  python3 - "$r" "$us" "$csv" <<'PY' | tee -a "$log"
import csv, sys
import numpy as np
row, us, path = sys.argv[1], sys.argv[2], sys.argv[3]
ctas = list(csv.DictReader(open(path)))
start = np.array([float(c["start_ns"]) for c in ctas]) / 1e3
end = np.array([float(c["end_ns"]) for c in ctas]) / 1e3
pages = np.array([float(c["pages"]) for c in ctas])
segs = np.array([float(c["segments"]) for c in ctas])
cycles = np.array([float(c["cycles"]) for c in ctas])
ghz = cycles.sum() / ((end - start).sum() * 1e3)
# Cycles a page from the CTAs' own clocks: with FLASHMLA_EXPERIMENT_RESIDENT_PAGES this repeats to
# the cycle between runs, unlike times, which move with the clock the power cap sets (entry 88).
cyc_page = cycles.sum() / pages.sum()
dur = end - start
fit = ""
if segs.max() > segs.min():
    a = np.c_[pages, segs, np.ones(len(dur))]
    coef = np.linalg.lstsq(a, dur, rcond=None)[0]
    rms = np.sqrt(np.mean((a @ coef - dur) ** 2))
    fit = f" | fit: {coef[0]:.3f} us a page, {coef[1]:.2f} us a segment, {coef[2]:.1f} us const, rms {rms:.2f} us"
print(f"{row}: call {us} us | CTA span {end.max() - start.min():.1f} us, ends {end.min():.1f}-{end.max():.1f} us, "
      f"duration mean {dur.mean():.1f} max {dur.max():.1f} us | pages {pages.mean():.1f} segments {segs.mean():.2f} a CTA "
      f"| {ghz:.3f} cycles a ns | {cyc_page:.0f} cycles a page (segments included){fit}")
PY
done
