// Device buffers of one benchmark configuration, built the way ANCHORS.md describes:
// random q and cache (bf16/fp16, d = 576), h_kv heads, page 64, a random permutation of the
// physical pages in the block table, lengths from cache_lengths(), and the split plan computed
// once with get_mla_metadata (an engine computes it once per decoding step).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>

#include "bench.h"
#include "cuda_check.h"

namespace bench {
namespace {

template <typename T>
T* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("cudaMalloc(") + what + ", " + std::to_string(bytes) +
                             " bytes): " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
  return static_cast<T*>(p);
}

}  // namespace

Workload::~Workload() {
  // Destructors cannot throw: errors here are ignored (they would already have surfaced).
  for (void* p : q) cudaFree(p);
  for (void* p : cache) cudaFree(p);
  cudaFree(block_table);
  cudaFree(seqlens);
  cudaFree(tile_metadata);
  cudaFree(num_splits);
  cudaFree(out);
  cudaFree(lse);
  cudaFree(workspace);
}

flashmla::DecodeArgs Workload::args(int i) const {
  const Config& c = cfg;
  const int d = flashmla::kHeadDimQK, dv = flashmla::kHeadDimV, page = flashmla::kPageBlockSize;
  flashmla::DecodeArgs a;
  a.dtype = c.dtype;
  a.batch = c.b;
  a.seqlen_q = c.s_q;
  a.num_heads_q = c.h_q;
  a.num_heads_kv = c.h_kv;
  a.head_dim = d;
  a.head_dim_v = dv;
  a.num_blocks = num_blocks;
  a.page_block_size = page;
  a.max_blocks_per_seq = max_blocks_per_seq;
  a.wide_schedule = c.wide_schedule;
  a.q = q[static_cast<size_t>(i)];
  a.q_stride[0] = static_cast<int64_t>(c.s_q) * c.h_q * d;
  a.q_stride[1] = static_cast<int64_t>(c.h_q) * d;
  a.q_stride[2] = d;
  a.q_stride[3] = 1;
  a.k_cache = cache[static_cast<size_t>(i)];
  a.k_stride[0] = static_cast<int64_t>(page) * c.h_kv * d;
  a.k_stride[1] = static_cast<int64_t>(c.h_kv) * d;
  a.k_stride[2] = d;
  a.k_stride[3] = 1;
  a.block_table = block_table;
  a.block_table_stride[0] = max_blocks_per_seq;
  a.block_table_stride[1] = 1;
  a.cache_seqlens = seqlens;
  a.out = out;
  a.out_stride[0] = static_cast<int64_t>(c.s_q) * c.h_q * dv;
  a.out_stride[1] = static_cast<int64_t>(c.h_q) * dv;
  a.out_stride[2] = dv;
  a.out_stride[3] = 1;
  a.lse = lse;
  a.lse_stride[0] = static_cast<int64_t>(c.h_q) * c.s_q;
  a.lse_stride[1] = c.s_q;
  a.lse_stride[2] = 1;
  a.softmax_scale = 0.0f;  // d^-0.5
  a.causal = c.causal;
  a.tile_scheduler_metadata = tile_metadata;
  a.num_sm_parts = num_sm_parts;
  a.num_splits = num_splits;
  a.workspace = workspace;
  a.workspace_bytes = workspace_bytes;
  return a;
}

