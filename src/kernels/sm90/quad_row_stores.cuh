// 16-byte global stores of accumulator rows in wgmma's register layout, where the four lanes of a
// quad hold one row and lane tq holds columns 8 * jn + 2 * tq and + 1 of it. Stored as they lie,
// a warp instruction writes 8 rows x 16 bytes (16-bit output: half sectors) or 8 rows x 32 bytes
// (fp32), 64 stores per thread. Exchanging words inside the quad first gives each lane 16
// contiguous bytes: 16 stores per thread for 16-bit output, 32 for fp32, each writing 8 rows x 64
// bytes (docs/perf-log.md, entry 44).
//
// The whole warp must call these together (full-mask shuffles): a partial mask made ptxas add a
// divergent fallback to every shuffle, ~2,600 instructions over the epilogue.
// The lane index is read where it is used: a lane-derived value computed once per kernel stays
// live through the page loop, where the wide kernel has no register to spare, and ptxas spilled it.
#pragma once

#include <cstdint>

namespace flashmla::sm90 {

__device__ __forceinline__ int lane_here() {
  int lane;
  asm volatile("mov.u32 %0, %%laneid;\n" : "=r"(lane));
  return lane;
}

// w[jj] (jj = 0..3) holds 16-bit columns 8 * jj + 2 * tq, + 1 of a 32-column group. Afterwards w[jj]
// holds columns 8 * tq + 2 * jj, + 1: the lane's 8 columns from 8 * tq, in order. A 4 x 4 transpose
// of words across the quad: first with lane ^ 1 the words whose index parity differs from the
// lane's, then with lane ^ 2 the words whose index bit 1 differs from the lane's.
__device__ __forceinline__ void quad_transpose_words(uint32_t (&w)[4]) {
  const int lane = lane_here();
  constexpr uint32_t mask = 0xffffffffu;
  const bool odd = lane & 1, upper = lane & 2;
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const uint32_t got = __shfl_xor_sync(mask, odd ? w[2 * k] : w[2 * k + 1], 1);
    if (odd) {
      w[2 * k] = got;
    } else {
      w[2 * k + 1] = got;
    }
  }
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const uint32_t got = __shfl_xor_sync(mask, upper ? w[k] : w[k + 2], 2);
    if (upper) {
      w[k] = got;
    } else {
      w[k + 2] = got;
    }
  }
}

// a: fp32 columns 2 * tq, + 1 of a 16-column group; b: columns 8 + 2 * tq, + 1. Returns four
// consecutive columns starting at column `first` (returned): an even lane keeps a and takes its
// odd neighbour's a, an odd lane takes its even neighbour's b and keeps its own b.
__device__ __forceinline__ float4 pair_merge_columns(float2 a, float2 b, int& first) {
  const int lane = lane_here();
  const int tq = lane & 3;
  const bool odd = lane & 1;
  first = odd ? 2 * tq + 6 : 2 * tq;
  constexpr uint32_t mask = 0xffffffffu;
  const float r0 = __shfl_xor_sync(mask, odd ? a.x : b.x, 1);
  const float r1 = __shfl_xor_sync(mask, odd ? a.y : b.y, 1);
  return odd ? make_float4(r0, r1, b.x, b.y) : make_float4(a.x, a.y, r0, r1);
}

}  // namespace flashmla::sm90
