// Merge of split-KV partials: for every split request, out = sum_s exp(lse_s - lse) * O_s with
// lse = log sum_s exp(lse_s).
//
// Two layouts, picked from the shapes alone (plan::combine_threads_per_slot), so the merge order,
// and hence the result, is fixed for them.
//
// Row per warp (batch x rows at least the SMs, or about one split per request): a CTA of 8 warps
// merges 8 / W query rows of one request, W warps per row. Warp k of a row sums the slots
// s = first + k, first + k + W, ... in slot order (a lane owns channels 4*lane + 128*q, q = 0..3,
// and kUnroll slots' loads are in flight), then the W warp sums are added in warp order. W is
// about the splits per request (combine_warps_per_row): one warp per row would wait on each
// slot's load in turn, while a large batch has a few slots per request and one warp per row keeps
// the grid small.
//
// Slot-parallel (a few rows with many slots each, e.g. one long request split over every part):
// a CTA merges one chunk of one row's channels. Its 256 threads are slot groups of kTPS threads
// (4 channels each); group g sums the slots first + g, first + g + G, ... with up to kSlotUnroll
// slots' loads in flight per thread, and the groups' sums are added in group order. The merged
// lse comes first, with the CTA's threads over the slots and a fixed reduction tree. A row per
// CTA instead kept 16 CTAs busy for ~10 us at b = 1, h_q = 16 (docs/perf-log.md, entry 32).
//
// Launched with programmatic stream serialization after the decode kernel: its CTAs may start
// while the decode grid drains and wait in griddepcontrol.wait until the partials are visible.
// Requests that were not split were written by the decode kernel; their CTAs exit at once.
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/ptx.cuh"

namespace flashmla::sm90 {
namespace {

// Where the merged row m of kv head kv_head of request r goes.
template <typename T>
struct MergedRow {
  T* out;       // its 512 channels
  float* lse;
};

template <typename T>
__device__ __forceinline__ MergedRow<T> merged_row(const DecodeParams& p, int r, int kv_head, int m) {
  int i, h;
  token_and_head(p, kv_head, m, i, h);
  return {static_cast<T*>(p.out) + r * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h,
          p.lse + r * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s};
}

// Four consecutive channels, rounded to T.
template <typename T>
__device__ __forceinline__ void store4(T* dst, float a, float b, float c, float d) {
  uint2 packed;
  packed.x = HalfOps<T>::pack(a, b);
  packed.y = HalfOps<T>::pack(c, d);
  *reinterpret_cast<uint2*>(dst) = packed;
}

constexpr int kCombineWarps = 8;
constexpr int kUnroll = 4;

template <typename T>
__global__ void __launch_bounds__(kCombineWarps * 32)
    mla_combine_kernel(const __grid_constant__ DecodeParams p, int warps_per_row) {
  __shared__ float4 warp_sum[kCombineWarps][4][32];
  const int r = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rows_per_cta = kCombineWarps / warps_per_row;
  const int m = blockIdx.z * rows_per_cta + warp / warps_per_row;
  const int k = warp % warps_per_row;
  const int slot_begin = p.num_splits[r];   // written by the metadata kernel, before the decode kernel
  int slot_end = p.num_splits[r + 1];
  if (slot_end > p.max_partial_slots) slot_end = p.max_partial_slots;   // never read past the workspace
  if (slot_begin < 0 || slot_end <= slot_begin) return;                 // not split (uniform per CTA)
  wait_for_primary_grid();

  const bool active = m < p.rows_per_kv;
  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * p.rows_per_kv;
  const int64_t row_index = static_cast<int64_t>(kv_head) * p.rows_per_kv + (active ? m : 0);
  const float* lse_of = p.partial_lse + row_index;   // lse of slot s: lse_of[s * slot_stride]

  // Every warp of the row derives the merged lse itself (lanes over slots, fixed shuffle tree).
  float v = -INFINITY;
  for (int s = slot_begin + lane; s < slot_end; s += 32) v = fmaxf(v, lse_of[s * slot_stride]);
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, d));
  const float lse_max = v;