void build_workload(Workload& w, const Config& c, int device, size_t rotate_bytes, bool contiguous_pages,
                    int table_blocks, DataRecipe data, cudaStream_t stream) {
  const int d = flashmla::kHeadDimQK, dv = flashmla::kHeadDimV, page = flashmla::kPageBlockSize;
  if (c.b < 1 || c.s_q < 1 || c.h_q < 1 || c.h_kv < 1 || c.s_k < 1 || c.h_q % c.h_kv != 0) {
    throw std::runtime_error("invalid configuration: " + describe(c));
  }
  w.cfg = c;
  w.lengths = cache_lengths(c);
  w.mean_len = mean_length(w.lengths);

  // Block table: request r uses ceil(len_r / 64) pages; all used pages are a random
  // permutation of [0, num_blocks), or with contiguous_pages [0, num_blocks) in request order.
  // Unused slots hold page 0 (never read). The table is max_pages wide, or table_blocks wide.
  std::vector<int> pages(w.lengths.size());
  long long total_pages = 0;
  int max_pages = 1;
  for (size_t r = 0; r < w.lengths.size(); ++r) {
    pages[r] = (w.lengths[r] + page - 1) / page;
    total_pages += pages[r];
    max_pages = std::max(max_pages, pages[r]);
  }
  if (total_pages > 0x7fffffffLL) throw std::runtime_error("too many cache pages: " + describe(c));
  w.num_blocks = static_cast<int>(std::max<long long>(total_pages, 1));
  if (table_blocks > 0) {
    if (table_blocks < max_pages) {
      throw std::runtime_error("--table_blocks " + std::to_string(table_blocks) + " cannot hold the longest request of " +
                               describe(c) + ": it needs " + std::to_string(max_pages) + " blocks");
    }
    max_pages = table_blocks;
  }
  w.max_blocks_per_seq = max_pages;
  std::vector<int32_t> perm(static_cast<size_t>(w.num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(0x5eed0001ull);
  if (!contiguous_pages) std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> table(static_cast<size_t>(c.b) * max_pages, 0);
  size_t next = 0;
  for (int r = 0; r < c.b; ++r) {
    for (int j = 0; j < pages[static_cast<size_t>(r)]; ++j) {
      table[static_cast<size_t>(r) * max_pages + j] = perm[next++];
    }
  }

  w.q_bytes = static_cast<size_t>(c.b) * c.s_q * c.h_q * d * 2;
  w.cache_bytes = static_cast<size_t>(w.num_blocks) * page * c.h_kv * d * 2;

  // Copies to rotate through so back-to-back calls do not find their inputs in L2.
  const size_t per_copy = w.q_bytes + w.cache_bytes;
  int copies = 1;
  if (rotate_bytes > 0 && per_copy < rotate_bytes) {
    copies = static_cast<int>((rotate_bytes + per_copy - 1) / per_copy);
  }
  size_t free_bytes = 0, total_bytes = 0;
  BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t budget = free_bytes / 10 * 8;
  if (per_copy > budget) {
    throw std::runtime_error("not enough device memory for " + describe(c) + ": needs " +
                             std::to_string(per_copy >> 20) + " MiB, " +
                             std::to_string(free_bytes >> 20) + " MiB free");
  }
  copies = std::clamp(copies, 1, static_cast<int>(std::min<size_t>(64, budget / per_copy)));
  w.copies = copies;

  for (int i = 0; i < copies; ++i) {
    w.q.push_back(device_alloc<void>(w.q_bytes, "q"));
    w.cache.push_back(device_alloc<void>(w.cache_bytes, "k_cache"));
    if (data == DataRecipe::flashmla) {
      fill_clamped_normal_half(w.q.back(), w.q_bytes / 2, c.dtype, 0.1f, 1000 + 2 * i, stream);
      fill_clamped_normal_half(w.cache.back(), w.cache_bytes / 2, c.dtype, 0.1f, 1001 + 2 * i, stream);
    } else if (data == DataRecipe::zeros) {
      BENCH_CUDA(cudaMemsetAsync(w.q.back(), 0, w.q_bytes, stream));
      BENCH_CUDA(cudaMemsetAsync(w.cache.back(), 0, w.cache_bytes, stream));
    } else {
      fill_random_half(w.q.back(), w.q_bytes / 2, c.dtype, 1.0f, 1000 + 2 * i, stream);
      fill_random_half(w.cache.back(), w.cache_bytes / 2, c.dtype, 1.0f, 1001 + 2 * i, stream);
    }
  }
  w.block_table = device_alloc<int32_t>(table.size() * sizeof(int32_t), "block_table");
  BENCH_CUDA(cudaMemcpyAsync(w.block_table, table.data(), table.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream));
  w.seqlens = device_alloc<int32_t>(w.lengths.size() * sizeof(int32_t), "cache_seqlens");
  std::vector<int32_t> lens32(w.lengths.begin(), w.lengths.end());
  BENCH_CUDA(cudaMemcpyAsync(w.seqlens, lens32.data(), lens32.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream));
  w.out = device_alloc<void>(static_cast<size_t>(c.b) * c.s_q * c.h_q * dv * 2, "out");
  w.lse = device_alloc<float>(static_cast<size_t>(c.b) * c.h_q * c.s_q * sizeof(float), "lse");

  const int q_tokens_per_kv = c.s_q * c.h_q / c.h_kv;
  w.num_sm_parts = c.sm_parts > 0 ? c.sm_parts
                                  : flashmla::num_sm_parts_for(flashmla::device_sm_count(device), q_tokens_per_kv, c.h_kv);
  w.tile_metadata = device_alloc<int32_t>(
      static_cast<size_t>(w.num_sm_parts) * flashmla::kMetadataFields * sizeof(int32_t), "tile_scheduler_metadata");
  w.num_splits = device_alloc<int32_t>((static_cast<size_t>(c.b) + 1) * sizeof(int32_t), "num_splits");
  w.workspace_bytes = flashmla::mla_decode_workspace_size(w.num_sm_parts, q_tokens_per_kv, c.h_kv);
  w.workspace = device_alloc<void>(w.workspace_bytes, "workspace");
  if (w.workspace_bytes == 0) w.workspace_bytes = 256;

  flashmla::MetadataArgs m;
  m.cache_seqlens = w.seqlens;
  m.batch = c.b;
  m.num_q_tokens_per_head_k = q_tokens_per_kv;
  m.num_heads_kv = c.h_kv;
  m.num_sm_parts = w.num_sm_parts;
  m.tile_scheduler_metadata = w.tile_metadata;
  m.num_splits = w.num_splits;
  flashmla::get_mla_metadata(flashmla::Backend::cuda, m, stream);
  BENCH_CUDA(cudaStreamSynchronize(stream));
}

}  // namespace bench
