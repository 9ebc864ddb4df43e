#!/usr/bin/env bash
# Power draw and SM clock while one benchmark row runs back to back (nvidia-smi sampled every 20 ms;
# the busy half of the samples), to tell a power-capped row from a cycle-bound one. Needs a built flashmla_bench,
# or, with MODULE set, a Python module with FlashMLA's API (flash_mla, or flashmla_peer: FlashMLA itself,
# bench/peer/flashmla_peer.py) timed by scripts/row_loop.py. Logs to $OUT/power_probe.log.
#
#   BENCH=build/bench/flashmla_bench bash scripts/power_probe.sh 128,1,128,8192 128,1,16,8192
#   MODULE=flashmla_peer bash scripts/power_probe.sh 128,1,128,8192
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/power_probe.log"
bench="${BENCH:-build/bench/flashmla_bench}"
timer=("$bench")
[ -n "${MODULE:-}" ] && timer=(python3 "$root/scripts/row_loop.py" --module "$MODULE")
nvidia-smi --query-gpu=name,power.limit,power.max_limit,clocks.max.sm --format=csv | tee -a "$log"
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  nvidia-smi --query-gpu=power.draw,clocks.sm,clocks.mem,temperature.gpu,clocks_event_reasons.active \
    --format=csv,noheader,nounits -lms 20 >"$out/power-${r//,/_}.csv" 2>&1 &
  smi=$!
  line=$("${timer[@]}" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 \
    --repeats "${REPEATS:-40}" --iters "${ITERS:-200}" 2>&1 | grep -E '^\| [0-9]' | head -1)
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  # Samples from the busy part: the top half of the draws.
  stats=$(python3 - "$out/power-${r//,/_}.csv" <<'PY'
import sys
rows = []
for l in open(sys.argv[1]):
    f = [x.strip() for x in l.split(",")]
    try: rows.append((float(f[0]), float(f[1]), f[4]))
    except (ValueError, IndexError): pass
rows.sort(key=lambda x: -x[0])
top = rows[: max(1, len(rows) // 2)]
w = sum(x[0] for x in top) / len(top); mhz = sum(x[1] for x in top) / len(top)
reasons = sorted(set(x[2] for x in top))
print(f"samples {len(rows)}, busy half: {w:.0f} W, SM {mhz:.0f} MHz, event reasons {reasons}")
PY
)
  echo "$r | $line | $stats" | tee -a "$log"
done