  float acc[4][4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[q][e] = 0.f;
  }
  float lse = INFINITY;   // no visible key in any split: out 0, lse +inf
  if (active && lse_max != -INFINITY) {
    v = 0.f;
    for (int s = slot_begin + lane; s < slot_end; s += 32) v += expf(lse_of[s * slot_stride] - lse_max);
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    lse = lse_max + logf(v);
    for (int s0 = slot_begin + k; s0 < slot_end; s0 += warps_per_row * kUnroll) {
      float4 val[kUnroll][4];
      float scale[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int s = s0 + u * warps_per_row;
        const bool in = s < slot_end;
        const float4* src = reinterpret_cast<const float4*>(p.partial_o + (in ? s : slot_begin) * slot_stride * kHeadDimV +
                                                            row_index * kHeadDimV);
        scale[u] = in ? expf(lse_of[s * slot_stride] - lse) : 0.f;   // 0 for an empty split (-inf)
#pragma unroll
        for (int q = 0; q < 4; ++q) val[u][q] = src[q * 32 + lane];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          acc[q][0] += scale[u] * val[u][q].x;
          acc[q][1] += scale[u] * val[u][q].y;
          acc[q][2] += scale[u] * val[u][q].z;
          acc[q][3] += scale[u] * val[u][q].w;
        }
      }
    }
  }
  if (warps_per_row > 1) {
#pragma unroll
    for (int q = 0; q < 4; ++q) warp_sum[warp][q][lane] = make_float4(acc[q][0], acc[q][1], acc[q][2], acc[q][3]);
    __syncthreads();
    if (k != 0) return;
    for (int w = warp + 1; w < warp + warps_per_row; ++w) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float4 o = warp_sum[w][q][lane];
        acc[q][0] += o.x;
        acc[q][1] += o.y;
        acc[q][2] += o.z;
        acc[q][3] += o.w;
      }
    }
  }
  if (!active) return;

  const MergedRow<T> dst = merged_row<T>(p, r, kv_head, m);
#pragma unroll
  for (int q = 0; q < 4; ++q) store4(dst.out + q * 128 + lane * 4, acc[q][0], acc[q][1], acc[q][2], acc[q][3]);
  if (lane == 0) *dst.lse = lse;
}

constexpr int kSlotThreads = 256;
constexpr int kSlotUnroll = 9;   // one round for 132 slots over 16 groups (b = 1, h_q = 16)

// The same value in every thread of the CTA: a fixed shuffle tree per warp, then the warps in order.
template <typename Op>
__device__ __forceinline__ float cta_reduce(float v, float* scratch, Op op) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, d));
  __syncthreads();   // scratch may still be read by a previous reduction
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  v = scratch[0];
#pragma unroll
  for (int w = 1; w < kSlotThreads / 32; ++w) v = op(v, scratch[w]);
  return v;
}

