// flashmla_bench: types shared by the benchmark's translation units.
// The benchmark only uses the public C++ API (include/flashmla) plus, for --check,
// the tests' support library (flashmla::testing) when that target exists.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flashmla/flashmla.h"

namespace bench {

// ---------------------------------------------------------------- configuration

struct Config {
  int b = 128;
  int s_q = 1;
  int h_q = 128;
  int h_kv = 1;
  int s_k = 4096;
  bool varlen = true;
  bool causal = true;
  flashmla::DType dtype = flashmla::DType::bf16;
  int sm_parts = 0;   // parts of the split plan; 0: flashmla::num_sm_parts_for's choice (--sm_parts, a diagnostic)
  flashmla::WideSchedule wide_schedule = flashmla::WideSchedule::automatic;   // --wide_schedule (every row)
};

std::string describe(const Config& c);  // "b=128 s_q=1 h_q=128 h_kv=1 s_k=4096 varlen causal bf16"

// The values q and the cache are filled with. flashmla: FlashMLA's test recipe, which
// shared/ANCHORS.md's rows were timed with (q and cache ~ N(0, 1) / 10, clamped to [-1, 1]);
// uniform: uniform in [-1, 1), this benchmark's recipe until perf-log entry 81, which timed both
// alike (same power, same clock), so rows measured with either compare.
// zeros: q and cache all zero, operands that switch no bits: a diagnostic of how much of a row's
// power at the cap is the data's (perf-log entry 93), not a workload.
enum class DataRecipe { flashmla, uniform, zeros };
const char* data_recipe_name(DataRecipe d);

struct Options {
  std::vector<Config> configs;
  int repeats = 7;
  int iters = 20;
  int warmup = 5;
  int device = 0;
  bool check = false;
  bool rotate = true;              // rotate copies of q/cache so small rows do not run from L2
  bool graph = false;              // time CUDA-graph launches of the `iters` calls (--graph)
  bool settle = true;              // time the first row twice and keep the second (--settle)
  bool contiguous_pages = false;   // block tables give each request consecutive pages (default: a random permutation)
  int table_blocks = 0;            // block-table width (--table_blocks); 0: the batch's longest request
  DataRecipe data = DataRecipe::flashmla;   // the values of q and the cache
  double read_gib = 4.0;           // size of the streaming-read ceiling buffer
  std::string json_path;
};

// Parses argv; prints usage and exits 0 for --help; throws std::runtime_error on bad input.
Options parse_args(int argc, char** argv);

// ANCHORS.md's rows: the b=128 varlen causal grid, then the small-batch fixed-length rows.
std::vector<Config> grid_rows();
std::vector<Config> small_rows();

// ---------------------------------------------------------------- workload

// Per-request cache lengths. varlen: max(N(s_k, s_k/2), s_q) truncated to int, drawn with a
// Mersenne Twister seeded exactly like Python's random.seed(0) so that the C++ and Python
// benchmarks (and ANCHORS.md) use the same lengths. Fixed: s_k for every request.
std::vector<int> cache_lengths(const Config& c, uint64_t seed = 0);

// FLOP and bytes of one call, the formulas of ANCHORS.md.
double mean_length(const std::vector<int>& lengths);
double flop_per_call(const Config& c, double mean_len);
double bytes_per_call(const Config& c, double mean_len);

// Device state of one configuration: `copies` independent q/cache pairs sharing one block
// table, one set of lengths, one split plan, one output and one workspace.
struct Workload {
  Config cfg;
  std::vector<int> lengths;
  double mean_len = 0;
  int copies = 1;
  int num_blocks = 0;            // pages per copy
  int max_blocks_per_seq = 0;
  int num_sm_parts = 0;
  size_t q_bytes = 0, cache_bytes = 0;
  std::vector<void*> q, cache;   // one per copy
  int32_t* block_table = nullptr;
  int32_t* seqlens = nullptr;
  int32_t* tile_metadata = nullptr;
  int32_t* num_splits = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  Workload() = default;
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;
  ~Workload();

