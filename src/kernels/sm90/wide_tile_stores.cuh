// The epilogue stores of a 64-row tile whose O is split by channel halves between two consumer
// warpgroups (the wide kernels: decode_wgmma_kernel.cuh, decode_seesaw_kernel.cuh): the normalised
// rows to out and lse, or to a partial slot when the request is split.
#pragma once

#include <cstdint>

#include "kernels/sm90/decode_pipeline.cuh"
#include "kernels/sm90/quad_row_stores.cuh"

namespace flashmla::sm90 {

#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
// Timing only (docs/perf-log.md, entry 41): the epilogue stores no O. O still feeds a condition
// that never holds in practice, or ptxas drops the P @ V MMAs whose results nothing reads.
__device__ __forceinline__ bool experiment_keep_alive(const float (&o)[128]) {
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < 128; ++i) sum += o[i];
  return sum == 12345.f;
}
#endif

// This thread's rows (row0, row0 + 8 of the tile at m_base) of O channels 256 * half..+255, divided
// by the row sums, row_sum(e, tile row) for row e of the thread (the one-page kernel adds its two
// consumers' sums there, in a fixed order). m: the rows' raw-score maxima; the consumer of half 0
// stores the lse. The whole warp calls it
// (the stores' quad shuffles); rows past rows_per_kv skip their stores only.
template <typename T, typename RowSum>
__device__ __forceinline__ void store_wide_tile_rows(const DecodeParams& p, RequestOutput dst, int r, int kv_head,
                                                     int m_base, int row0, int tq, int half, const float (&o)[128],
                                                     const float (&m)[2], RowSum row_sum) {
  // The destination is the same for the whole warp, so the branch stays outside the row loop and
  // the loop has none: ptxas then overlaps the two rows' chains (reciprocal, log, head index,
  // addresses; docs/perf-log.md, entry 134). Rows past the kv group's last only skip their
  // stores: the stores' shuffles need the whole warp.
  // Row e of this thread: its row of the kv group, whether the group has it, 1 / its sum, its lse.
  struct Row {
    int mrow;
    bool ok;
    float inv, lse;
  };
  auto row_of = [&](int e) {
    const int rl = row0 + 8 * e;
    const float l = row_sum(e, rl);
    return Row{m_base + rl, m_base + rl < p.rows_per_kv, row_sum_reciprocal(l),
               row_lse(m[e], l, p.softmax_scale, dst.split())};
  };
  if (!dst.split()) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const auto [mrow, row_ok, inv, lse] = row_of(e);
      int i, h;
      token_and_head(p, kv_head, mrow, i, h);
      T* out = static_cast<T*>(p.out) + r * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h;
#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
      if (experiment_keep_alive(o)) p.lse[0] = 0.f;
#else
#pragma unroll
      for (int k = 0; k < 8; ++k) {   // 32-column groups: 16 bytes per lane after the transpose
        uint32_t wd[4];
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int jn = 4 * k + jj;
          wd[jj] = HalfOps<T>::pack(o[4 * jn + 2 * e] * inv, o[4 * jn + 2 * e + 1] * inv);
        }
        quad_transpose_words(wd);
        if (row_ok) *reinterpret_cast<uint4*>(out + 256 * half + 32 * k + 8 * tq) = make_uint4(wd[0], wd[1], wd[2], wd[3]);
      }
#endif
      if (row_ok && half == 0 && tq == 0) p.lse[r * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s] = lse;
    }
  } else if (dst.slot_ok()) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const auto [mrow, row_ok, inv, lse] = row_of(e);
      const int64_t prow = (static_cast<int64_t>(dst.slot()) * p.num_heads_kv + kv_head) * p.rows_per_kv + mrow;
      float* po = p.partial_o + prow * kDimV;
#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
      if (experiment_keep_alive(o)) po[0] = 0.f;
#else
#pragma unroll
      for (int k = 0; k < 16; ++k) {   // 16-column groups: 16 bytes per lane after the exchange
        const int jn = 2 * k;
        const float2 a = make_float2(o[4 * jn + 2 * e] * inv, o[4 * jn + 2 * e + 1] * inv);
        const float2 b = make_float2(o[4 * jn + 4 + 2 * e] * inv, o[4 * jn + 4 + 2 * e + 1] * inv);
        int first;
        const float4 v = pair_merge_columns(a, b, first);
        if (row_ok) *reinterpret_cast<float4*>(po + 256 * half + 16 * k + first) = v;
      }
#endif
      if (row_ok && half == 0 && tq == 0) p.partial_lse[prow] = lse;
    }
  }
}

}  // namespace flashmla::sm90