template <typename T, int kTPS>
__global__ void __launch_bounds__(kSlotThreads, 4)
    mla_combine_slots_kernel(const __grid_constant__ DecodeParams p) {
  constexpr int kGroups = kSlotThreads / kTPS;
  constexpr int kChunks = 128 / kTPS;
  __shared__ float4 group_sum[kGroups][kTPS];
  __shared__ float scratch[kSlotThreads / 32];
  const int m = blockIdx.x / kChunks;
  const int chunk = blockIdx.x % kChunks;
  const int kv_head = blockIdx.y;
  const int r = blockIdx.z;
  const int slot_begin = p.num_splits[r];   // written by the metadata kernel, before the decode kernel
  int slot_end = p.num_splits[r + 1];
  if (slot_end > p.max_partial_slots) slot_end = p.max_partial_slots;   // never read past the workspace
  if (slot_begin < 0 || slot_end <= slot_begin) return;                 // not split (uniform per CTA)
  wait_for_primary_grid();

  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * p.rows_per_kv;
  const int64_t row_index = static_cast<int64_t>(kv_head) * p.rows_per_kv + m;
  const float* lse_of = p.partial_lse + row_index;   // lse of slot s: lse_of[s * slot_stride]
  const int tid = threadIdx.x;

  float v = -INFINITY;
  for (int s = slot_begin + tid; s < slot_end; s += kSlotThreads) v = fmaxf(v, lse_of[s * slot_stride]);
  const float lse_max = cta_reduce(v, scratch, [](float a, float b) { return fmaxf(a, b); });
  float lse = INFINITY;   // no visible key in any split: out 0, lse +inf
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  const int g = tid / kTPS, c = tid % kTPS;
  const int col = chunk * 4 * kTPS + 4 * c;
  if (lse_max != -INFINITY) {   // uniform per CTA
    v = 0.f;
    for (int s = slot_begin + tid; s < slot_end; s += kSlotThreads) v += expf(lse_of[s * slot_stride] - lse_max);
    lse = lse_max + logf(cta_reduce(v, scratch, [](float a, float b) { return a + b; }));
    for (int s0 = slot_begin + g; s0 < slot_end; s0 += kGroups * kSlotUnroll) {
      float4 val[kSlotUnroll];
      float scale[kSlotUnroll];
#pragma unroll
      for (int u = 0; u < kSlotUnroll; ++u) {
        const int s = s0 + u * kGroups;
        val[u] = make_float4(0.f, 0.f, 0.f, 0.f);
        scale[u] = 0.f;
        if (s < slot_end) {
          val[u] = *reinterpret_cast<const float4*>(p.partial_o + (s * slot_stride + row_index) * kHeadDimV + col);
          scale[u] = expf(lse_of[s * slot_stride] - lse);   // 0 for an empty split (-inf)
        }
      }
#pragma unroll
      for (int u = 0; u < kSlotUnroll; ++u) {
        acc.x += scale[u] * val[u].x;
        acc.y += scale[u] * val[u].y;
        acc.z += scale[u] * val[u].z;
        acc.w += scale[u] * val[u].w;
      }
    }
  }
  if (kGroups > 1) {
    group_sum[g][c] = acc;
    __syncthreads();
    if (g != 0) return;
#pragma unroll
    for (int j = 1; j < kGroups; ++j) {
      const float4 o = group_sum[j][c];
      acc.x += o.x;
      acc.y += o.y;
      acc.z += o.z;
      acc.w += o.w;
    }
  }

  const MergedRow<T> dst = merged_row<T>(p, r, kv_head, m);
  store4(dst.out + col, acc.x, acc.y, acc.z, acc.w);
  if (chunk == 0 && tid == 0) *dst.lse = lse;
}

template <typename Kernel, typename... Args>
void launch_after_decode(Kernel kernel, dim3 grid, int threads, cudaStream_t stream, const char* what,
                         const Args&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  cuda_check(cudaLaunchKernelEx(&config, kernel, args...), what);
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
    launch_after_decode(mla_combine_kernel<T>, grid, kCombineWarps * 32, stream, "mla_combine_kernel launch",
                        params, warps_per_row);
    return;
  }
  const dim3 grid(params.rows_per_kv * (128 / tps), params.num_heads_kv, params.batch);
  const char* what = "mla_combine_slots_kernel launch";
  if (tps == 16) {
    launch_after_decode(mla_combine_slots_kernel<T, 16>, grid, kSlotThreads, stream, what, params);
  } else {
    launch_after_decode(mla_combine_slots_kernel<T, 32>, grid, kSlotThreads, stream, what, params);
  }
}

}  // namespace

void launch_combine(const DecodeParams& params, cudaStream_t stream) {
  if (params.max_partial_slots <= 0 || params.batch <= 0) return;
  if (params.dtype == DType::bf16) {
    launch_combine_typed<__nv_bfloat16>(params, stream);
  } else {
    launch_combine_typed<__half>(params, stream);
  }
}

}  // namespace flashmla::sm90
