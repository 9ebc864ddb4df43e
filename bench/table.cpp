// Output of a run: the header (GPU, measured ceilings), the markdown results table and the
// JSON file (same fields as python/flash_mla/bench.py writes; scripts/plot_roofline.py reads both).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bench.h"
#include "cuda_check.h"

namespace bench {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json_number(v[i]);
  return s + "]";
}

// FlashMLA's fraction of roofline for an anchor row, from the quoted times (percent).
double anchor_pct(const Anchor& a) { return 100.0 * a.roofline_us / a.flashmla_us; }

}  // namespace

const char* data_recipe_name(DataRecipe d) {
  switch (d) {
    case DataRecipe::flashmla: return "flashmla";
    case DataRecipe::uniform: return "uniform";
    case DataRecipe::zeros: return "zeros";
  }
  return "?";
}

std::string describe(const Config& c) {
  std::ostringstream s;
  s << "b=" << c.b << " s_q=" << c.s_q << " h_q=" << c.h_q << " h_kv=" << c.h_kv << " s_k=" << c.s_k
    << (c.varlen ? " varlen" : " fixed") << (c.causal ? " causal" : " non-causal") << " "
    << flashmla::dtype_name(c.dtype);
  if (c.sm_parts > 0) s << " sm_parts=" << c.sm_parts;
  if (c.wide_schedule != flashmla::WideSchedule::automatic) {
    s << " wide_schedule=" << flashmla::wide_schedule_name(c.wide_schedule);
  }
  return s.str();
}

DeviceInfo query_device(int device) {
  DeviceInfo d;
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, device));
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  d.global_mem_bytes = prop.totalGlobalMem;
  BENCH_CUDA(cudaDriverGetVersion(&d.driver_version));
  BENCH_CUDA(cudaRuntimeGetVersion(&d.runtime_version));
  return d;
}

void print_header(const DeviceInfo& dev, const Ceilings& ceil, const Options& opt) {
  std::printf("# flashmla_bench\n\n");
  std::printf("- GPU: %s, %d SMs, compute capability %d.%d, L2 %.1f MiB, %.1f GiB memory\n",
              dev.name.c_str(), dev.sm_count, dev.cc_major, dev.cc_minor, dev.l2_bytes / 1048576.0,
              dev.global_mem_bytes / 1073741824.0);
  std::printf("- CUDA runtime %d, driver %d, flashmla %d.%d.%d\n", dev.runtime_version, dev.driver_version,
              FLASHMLA_VERSION_MAJOR, FLASHMLA_VERSION_MINOR, FLASHMLA_VERSION_PATCH);
  std::printf("- Streaming read ceiling (own kernel, %.2f GiB buffer, median of %zu): %.0f GB/s\n",
              ceil.read_buffer_bytes / 1073741824.0, ceil.read_samples_gbps.size(), ceil.read_gbps);
  std::printf("- bf16 GEMM ceiling (cuBLAS %d^3, f32 compute, median of %zu): %.0f TFLOPS\n", ceil.gemm_n,
              ceil.gemm_samples_tflops.size(), ceil.gemm_tflops);
  std::printf("- Timing: median of %d repeats x %d back-to-back calls (CUDA events%s), %d warm-up calls, "
              "metadata computed once per row; first row timed %s; L2 rotation %s; pages %s\n",
              opt.repeats, opt.iters, opt.graph ? ", captured once as a CUDA graph" : "", opt.warmup,
              opt.settle ? "after an untimed pass of itself (--settle 1)" : "right after the ceilings (--settle 0)",
              opt.rotate ? "on" : "off",
              opt.contiguous_pages ? "contiguous per request" : "randomly permuted");
  if (opt.table_blocks > 0) {
    std::printf("- Block tables %d blocks wide (--table_blocks), as an engine sized to %lld tokens passes them\n",
                opt.table_blocks, 64LL * opt.table_blocks);
  }
  std::printf("- Data: %s\n", opt.data == DataRecipe::flashmla
                                   ? "FlashMLA's test recipe, q and cache ~ N(0, 1) / 10 clamped to [-1, 1] (--data flashmla)"
                               : opt.data == DataRecipe::uniform ? "q and cache uniform in [-1, 1) (--data uniform)"
                                                                 : "q and cache all zero (--data zeros, a power diagnostic)");
  std::printf("- FlashMLA %% roof: quoted from shared/ANCHORS.md (H200, its own ceilings), "
              "= ANCHORS roofline us / FlashMLA us\n");
  std::printf("- host us: the host's wall time per call to enqueue the repeats' calls (median); \"host-paced\" "
              "where it is >= 90%% of the GPU's time per call, which is then the host's pace\n\n");
  std::fflush(stdout);
}

// The share of a row's GPU time per call at which the host's enqueue time per call marks it.
constexpr double kHostPacedShare = 0.9;

