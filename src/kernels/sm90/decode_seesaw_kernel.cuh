// Split-KV MLA decode kernel for 64-row tiles, seesaw schedule. Experimental: the dispatch takes it
// for the wide tiles only in builds with FLASHMLA_EXPERIMENT_SEESAW (docs/perf-log.md, entry 98).
//
// Grid as the wide kernel's (decode_wgmma_kernel.cuh), 256 threads: two consumer warpgroups and no
// producer. The CTA's pages (every page of its active segments, in order) alternate between two
// 72 KiB buffers, page n in buffer n % 2, and consumer n % 2 owns page n:
//   - it scores the page whole (64 rows x 64 keys over all 576 channels, m64n64), its own channel
//     half's chunks first;
//   - it exponentiates the scores against reference row maxima that both consumers hold, multiplies
//     its P into its O half (channels 256c..+255) from registers, and hands P_hi (the page's RoPE
//     chunk), P_lo (one spare chunk) and two flags to the other consumer;
//   - the other consumer multiplies that P into its own O half, right after scoring its next page,
//     so that the tensor core has one consumer's MMAs while the other exponentiates.
// The reference maxima move in page order: a page that raises a row's maximum past the slack
// (kLazyMaxLog2) hands its new maxima over with its P, and the other consumer rescales its O and
// sums before it uses them. Both consumers then always hold the same maxima, and the softmax of
// each page waits for the hand-over of the page before it.
//
// Loads (no producer warpgroup): part c of a page is V chunks 4c..4c+3, plus the RoPE chunk when
// consumer 1 - c owns the page (its P_hi, which consumer c reads last). Consumer c's thread 0 loads
// part c of every page, in page order, each chunk on its own full barrier; page L goes into its
// buffer once consumer c's MMAs of page L - 2 have completed. The owner scores its own part first,
// the part it reloaded itself. Q: one tile per segment, loaded by the consumers once both have
// scored the previous segment's last page.
//
// Shared memory (230,568 B): Q (72 KiB) | buffer 0 | buffer 1 (72 KiB each) | P_lo (8 KiB) | raised
// row maxima and row sums (float[2][64] each) | flags | mbarriers.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/sm90/decode_pipeline.cuh"
#include "kernels/sm90/decode_wgmma_kernel.cuh"
#include "kernels/sm90/wgmma_ops.cuh"
#include "kernels/sm90/wide_tile_stores.cuh"

namespace flashmla::sm90 {

inline constexpr int kSeesawThreads = 2 * kWarpgroupThreads;
inline constexpr int kPageChunks = kHeadDim / kChunkCols;   // 9

struct SeesawSmem {
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kBuffer0 = kTileBytes;          // buffer b at kBuffer0 + b * kTileBytes
  static constexpr uint32_t kPlo = 3 * kTileBytes;          // P_lo of the last page that took lo
  static constexpr uint32_t kRowMax = kPlo + kChunkBytes;   // float[2][64]: the owner's raised maxima
  static constexpr uint32_t kRowSum = kRowMax + 2 * 64 * 4; // float[2][64]: per consumer
  static constexpr uint32_t kFlags = kRowSum + 2 * 64 * 4;  // uint32[2]: the owner's last page
  static constexpr uint32_t kBars = kFlags + 16;            // full[2][9] (buffer, chunk), then q_full
  static constexpr uint32_t kBytes = kBars + (2 * kPageChunks + 1) * 8;
};
static_assert(SeesawSmem::kBytes <= 227 * 1024, "decode CTA must fit Hopper's 227 KiB per block");
static_assert(SeesawSmem::kPlo % 1024 == 0 && SeesawSmem::kBuffer0 % 1024 == 0, "P tiles must be 1024-byte aligned");

// Flag bits of a handed-over page.
inline constexpr uint32_t kPageRaised = 1, kPageLo = 2;

// Named barriers (0 is __syncthreads). The 256-thread ones are reached from each consumer's own
// instance of the loop, so they use the unaligned forms. kSeeHandOff + c: consumer c's page is
// handed over (c arrives, the other syncs; 256). kSeeVote + c: consumer c's raise and lo votes and its other 128-thread
// waits (zeroed tail rows visible, all four warps past their MMA waits). kSeeRowSum, kSeeQ: both
// consumers (256): the row sums are written or read; both are done with a Q tile.
enum : int { kSeeHandOff = 1, kSeeVote = 3, kSeeRowSum = 5, kSeeQ = 6 };

__device__ __forceinline__ uint32_t seesaw_buffer(uint32_t sbase, int b) {
  return sbase + SeesawSmem::kBuffer0 + static_cast<uint32_t>(b) * kTileBytes;
}
__device__ __forceinline__ uint32_t seesaw_full(uint32_t sbase, int b, int chunk) {
  return sbase + SeesawSmem::kBars + static_cast<uint32_t>(b * kPageChunks + chunk) * 8;
}
__device__ __forceinline__ uint32_t seesaw_q_full(uint32_t sbase) {
  return sbase + SeesawSmem::kBars + 2 * kPageChunks * 8;
}
// Fills of buffer n % 2 alternate the full barriers' phases.
__device__ __forceinline__ uint32_t seesaw_parity(int n) { return static_cast<uint32_t>(n >> 1) & 1u; }

// Consumer C's loads (its thread 0): part C of the CTA's pages in page order.
template <int C>
struct SeesawLoader {
  PageCursor cursor;
  int next;   // page number of the next load
  uint64_t policy;
  bool evict_first;

