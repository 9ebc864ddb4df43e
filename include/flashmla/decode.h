// flashmla: dense MLA decoding over a paged KV cache (public, torch-free API).
//
// A decoding step is two calls:
//   1. get_mla_metadata(): the split-KV plan, computed from cache_seqlens once per step
//      (on the GPU for Backend::cuda, no host synchronisation) and reused by every layer;
//   2. mla_decode(): attention for one layer, using that plan and a caller-owned workspace
//      of mla_decode_workspace_size() bytes.
// Every pointer is raw; strides are in elements; shapes are given explicitly. Invalid
// arguments throw flashmla::Error naming the argument, the expected and the actual value.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "flashmla/error.h"
#include "flashmla/types.h"

namespace flashmla {

// ---------------------------------------------------------------- split plan

// How many SM parts (persistent CTAs per query-tile column) the plan divides the KV work into.
// Pure function: num_sms is the device's multiprocessor count.
int num_sm_parts_for(int num_sms, int num_q_tokens_per_head_k, int num_heads_kv);

// Multiprocessor count of a CUDA device (throws flashmla::Error with the CUDA error string).
int device_sm_count(int device);

struct MetadataArgs {
  const int32_t* cache_seqlens = nullptr;     // [batch] tokens in the cache per request
  int batch = 0;
  int num_q_tokens_per_head_k = 0;            // seqlen_q * num_heads_q / num_heads_kv
  int num_heads_kv = 1;
  int num_sm_parts = 0;                       // num_sm_parts_for(...)
  int32_t* tile_scheduler_metadata = nullptr; // [num_sm_parts, kMetadataFields] out
  int32_t* num_splits = nullptr;              // [batch + 1] out
};

// Fills the split plan. Backend::cuda: one kernel on `stream`, capturable in a CUDA graph.
// Backend::cpu: host pointers, computed in place (same plan bit for bit).
void get_mla_metadata(Backend backend, const MetadataArgs& args, cudaStream_t stream = nullptr);

// ---------------------------------------------------------------- decode

struct DecodeArgs {
  DType dtype = DType::bf16;
  int batch = 0;
  int seqlen_q = 1;
  int num_heads_q = 0;
  int num_heads_kv = 1;
  int head_dim = kHeadDimQK;        // 576
  int head_dim_v = kHeadDimV;       // 512
  int num_blocks = 0;               // physical pages in k_cache
  int page_block_size = kPageBlockSize;
  int max_blocks_per_seq = 0;       // columns of block_table

  const void* q = nullptr;          // [batch, seqlen_q, num_heads_q, head_dim], dtype
  int64_t q_stride[4] = {0, 0, 0, 1};
  const void* k_cache = nullptr;    // [num_blocks, page_block_size, num_heads_kv, head_dim], dtype
  int64_t k_stride[4] = {0, 0, 0, 1};
  const int32_t* block_table = nullptr;   // [batch, max_blocks_per_seq]
  int64_t block_table_stride[2] = {0, 1};
  const int32_t* cache_seqlens = nullptr; // [batch]

  void* out = nullptr;              // [batch, seqlen_q, num_heads_q, head_dim_v], dtype
  int64_t out_stride[4] = {0, 0, 0, 1};
  float* lse = nullptr;             // [batch, num_heads_q, seqlen_q], float32
  int64_t lse_stride[3] = {0, 0, 1};

  float softmax_scale = 0.0f;       // <= 0 selects head_dim^-0.5
  bool causal = false;
  WideSchedule wide_schedule = WideSchedule::automatic;   // see types.h

  // Split plan from get_mla_metadata (Backend::cuda only; the CPU reference computes rows directly).
  const int32_t* tile_scheduler_metadata = nullptr;  // [num_sm_parts, kMetadataFields]
  int num_sm_parts = 0;
  const int32_t* num_splits = nullptr;               // [batch + 1]

  void* workspace = nullptr;        // >= mla_decode_workspace_size(...) bytes, 256-byte aligned
  size_t workspace_bytes = 0;
};

// Bytes of scratch mla_decode needs for split partials (0 is a valid answer).
size_t mla_decode_workspace_size(int num_sm_parts, int num_q_tokens_per_head_k, int num_heads_kv);

// Attention for one layer. Backend::cuda: asynchronous on `stream`, no host synchronisation,
// capturable in a CUDA graph. Backend::cpu: the reference (float64 accumulation, multithreaded).
void mla_decode(Backend backend, const DecodeArgs& args, cudaStream_t stream = nullptr);

// Throws flashmla::Error for any argument the given backend cannot accept. Called by
// mla_decode; public so bindings can validate before allocating outputs.
void validate_decode_args(Backend backend, const DecodeArgs& args);
void validate_metadata_args(Backend backend, const MetadataArgs& args);

}  // namespace flashmla
