// Merge of split-KV partials: for every split request, out = sum_s exp(lse_s - lse) * O_s with
// lse = log sum_s exp(lse_s), the slots summed in slot order so the result is deterministic.
//
// Grid (batch, num_heads_kv, ceil(rows_per_kv / 8)), 8 warps, one warp per query row; a lane
// owns channels 4*lane + 128*q (q = 0..3), so each float4 load of a warp is 512 contiguous bytes.
// Requests that were not split were written by the decode kernel; their CTAs exit at once.
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "host/cuda_check.h"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/ptx.cuh"

namespace flashmla::sm90 {
namespace {

constexpr int kCombineWarps = 8;

template <typename T>
__global__ void __launch_bounds__(kCombineWarps * 32) mla_combine_kernel(const __grid_constant__ DecodeParams p) {
  const int r = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int m = blockIdx.z * kCombineWarps + (threadIdx.x >> 5);
  if (m >= p.rows_per_kv) return;
  const int slot_begin = p.num_splits[r];
  int slot_end = p.num_splits[r + 1];
  if (slot_end <= slot_begin) return;            // not split: the decode kernel wrote it
  if (slot_end > p.max_partial_slots) slot_end = p.max_partial_slots;   // never read past the workspace
  if (slot_begin < 0 || slot_end <= slot_begin) return;

  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * p.rows_per_kv;
  const int64_t row_index = static_cast<int64_t>(kv_head) * p.rows_per_kv + m;

  float lse_max = -INFINITY;
  for (int s = slot_begin; s < slot_end; ++s) lse_max = fmaxf(lse_max, p.partial_lse[s * slot_stride + row_index]);

  float acc[4][4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[q][e] = 0.f;
  }
  float lse = INFINITY;   // no visible key in any split: out 0, lse +inf
  if (lse_max != -INFINITY) {
    float sum = 0.f;
    for (int s = slot_begin; s < slot_end; ++s) sum += expf(p.partial_lse[s * slot_stride + row_index] - lse_max);
    lse = lse_max + logf(sum);
    for (int s = slot_begin; s < slot_end; ++s) {
      const int64_t prow = s * slot_stride + row_index;
      const float scale = expf(p.partial_lse[prow] - lse);   // 0 for an empty split (-inf)
      const float4* src = reinterpret_cast<const float4*>(p.partial_o + prow * kHeadDimV);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float4 v = src[q * 32 + lane];
        acc[q][0] += scale * v.x;
        acc[q][1] += scale * v.y;
        acc[q][2] += scale * v.z;
        acc[q][3] += scale * v.w;
      }
    }
  }

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

}  // namespace

void launch_combine(const DecodeParams& params, cudaStream_t stream) {
  if (params.max_partial_slots <= 0 || params.batch <= 0) return;
  const dim3 grid(params.batch, params.num_heads_kv, (params.rows_per_kv + kCombineWarps - 1) / kCombineWarps);
  if (params.dtype == DType::bf16) {
    mla_combine_kernel<__nv_bfloat16><<<grid, kCombineWarps * 32, 0, stream>>>(params);
  } else {
    mla_combine_kernel<__half><<<grid, kCombineWarps * 32, 0, stream>>>(params);
  }
  cuda_check(cudaGetLastError(), "mla_combine_kernel launch");
}

}  // namespace flashmla::sm90