  __device__ __forceinline__ SeesawLoader(const DecodeParams& p, const int32_t* fields, int begin, int end)
      : cursor(p, fields, begin, end), next(0), policy(l2_policy_evict_first()), evict_first(p.num_row_tiles == 1) {}

  // Loads pages up to (not including) `limit`: the caller has released part C of page limit - 3.
  __device__ __forceinline__ void load_until(int limit, const CUtensorMap* map, uint32_t sbase, int kv_head) {
    for (; cursor.valid && next < limit; ++next, cursor.advance()) {
      const int b = next & 1;
      const int page = cursor.page();
      const uint32_t buf = seesaw_buffer(sbase, b);
      auto chunk = [&](int ch) {
        const uint32_t full = seesaw_full(sbase, b, ch);
        mbar_arrive_expect_tx(full, kChunkBytes);
        if (evict_first) {
          tma_load_4d_hint(buf + ch * kChunkBytes, map, full, ch * kChunkCols, 0, kv_head, page, policy);
        } else {
          tma_load_4d(buf + ch * kChunkBytes, map, full, ch * kChunkCols, 0, kv_head, page);
        }
      };
#pragma unroll
      for (int i = 0; i < 4; ++i) chunk(4 * C + i);
      if (b != C) chunk(kPageChunks - 1);
    }
  }
};

// The chunk that consumer C scores at position i of its own page: its V half, the other half, RoPE.
template <int C>
__device__ __forceinline__ constexpr int owner_chunk_at(int i) {
  return i < 4 ? 4 * C + i : (i < 8 ? 4 * (1 - C) + i - 4 : 8);
}

// s = Q K^T of the 64 rows x 64 keys of the page in buffer C (all 576 channels), as groups of two
// chunks (8 k-steps) in fresh accumulators added with round-to-nearest FADDs (the wide kernel's
// precision rule); each group waits for its chunks' full barriers.
template <typename T, int C>
__device__ __forceinline__ void seesaw_scores(float (&s)[32], uint32_t sbase, uint32_t parity) {
  float part[32];
  const uint64_t q = kmajor_desc(sbase + SeesawSmem::kQ), k = kmajor_desc(seesaw_buffer(sbase, C));
  auto group = [&](float (&acc)[32], auto first_c, auto count_c) {
    constexpr int first = decltype(first_c)::value, count = decltype(count_c)::value;
#pragma unroll
    for (int i = 0; i < count; ++i) mbar_wait(seesaw_full(sbase, C, owner_chunk_at<C>(first + i)), parity);
    wgmma_fence();
#pragma unroll
    for (int i = 0; i < count; ++i) {
#pragma unroll
      for (int s4 = 0; s4 < 4; ++s4) {
        const uint32_t off = owner_chunk_at<C>(first + i) * kChunkBytes + s4 * 32;
        Wgmma<T, 64, 0, 0>::mma(acc, desc_add_at_use(q, off), desc_add_at_use(k, off), i != 0 || s4 != 0);
      }
    }
    wgmma_commit();
  };
  auto add_part = [&] {
    wgmma_wait<0>();
    fence_registers(s);
    fence_registers(part);
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] += part[i];
  };
  group(s, std::integral_constant<int, 0>{}, std::integral_constant<int, 2>{});
  group(part, std::integral_constant<int, 2>{}, std::integral_constant<int, 2>{});
  add_part();
  group(part, std::integral_constant<int, 4>{}, std::integral_constant<int, 2>{});
  add_part();
  group(part, std::integral_constant<int, 6>{}, std::integral_constant<int, 2>{});
  add_part();
  group(part, std::integral_constant<int, 8>{}, std::integral_constant<int, 1>{});
  add_part();
}