  // DecodeArgs for copy `i` (plan included).
  flashmla::DecodeArgs args(int i) const;
};

// Allocates and fills a workload (random q and cache, random permuted block table, or with
// contiguous_pages each request's pages consecutive in memory), then computes the split plan once
// with get_mla_metadata on `stream` (as an engine does per step).
// rotate_bytes > 0: enough copies that consecutive calls touch at least that many bytes.
// table_blocks > 0: the block table's width (max_blocks_per_seq), as an engine that sizes its
// tables to the longest context it serves passes it; it must hold the longest request's pages.
// 0: the longest request's pages.
void build_workload(Workload& w, const Config& c, int device, size_t rotate_bytes, bool contiguous_pages,
                    int table_blocks, DataRecipe data, cudaStream_t stream);

// Fills `count` 16-bit values with deterministic pseudo-random numbers in [-scale, scale).
void fill_random_half(void* dst, size_t count, flashmla::DType dtype, float scale, uint64_t seed,
                      cudaStream_t stream);

// Fills `count` 16-bit values with deterministic pseudo-random normal numbers of standard deviation
// sigma, clamped to [-1, 1] (FlashMLA's test recipe: randn() / 10, then clamp).
void fill_clamped_normal_half(void* dst, size_t count, flashmla::DType dtype, float sigma, uint64_t seed,
                              cudaStream_t stream);

// ---------------------------------------------------------------- ceilings

struct Ceilings {
  double read_gbps = 0;          // streaming HBM read, median
  double read_buffer_bytes = 0;
  double gemm_tflops = 0;        // bf16 cuBLAS GEMM n^3, f32 compute, median
  int gemm_n = 8192;
  std::vector<double> read_samples_gbps, gemm_samples_tflops;
};

Ceilings measure_ceilings(double read_gib, int gemm_n, cudaStream_t stream);

// Roofline time of one call in microseconds: max(FLOP / peak, bytes / bandwidth).
double roofline_us(double flop, double bytes, const Ceilings& ceil);

// ---------------------------------------------------------------- timing

struct Timing {
  std::vector<double> us_per_call;   // one per repeat
  double median = 0, min = 0, max = 0, spread_pct = 0;
  // Host wall time per call of each repeat's enqueue loop (the `iters` calls, or the one graph
  // launch, until the last returns). Where it reaches the GPU's time per call, the row is timed
  // at the host's pace, not the kernels'.
  std::vector<double> host_us_per_call;
  double host_median = 0;
};

// Runs `warmup` calls, then `repeats` x (`iters` back-to-back calls between two CUDA events).
// call(k) launches call number k on `stream`. graph: the `iters` calls are captured once into a
// CUDA graph (after the warm-up) and each repeat launches it, so the row's time is the GPU's,
// without the host's cost per call (as serving engines run decode steps).
Timing time_calls(const std::function<void(int)>& call, int warmup, int repeats, int iters,
                  cudaStream_t stream, bool graph = false);
Timing summarize(std::vector<double> samples);
// The median of samples (the mean of the middle two for an even count); throws when empty.
double median_of(std::vector<double> v);

// ---------------------------------------------------------------- anchors (ANCHORS.md)

struct Anchor {
  int b, s_q, h_q, s_k;
  double roofline_us;     // on the anchor H200, with its ceilings
  double flashmla_us;
  int flashmla_pct;       // "% roof" as printed in ANCHORS.md
  double fa3_us;
  int fa3_pct;
};

// The ANCHORS.md row for this configuration, or nullptr when the configuration is not
// ANCHORS' recipe (b=128 rows: varlen + causal; small rows: fixed lengths; bf16, h_kv=1).
const Anchor* find_anchor(const Config& c);

// ---------------------------------------------------------------- results and output

struct Row {
  Config cfg;
  double mean_len = 0;
  int copies = 1;
  int num_sm_parts = 0;
  Timing t;
  double flop = 0, bytes = 0;
  double tflops = 0, gbps = 0;
  double roof_us = 0, pct_roof = 0;
  const Anchor* anchor = nullptr;
  double vs_flashmla = 0;   // our %roof / FlashMLA's %roof (0 when no anchor)
};

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  size_t l2_bytes = 0;
  size_t global_mem_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};

DeviceInfo query_device(int device);

void print_header(const DeviceInfo& dev, const Ceilings& ceil, const Options& opt);
void print_table(const std::vector<Row>& rows);
void write_json(const std::string& path, const DeviceInfo& dev, const Ceilings& ceil,
                const Options& opt, const std::vector<Row>& rows);

// ---------------------------------------------------------------- --check

// Whether the binary was built with the tests' support library.
bool check_available();
// Runs a cut-down case of `c` on Backend::cuda and Backend::cpu and compares with SPEC
// tolerances. Returns false (and prints why) on mismatch.
bool check_config(const Config& c, int device, cudaStream_t stream);

}  // namespace bench
