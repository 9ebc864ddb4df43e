#!/usr/bin/env bash
# Power draw and SM clock while one benchmark row runs back to back (nvidia-smi sampled every 20 ms;
# the busy half of the samples), to tell a power-capped row from a cycle-bound one. Needs a built flashmla_bench,
# or, with MODULE set, a Python module with FlashMLA's API (flash_mla, or flashmla_peer: FlashMLA itself,
# bench/peer/flashmla_peer.py) timed by scripts/row_loop.py. Logs to $OUT/power_probe.log.
#
#   BENCH=build/bench/flashmla_bench bash scripts/power_probe.sh 128,1,128,8192 128,1,16,8192
#   MODULE=flashmla_peer bash scripts/power_probe.sh 128,1,128,8192
#   bash scripts/power_probe.sh --cmd NAME COMMAND [ARGS...]
#
# --cmd samples the same way while any command runs (e.g. a probe run long enough to reach the power
# cap), keeping the command's table lines (those starting "| ") in the log.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/power_probe.log"

# sample_while NAME COMMAND...: runs COMMAND with nvidia-smi sampling beside it; prints its table
# lines, then "samples N, busy half: W, SM MHz, event reasons".
sample_while() {
  local name="$1"; shift
  local csv="$out/power-${name//[^A-Za-z0-9_.-]/_}.csv"
  nvidia-smi --query-gpu=power.draw,clocks.sm,clocks.mem,temperature.gpu,clocks_event_reasons.active \
    --format=csv,noheader,nounits -lms 20 >"$csv" 2>&1 &
  local smi=$!
  local output rc
  output=$("$@" 2>&1); rc=$?
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  local lines
  lines=$(grep -E '^\| ' <<<"$output")
  # A failed command keeps its last lines, so that an error is not filtered away with the rest.
  [ $rc -ne 0 ] && lines=$(printf '%s\ncommand exited with status %d:\n%s' "$lines" "$rc" "$(tail -5 <<<"$output")")
  # Samples from the busy part: the top half of the draws.
  local stats
  stats=$(python3 - "$csv" <<'PY'
import sys
rows = []
for l in open(sys.argv[1]):
    f = [x.strip() for x in l.split(",")]
    try: rows.append((float(f[0]), float(f[1]), f[4]))
    except (ValueError, IndexError): pass
if not rows:
    print("no samples: the command ended before nvidia-smi's first one")
    sys.exit(0)
rows.sort(key=lambda x: -x[0])
top = rows[: max(1, len(rows) // 2)]
w = sum(x[0] for x in top) / len(top); mhz = sum(x[1] for x in top) / len(top)
reasons = sorted(set(x[2] for x in top))
print(f"samples {len(rows)}, busy half: {w:.0f} W, SM {mhz:.0f} MHz, event reasons {reasons}")
PY
)
  printf '%s\n%s\n' "$lines" "$stats"
}

nvidia-smi --query-gpu=name,power.limit,power.max_limit,clocks.max.sm --format=csv | tee -a "$log"
if [ "${1:-}" = "--cmd" ]; then
  name="$2"; shift 2
  { echo "$name:"; sample_while "$name" "$@"; } | tee -a "$log"
  exit 0
fi
bench="${BENCH:-build/bench/flashmla_bench}"
timer=("$bench")
[ -n "${MODULE:-}" ] && timer=(python3 "$root/scripts/row_loop.py" --module "$MODULE")
for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  result=$(sample_while "$r" "${timer[@]}" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" \
    --causal 1 --repeats "${REPEATS:-40}" --iters "${ITERS:-200}")
  line=$(grep -E '^\| [0-9]' <<<"$result" | head -1)
  echo "$r | $line | $(tail -1 <<<"$result")" | tee -a "$log"
done