// Row state of one consumer: reference maxima (the same in both), its share of the row sums over
// the pages it owns, and its squared weights of pages that went without lo.
template <typename T>
struct SeesawRows {
  float m[2], l[2], lo_dropped[2];
  // Moves to new maxima m_new (>= m), with O and the sums.
  __device__ __forceinline__ void raise_to(const float (&m_new)[2], float sl2, float (&o)[128]) {
    float alpha[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      alpha[e] = softmax_rescale(m[e], m_new[e], sl2);
      m[e] = m_new[e];
      l[e] *= alpha[e];
      lo_dropped[e] *= alpha[e] * alpha[e];
    }
    if (alpha[0] != 1.f || alpha[1] != 1.f) Consumer<T>::scale_o(o, alpha);
  }
};

// One consumer of the seesaw (C: its index, a constant, so that its buffers, barriers and channel
// half are too).
template <typename T, int C>
struct SeesawConsumer {
  using Ops = Consumer<T>;
  static constexpr int kOther = 1 - C;

  uint32_t sbase;
  int t, row0, tq;
  float sl2, lazy_slack;

  __device__ __forceinline__ uint32_t rope_of(int b) const { return seesaw_buffer(sbase, b) + 8 * kChunkBytes; }

  // The other consumer's page n (handed over): its raise moves my maxima, my V half of its tail rows
  // is zeroed, and its P (with P_lo when it took lo) goes into my O half.
  __device__ __forceinline__ void take_other_page(float (&o)[128], SeesawRows<T>& rows, int valid, uint32_t phase) const {
    named_barrier_sync_unaligned(kSeeHandOff + kOther, kSeesawThreads);
    const uint32_t flags = ld_shared_b32(sbase + SeesawSmem::kFlags + 4 * kOther);
    if (flags & kPageRaised) {
      float m_new[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        m_new[e] = __uint_as_float(ld_shared_b32(sbase + SeesawSmem::kRowMax + 4 * (64 * kOther + row0 + 8 * e)));
      }
      rows.raise_to(m_new, sl2, o);
    }
    const uint32_t other_buf = seesaw_buffer(sbase, kOther);
    // My V half of the page landed on barriers that its owner waited for: the bytes are visible to
    // this warpgroup's MMAs once it has observed those phases too (the waits return at once).
#pragma unroll
    for (int i = 0; i < 4; ++i) mbar_wait(seesaw_full(sbase, kOther, 4 * C + i), phase);
    if (valid < plan::kBlockN) {
      zero_tail_rows(other_buf, C, valid, t);
      fence_proxy_async_smem();
      named_barrier_sync(kSeeVote + C, kWarpgroupThreads);
    }
    const uint32_t p_hi = rope_of(kOther);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_hi + kk * 32), v_desc(other_buf, C, kk), 1);
    wgmma_commit();
    if (Ops::kSplitP && (flags & kPageLo)) {
      const uint32_t p_lo = sbase + SeesawSmem::kPlo;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_lo + kk * 32), v_desc(other_buf, C, kk), 1);
      wgmma_commit();
    }
  }

  // My page (in buffer C): scores s, masked past lim (keys of blk from key0), softmax against the
  // shared maxima, P @ V into my O half, and the hand-over. valid: keys of the request in the page.
  __device__ __forceinline__ void own_page(float (&o)[128], float (&s)[32], SeesawRows<T>& rows, int key0,
                                           const int (&lim)[2], int valid) const {
    float own_max[2], own_max_hi[2];
    Ops::mask_and_own_max(reinterpret_cast<float(&)[16]>(s[0]), key0 + 2 * tq, lim, own_max);
    Ops::mask_and_own_max(reinterpret_cast<float(&)[16]>(s[16]), key0 + 32 + 2 * tq, lim, own_max_hi);
#pragma unroll
    for (int e = 0; e < 2; ++e) own_max[e] = fmaxf(own_max[e], own_max_hi[e]);
    const bool raise = own_max[0] > rows.m[0] + lazy_slack || own_max[1] > rows.m[1] + lazy_slack;
    const bool raised = named_barrier_sync_or(kSeeVote + C, kWarpgroupThreads, raise);
    if (raised) {
      // New maxima from the quad's row maxima (a row's four threads), the same in the whole quad.
      float m_new[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float tile_max = fmaxf(own_max[e], __shfl_xor_sync(0xffffffffu, own_max[e], 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        m_new[e] = fmaxf(rows.m[e], tile_max);
      }
      wgmma_wait<0>();   // the other's page, still accumulating into my O
      fence_registers(o);
      rows.raise_to(m_new, sl2, o);
      if (tq == 0) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          st_shared_b32(sbase + SeesawSmem::kRowMax + 4 * (64 * C + row0 + 8 * e), __float_as_uint(rows.m[e]));
        }
      }
    }
    float sum[2], sum_hi[2];
    Ops::exponentiate(reinterpret_cast<float(&)[16]>(s[0]), rows.m, sl2, sum);
    Ops::exponentiate(reinterpret_cast<float(&)[16]>(s[16]), rows.m, sl2, sum_hi);
    float sq[2] = {0.f, 0.f};
    bool lo = false;
    if constexpr (Ops::kSplitP) {
      float sq_hi[2];
      Ops::sum_squares(reinterpret_cast<float(&)[16]>(s[0]), sq);
      Ops::sum_squares(reinterpret_cast<float(&)[16]>(s[16]), sq_hi);
      bool need_lo = raised;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        sq[e] += sq_hi[e];
        need_lo |= wants_p_lo(rows.lo_dropped[e], sq[e], rows.l[e] + sum[e] + sum_hi[e]);
      }
      lo = named_barrier_sync_or(kSeeVote + C, kWarpgroupThreads, need_lo);
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      rows.l[e] += sum[e] + sum_hi[e];
      if (!lo) rows.lo_dropped[e] += sq[e];
    }
    uint32_t hi[16];
    Ops::pack_hi(reinterpret_cast<const float(&)[16]>(s[0]), reinterpret_cast<uint32_t(&)[8]>(hi[0]));
    Ops::pack_hi(reinterpret_cast<const float(&)[16]>(s[16]), reinterpret_cast<uint32_t(&)[8]>(hi[8]));
    const uint32_t own_buf = seesaw_buffer(sbase, C);
    if (valid < plan::kBlockN) {
      zero_tail_rows(own_buf, C, valid, t);   // my scores of the page are done
      fence_proxy_async_smem();
      named_barrier_sync(kSeeVote + C, kWarpgroupThreads);
    }
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      WgmmaRs<T, 256>::mma(o, hi[4 * k], hi[4 * k + 1], hi[4 * k + 2], hi[4 * k + 3], v_desc(own_buf, C, k), 1);
    }
    wgmma_commit();
    const uint32_t rope = rope_of(C);
    Ops::store_p(rope, reinterpret_cast<const uint32_t(&)[8]>(hi[0]), Ops::p_offset(row0, 0, tq));
    Ops::store_p(rope, reinterpret_cast<const uint32_t(&)[8]>(hi[8]), Ops::p_offset(row0, 32, tq));
    // Before the hand-over, the other page's P @ V (issued before mine) has completed: the other
    // consumer writes its next P_lo over the P_lo that it read once it has my hand-over.
    if (Ops::kSplitP && lo) {
      uint32_t lw[16];
      Ops::pack_lo(reinterpret_cast<const float(&)[16]>(s[0]), reinterpret_cast<const uint32_t(&)[8]>(hi[0]),
                   reinterpret_cast<uint32_t(&)[8]>(lw[0]));
      Ops::pack_lo(reinterpret_cast<const float(&)[16]>(s[16]), reinterpret_cast<const uint32_t(&)[8]>(hi[8]),
                   reinterpret_cast<uint32_t(&)[8]>(lw[8]));
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        WgmmaRs<T, 256>::mma(o, lw[4 * k], lw[4 * k + 1], lw[4 * k + 2], lw[4 * k + 3], v_desc(own_buf, C, k), 1);
      }
      wgmma_commit();
      wgmma_wait<2>();
      const uint32_t p_lo = sbase + SeesawSmem::kPlo;
      Ops::store_p(p_lo, reinterpret_cast<const uint32_t(&)[8]>(lw[0]), Ops::p_offset(row0, 0, tq));
      Ops::store_p(p_lo, reinterpret_cast<const uint32_t(&)[8]>(lw[8]), Ops::p_offset(row0, 32, tq));
      wgmma_wait<0>();   // lw's registers are read by the MMAs
    } else {
      wgmma_wait<1>();
    }
    if (t == 0) st_shared_b32(sbase + SeesawSmem::kFlags + 4 * C, (raised ? kPageRaised : 0u) | (lo ? kPageLo : 0u));
    fence_proxy_async_smem();
    named_barrier_arrive_unaligned(kSeeHandOff + C, kSeesawThreads);
    wgmma_wait<0>();   // hi's registers, and the stages' MMAs before the reloads
  }
};

