#!/usr/bin/env bash
# Bytes each memory level moves for one kernel launch, under Nsight Compute: DRAM reads and writes,
# L2 traffic by source, L2 hit rates, and the launch's duration and clocks. Used to check that a
# kernel reads what the workload's byte count says (docs/performance.md) and to compare the decode
# kernel's page stream with the probes'. Needs the build/ tree (flashmla_bench, and
# flashmla_seesaw_probe for PROBE_CASES). Writes $OUT/ncu-traffic-<tag>.csv and prints one summary
# line per target.
#
#   bash scripts/ncu_traffic.sh "128,1,64,8192" "128,1,16,8192"        (rows: b,s_q,h_q,s_k)
#   PROBE_CASES="one-page, pages loaded from HBM" bash scripts/ncu_traffic.sh
#   BENCH_ARGS="--pages contiguous" bash scripts/ncu_traffic.sh "128,1,64,8192"
#   KERNEL=mla_combine CACHE_CONTROL=none bash scripts/ncu_traffic.sh "1,1,16,32768"
#   MODULE=flashmla_peer bash scripts/ncu_traffic.sh "16,1,128,32768"   (FlashMLA's decode kernel, run
#     by scripts/row_loop.py on the Python benchmark's inputs; MODULE=flash_mla runs ours the same way)
# KERNEL: the kernel-name regex to profile (default mla_decode). CACHE_CONTROL=none keeps the L2 as
# the previous kernel left it (ncu flushes it before the profiled launch by default), so a combine
# reads the partials from where the decode put them. REPLAY_MODE=application reruns the whole process
# for each pass instead of saving and restoring memory around the launch (kernel replay), so with
# CACHE_CONTROL=none every pass finds the L2 as the unprofiled kernels before it left it; METRICS
# (comma-separated) replaces the list below, fewer metrics needing fewer passes.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
bench="${BENCH:-build/bench/flashmla_bench}"
probe="${PROBE:-build/bench/flashmla_seesaw_probe}"
probe_pages="${PROBE_PAGES:-2000}"   # pages a consumer runs in a profiled probe launch

# Wanted metrics; those this ncu does not know for the GPU are left out (listed in the log) rather
# than failing the whole profile.
wanted=(
  gpu__time_duration.sum
  sm__cycles_elapsed.avg.per_second
  dram__bytes_read.sum
  dram__bytes_write.sum
  lts__t_bytes.sum
  lts__t_sectors_op_read.sum
  lts__t_sectors_op_write.sum
  lts__t_sectors_lookup_hit.sum
  lts__t_sectors_lookup_miss.sum
  lts__t_sectors_srcunit_tex.sum
  lts__t_sectors_srcunit_ltcfabric.sum
  lts__t_sectors_srcunit_tex_lookup_miss.sum
  lts__t_sectors_srcunit_tex_op_read_lookup_miss.sum
  lts__t_sectors_srcunit_tex_op_write.sum
  l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum
  l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum
  l1tex__t_requests_pipe_lsu_mem_global_op_st.sum
  l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum
  smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct
  lts__t_sector_hit_rate.pct
  l1tex__m_xbar2l1tex_read_bytes.sum
  smsp__inst_executed.sum
)
[ -n "${METRICS:-}" ] && IFS=, read -ra wanted <<<"$METRICS"
ncu --query-metrics >"$out/ncu-metrics.txt" 2>&1
metrics=()
for m in "${wanted[@]}"; do
  if grep -q "^${m%%.*} " "$out/ncu-metrics.txt"; then metrics+=("$m"); else echo "ncu_traffic: no metric ${m%%.*}"; fi
done
list="$(IFS=,; echo "${metrics[*]}")"

profile() {  # profile TAG KERNEL_REGEX SKIP COMMAND...
  local tag="$1" regex="$2" skip="$3"
  shift 3
  local csv="$out/ncu-traffic-$tag.csv"
  ncu --clock-control none --cache-control "${CACHE_CONTROL:-all}" --replay-mode "${REPLAY_MODE:-kernel}" -k "regex:$regex" --launch-skip "$skip" --launch-count 1 --metrics "$list" --csv \
    "$@" >"$csv" 2>"$out/ncu-traffic-$tag.log"
  local rc=$?
  # One line: tag, then metric=value in the CSV's order (the ncu CSV rows are one metric each).
  python3 - "$csv" "$tag" "$rc" <<'EOF'
import csv, sys
path, tag, rc = sys.argv[1:4]
vals = {}
try:
    rows = [r for r in csv.reader(open(path)) if len(r) > 5]
    head = rows[0]
    i_name, i_unit, i_val = head.index("Metric Name"), head.index("Metric Unit"), head.index("Metric Value")
    for r in rows[1:]:
        vals[r[i_name]] = (r[i_val].replace(",", ""), r[i_unit])
except Exception as e:
    print(f"{tag}: rc={rc}, no metrics ({e})")
    sys.exit(0)
print(f"{tag}: rc={rc} " + " ".join(f"{k}={v} {u}" for k, (v, u) in vals.items()))
EOF
}

for r in "$@"; do
  IFS=, read -r b s_q h_q s_k <<<"$r"
  varlen=0; [ "$b" = 128 ] && varlen=1
  if [ -n "${MODULE:-}" ]; then
    # Five warm-up calls (FlashMLA plans in its first), then the first timed call's kernel.
    regex="${KERNEL:-mla_decode|flash_fwd_splitkv_mla_kernel}"
    tag="$MODULE-b${b}-sq${s_q}-h${h_q}-sk${s_k}"
    profile "$tag" "$regex" 5 python3 "$root/scripts/row_loop.py" --module "$MODULE" --b "$b" --s_q "$s_q" \
      --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 --repeats 1 --iters 2 --warmup 5
    continue
  fi
  tag="b${b}-sq${s_q}-h${h_q}-sk${s_k}"
  "$bench" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" --causal 1 --repeats 3 --iters 5 \
    ${BENCH_ARGS:-} >"$out/ncu-traffic-$tag.bench.txt" 2>&1
  grep '^| ' "$out/ncu-traffic-$tag.bench.txt" | tail -2
  # ${BENCH_ARGS} unquoted on purpose: options split into words.
  profile "$tag" "${KERNEL:-mla_decode}" 2 "$bench" --b "$b" --s_q "$s_q" --h_q "$h_q" --s_k "$s_k" --varlen "$varlen" \
    --causal 1 --repeats 1 --iters 2 --warmup 1 ${BENCH_ARGS:-}
done

IFS=';' read -ra cases <<<"${PROBE_CASES:-}"
n=0
for c in "${cases[@]}"; do
  [ -n "$c" ] || continue
  n=$((n + 1))
  profile "probe$n" 'seesaw_probe_kernel' 0 "$probe" "$probe_pages" "$c" "${PROBE_OPERANDS:-bench}"
  echo "probe$n = $c"
done