void print_table(const std::vector<Row>& rows) {
  std::printf("| b | s_q | h_q | s_k | us | spread %% | TFLOPS | GB/s | roofline us | %% roof | FlashMLA %% roof | vs FlashMLA | host us |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    char anchor[32] = "-", vs[32] = "-";
    if (r.anchor) {
      std::snprintf(anchor, sizeof(anchor), "%.1f%%", anchor_pct(*r.anchor));
      std::snprintf(vs, sizeof(vs), "%.3f", r.vs_flashmla);
    }
    // A row whose calls take the host about as long to issue as the GPU to run is timed at the
    // host's pace (docs/performance.md, "Host overhead"): marked "host-paced".
    const bool host_paced = r.t.host_median >= kHostPacedShare * r.t.median;
    std::printf("| %d | %d | %d | %d | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f%% | %s | %s | %.1f%s |\n", r.cfg.b,
                r.cfg.s_q, r.cfg.h_q, r.cfg.s_k, r.t.median, r.t.spread_pct, r.tflops, r.gbps, r.roof_us,
                r.pct_roof, anchor, vs, r.t.host_median, host_paced ? " host-paced" : "");
  }
  std::fflush(stdout);
}

void write_json(const std::string& path, const DeviceInfo& dev, const Ceilings& ceil,
                const Options& opt, const std::vector<Row>& rows) {
  std::ostringstream j;
  j << "{\n  \"source\": \"cpp\",\n  \"tool\": \"flashmla_bench\",\n";
  j << "  \"device\": {\"name\": " << json_string(dev.name) << ", \"sm_count\": " << dev.sm_count
    << ", \"compute_capability\": \"" << dev.cc_major << "." << dev.cc_minor << "\", \"l2_bytes\": "
    << dev.l2_bytes << ", \"memory_bytes\": " << dev.global_mem_bytes << ", \"cuda_runtime\": "
    << dev.runtime_version << ", \"cuda_driver\": " << dev.driver_version << "},\n";
  j << "  \"ceilings\": {\"read_gbps\": " << json_number(ceil.read_gbps)
    << ", \"read_buffer_bytes\": " << json_number(ceil.read_buffer_bytes)
    << ", \"read_samples_gbps\": " << json_array(ceil.read_samples_gbps)
    << ", \"gemm_tflops\": " << json_number(ceil.gemm_tflops) << ", \"gemm_n\": " << ceil.gemm_n
    << ", \"gemm_samples_tflops\": " << json_array(ceil.gemm_samples_tflops)
    << ", \"read_method\": \"own kernel: grid-stride 16-byte streaming loads\""
    << ", \"gemm_method\": \"cublasGemmEx bf16 in/out, CUBLAS_COMPUTE_32F\"},\n";
  j << "  \"settings\": {\"repeats\": " << opt.repeats << ", \"iters\": " << opt.iters
    << ", \"warmup\": " << opt.warmup << ", \"l2_rotation\": " << (opt.rotate ? "true" : "false")
    << ", \"graph\": " << (opt.graph ? "true" : "false") << ", \"settle\": " << (opt.settle ? "true" : "false")
    << ", \"pages\": \"" << (opt.contiguous_pages ? "contiguous" : "random") << "\""
    << ", \"table_blocks\": " << opt.table_blocks
    << ", \"data\": \"" << data_recipe_name(opt.data) << "\""
    << ", \"check\": " << (opt.check ? "true" : "false") << "},\n";
  j << "  \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const Config& c = r.cfg;
    j << (i ? ",\n" : "\n") << "    {\"b\": " << c.b << ", \"s_q\": " << c.s_q << ", \"h_q\": " << c.h_q
      << ", \"h_kv\": " << c.h_kv << ", \"s_k\": " << c.s_k << ", \"varlen\": " << (c.varlen ? "true" : "false")
      << ", \"causal\": " << (c.causal ? "true" : "false") << ", \"dtype\": \"" << flashmla::dtype_name(c.dtype)
      << "\", \"mean_len\": " << json_number(r.mean_len) << ", \"copies\": " << r.copies
      << ", \"num_sm_parts\": " << r.num_sm_parts << ", \"us_median\": " << json_number(r.t.median)
      << ", \"us_min\": " << json_number(r.t.min) << ", \"us_max\": " << json_number(r.t.max)
      << ", \"spread_pct\": " << json_number(r.t.spread_pct) << ", \"us_samples\": " << json_array(r.t.us_per_call)
      << ", \"host_us_median\": " << json_number(r.t.host_median)
      << ", \"host_us_samples\": " << json_array(r.t.host_us_per_call)
      << ", \"flop\": " << json_number(r.flop) << ", \"bytes\": " << json_number(r.bytes)
      << ", \"tflops\": " << json_number(r.tflops) << ", \"gbps\": " << json_number(r.gbps)
      << ", \"roofline_us\": " << json_number(r.roof_us) << ", \"pct_roofline\": " << json_number(r.pct_roof);
    if (r.anchor) {
      const Anchor& a = *r.anchor;
      j << ", \"anchor\": {\"roofline_us\": " << json_number(a.roofline_us) << ", \"flashmla_us\": "
        << json_number(a.flashmla_us) << ", \"flashmla_pct_roofline\": " << json_number(anchor_pct(a))
        << ", \"fa3_us\": " << json_number(a.fa3_us) << ", \"fa3_pct_quoted\": " << a.fa3_pct
        << "}, \"vs_flashmla\": " << json_number(r.vs_flashmla) << "}";
    } else {
      j << ", \"anchor\": null, \"vs_flashmla\": null}";
    }
  }
  j << "\n  ]\n}\n";
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot open --json file " + path);
  f << j.str();
  f.close();
  if (!f) throw std::runtime_error("cannot write --json file " + path);
}

}  // namespace bench
