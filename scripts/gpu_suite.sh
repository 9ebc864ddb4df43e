#!/usr/bin/env bash
# The one GPU command: builds everything, runs the C++ GPU tests and the pytest suite, the benchmarks,
# or compute-sanitizer on a small subset. Logs go to $OUT (the device tool's folder) or ./out.
#
#   bash scripts/gpu_suite.sh [build] [test] [bench] [sanitize] [all] [peer]     (default: build test)
#
# `peer` (not part of `all`) times FlashMLA itself on the same GPU beside flash_mla: the Python
# benchmark with --vs flashmla_peer over every row, then scripts/power_probe.sh on PEER_ROWS for both
# (PEER_ROWS= skips it). PEER_DTYPES="bf16 fp16" times the grid in each dtype (default bf16).
# It needs .peer/ (scripts/prepare_peer.sh) carried with the call. Each step's summary line is also
# appended to $OUT/summary.txt as it finishes.
# PACK_OUT=1 moves everything the call wrote under $OUT into one $OUT/gpu_suite.tgz at the end: the
# device tool brings back only a few files a call (perf-log entry 128 lost a grid that way).
#
# Needs: CUDA >= 13.0 with an sm_90 GPU, CMake, ninja, PyTorch with CUDA, pytest. No network:
# GoogleTest comes from .deps/googletest (scripts/prepare_offline_deps.sh) when the system lacks it.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/out}"
mkdir -p "$out"
log="$out/gpu_suite.log"
jobs="$(nproc)"
python="${PYTHON:-python3}"
summary=()
status=0

