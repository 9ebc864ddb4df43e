// Pieces the page-loop probes share (seesaw_probe.cu, split_pair_probe.cu): the fast-path softmax
// they time, their page loads and clocks, and the sink that keeps ptxas from dropping their MMAs.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"

namespace probe {

using flashmla::sm90::bulk_load;
using flashmla::sm90::exp2_ftz;
using flashmla::sm90::global_ns;

struct RowState {
  float m[2], l[2], sq[2];
};

// N scores a thread (N = 16 or 32), rows row0 and row0 + 8 alternating by pairs: each row's largest.
template <int N>
__device__ __forceinline__ void row_maxima(const float (&s)[N], float (&own)[2]) {
  own[0] = own[1] = -INFINITY;
#pragma unroll
  for (int i = 0; i < N; ++i) own[(i >> 1) & 1] = fmaxf(own[(i >> 1) & 1], s[i]);
}

// Whether a row maximum passes the reference + slack (the slow path's test).
__device__ __forceinline__ bool passes_reference(const float (&own)[2], const RowState& st, float sl2) {
  return own[0] > st.m[0] + 8.f / sl2 || own[1] > st.m[1] + 8.f / sl2;
}

// P in place against the reference maxima, with each row's sum and sum of squares of this page.
template <int N>
__device__ __forceinline__ void exponentiate_rows(float (&s)[N], const RowState& st, float sl2, float (&sum)[2],
                                                  float (&sq)[2]) {
  sum[0] = sum[1] = sq[0] = sq[1] = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    s[i] = exp2_ftz(fmaf(s[i], sl2, -st.m[(i >> 1) & 1] * sl2));
    sum[(i >> 1) & 1] += s[i];
    sq[(i >> 1) & 1] = fmaf(s[i], s[i], sq[(i >> 1) & 1]);
  }
}

// Fast-path softmax: whether a row maximum passes the reference + slack, then P in place, and the
// page's sums and squares added to the row state.
template <int N>
__device__ __forceinline__ bool softmax_fast(float (&s)[N], RowState& st, float sl2) {
  float own[2];
  row_maxima(s, own);
  const bool raise = passes_reference(own, st, sl2);
  float sum[2], sq[2];
  exponentiate_rows(s, st, sl2, sum, sq);
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    st.l[e] += sum[e];
    st.sq[e] += sq[e];
  }
  return raise;
}

// A value that depends on every output and row statistic, so that no MMA's result goes unread.
__device__ __forceinline__ float sink_of(const float (&o)[128], const RowState& st) {
  float sink = st.l[0] + st.l[1] + st.sq[0];
#pragma unroll
  for (int i = 0; i < 128; ++i) sink += o[i];
  return sink;
}

}  // namespace probe
