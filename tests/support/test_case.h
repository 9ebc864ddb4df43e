// Test support shared by the CPU tests, the C++ GPU tests and the benchmark's --check:
// random paged-cache cases built on the host, and comparisons with SPEC section 1's tolerances.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flashmla/decode.h"

namespace flashmla::testing {

// 16-bit float conversions (round to nearest even), for bf16 and fp16 storage.
uint16_t float_to_half_bits(float value, DType dtype);
float half_bits_to_float(uint16_t bits, DType dtype);

inline constexpr int32_t kUnusedBlockId = 2147480000;   // what tests put in unused table slots

struct CaseSpec {
  DType dtype = DType::bf16;
  int batch = 1;
  int seqlen_q = 1;
  int num_heads_q = 16;
  int num_heads_kv = 1;
  std::vector<int> seqlens;       // size batch
  bool causal = false;
  float softmax_scale = 0.0f;     // <= 0: head_dim^-0.5
  uint64_t seed = 0;
  int extra_blocks = 3;           // spare physical pages beyond what the requests use
  int extra_table_columns = 1;    // block_table columns beyond the longest request
  bool poison_unused = true;      // NaN/Inf in unused cache rows and pages, kUnusedBlockId in unused slots
  int q_token_stride_pad = 0;     // extra elements between q tokens: a non-contiguous q
  WideSchedule wide_schedule = WideSchedule::automatic;   // DecodeArgs::wide_schedule
};

// A whole case in host memory, in the layouts of DecodeArgs (contiguous unless padded).
struct HostCase {
  CaseSpec spec;
  int num_blocks = 0;
  int max_blocks_per_seq = 0;
  std::vector<uint16_t> q;           // [batch, seqlen_q, num_heads_q, 576] (+ token padding)
  int64_t q_stride[4] = {0, 0, 0, 1};
  std::vector<uint16_t> k_cache;     // [num_blocks, 64, num_heads_kv, 576]
  int64_t k_stride[4] = {0, 0, 0, 1};
  std::vector<int32_t> block_table;  // [batch, max_blocks_per_seq], random permutation of pages
  std::vector<int32_t> seqlens;      // [batch]

  size_t out_elements() const;       // batch * seqlen_q * num_heads_q * 512
  size_t lse_elements() const;       // batch * num_heads_q * seqlen_q

  // DecodeArgs over this case's host buffers (or over device copies: pass their pointers),
  // with contiguous out [b, s_q, h_q, 512] and lse [b, h_q, s_q]. No metadata, no workspace.
  DecodeArgs args(const void* q_ptr, const void* k_ptr, const int32_t* table_ptr,
                  const int32_t* seqlens_ptr, void* out_ptr, float* lse_ptr) const;
  DecodeArgs host_args(void* out_ptr, float* lse_ptr) const;
};

HostCase make_case(const CaseSpec& spec);

// Random lengths in [lo, hi], a given fraction of them 0.
std::vector<int> random_seqlens(int batch, int lo, int hi, double zero_fraction, uint64_t seed);

struct Comparison {
  bool ok = true;
  std::string message;       // first failures, human readable; empty when ok
  double max_abs_error = 0;
  double cosine_diff = 0;    // 1 - 2*sum(a*b)/sum(a*a+b*b), over finite elements
  size_t mismatches = 0;
};

// out (16-bit, dtype) against the reference (16-bit, same dtype): SPEC section 1's element
// tolerance (abs 8e-4 or rel 2.01/128), cosine difference <= 5e-6, identical NaN/inf positions.
Comparison compare_out(const std::vector<uint16_t>& actual, const std::vector<uint16_t>& expected,
                       DType dtype);
// lse: abs 1e-6 or rel 8.01/65536, identical +inf/NaN positions.
Comparison compare_lse(const std::vector<float>& actual, const std::vector<float>& expected);

}  // namespace flashmla::testing
