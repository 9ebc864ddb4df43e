#!/usr/bin/env bash
# Same-call A/B of two git revisions over the benchmark grid: builds flashmla_bench from each
# revision (git archive, side by side), then times the whole 38-row grid in alternating rounds
# (A, B, A, B, ...) so that both builds see the same machine state, and prints each row's median
# over the rounds, the B/A ratio and the geometric mean of the ratios. Raw JSON per round goes to
# $OUT/ab/. A and B are git revisions, or tar files of them made with `git archive` (for a machine
# that has the working tree but not the repository: carry them along).
#
#   bash scripts/ab_grid.sh main exp/kv-multicast [rounds]        (default 4 rounds)
#   git archive -o ab-main.tar main; git archive -o ab-mc.tar exp/kv-multicast
#   bash scripts/ab_grid.sh ab-main.tar ab-mc.tar
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
a="$1"; b="$2"; rounds="${3:-4}"
work="$root/ab-work"
rm -rf "$work" && mkdir -p "$work" "$out/ab"
for v in A B; do
  rev=$a; [ "$v" = B ] && rev=$b
  mkdir -p "$work/src-$v"
  if [ -f "$rev" ]; then
    tar xf "$rev" -C "$work/src-$v" || { echo "ab_grid: cannot extract $rev"; exit 1; }
  else
    git archive "$rev" | tar x -C "$work/src-$v" || { echo "ab_grid: cannot archive $rev"; exit 1; }
  fi
  (cmake -S "$work/src-$v" -B "$work/build-$v" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
     >"$out/ab/build-$v.txt" 2>&1 &&
   cmake --build "$work/build-$v" -j "$(( $(nproc) / 2 > 1 ? $(nproc) / 2 : 1 ))" --target flashmla_bench \
     >>"$out/ab/build-$v.txt" 2>&1) &
done
wait
for v in A B; do
  [ -x "$work/build-$v/bench/flashmla_bench" ] || { echo "ab_grid: build $v failed"; tail -20 "$out/ab/build-$v.txt"; exit 1; }
done
for r in $(seq 1 "$rounds"); do
  for v in A B; do
    "$work/build-$v/bench/flashmla_bench" --rows all --repeats 5 --read-gib 1 --json "$out/ab/$v-$r.json" \
      >/dev/null 2>&1 || { echo "ab_grid: bench $v round $r failed"; exit 1; }
  done
done
python3 - "$out/ab" "$a" "$b" <<'PY'
import glob, json, math, statistics, sys
d, name_a, name_b = sys.argv[1:]
def rows(v):
    times = {}
    for f in sorted(glob.glob(f"{d}/{v}-*.json")):
        for r in json.load(open(f))["rows"]:
            times.setdefault((r["b"], r["s_q"], r["h_q"], r["s_k"]), []).append(r["us_median"])
    return times
ta, tb = rows("A"), rows("B")
print(f"| b,s_q,h_q,s_k | {name_a} us | {name_b} us | ratio |")
print("|---|---|---|---|")
logs = []
for k in ta:
    ma, mb = statistics.median(ta[k]), statistics.median(tb[k])
    logs.append(math.log(mb / ma))
    print(f"| {','.join(map(str, k))} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} |")
print(f"geomean of time {name_b} / {name_a} over {len(logs)} rows: {math.exp(sum(logs) / len(logs)):.4f}")
PY
