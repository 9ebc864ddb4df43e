#!/usr/bin/env bash
# Seesaw-probe cases at the power cap, in launches of one decode call's size queued back to back
# (docs/perf-log.md, entries 94-95). Each case runs first once, short and under a timeout, so that a
# case that hangs is reported instead of waited out; then PAGES pages a consumer x LAUNCHES launches
# under power_probe.sh --cmd (watts and SM clock beside the probe's table line). Logs to
# $OUT/power_probe.log.
#
#   OUT=out bash scripts/seesaw_cases.sh "one-page, pages loaded from HBM" "seesaw duties: all, pages"
#
# env: PROBE (default build/bench/flashmla_seesaw_probe), PAGES (250), LAUNCHES (4000),
# OPERANDS (bench), CHECK_TIMEOUT (20 s).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
probe="${PROBE:-build/bench/flashmla_seesaw_probe}"
pages="${PAGES:-250}" launches="${LAUNCHES:-4000}" operands="${OPERANDS:-bench}"
status=0
for name in "$@"; do
  timeout "${CHECK_TIMEOUT:-20}" "$probe" 50 "$name" "$operands" >/dev/null 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    mkdir -p "${OUT:-$root/out}"
    echo "$name: the short run failed or hung (exit $rc); skipped" | tee -a "${OUT:-$root/out}/power_probe.log"
    status=1
    continue
  fi
  bash scripts/power_probe.sh --cmd "$name" "$probe" "$pages" "$name" "$operands" 0 "$launches" queued
done
exit $status
