// The merge of split-KV partials that the combine kernel and the decode grid's own merge
// (grid_merge.cuh) share: where a merged row goes, which slots a request's partials occupy, and
// the running lse-weighted sum of a thread's channels over slots.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/decode_params.h"
#include "kernels/sm90/ptx.cuh"

namespace flashmla::sm90 {

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

// Partial slots [begin, end) of request r, from num_splits (written by the metadata kernel, before
// the decode kernel) and never past the workspace; false when the request was not split, so the
// decode kernel wrote its output.
__device__ __forceinline__ bool split_slots(const DecodeParams& p, int r, int& begin, int& end) {
  begin = p.num_splits[r];
  end = p.num_splits[r + 1];
  if (end > p.max_partial_slots) end = p.max_partial_slots;
  return begin >= 0 && end > begin;
}

// Four consecutive channels, rounded to T.
template <typename T>
__device__ __forceinline__ void store4(T* dst, float4 v, float scale) {
  uint2 packed;
  packed.x = HalfOps<T>::pack(v.x * scale, v.y * scale);
  packed.y = HalfOps<T>::pack(v.z * scale, v.w * scale);
  *reinterpret_cast<uint2*>(dst) = packed;
}

__device__ __forceinline__ void scale_add(float4& acc, float w, const float4& v) {
  acc.x = fmaf(w, v.x, acc.x);
  acc.y = fmaf(w, v.y, acc.y);
  acc.z = fmaf(w, v.z, acc.z);
  acc.w = fmaf(w, v.w, acc.w);
}

// One pass over the slots, so the lse and the partial O of a slot are loaded together instead of
// the lse first (a maximum, then a sum) and O after it: a running maximum m of the slots' lse, the
// weight sum l = sum_s exp(lse_s - m) and acc = sum_s exp(lse_s - m) * O_s, both moved to a larger
// m when one comes. kV float4 of channels per thread. merged: out = acc / l, lse = m + log(l);
// m = -inf (no slot saw a key): out 0, lse +inf.
template <int kV>
struct RunningMerge {
  float m = -INFINITY;
  float l = 0.f;
  float4 acc[kV];

  __device__ __forceinline__ RunningMerge() {
#pragma unroll
    for (int q = 0; q < kV; ++q) acc[q] = make_float4(0.f, 0.f, 0.f, 0.f);
  }

  // Moves (l, acc) to the maximum top >= m; top is finite.
  __device__ __forceinline__ void move_to(float top) {
    const float f = expf(m - top);   // 0 while m is -inf
    l *= f;
#pragma unroll
    for (int q = 0; q < kV; ++q) {
      acc[q].x *= f;
      acc[q].y *= f;
      acc[q].z *= f;
      acc[q].w *= f;
    }
    m = top;
  }

  // kN slots whose loads were issued together; a slot past the end comes as lse -inf and O 0.
  template <int kN>
  __device__ __forceinline__ void add_slots(const float (&lse)[kN], const float4 (&val)[kN][kV]) {
    float top = m;
#pragma unroll
    for (int u = 0; u < kN; ++u) top = fmaxf(top, lse[u]);
    if (top == -INFINITY) return;
    move_to(top);
#pragma unroll
    for (int u = 0; u < kN; ++u) {
      const float w = expf(lse[u] - top);   // 0 for an empty split (-inf)
      l += w;
#pragma unroll
      for (int q = 0; q < kV; ++q) scale_add(acc[q], w, val[u][q]);
    }
  }

  // Adds the merges of parts 1..n-1 (read through ml(j) = (m_j, l_j) and acc_of(j, q)) to this
  // one, part 0, in part order.
  template <typename Ml, typename Acc>
  __device__ __forceinline__ void add_parts(int n, Ml ml, Acc acc_of) {
    float top = m;
    for (int j = 1; j < n; ++j) top = fmaxf(top, ml(j).x);
    if (top == -INFINITY) return;
    move_to(top);
    for (int j = 1; j < n; ++j) {
      const float2 part = ml(j);
      const float w = expf(part.x - top);   // 0 for a part that saw nothing
      l += w * part.y;
#pragma unroll
      for (int q = 0; q < kV; ++q) scale_add(acc[q], w, acc_of(j, q));
    }
  }

  __device__ __forceinline__ bool empty() const { return m == -INFINITY || !(l > 0.f); }
  __device__ __forceinline__ float inv_l() const { return empty() ? 0.f : 1.f / l; }
  __device__ __forceinline__ float lse() const { return empty() ? INFINITY : m + logf(l); }
};

// Adds the slots first, first + step, ... below slot_end to `merge`, kN slots' loads issued
// together: load(s, lse, val) reads slot s's lse and its kV float4 of partial O; slots past the
// end come as lse -inf and O 0.
template <int kN, int kV, typename Load>
__device__ __forceinline__ void add_strided_slots(RunningMerge<kV>& merge, int first, int slot_end, int step,
                                                  Load load) {
  for (int s0 = first; s0 < slot_end; s0 += step * kN) {
    float4 val[kN][kV];
    float lse[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const int s = s0 + j * step;
      lse[j] = -INFINITY;
#pragma unroll
      for (int q = 0; q < kV; ++q) val[j][q] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (s < slot_end) load(s, lse[j], val[j]);
    }
    merge.add_slots(lse, val);
  }
}

}  // namespace flashmla::sm90