note() { echo "gpu_suite: $*" | tee -a "$log"; }
# A summary line, also appended to $out/summary.txt as soon as it is known: a call cut short by its
# time limit still shows what ran. `all` takes ~240 s on an H200 and ~300 s on an H100 (before the
# test cases were built in parallel, 520 s and over 590 s); `peer` runs in a call of its own.
record() { summary+=("$1"); echo "$1" >>"$out/summary.txt"; }
run_logged() { "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }

gtest_counts() {  # prints "P passed, F failed" from a gtest log
  local file="$1" passed failed
  passed=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$file" | grep -Eo '[0-9]+' | tail -1)
  failed=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$file" | grep -Eo '[0-9]+' | tail -1)
  echo "${passed:-0} passed, ${failed:-0} failed"
}

python_built() { (cd /tmp && "$python" -c "import flash_mla._C" 2>/dev/null); }
install_python() {  # install_python JOBS: the flash_mla package, log in $out/build_py.txt
  MAX_JOBS="$1" "$python" -m pip install --no-build-isolation --no-deps -q . >"$out/build_py.txt" 2>&1
}

do_build() {
  note "build: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  local gtest_dir=()
  [ -f .deps/googletest/CMakeLists.txt ] && gtest_dir=(-DFLASHMLA_GTEST_SOURCE_DIR="$root/.deps/googletest")
  local t0=$SECONDS
  # The C++ build and the Python extension compile the same kernels: run them side by side.
  (cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${gtest_dir[@]}" >"$out/build_cpp.txt" 2>&1 &&
     cmake --build build -j "$((jobs / 2 > 1 ? jobs / 2 : 1))" >>"$out/build_cpp.txt" 2>&1) &
  local cpp_pid=$!
  install_python "$((jobs / 2 > 1 ? jobs / 2 : 1))"
  local py_rc=$?
  wait "$cpp_pid"; local cpp_rc=$?
  cat "$out/build_cpp.txt" "$out/build_py.txt" >>"$log"
  if [ $cpp_rc -ne 0 ]; then tail -40 "$out/build_cpp.txt"; fi
  if [ $py_rc -ne 0 ]; then tail -40 "$out/build_py.txt"; fi
  rm -f "$out/build_cpp.txt" "$out/build_py.txt"
  record "build: C++ rc=$cpp_rc, python rc=$py_rc ($((SECONDS - t0)) s)"
  [ $cpp_rc -eq 0 ] && [ $py_rc -eq 0 ] || status=1
}

do_test() {
  local t0=$SECONDS
  if [ -x build/tests/flashmla_gpu_tests ]; then
    run_logged build/tests/flashmla_gpu_tests --gtest_color=no >"$out/cpp_gpu_tests.txt" 2>&1
    local rc=$?
    tail -25 "$out/cpp_gpu_tests.txt"
    record "C++ GPU tests: $(gtest_counts "$out/cpp_gpu_tests.txt") (rc=$rc)"
    [ $rc -eq 0 ] || status=1
    run_logged ctest --test-dir build -L cpu -j "$jobs" --output-on-failure >"$out/cpp_cpu_tests.txt" 2>&1
    rc=$?
    record "C++ CPU tests: $(grep -E 'tests passed|tests failed' "$out/cpp_cpu_tests.txt" | tail -1) (rc=$rc)"
    cat "$out/cpp_cpu_tests.txt" >>"$log"; rm -f "$out/cpp_cpu_tests.txt"
    [ $rc -eq 0 ] || status=1
  else
    record "C++ GPU tests: not built"; status=1
  fi
  (cd /tmp && PYTHONUNBUFFERED=1 "$python" -m pytest "$root/tests/python" -rfEs -p no:cacheprovider \
      -n "${PYTEST_WORKERS:-8}" --max-worker-restart=50 -v \
      --junitxml="$out/pytest.xml") >"$out/pytest.txt" 2>&1
  local prc=$?
  tail -30 "$out/pytest.txt"
  record "pytest: $(tail -1 "$out/pytest.txt") (rc=$prc, $((SECONDS - t0)) s with C++ tests)"
  [ $prc -eq 0 ] || status=1
  # The correctness grid again with every 64-row tile on the seesaw (the automatic schedule is the
  # one-page kernel).
  t0=$SECONDS
  (cd /tmp && FLASH_MLA_WIDE_SCHEDULE=seesaw PYTHONUNBUFFERED=1 "$python" -m pytest "$root/tests/python/test_correctness.py" \
      -rfEs -p no:cacheprovider -n "${PYTEST_WORKERS:-8}" --max-worker-restart=50 -q) >"$out/pytest_seesaw.txt" 2>&1
  prc=$?
  tail -5 "$out/pytest_seesaw.txt"
  record "pytest correctness, FLASH_MLA_WIDE_SCHEDULE=seesaw: $(tail -1 "$out/pytest_seesaw.txt") (rc=$prc, $((SECONDS - t0)) s)"
  [ $prc -eq 0 ] || status=1
}

do_bench() {
  local t0=$SECONDS
  if [ -x build/bench/flashmla_bench ]; then
    run_logged build/bench/flashmla_bench --check --json "$out/bench_cpp.json" >"$out/bench_cpp.txt" 2>&1
    local rc=$?
    record "C++ bench rc=$rc"
    [ $rc -eq 0 ] || status=1
    # The same rows timed as CUDA-graph launches of the 20 calls, as serving engines run decode
    # steps: the GPU's time without the host's cost per call (docs/performance.md).
    build/bench/flashmla_bench --graph 1 --json "$out/bench_cpp_graph.json" >"$out/bench_cpp_graph.txt" 2>&1
    rc=$?
    record "C++ bench, CUDA graphs, rc=$rc"
    [ $rc -eq 0 ] || status=1
    cat "$out/bench_cpp_graph.txt" >>"$log"
  fi
  # The research probes (docs/perf-log.md): tensor-core rate of the decode kernels' MMA streams
  # (wgmma_rate.cu), page time of the one-page and seesaw schedules (seesaw_probe.cu), and how
  # fast pages reach shared memory by ring depth, hold, sharing and source (page_stream_probe.cu).
  local probe probe_rc
  for probe in wgmma_rate seesaw_probe page_stream_probe; do
    [ -x "build/bench/flashmla_$probe" ] || continue
    "build/bench/flashmla_$probe" >"$out/$probe.txt" 2>&1
    probe_rc=$?
    record "flashmla_$probe rc=$probe_rc"
    [ $probe_rc -eq 0 ] || status=1
    cat "$out/$probe.txt" >>"$log"
  done
  PYTHONUNBUFFERED=1 "$python" -m flash_mla.bench --json "$out/bench_py.json" \
      --cpp-json "$out/bench_cpp.json" >"$out/bench_py.txt" 2>&1
  local prc=$?
  record "Python bench rc=$prc ($((SECONDS - t0)) s)"
  [ $prc -eq 0 ] || status=1
  "$python" scripts/plot_roofline.py "$out/bench_cpp.json" "$out/roofline.png" >>"$log" 2>&1 || true
  cat "$out/bench_cpp.txt" >>"$log"; cat "$out/bench_py.txt" >>"$log"
  cat "$out/bench_cpp.txt"; tail -60 "$out/bench_py.txt"
}

do_sanitize() {
  local filter="${SANITIZE_FILTER:-*Sanitize*}"
  local t0=$SECONDS
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
    compute-sanitizer --tool "$tool" --error-exitcode 42 \
      build/tests/flashmla_gpu_tests --gtest_filter="$filter" --gtest_color=no >"$out/sanitize_$tool.txt" 2>&1
    local rc=$?
    local verdict
    verdict=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitize_$tool.txt" | tail -1)
    record "compute-sanitizer $tool: ${verdict:-no summary} [$(gtest_counts "$out/sanitize_$tool.txt")] (rc=$rc)"
    [ $rc -eq 0 ] || status=1
    tail -8 "$out/sanitize_$tool.txt"
    cat "$out/sanitize_$tool.txt" >>"$log"; rm -f "$out/sanitize_$tool.txt"
  done
  record "sanitizer time $((SECONDS - t0)) s"
}

do_peer() {
  local t0=$SECONDS
  if ! python_built; then
    install_python "$jobs" || { tail -40 "$out/build_py.txt"; record "peer: python build failed"; status=1; return; }
  fi
  export PYTHONPATH="$root/bench/peer${PYTHONPATH:+:$PYTHONPATH}"
  if ! (cd /tmp && "$python" -c "import flashmla_peer; print('flashmla_peer:', flashmla_peer.version())" \
        >"$out/peer_load.txt" 2>&1); then
    tail -30 "$out/peer_load.txt"; record "peer: flashmla_peer does not load"; status=1; return
  fi
  cat "$out/peer_load.txt"
  local dtype name prc
  for dtype in ${PEER_DTYPES:-bf16}; do
    name=bench_vs_peer; [ "$dtype" = bf16 ] || name="bench_vs_peer_$dtype"
    (cd /tmp && PYTHONUNBUFFERED=1 "$python" -m flash_mla.bench --vs flashmla_peer --dtype "$dtype" \
       --json "$out/$name.json") >"$out/$name.txt" 2>&1
    prc=$?
    tail -60 "$out/$name.txt"
    record "peer: Python bench --vs flashmla_peer --dtype $dtype rc=$prc ($((SECONDS - t0)) s)"
    [ $prc -eq 0 ] || status=1
  done
  local rows="${PEER_ROWS-128,1,128,8192 128,1,64,8192 128,1,16,8192 128,2,128,4096}" pass module
  [ -n "$rows" ] || return
  for pass in 1 2; do
    for module in flash_mla flashmla_peer; do
      # shellcheck disable=SC2086  # one argument per row
      MODULE=$module REPEATS="${PEER_REPEATS:-20}" ITERS="${PEER_ITERS:-200}" OUT="$out" \
        bash scripts/power_probe.sh $rows
    done
  done
  record "peer: power probe done ($((SECONDS - t0)) s)"
}

ensure_built() {  # a later call may land on a fresh machine: build what is missing
  if [ ! -x build/tests/flashmla_gpu_tests ] || ! python_built; then
    do_build
  fi
}

modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(build test)
echo "== gpu_suite ${modes[*]} ($(date -u +%Y-%m-%dT%H:%M:%SZ))" >>"$out/summary.txt"
for mode in "${modes[@]}"; do
  case "$mode" in
    build) do_build ;;
    test) ensure_built; do_test ;;
    bench) ensure_built; do_bench ;;
    sanitize) ensure_built; do_sanitize ;;
    all) do_build; do_test; do_sanitize; do_bench ;;
    peer) do_peer ;;
    *) echo "gpu_suite: unknown mode '$mode' (build, test, bench, sanitize, all, peer)" >&2; exit 2 ;;
  esac
done

echo "================ gpu_suite summary ================" | tee -a "$log"
for line in "${summary[@]}"; do echo "$line" | tee -a "$log"; done
if [ "${PACK_OUT:-0}" = 1 ]; then
  pack="$(mktemp -d)/gpu_suite.tgz"
  if tar czf "$pack" -C "$out" .; then
    find "$out" -mindepth 1 -delete && mv "$pack" "$out/gpu_suite.tgz"
  else
    echo "gpu_suite: PACK_OUT: tar failed, $out left as it is" >&2
  fi
fi
exit $status
