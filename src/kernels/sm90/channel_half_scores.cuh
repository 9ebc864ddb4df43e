// One consumer's partial scores of a 64-key page over its channel half, as the one-page probe
// (bench/seesaw_probe.cu) issues them and the wide kernel's timing-only PROBE_LOOP replays them
// (docs/perf-log.md, entry 88): both share this code so that the two loops score alike.
#pragma once

#include <cstdint>

#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/smem_layout.cuh"
#include "kernels/sm90/wgmma_ops.cuh"

namespace flashmla::sm90 {

// half = Q K^T of the 64 rows x 64 keys at `page` over channel half kC: V k-steps 16kC..16kC+15 and
// RoPE k-steps 32+2kC, 33+2kC (Q and the page as nine 8 KiB chunks of 128-byte swizzled rows), as
// two 9-step chunks in flight in fresh accumulators, added with round-to-nearest FADDs. The
// descriptors are one Q and one K base with constants added at each MMA. on_prior_done() runs once
// every wgmma group issued before this call has completed.
template <typename T, int kC, typename F>
__device__ __forceinline__ void channel_half_scores(float (&half)[32], uint32_t sQ, uint32_t page, F&& on_prior_done) {
  float part[32];
  const uint64_t q = smem_desc_sw128(sQ, 16, 1024), k = smem_desc_sw128(page, 16, 1024);
  auto chunk = [&](float (&acc)[32], int ch) {
    wgmma_fence();
#pragma unroll
    for (int i = 0; i < 9; ++i) {
      const int jj = 9 * ch + i;
      const int step = jj < 16 ? 16 * kC + jj : 32 + 2 * kC + (jj - 16);
      const uint32_t off = step / 4 * kChunkBytes + step % 4 * 32;
      Wgmma<T, 64, 0, 0>::mma(acc, desc_add_at_use(q, off), desc_add_at_use(k, off), i != 0);
    }
    wgmma_commit();
  };
  chunk(half, 0);
  chunk(part, 1);
  wgmma_wait<1>();
  on_prior_done();
  wgmma_wait<0>();
  fence_registers(half);
  fence_registers(part);
#pragma unroll
  for (int i = 0; i < 32; ++i) half[i] += part[i];
}

}  // namespace flashmla::sm90
