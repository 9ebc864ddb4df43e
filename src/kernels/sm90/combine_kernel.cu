// Merge of split-KV partials: for every split request, out = sum_s exp(lse_s - lse) * O_s with
// lse = log sum_s exp(lse_s).
//
// Both layouts take each slot's lse and partial O in one pass (RunningMerge: a running maximum,
// with the sums moved when it grows), so a slot's loads are issued together instead of behind a
// pass over the lse (docs/perf-log.md, entry 35).
//
// Two layouts, picked from the shapes alone (plan::combine_threads_per_slot), so the merge order,
// and hence the result, is fixed for them.
//
// Row per warp (batch x rows at least the SMs, or about one split per request): a CTA of 8 warps
// merges 8 / W query rows of one request, W warps per row. Warp k of a row sums the slots
// s = first + k, first + k + W, ... in slot order (a lane owns channels 4*lane + 128*q, q = 0..3,
// and kUnroll slots' loads are in flight), then the W warp merges are added in warp order. W is
// about the splits per request (combine_warps_per_row): one warp per row would wait on each
// slot's load in turn, while a large batch has a few slots per request and one warp per row keeps
// the grid small.
//
// Slot-parallel (a few rows with many slots each, e.g. one long request split over every part):
// a CTA merges one chunk of one row's channels. Its 256 threads are slot groups of kTPS threads
// (4 channels each); group g sums the slots first + g, first + g + G, ... with up to kSlotUnroll
// slots' loads in flight per thread, and the groups' merges are added in group order. A row per
// CTA instead kept 16 CTAs busy for ~10 us at b = 1, h_q = 16 (docs/perf-log.md, entry 32). Where
// its grid has a CTA an SM at most (b = 1, h_q = 16: 128 CTAs), it is built for one CTA an SM, so
// that those loads fit the registers at once (entry 111); elsewhere for four, one wave.
//
// Launched with programmatic stream serialization after the decode kernel: its CTAs may start
// while the decode grid drains and wait in griddepcontrol.wait until the partials are visible.
// Requests that were not split were written by the decode kernel; their CTAs exit at once
// (wait_for_partials_if_merging).
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/phase_clocks.cuh"
#include "kernels/sm90/programmatic_launch.h"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/split_merge.cuh"

