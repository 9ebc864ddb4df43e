// flashmla_bench: times flashmla::mla_decode (Backend::cuda) over shared/ANCHORS.md's rows,
// against ceilings measured in the same run, and prints a markdown table (optionally JSON).
// Exit status: 0 on success, 1 on any error (CUDA, cuBLAS, flashmla::Error, bad arguments),
// 2 when --check finds a mismatch.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <set>
#include <tuple>
#include <vector>

#include "bench.h"
#include "cuda_check.h"

namespace bench {
namespace {

int run(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  if (opt.check && !check_available()) {
    std::fprintf(stderr, "error: --check needs the tests' support library (build with FLASHMLA_BUILD_TESTS=ON)\n");
    return 1;
  }
  BENCH_CUDA(cudaSetDevice(opt.device));
  const DeviceInfo dev = query_device(opt.device);
  cudaStream_t stream = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  struct StreamGuard {
    cudaStream_t s;
    ~StreamGuard() { cudaStreamDestroy(s); }
  } guard{stream};

  if (opt.check) {
    // Rows whose cut-down cases coincide (same s_q/h_q/... once b and s_k are capped) are checked once.
    bool ok = true;
    std::set<std::tuple<int, int, int, int, int, bool, bool, int>> seen;
    for (const Config& c : opt.configs) {
      const auto key = std::make_tuple(std::min(c.b, 4), c.s_q, c.h_q, c.h_kv, std::min(c.s_k, 2048), c.varlen,
                                       c.causal, static_cast<int>(c.dtype));
      if (!seen.insert(key).second) continue;
      ok = check_config(c, opt.device, stream) && ok;
    }
    if (!ok) {
      std::fprintf(stderr, "error: --check found mismatches; not timing\n");
      return 2;
    }
  }

  std::fprintf(stderr, "measuring ceilings...\n");
  const Ceilings ceil = measure_ceilings(opt.read_gib, 8192, stream);
  print_header(dev, ceil, opt);

  // Rotation target: consecutive calls touch at least 4x the L2 (and 256 MiB).
  const size_t rotate_bytes =
      opt.rotate ? std::max<size_t>(4 * dev.l2_bytes, size_t{256} << 20) : 0;

  std::vector<Row> rows;
  for (const Config& c : opt.configs) {
    Workload w;
    build_workload(w, c, opt.device, rotate_bytes, opt.contiguous_pages, opt.table_blocks, opt.data, stream);
    auto call = [&](int k) { flashmla::mla_decode(flashmla::Backend::cuda, w.args(k % w.copies), stream); };
    Row r;
    r.cfg = c;
    r.mean_len = w.mean_len;
    r.copies = w.copies;
    r.num_sm_parts = w.num_sm_parts;
    auto time_row = [&] { return time_calls(call, opt.warmup, opt.repeats, opt.iters, stream, opt.graph); };
    // The first row would otherwise follow the cuBLAS ceiling, whose heat slows it by a median 2.4%
    // and up to 15% (docs/perf-log.md, entries 77 and 129); a pass of itself puts it where every
    // later row is, after a row of decode calls.
    if (opt.settle && rows.empty()) (void)time_row();
    r.t = time_row();
    r.flop = flop_per_call(c, w.mean_len);
    r.bytes = bytes_per_call(c, w.mean_len);
    r.tflops = r.flop / (r.t.median * 1e-6) / 1e12;
    r.gbps = r.bytes / (r.t.median * 1e-6) / 1e9;
    r.roof_us = roofline_us(r.flop, r.bytes, ceil);
    r.pct_roof = 100.0 * r.roof_us / r.t.median;
    r.anchor = find_anchor(c);
    if (r.anchor) r.vs_flashmla = r.pct_roof / (100.0 * r.anchor->roofline_us / r.anchor->flashmla_us);
    std::fprintf(stderr, "%s: %.1f us (spread %.1f%%, host %.1f us a call, %d cop%s, %d SM parts)\n",
                 describe(c).c_str(), r.t.median, r.t.spread_pct, r.t.host_median, w.copies,
                 w.copies == 1 ? "y" : "ies", w.num_sm_parts);
    rows.push_back(r);
  }

  print_table(rows);
  if (!opt.json_path.empty()) {
    write_json(opt.json_path, dev, ceil, opt, rows);
    std::fprintf(stderr, "wrote %s\n", opt.json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::run(argc, argv);
  } catch (const flashmla::Error& e) {
    std::fprintf(stderr, "error (flashmla): %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
