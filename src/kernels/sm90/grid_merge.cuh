// The decode grid's own merge of its split requests (plan::merge_in_decode_grid). Experimental:
// only builds with FLASHMLA_EXPERIMENT_GRID_MERGE launch the merging kernels (docs/perf-log.md,
// entry 102: 2-3% faster than the combine kernel at b = 1, h_q = 16, level at b = 4, 11-15% slower
// at b = 1, h_q = 128). Launched cooperatively, the decode grid waits at a grid barrier once every
// CTA has written its partials, and its consumer threads merge them; no combine kernel follows.
//
// Units: (request r, kv head, query row m, 64-channel eighth e of the row), numbered
// u = ((r * h_kv + kv_head) * rows_per_kv + m) * 8 + e. A CTA merges K units at once
// (plan::grid_merge_units_at_once): its 256 consumer threads are 16 slot groups of 16 threads
// (4 channels each, so a group's load of a slot is one 256-byte line), group g serves unit g % K
// and sums every (16 / K)-th slot of it from its g / K-th, with kGridMergeUnroll slots' loads in
// flight per thread; the unit's groups are then added in group order. The order depends on the
// shapes only, so results are deterministic.
#pragma once

#include <cstdint>

#include <cooperative_groups.h>

#include "common/decode_params.h"
#include "common/split_plan.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/split_merge.cuh"

namespace flashmla::sm90 {

inline constexpr int kGridMergeThreads = 256;   // the two consumer warpgroups
inline constexpr int kGridMergeGroupThreads = 16;
inline constexpr int kGridMergeGroups = kGridMergeThreads / kGridMergeGroupThreads;
inline constexpr int kGridMergeUnroll = 9;   // 132 slots over 16 groups in one round (b = 1, h_q = 16)
inline constexpr int kGridMergeBarrier = 15;   // a named barrier neither decode kernel uses
inline constexpr int kUnitChannels = 64;

// In the decode kernel's shared memory, which no page or Q tile uses once the grid barrier is
// passed (every load the CTA issued was waited for).
struct GridMergeScratch {
  float4 sum[kGridMergeGroups][kGridMergeGroupThreads];
  float2 ml[kGridMergeGroups];
};

// Run by every consumer thread (t in [0, 256)) at the end of the decode kernel. The producer
// warps have exited by then or exit without it: the grid barrier's CTA-wide bar.sync waits for
// non-exited threads only.
template <typename T>
__device__ __forceinline__ void merge_splits_in_grid(const DecodeParams& p, uint8_t* smem, int t) {
  const int ctas = static_cast<int>(gridDim.x * gridDim.y * gridDim.z);
  const int cta = static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const int rows = p.rows_per_kv;
  constexpr int kUnitsPerRow = kHeadDimV / kUnitChannels;
  const int64_t units = static_cast<int64_t>(p.batch) * p.num_heads_kv * rows * kUnitsPerRow;
  const int k_at_once = plan::grid_merge_units_at_once(units, ctas);
  const int groups_per_unit = kGridMergeGroups / k_at_once;
  const int g = t / kGridMergeGroupThreads, c = t % kGridMergeGroupThreads;
  const int k = g % k_at_once, sub = g / k_at_once;
  const int64_t slot_stride = static_cast<int64_t>(p.num_heads_kv) * rows;
  auto* scratch = reinterpret_cast<GridMergeScratch*>(smem);

  // Unit u's row and slots (merges false past the last unit, or where the decode kernel wrote
  // the row itself: a request that was not split).
  struct Unit {
    int r = 0, kv_head = 0, m = 0, col0 = 0, slot_begin = 0, slot_end = 0;
    bool merges = false;
  };
  auto unit_at = [&](int64_t u) {
    Unit w;
    if (u < units) {
      w.col0 = static_cast<int>(u % kUnitsPerRow) * kUnitChannels;
      const int64_t row_of_batch = u / kUnitsPerRow;
      w.m = static_cast<int>(row_of_batch % rows);
      w.kv_head = static_cast<int>((row_of_batch / rows) % p.num_heads_kv);
      w.r = static_cast<int>(row_of_batch / rows / p.num_heads_kv);
      w.merges = split_slots(p, w.r, w.slot_begin, w.slot_end);
    }
    return w;
  };
  // num_splits was written by the metadata kernel: the first batch reads it beside the barrier's wait.
  Unit next = unit_at(static_cast<int64_t>(cta) * k_at_once + k);
  cooperative_groups::this_grid().sync();
#ifdef FLASHMLA_EXPERIMENT_GRID_MERGE_SYNC_ONLY
  return;   // timing only: the grid barrier without the merge (split requests keep no output)
#endif

  for (int64_t first = static_cast<int64_t>(cta) * k_at_once; first < units;
       first += static_cast<int64_t>(ctas) * k_at_once) {
    const Unit w = next;
    const int r = w.r, kv_head = w.kv_head, m = w.m, unit_col = w.col0, slot_begin = w.slot_begin,
              slot_end = w.slot_end;
    const bool merges = w.merges;
    next = unit_at(first + static_cast<int64_t>(ctas) * k_at_once + k);
    const int64_t row_index = static_cast<int64_t>(kv_head) * rows + m;
    const int col = unit_col + 4 * c;

    RunningMerge<1> merge;
    if (merges) {
      add_strided_slots<kGridMergeUnroll>(merge, slot_begin + sub, slot_end, groups_per_unit,
                                          [&](int s, float& lse, float4 (&val)[1]) {
        // Written by other CTAs of this grid before the barrier: read from L2, not a stale L1 line.
        val[0] = __ldcg(reinterpret_cast<const float4*>(p.partial_o + (s * slot_stride + row_index) * kHeadDimV + col));
        lse = __ldcg(p.partial_lse + s * slot_stride + row_index);
      });
    }
    scratch->sum[g][c] = merge.acc[0];
    if (c == 0) scratch->ml[g] = make_float2(merge.m, merge.l);
    named_barrier_sync(kGridMergeBarrier, kGridMergeThreads);
    if (sub == 0 && merges) {
      merge.add_parts(groups_per_unit, [&](int j) { return scratch->ml[g + j * k_at_once]; },
                      [&](int j, int) { return scratch->sum[g + j * k_at_once][c]; });
      const MergedRow<T> dst = merged_row<T>(p, r, kv_head, m);
      store4(dst.out + col, merge.acc[0], merge.inv_l());
      if (unit_col == 0 && c == 0) *dst.lse = merge.lse();
    }
    // The next batch rewrites the scratch.
    named_barrier_sync(kGridMergeBarrier, kGridMergeThreads);
  }
}

}  // namespace flashmla::sm90
