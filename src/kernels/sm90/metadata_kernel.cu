// The split plan on the GPU: one CTA, no host synchronisation (capturable in a CUDA graph).
//
// Pass 1 sums the request costs and takes their maximum (the candidate spans need both); pass 1b
// counts the partial slots of each candidate span and picks one (plan::pick_plan_candidate). Pass 2
// walks the batch in chunks of blockDim requests: a block-wide exclusive scan of the costs plus the
// carry of earlier chunks gives each request its start P_r, from which the request writes the
// metadata fields it owns (plan::emit_part_bounds) and its number of partial slots; a second scan
// turns the slot counts into num_splits. Every field of every row has exactly one writer: thread p
// writes the whole row of an idle part and fields 6, 7 of a busy one; requests write fields 0..5 of
// busy parts, each exactly once (see emit_part_bounds), so no ordering between writers is needed.
#include <cstdint>

#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/launch.h"

namespace flashmla::sm90 {
namespace {

constexpr int kMetadataThreads = 1024;

// Exclusive scan over the block; also returns the block total. All threads must call it.
// `warp_sums` holds kMetadataThreads / 32 values; the leading barrier makes back-to-back calls safe.
template <typename V>
__device__ V block_exclusive_scan(V x, V* warp_sums, V& total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  V incl = x;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const V y = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += y;
  }
  __syncthreads();
  if (lane == 31) warp_sums[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    V v = lane < num_warps ? warp_sums[lane] : V(0);
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const V y = __shfl_up_sync(0xffffffffu, v, off);
      if (lane >= off) v += y;
    }
    if (lane < num_warps) warp_sums[lane] = v;
  }
  __syncthreads();
  total = warp_sums[num_warps - 1];
  return (warp > 0 ? warp_sums[warp - 1] : V(0)) + incl - x;
}

__global__ void __launch_bounds__(kMetadataThreads) mla_metadata_kernel(const MetadataParams p) {
  __shared__ long long cost_sums[kMetadataThreads / 32];
  __shared__ int slot_sums[kMetadataThreads / 32];
  __shared__ int max_cost_shared;
  const int tid = threadIdx.x;
  const int batch = p.batch > 0 ? p.batch : 0;
  const int num_parts = p.num_sm_parts;
  const int fixed = plan::request_fixed_cost(p.rows_per_kv);

  if (tid == 0) max_cost_shared = 0;
  long long partial = 0;
  int max_cost = 0;   // a request's cost fits an int: at most 2^25 pages + F
  for (int r = tid; r < batch; r += blockDim.x) {
    const int cost = static_cast<int>(plan::request_cost(p.cache_seqlens[r], fixed));
    partial += cost;
    max_cost = max(max_cost, cost);
  }
  long long total = 0;
  block_exclusive_scan(partial, cost_sums, total);   // its barriers also order the zeroing above
  max_cost = __reduce_max_sync(0xffffffffu, max_cost);
  if ((tid & 31) == 0) atomicMax(&max_cost_shared, max_cost);
  __syncthreads();
  const int candidates = plan::plan_candidates(num_parts);
  // Pass 1b: every candidate span's partial slots (the requests' starts by the same chunked scan as
  // pass 2), summed over the block, then the cheapest candidate (plan::pick_plan_candidate).
  long long slots[plan::kMaxPlanCandidates] = {};
  int64_t spans[plan::kMaxPlanCandidates] = {};
#pragma unroll
  for (int k = 0; k < plan::kMaxPlanCandidates; ++k) {
    if (k < candidates) spans[k] = plan::candidate_span(k, total, num_parts, max_cost_shared);
  }
  long long cost_carry = 0;
  for (int chunk = 0; chunk < batch; chunk += blockDim.x) {
    const int r = chunk + tid;
    const bool valid = r < batch;
    const int seqlen = valid && p.cache_seqlens[r] > 0 ? p.cache_seqlens[r] : 0;
    long long chunk_cost = 0;
    const long long start = cost_carry + block_exclusive_scan(valid ? plan::request_cost(seqlen, fixed) : 0LL,
                                                              cost_sums, chunk_cost);
    if (valid) {
#pragma unroll
      for (int k = 0; k < plan::kMaxPlanCandidates; ++k) {
        if (k < candidates) {
          slots[k] += plan::request_partial_slots(start, seqlen, spans[k], fixed);
        }
      }
    }
    cost_carry += chunk_cost;
  }
  int64_t slot_totals[plan::kMaxPlanCandidates] = {};
#pragma unroll
  for (int k = 0; k < plan::kMaxPlanCandidates; ++k) {
    if (k < candidates) {
      long long sum = 0;
      block_exclusive_scan(slots[k], cost_sums, sum);
      slot_totals[k] = sum;
    }
  }
  const int64_t span = spans[plan::pick_plan_candidate(spans, slot_totals, candidates, num_parts, p.rows_per_kv)];

  for (int part = tid; part < num_parts; part += blockDim.x) {
    int32_t* row = p.tile_metadata + static_cast<int64_t>(part) * kMetadataFields;
    if (part * span >= total) {
      plan::write_idle_part(row);
    } else {
      row[6] = 0;
      row[7] = 0;
    }
  }
  if (tid == 0) p.num_splits[0] = 0;

  cost_carry = 0;
  int slot_carry = 0;
  for (int chunk = 0; chunk < batch; chunk += blockDim.x) {   // uniform trip count: scans need every thread
    const int r = chunk + tid;
    const bool valid = r < batch;
    int seqlen = valid ? p.cache_seqlens[r] : 0;
    if (seqlen < 0) seqlen = 0;
    long long chunk_cost = 0;
    const long long start = cost_carry + block_exclusive_scan(valid ? plan::request_cost(seqlen, fixed) : 0LL,
                                                              cost_sums, chunk_cost);
    int slots = 0;
    if (valid) {
      plan::emit_part_bounds(r, start, seqlen, span, total, num_parts, fixed, [&](int part) {
        return p.tile_metadata + static_cast<int64_t>(part) * kMetadataFields;
      });
      slots = plan::request_partial_slots(start, seqlen, span, fixed);
    }
    int chunk_slots = 0;
    const int slot_prefix = slot_carry + block_exclusive_scan(slots, slot_sums, chunk_slots);
    if (valid) p.num_splits[r + 1] = slot_prefix + slots;
    cost_carry += chunk_cost;
    slot_carry += chunk_slots;
  }
}

}  // namespace

void launch_metadata(const MetadataParams& params, cudaStream_t stream) {
  mla_metadata_kernel<<<1, kMetadataThreads, 0, stream>>>(params);
  cuda_check(cudaGetLastError(), "mla_metadata_kernel launch");
}

}  // namespace flashmla::sm90
