#!/usr/bin/env bash
# Same-call A/B(/C...) of git revisions over the benchmark grid: builds flashmla_bench from each
# revision (git archive, side by side), then times the whole 38-row grid in alternating rounds
# (A, B, ..., A, B, ...) so that every build sees the same machine state, and prints each row's
# median over the rounds, each build's ratio to the first and the geometric mean of the ratios.
# Raw JSON per round goes to $OUT/ab/. Revisions are git revisions, or tar files of them made with
# `git archive` (for a machine that has the working tree but not the repository: carry them along).
#
# A revision may carry extra benchmark arguments after "::" (the same build timed two ways).
# A revision may also be a prebuilt flashmla_bench (an executable file, e.g. built on a machine
# without a GPU and carried to the device): it is timed as it is, with no build.
#
#   bash scripts/ab_grid.sh main exp/kv-multicast [rounds]        (default 4 rounds)
#   bash scripts/ab_grid.sh ab-main.tar ab-x.tar ab-y.tar 3       (any number of builds)
#   bash scripts/ab_grid.sh main "main::--pages contiguous" 3
#   bash scripts/ab_grid.sh bins/a/flashmla_bench bins/b/flashmla_bench 3
#   ROWS="16,1,128,32768,0;8,1,128,32768,0" bash scripts/ab_grid.sh main "main::--wide_schedule seesaw" 8
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
revs=("$@")
rounds=4
if [[ "${revs[-1]}" =~ ^[0-9]+$ ]]; then rounds="${revs[-1]}"; unset 'revs[-1]'; fi
(( ${#revs[@]} >= 2 )) || { echo "usage: ab_grid.sh REV_A REV_B [REV_C ...] [rounds]"; exit 2; }
work="$root/ab-work"
rm -rf "$work" && mkdir -p "$work" "$out/ab"
jobs=$(( $(nproc) / ${#revs[@]} > 1 ? $(nproc) / ${#revs[@]} : 1 ))
bench_args=()
bins=()
for i in "${!revs[@]}"; do
  spec="${revs[$i]}"
  rev="${spec%%::*}"
  bench_args[$i]=""
  [[ "$spec" == *::* ]] && bench_args[$i]="${spec#*::}"
  bins[$i]="$work/build-$i/bench/flashmla_bench"
  if [ -f "$rev" ] && [ -x "$rev" ]; then
    bins[$i]="$(cd "$(dirname "$rev")" && pwd)/$(basename "$rev")"
    continue
  fi
  mkdir -p "$work/src-$i"
  if [ -f "$rev" ]; then
    tar xf "$rev" -C "$work/src-$i" || { echo "ab_grid: cannot extract $rev"; exit 1; }
  else
    git archive "$rev" | tar x -C "$work/src-$i" || { echo "ab_grid: cannot archive $rev"; exit 1; }
  fi
  (cmake -S "$work/src-$i" -B "$work/build-$i" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
     >"$out/ab/build-$i.txt" 2>&1 &&
   cmake --build "$work/build-$i" -j "$jobs" --target flashmla_bench >>"$out/ab/build-$i.txt" 2>&1) &
done
wait
for i in "${!revs[@]}"; do
  [ -x "${bins[$i]}" ] || { echo "ab_grid: build of ${revs[$i]} failed"; tail -20 "$out/ab/build-$i.txt"; exit 1; }
done
for r in $(seq 1 "$rounds"); do
  for i in "${!revs[@]}"; do
    # shellcheck disable=SC2086  # extra arguments are split on purpose
    "${bins[$i]}" --rows "${ROWS:-all}" --repeats 5 --read-gib 1 ${bench_args[$i]} --json "$out/ab/$i-$r.json" \
      >/dev/null 2>&1 || { echo "ab_grid: bench ${revs[$i]} round $r failed"; exit 1; }
  done
done
python3 - "$out/ab" "${revs[@]}" <<'PY'
import glob, json, math, statistics, sys
d, names = sys.argv[1], sys.argv[2:]
def rows(i):
    times = {}
    for f in sorted(glob.glob(f"{d}/{i}-*.json")):
        for r in json.load(open(f))["rows"]:
            times.setdefault((r["b"], r["s_q"], r["h_q"], r["s_k"], r["varlen"]), []).append(r["us_median"])
    return times
t = [rows(i) for i in range(len(names))]
print("| b,s_q,h_q,s_k | " + " | ".join(f"{n} us" for n in names) + " | " +
      " | ".join(f"{n} / {names[0]}" for n in names[1:]) + " |")
print("|---" * (2 * len(names)) + "|")
logs = [[] for _ in names[1:]]
# A row is named b,s_q,h_q,s_k, with its length mode added where $ROWS lists one both ways.
both = {k[:4] for k in t[0] if (*k[:4], not k[4]) in t[0]}
for k in t[0]:
    med = [statistics.median(ti[k]) for ti in t]
    ratios = [m / med[0] for m in med[1:]]
    for l, x in zip(logs, ratios):
        l.append(math.log(x))
    name = ",".join(map(str, k[:4])) + ((" varlen" if k[4] else " fixed") if k[:4] in both else "")
    print(f"| {name} | " + " | ".join(f"{m:.1f}" for m in med) + " | " +
          " | ".join(f"{x:.3f}" for x in ratios) + " |")
for n, l in zip(names[1:], logs):
    print(f"geomean of time {n} / {names[0]} over {len(l)} rows: {math.exp(sum(l) / len(l)):.4f}")
PY
