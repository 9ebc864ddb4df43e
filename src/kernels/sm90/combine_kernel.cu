// Merge of split-KV partials: for every split request, out = sum_s exp(lse_s - lse) * O_s with
// lse = log sum_s exp(lse_s).
//
// A CTA of 8 warps merges 8 / W query rows of one request, W warps per row. Warp k of a row sums
// the slots s = first + k, first + k + W, ... in slot order (a lane owns channels 4*lane + 128*q,
// q = 0..3, and kUnroll slots' loads are in flight), then the W warp sums are added in warp
// order: every sum has a fixed order, so the result is deterministic. W comes from the shapes
// alone (combine_warps_per_row): a few long requests are split over up to 132 parts and one warp
// per row would wait on each slot's load in turn; a large batch has a few slots per request and
// one warp per row keeps the grid small.
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

  const int i = m / p.q_heads_per_kv;
  const int h = kv_head * p.q_heads_per_kv + (m - i * p.q_heads_per_kv);
  T* out = static_cast<T*>(p.out) + r * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    uint2 packed;
    packed.x = HalfOps<T>::pack(acc[q][0], acc[q][1]);
    packed.y = HalfOps<T>::pack(acc[q][2], acc[q][3]);
    *reinterpret_cast<uint2*>(out + q * 128 + lane * 4) = packed;
  }
  if (lane == 0) p.lse[r * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s] = lse;
}

template <typename T>
void launch_combine_typed(const DecodeParams& params, int warps_per_row, cudaStream_t stream) {
  const int rows_per_cta = kCombineWarps / warps_per_row;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(params.batch, params.num_heads_kv, (params.rows_per_kv + rows_per_cta - 1) / rows_per_cta);
  config.blockDim = dim3(kCombineWarps * 32);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  cuda_check(cudaLaunchKernelEx(&config, mla_combine_kernel<T>, params, warps_per_row), "mla_combine_kernel launch");
}

}  // namespace

void launch_combine(const DecodeParams& params, cudaStream_t stream) {
  if (params.max_partial_slots <= 0 || params.batch <= 0) return;
  const int warps_per_row = plan::combine_warps_per_row(params.num_sm_parts, params.batch, kCombineWarps);
  if (params.dtype == DType::bf16) {
    launch_combine_typed<__nv_bfloat16>(params, warps_per_row, stream);
  } else {
    launch_combine_typed<__half>(params, warps_per_row, stream);
  }
}

}  // namespace flashmla::sm90