template <typename T>
__global__ void __launch_bounds__(kSeesawThreads, 1)
    mla_decode_seesaw_kernel(const __grid_constant__ DecodeParams p, const __grid_constant__ DecodeMaps maps) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQ = sbase + SeesawSmem::kQ;
  const uint32_t q_full = seesaw_q_full(sbase);
  float* s_row_sum = reinterpret_cast<float*>(smem + SeesawSmem::kRowSum);
  const int kv_head = blockIdx.z;
  const int tid = threadIdx.x;
  const int m_base = blockIdx.y * kTileRows;

  if (tid == 0) {
    for (int b = 0; b < 2; ++b) {
      for (int ch = 0; ch < kPageChunks; ++ch) mbar_init(seesaw_full(sbase, b, ch), 1);
    }
    mbar_init(q_full, 1);
    fence_barrier_init();
  }
  wait_for_primary_grid();
  cta_span_start();
  const int32_t* fields = p.tile_metadata + static_cast<int64_t>(blockIdx.x) * kMetadataFields;
  const int req_begin = fields[plan::kReqBegin];
  const int req_end = fields[plan::kReqEnd];
  allow_dependent_launch();
  __syncthreads();

  const bool q_by_tma = maps.q_by_tma != 0;
  const int token0 = m_base / p.q_heads_per_kv;
  const int head0 = kv_head * p.q_heads_per_kv + m_base % p.q_heads_per_kv;
  // The next segment with pages from r on (its Q tile is the next one loaded), or req_end + 1.
  auto next_paged = [&](int r) {
    for (; r <= req_end; ++r) {
      const Segment sg = segment_of(p, fields, r);
      if (sg.active && sg.blk_begin < sg.blk_end) break;
    }
    return r;
  };
  // Q tile of segment r: by TMA from thread 0, or by every thread with cp.async (then visible to
  // the async proxy after kSeeQ).
  auto load_q = [&](int r) {
    if (r > req_end) return;
    if (q_by_tma) {
      if (tid == 0) issue_q_tile_tma<kTileRows>(maps, r, token0, head0, sQ, q_full);
    } else {
      issue_q_tile_cp_async<kTileRows>(p, r, kv_head, m_base, sQ, tid, kSeesawThreads);
    }
  };
  load_q(next_paged(req_begin));

  auto run = [&](auto consumer_index) {
    constexpr int C = decltype(consumer_index)::value;
    const int t = tid - C * kWarpgroupThreads;
    const int lane = t & 31;
    SeesawConsumer<T, C> cs;
    cs.sbase = sbase;
    cs.t = t;
    cs.row0 = 16 * (t / 32) + (lane >> 2);
    cs.tq = lane & 3;
    cs.sl2 = p.scale_log2;
    cs.lazy_slack = kLazyMaxLog2 / cs.sl2;
    SeesawLoader<C> loader(p, fields, req_begin, req_end);
    if (t == 0) loader.load_until(2, &maps.kv, sbase, kv_head);
    int it = 0;   // pages of the CTA before this segment
    int nq = 0;   // Q tiles used
    // Releases part C of pages up to n (my MMAs reading them have completed in all four warps).
    auto release_through = [&](int n) {
      named_barrier_sync(kSeeVote + C, kWarpgroupThreads);
      if (t == 0) loader.load_until(n + 3, &maps.kv, sbase, kv_head);
    };
    for (int r = req_begin; r <= req_end; ++r) {
      const Segment sg = segment_of(p, fields, r);
      if (!sg.active) continue;
      const RequestOutput dst = request_output(p, r, sg.split_idx);
      const int nblk = sg.blk_end - sg.blk_begin;
      int lim[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) lim[e] = visible_keys(p, sg.seqlen, m_base + cs.row0 + 8 * e);
      SeesawRows<T> rows{{-INFINITY, -INFINITY}, {0.f, 0.f}, {0.f, 0.f}};
      float o[128];
#pragma unroll
      for (int i = 0; i < 128; ++i) o[i] = 0.f;
      if (nblk > 0) {
        if (q_by_tma) {
          mbar_wait(q_full, nq & 1);
        } else {
          cp_async_wait_all();
          fence_proxy_async_smem();
          named_barrier_sync_unaligned(kSeeQ, kSeesawThreads);
        }
        const int first = it, end = it + nblk;
        auto valid_of = [&](int n) { return sg.seqlen - (sg.blk_begin + n - first) * plan::kBlockN; };
        for (int n = first + ((C - first) & 1); n < end; n += 2) {
          float s[32];
          seesaw_scores<T, C>(s, sbase, seesaw_parity(n));
          const bool has_prev = n > first;
          if (has_prev) cs.take_other_page(o, rows, valid_of(n - 1), seesaw_parity(n - 1));
          cs.own_page(o, s, rows, (sg.blk_begin + n - first) * plan::kBlockN, lim, valid_of(n));
          release_through(n);
        }
        if (((end - 1) & 1) != C) {   // the segment's last page is the other's
          cs.take_other_page(o, rows, valid_of(end - 1), seesaw_parity(end - 1));
          wgmma_wait<0>();
          release_through(end - 1);
        }
        it = end;
        ++nq;
        // Both consumers have scored every page of the segment: Q may be reloaded.
        named_barrier_sync_unaligned(kSeeQ, kSeesawThreads);
        load_q(next_paged(r + 1));
      }
      // Epilogue: row sums of both consumers, in a fixed order (deterministic).
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        rows.l[e] += __shfl_xor_sync(0xffffffffu, rows.l[e], 1);
        rows.l[e] += __shfl_xor_sync(0xffffffffu, rows.l[e], 2);
      }
      if (cs.tq == 0) {
        s_row_sum[C * 64 + cs.row0] = rows.l[0];
        s_row_sum[C * 64 + cs.row0 + 8] = rows.l[1];
      }
      named_barrier_sync_unaligned(kSeeRowSum, kSeesawThreads);
      store_wide_tile_rows<T>(p, dst, r, kv_head, m_base, cs.row0, cs.tq, C, o, rows.m, s_row_sum);
      // The next segment rewrites s_row_sum, the flags and the raised maxima.
      named_barrier_sync_unaligned(kSeeRowSum, kSeesawThreads);
    }
    cta_span_end(it, nq);
  };
  if (tid < kWarpgroupThreads) {
    run(std::integral_constant<int, 0>{});
  } else {
    run(std::integral_constant<int, 1>{});
  }
}

template <typename T>
void launch_decode_seesaw(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_kernel<mla_decode_seesaw_kernel<T>, SeesawSmem::kBytes, kTileRows, kSeesawThreads>(
      params, stream, "mla_decode_seesaw_kernel");
}

}  // namespace flashmla::sm90