namespace flashmla::sm90 {
namespace {

// The next decode kernel is launched behind this grid with programmatic serialisation
// (launch_decode_kernel), so it may be scheduled as soon as every CTA here has started, and it
// waits for this grid to complete. A CTA with nothing to merge leaves at once, so that the CTAs
// that merge find room on the SMs sooner (at b = 128 about half the requests are not split). The
// grid's first CTA waits for the decode grid even then: this grid completes only after the decode
// grid, and whatever follows it sees both kernels' outputs. num_splits may be read before the
// wait: the metadata kernel that wrote it completed before any decode CTA passed its own wait,
// and this grid starts only once every decode CTA has (start_decode_cta).
__device__ __forceinline__ bool wait_for_partials_if_merging(bool merges) {
  const bool first_cta = blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0;
  if (!merges && !first_cta) return false;
  allow_dependent_launch();
  wait_for_primary_grid();
  return merges;
}

constexpr int kCombineWarps = 8;
// Two slots' loads in flight per warp (a split request of a large batch has 2-3 slots) and at most
// 64 registers, so that four CTAs fit an SM instead of two (110 registers with four slots): the
// merging CTAs take half as many turns on the SMs, and b = 4's 512 CTAs fit in one. ptxas keeps
// one value in local memory for that; three CTAs an SM (78 registers, none spilled) left a
// longer tail at b = 4 and 16 (perf-log entry 76).
constexpr int kUnroll = 2;

template <typename T>
__global__ void __launch_bounds__(kCombineWarps * 32, 4)
    mla_combine_kernel(const __grid_constant__ DecodeParams p, int warps_per_row) {
  __shared__ float4 warp_sum[kCombineWarps][4][32];
  __shared__ float2 warp_ml[kCombineWarps];
  const int r = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rows_per_cta = kCombineWarps / warps_per_row;
  const int m = blockIdx.z * rows_per_cta + warp / warps_per_row;
  const int k = warp % warps_per_row;
  int slot_begin, slot_end;
  combine_span_mark(kCombineBegin);
  const bool merges = split_slots(p, r, slot_begin, slot_end);   // uniform per CTA
  if (!wait_for_partials_if_merging(merges)) return;
  combine_span_mark(kCombineWaited);

  const bool active = m < p.rows_per_kv;
  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * p.rows_per_kv;
  const int64_t row_index = static_cast<int64_t>(kv_head) * p.rows_per_kv + (active ? m : 0);
  const float* lse_of = p.partial_lse + row_index;   // lse of slot s: lse_of[s * slot_stride]

  RunningMerge<4> merge;   // a lane owns channels 4 * lane + 128 * q
  if (active) {
    add_strided_slots<kUnroll>(merge, slot_begin + k, slot_end, warps_per_row,
                               [&](int s, float& lse, float4 (&val)[4]) {
      const float4* src = reinterpret_cast<const float4*>(p.partial_o + (s * slot_stride + row_index) * kHeadDimV);
      lse = lse_of[s * slot_stride];
#pragma unroll
      for (int q = 0; q < 4; ++q) val[q] = src[q * 32 + lane];
    });
  }
  combine_span_mark(kCombineSlotsSummed);
  if (warps_per_row > 1) {
#pragma unroll
    for (int q = 0; q < 4; ++q) warp_sum[warp][q][lane] = merge.acc[q];
    if (lane == 0) warp_ml[warp] = make_float2(merge.m, merge.l);
    __syncthreads();
    if (k != 0) return;
    merge.add_parts(warps_per_row, [&](int j) { return warp_ml[warp + j]; },
                    [&](int j, int q) { return warp_sum[warp + j][q][lane]; });
    combine_span_mark(kCombinePartsAdded);
  }
  if (!active) return;

  const MergedRow<T> dst = merged_row<T>(p, r, kv_head, m);
  const float inv = merge.inv_l();
#pragma unroll
  for (int q = 0; q < 4; ++q) store4(dst.out + q * 128 + lane * 4, merge.acc[q], inv);
  if (lane == 0) *dst.lse = merge.lse();
  combine_span_mark(kCombineStored);
}

constexpr int kSlotThreads = 256;
constexpr int kSlotUnroll = 9;   // one round for 132 slots over 16 groups (b = 1, h_q = 16)

// kCtasPerSm (plan::combine_slot_ctas_per_sm): 4 caps a thread at 64 registers, too few to keep
// kSlotUnroll slots' loads in flight at once; 1 lets it have them (~78) where the grid has a CTA
// an SM at most (docs/perf-log.md, entry 111).
template <typename T, int kTPS, int kCtasPerSm>
__global__ void __launch_bounds__(kSlotThreads, kCtasPerSm)
    mla_combine_slots_kernel(const __grid_constant__ DecodeParams p) {
  constexpr int kGroups = kSlotThreads / kTPS;
  constexpr int kChunks = 128 / kTPS;
  __shared__ float4 group_sum[kGroups][kTPS];
  __shared__ float2 group_ml[kGroups];
  const int m = blockIdx.x / kChunks;
  const int chunk = blockIdx.x % kChunks;
  const int kv_head = blockIdx.y;
  const int r = blockIdx.z;
  int slot_begin, slot_end;
  combine_span_mark(kCombineBegin);
  const bool merges = split_slots(p, r, slot_begin, slot_end);   // uniform per CTA
  if (!wait_for_partials_if_merging(merges)) return;
  combine_span_mark(kCombineWaited);

  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * p.rows_per_kv;
  const int64_t row_index = static_cast<int64_t>(kv_head) * p.rows_per_kv + m;
  const float* lse_of = p.partial_lse + row_index;   // lse of slot s: lse_of[s * slot_stride]
  const int g = threadIdx.x / kTPS, c = threadIdx.x % kTPS;
  const int col = chunk * 4 * kTPS + 4 * c;

  RunningMerge<1> merge;
  add_strided_slots<kSlotUnroll>(merge, slot_begin + g, slot_end, kGroups, [&](int s, float& lse, float4 (&val)[1]) {
    val[0] = *reinterpret_cast<const float4*>(p.partial_o + (s * slot_stride + row_index) * kHeadDimV + col);
    lse = lse_of[s * slot_stride];
  });
  combine_span_mark(kCombineSlotsSummed);
  if (kGroups > 1) {
    group_sum[g][c] = merge.acc[0];
    if (c == 0) group_ml[g] = make_float2(merge.m, merge.l);
    __syncthreads();
    if (g != 0) return;
    merge.add_parts(kGroups, [&](int j) { return group_ml[j]; }, [&](int j, int) { return group_sum[j][c]; });
    combine_span_mark(kCombinePartsAdded);
  }

  const MergedRow<T> dst = merged_row<T>(p, r, kv_head, m);
  store4(dst.out + col, merge.acc[0], merge.inv_l());
  if (chunk == 0 && c == 0) *dst.lse = merge.lse();
  combine_span_mark(kCombineStored);
}

template <typename T>
void launch_combine_typed(const DecodeParams& params, cudaStream_t stream) {
  // The plan spread its parts over about this many SMs (flashmla::num_sm_parts_for).
  const int sms = params.num_sm_parts * params.num_row_tiles * params.num_heads_kv;
  const int tps = plan::combine_threads_per_slot(params.num_sm_parts, params.batch,
                                                 params.num_heads_kv * params.rows_per_kv, sms);
  if (tps == 0) {
    const int warps_per_row = plan::combine_warps_per_row(params.num_sm_parts, params.batch, kCombineWarps);
    const int rows_per_cta = kCombineWarps / warps_per_row;
    const dim3 grid(params.batch, params.num_heads_kv, (params.rows_per_kv + rows_per_cta - 1) / rows_per_cta);
    launch_programmatic(mla_combine_kernel<T>, grid, kCombineWarps * 32, 0, stream, "mla_combine_kernel launch",
                        params, warps_per_row);
    return;
  }
  const dim3 grid(params.rows_per_kv * (128 / tps), params.num_heads_kv, params.batch);
  const int per_sm = plan::combine_slot_ctas_per_sm(static_cast<int64_t>(grid.x) * grid.y * grid.z, sms);
  const char* what = "mla_combine_slots_kernel launch";
  if (tps == 16 && per_sm == 1) {
    launch_programmatic(mla_combine_slots_kernel<T, 16, 1>, grid, kSlotThreads, 0, stream, what, params);
  } else if (tps == 16) {
    launch_programmatic(mla_combine_slots_kernel<T, 16, 4>, grid, kSlotThreads, 0, stream, what, params);
  } else {   // 32 threads a slot: more rows than a wave of 16-thread chunks holds, so never one CTA an SM
    launch_programmatic(mla_combine_slots_kernel<T, 32, 4>, grid, kSlotThreads, 0, stream, what, params);
  }
}

}  // namespace

void launch_combine(const DecodeParams& params, cudaStream_t stream) {
  if (params.max_partial_slots <= 0 || params.batch <= 0) return;
  register_combine_span_report();
  if (params.dtype == DType::bf16) {
    launch_combine_typed<__nv_bfloat16>(params, stream);
  } else {
    launch_combine_typed<__half>(params, stream);
  }
}

}  // namespace flashmla::sm90
