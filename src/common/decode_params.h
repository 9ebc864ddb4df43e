// Plain-old-data parameters of the decode, combine and metadata kernels.
// Built on the host from validated public arguments (src/host/), passed by value to kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flashmla/types.h"

namespace flashmla {

// Query rows of one kv group are (token i, head j) pairs numbered m = i * q_heads_per_kv + j,
// where query head h = kv_head * q_heads_per_kv + j. A CTA works on 64 consecutive rows (wide
// kernel) or on all of them, up to 32 (narrow kernel; plan::decode_tile_rows).
struct DecodeParams {
  DType dtype;
  int batch;
  int seqlen_q;
  int num_heads_q;
  int num_heads_kv;
  int q_heads_per_kv;        // num_heads_q / num_heads_kv
  int rows_per_kv;           // seqlen_q * q_heads_per_kv
  int num_row_tiles;         // ceil(rows_per_kv / 64)
  int num_blocks;            // physical pages in the cache
  int max_blocks_per_seq;
  int num_sm_parts;
  bool seesaw;               // the call has 64-row tiles and they run the seesaw (from WideSchedule)
  bool causal;
  float softmax_scale;       // natural-log scale applied to q.k
  float scale_log2;          // softmax_scale * log2(e), for exp2-based softmax

  const void* q;             // [batch, seqlen_q, num_heads_q, 576] bf16/fp16
  int64_t q_stride_b, q_stride_s, q_stride_h;
  const void* k_cache;       // [num_blocks, 64, num_heads_kv, 576] bf16/fp16
  int64_t k_stride_block, k_stride_token, k_stride_head;
  const int32_t* block_table;   // [batch, max_blocks_per_seq]
  int64_t block_table_stride;
  const int32_t* cache_seqlens; // [batch]

  void* out;                 // [batch, seqlen_q, num_heads_q, 512] bf16/fp16
  int64_t out_stride_b, out_stride_s, out_stride_h;
  float* lse;                // [batch, num_heads_q, seqlen_q]
  int64_t lse_stride_b, lse_stride_h, lse_stride_s;

  const int32_t* tile_metadata;  // [num_sm_parts, 8], see plan::MetadataField
  const int32_t* num_splits;     // [batch + 1]: prefix of partial slots (0 slots: request not split)
  float* partial_o;              // [max_slots, num_heads_kv, rows_per_kv, 512]
  float* partial_lse;            // [max_slots, num_heads_kv, rows_per_kv], natural log, -inf if empty
  int max_partial_slots;
};

#if defined(__CUDACC__)
// Query token i and head h of row m of kv head kv_head (the numbering above).
__device__ __forceinline__ void token_and_head(const DecodeParams& p, int kv_head, int m, int& i, int& h) {
  i = m / p.q_heads_per_kv;
  h = kv_head * p.q_heads_per_kv + (m - i * p.q_heads_per_kv);
}
#endif

struct MetadataParams {
  const int32_t* cache_seqlens;  // [batch]
  int batch;
  int num_sm_parts;
  int rows_per_kv;               // s_q * h_q / h_kv: sets the plan's fixed cost and slot weight
  int32_t* tile_metadata;        // [num_sm_parts, 8] out
  int32_t* num_splits;           // [batch + 1] out
};

// Workspace layout: partial_lse then partial_o, each 256-byte aligned.
struct WorkspaceLayout {
  int max_slots;
  size_t lse_offset, lse_bytes;
  size_t o_offset, o_bytes;
  size_t total_bytes;
};

inline size_t align_up_256(size_t n) { return (n + 255) / 256 * 256; }

// A request split into k > 1 ranges uses k slots; the num_sm_parts - 1 cuts bound the sum of
// (k - 1) over split requests, so at most 2 * (num_sm_parts - 1) slots are ever used.
inline WorkspaceLayout workspace_layout(int num_sm_parts, int rows_per_kv, int num_heads_kv) {
  WorkspaceLayout w{};
  w.max_slots = num_sm_parts > 1 ? 2 * (num_sm_parts - 1) : 0;
  const size_t rows = static_cast<size_t>(w.max_slots) * num_heads_kv * rows_per_kv;
  w.lse_offset = 0;
  w.lse_bytes = align_up_256(rows * sizeof(float));
  w.o_offset = w.lse_bytes;
  w.o_bytes = align_up_256(rows * kHeadDimV * sizeof(float));
  w.total_bytes = w.lse_bytes + w.o_bytes;
  return w;
}

}  // namespace flashmla
