// Split-KV MLA decode kernel, Hopper warpgroup version (TMA + wgmma, warp-specialised).
//
// Grid (num_sm_parts, num_row_tiles, num_heads_kv), 384 threads, one CTA per SM; the work of a
// CTA walks the requests of its metadata row (common/split_plan.h), the plan the CPU reference uses.
//
//   WG0, WG1 (consumers, 232 registers): both hold the same 64 query rows and work on the same
//     64-key KV tile at the same time. WG c computes partial scores of all 64 keys over its half
//     of the channels (m64n64 wgmma), the two hand each other the partial sums of the other's
//     32 keys through the tile's RoPE chunk and P_lo, so that WG c holds the scores of keys
//     32c..32c+31 over all 576 channels; it exponentiates them against reference row
//     maxima both hold (kLazyMaxLog2: they move only on a page that raises a row's maximum by
//     more than a slack, through shared memory), writes its half of P (64 x 64), and WG c
//     accumulates output channels 256c..256c+255 (64 x 256 fp32, 128 registers per thread) from
//     the whole P and its half of V: first over its own 32 keys, from its packed P in registers
//     as soon as P is packed, then over the other consumer's keys once the whole of P is stored.
//   WG2 (producer, 40 registers): warp 0 streams KV tiles with TMA into a 2-stage ring
//     (full/empty mbarriers; each tile in two parts, the chunks of the first score MMAs first, on
//     their own full barrier); warp 1 loads the Q tile of each request with TMA (or warps 1-3 with
//     cp.async, decode_pipeline.cuh).
//
// One tile at a time is resident in compute, so the other stage is always loading: a tile's
// residence (scores + softmax + P @ V) is shorter than its load at the per-SM share of HBM
// bandwidth, which keeps the memory-bound rows streaming (docs/perf-log.md, entry 5).
//
// Shared memory (230,464 B): Q (72 KiB) | KV stage 0 (72 KiB) | KV stage 1 (72 KiB) | P_lo (8 KiB)
// | row maxima | row sums | mbarriers. P_hi lives in the tile's RoPE chunk (channels 512-575),
// free once both consumers have scored the tile: the first barrier of the score hand-over
// (kBarScored) comes after both consumers' scores, and with it the previous P @ V of both, which
// read P_lo; the two buffers carry the partial scores, and P is written after kBarRaise, which
// comes after both consumers have read them.
// P_lo (bf16 only) has its own buffer, and its MMA runs only on tiles that carry enough of a row's
// weight (kPLoTau2 below); on the fast path P_lo is also computed and stored only on those tiles,
// once the P barrier has told both consumers that the tile takes it.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/sm90/channel_half_scores.cuh"
#include "kernels/sm90/decode_pipeline.cuh"
#include "kernels/sm90/grid_merge.cuh"
#include "kernels/sm90/phase_clocks.cuh"
#include "kernels/sm90/wgmma_ops.cuh"
#include "kernels/sm90/wide_tile_stores.cuh"

namespace flashmla::sm90 {

// Score k-steps accumulated inside one tensor-core accumulator before a round-to-nearest add:
// the tensor core's own accumulation truncates, and over all 36 steps that bias reaches 3e-6
// in the lse of one-key rows (SPEC allows 1e-6).
#ifndef FLASHMLA_SCORE_STEPS_PER_CHUNK
#define FLASHMLA_SCORE_STEPS_PER_CHUNK 4
#endif
inline constexpr int kScoreStepsPerChunk = FLASHMLA_SCORE_STEPS_PER_CHUNK;
static_assert(36 % kScoreStepsPerChunk == 0, "score chunks must tile the 36 k-steps");

// Timing only, with resident pages (docs/perf-log.md, entry 86): the consumers skip their waits for
// pages after the CTA's first two, which RESIDENT_PAGES never reloads, to measure what the full
// barriers' waits cost a page when the page is already there.
#ifdef FLASHMLA_EXPERIMENT_NO_PAGE_WAITS
#ifndef FLASHMLA_EXPERIMENT_RESIDENT_PAGES
#error "FLASHMLA_EXPERIMENT_NO_PAGE_WAITS needs FLASHMLA_EXPERIMENT_RESIDENT_PAGES"
#endif
inline constexpr bool kSkipResidentPageWaits = true;
#else
inline constexpr bool kSkipResidentPageWaits = false;
#endif

struct WgmmaDecodeSmem {
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kStage0 = kTileBytes;
  static constexpr uint32_t kPlo = 3 * kTileBytes;
  static constexpr uint32_t kRowMax = kPlo + kChunkBytes;   // float[2][64]: per consumer
  static constexpr uint32_t kRowSum = kRowMax + 2 * 64 * 4;  // float[2][64]: per consumer
  static constexpr uint32_t kBars = kRowSum + 2 * 64 * 4;
  static constexpr uint32_t kBytes = kBars + kPipelineBarrierBytes + kTwoPartBarrierBytes + kUnwaitedLoadBarrierBytes;
};
static_assert(WgmmaDecodeSmem::kBytes <= 227 * 1024, "decode CTA must fit Hopper's 227 KiB per block");
static_assert(WgmmaDecodeSmem::kPlo % 1024 == 0 && WgmmaDecodeSmem::kStage0 % 1024 == 0 && kChunkBytes % 1024 == 0,
              "P tiles must be 1024-byte aligned (Consumer::store_p, and the 128-byte swizzle)");

// Named barriers (0 is __syncthreads). kBarScored: both consumers have scored the page (so its
// RoPE chunk and P_lo are free for the partial scores); kBarHalves: the partial scores are
// written; kBarRaise: both have read them (so P_hi and P_lo may be written) and agree on the slow
// path; kBarGroup + c: on a range's last page, consumer c's zeroed tail V rows are visible to its
// P @ V (the early group reads P from registers, so it needs no barrier otherwise); kBarP: all of P_hi
// is visible, and whether the tile takes P_lo; kBarPlo: P_lo is visible (fast path, tiles with lo).
enum : int { kBarRaise = 1, kBarP = 2, kBarRowSum = 3, kBarMax = 4, kBarGroup = 5, kBarScored = 7, kBarHalves = 8, kBarPlo = 9 };

// Scores by channel halves: consumer c scores all 64 keys over V channels 256c..+255 and RoPE
// channels 512 + 32c..+31 (m64n64 MMAs), and the consumers then add each other's partial sums of
// their own 32 keys through shared memory. Scoring by keys instead (each consumer its 32 keys over
// all channels, m64n32; FLASHMLA_EXPERIMENT_SCORES_BY_KEYS) reads Q's 2 KiB per 16 tensor cycles
// in each consumer, 1.5x what shared memory delivers; m64n64 reads 4 KiB per 32 cycles
// (bench/wgmma_rate.cu; docs/perf-log.md, entry 29). A half's 18 k-steps go as two chunks of 9,
// each in a fresh accumulator, both in flight at once: the lse-sensitive tests pass with 9 (three
// chunks of 6, the third issued after the first add, measured slower: entry 30).
inline constexpr int kScoreHalfSteps = 9;
static_assert(2 * kScoreHalfSteps == 18, "a channel half is 18 k-steps");

// Pages load in two parts (decode_pipeline.cuh): a page's first score chunk, which reads part A
// only, starts while part B lands (docs/perf-log.md, entry 52). Scoring by keys reads every chunk
// from the first MMA on, so it takes whole pages.
#if defined(FLASHMLA_EXPERIMENT_SCORES_BY_KEYS) || defined(FLASHMLA_EXPERIMENT_ONE_PART_PAGES)
inline constexpr bool kTwoPartPages = false;
#else
inline constexpr bool kTwoPartPages = true;
#endif
// Every k-step j < kScoreHalfSteps of a half's first score chunk reads V chunk 4c + j / 4.
constexpr bool first_score_chunks_read_part_a_only() {
  for (int c = 0; c < 2; ++c) {
    for (int j = 0; j < kScoreHalfSteps; ++j) {
      if (!in_page_part_a(4 * c + j / 4)) return false;
    }
  }
  return kScoreHalfSteps <= 16;   // no RoPE step in the first chunk
}
static_assert(first_score_chunks_read_part_a_only(), "a half's first score chunk must read part A alone");

// B operand of P @ V: keys 16*kk..+16 x channels 256*half..+256 of a KV stage (N-major).
__device__ __forceinline__ uint64_t v_desc(uint32_t stage, int half, int kk) {
  return smem_desc_sw128(stage + 4 * half * kChunkBytes + kk * 16 * 128, kChunkBytes, 1024);
}

template <typename T>
struct Consumer {
#ifdef FLASHMLA_EXPERIMENT_SINGLE_P
  static constexpr bool kSplitP = false;   // experiment only: misses SPEC's tolerance for bf16
#else
  static constexpr bool kSplitP = HalfOps<T>::kSplitP;
#endif

  // s = Q K^T for the 64 rows x 32 keys starting at sK (a stage plus a 32-row offset). Each
  // chunk of k-steps goes into a fresh accumulator that is then added with round-to-nearest
  // FADDs; two chunk accumulators alternate so the tensor core always has the next chunk queued.
  // on_prior_done() runs once every wgmma group issued before this call has completed.
  template <typename F>
  static __device__ __forceinline__ void scores(float (&s)[16], uint32_t sQ, uint32_t sK, F&& on_prior_done) {
    constexpr int kChunks = kHeadDim / 16 / kScoreStepsPerChunk;
    float part[2][16];
    // The RoPE steps (32..35, the chunk that P_hi overwrites) go first, so that on_prior_done,
    // which runs once they and the previous P @ V have completed, can free that chunk.
    auto issue = [&](int c) {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < kScoreStepsPerChunk; ++k) {
        const int step = (c * kScoreStepsPerChunk + k + 32) % 36;
        const uint32_t off = step / 4 * kChunkBytes + step % 4 * 32;
        Wgmma<T, 32, 0, 0>::mma(part[c & 1], kmajor_desc(sQ + off), kmajor_desc(sK + off), k != 0);
      }
      wgmma_commit();
    };
    auto accumulate = [&](int c) {
      fence_registers(part[c & 1]);
#pragma unroll
      for (int i = 0; i < 16; ++i) s[i] = c == 0 ? part[c & 1][i] : s[i] + part[c & 1][i];
    };
    issue(0);
#pragma unroll
    for (int c = 1; c < kChunks; ++c) {
      issue(c);
      wgmma_wait<1>();   // chunk c - 1 (and everything before it) has completed
      if (c == 1) on_prior_done();
      accumulate(c - 1);
    }
    wgmma_wait<0>();
    if (kChunks == 1) on_prior_done();
    accumulate(kChunks - 1);
  }

  // Partial scores of all 64 keys over channel half c (k-steps 16c..16c+15 of V and
  // 32 + 2c, 33 + 2c of RoPE): two chunks of kScoreHalfSteps, each in a fresh accumulator, both in
  // flight together, added with a round-to-nearest FADD. Element i: key 8 * (i / 4) +
  // 2 * tq + (i % 2), row row0 + 8 * ((i / 2) % 2). The first chunk reads V chunks 4c..4c+2 of
  // the page (its part A), the second also chunks 4c+3 and RoPE (part B): wait_part_b() runs
  // between the two issues, while the first computes. on_prior_done() as in scores().
  template <typename F, typename W>
  static __device__ __forceinline__ void scores_half(float (&s)[32], uint32_t sQ, uint32_t sK, int c,
                                                     F&& on_prior_done, W&& wait_part_b) {
    float part[32];
    // Descriptors as a base plus a constant added at the point of use: hoisted out of the page
    // loop, the 36 distinct ones would not fit beside the accumulators and spill.
    const uint64_t q_v = kmajor_desc(sQ + 4 * c * kChunkBytes), k_v = kmajor_desc(sK + 4 * c * kChunkBytes);
    const uint64_t q_r = kmajor_desc(sQ + 8 * kChunkBytes + 64 * c), k_r = kmajor_desc(sK + 8 * kChunkBytes + 64 * c);
    // Steps first..first+count-1 as one group. accumulate: the group adds to acc from its first
    // step on (else it starts acc afresh).
    auto issue_steps = [&](float (&acc)[32], int first, int count, bool accumulate) {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < count; ++k) {
        const int j = first + k;
        const bool v = j < 16;
        const uint32_t off = v ? j / 4 * kChunkBytes + j % 4 * 32 : (j - 16) * 32;
        Wgmma<T, 64, 0, 0>::mma(acc, desc_add_at_use(v ? q_v : q_r, off), desc_add_at_use(v ? k_v : k_r, off),
                                accumulate || k != 0);
      }
      wgmma_commit();
    };
    auto issue = [&](float (&acc)[32], int chunk, bool accumulate = false) {
      issue_steps(acc, chunk * kScoreHalfSteps, kScoreHalfSteps, accumulate);
    };
#ifdef FLASHMLA_EXPERIMENT_FLAT_SCORES
    // Experiment (docs/perf-log.md, entries 74 and 92): all 18 k-steps accumulate in the tensor core,
    // with no second accumulator and no add. It passes the test grid, but with half the chunked sums'
    // lse margin (worst error 0.52 of the tolerance against 0.27) for ~1% at R >= 128, so it is not
    // the default. All 36 k-steps in one accumulator miss the lse tolerance (entry 3).
    (void)part;
    issue(s, 0);
    wait_part_b();
    issue(s, 1, true);
    wgmma_wait<1>();
    on_prior_done();
    wgmma_wait<0>();
    fence_registers(s);
#elif defined(FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK)
    // Correct, but no faster at the power cap (docs/perf-log.md, entry 89). Part A's 12 steps as 3
    // into s and 9 into part, then part B's 6 onto s: each accumulator still sums 9 steps, and the
    // previous P @ V is known complete after 3 steps rather than 9. Where the stage is released:
    // 1, after those 3 steps, before part B has landed (the load into the freed stage may then
    // overlap part B's); 2, after 12 steps; 3, after 3 steps, but behind part B's wait and issue.
#if FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK < 1 || FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK > 3
#error "FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK takes 1, 2 or 3"
#endif
    constexpr int kLead = 3;
    (void)issue;
    issue_steps(s, 0, kLead, false);
    issue_steps(part, kLead, 12 - kLead, false);
    auto issue_part_b = [&] {
      // Part B's descriptors, made here from opaque copies of the bases: ptxas would otherwise keep
      // the first ones live across the wait, which spills.
      uint32_t q0 = sQ, k0 = sK;
      asm volatile("" : "+r"(q0), "+r"(k0));
      const uint64_t qb = kmajor_desc(q0 + (4 * c + 3) * kChunkBytes), kb = kmajor_desc(k0 + (4 * c + 3) * kChunkBytes);
      const uint64_t qr = kmajor_desc(q0 + 8 * kChunkBytes + 64 * c), kr = kmajor_desc(k0 + 8 * kChunkBytes + 64 * c);
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 6; ++k) {
        const uint32_t off = k < 4 ? k * 32 : (k - 4) * 32;
        Wgmma<T, 64, 0, 0>::mma(s, desc_add_at_use(k < 4 ? qb : qr, off), desc_add_at_use(k < 4 ? kb : kr, off), true);
      }
      wgmma_commit();
    };
#if FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK == 1
    wgmma_wait<1>();
    on_prior_done();
    wait_part_b();
    issue_part_b();
#else
    wait_part_b();
    issue_part_b();
#if FLASHMLA_EXPERIMENT_SHORT_FIRST_CHUNK == 2
    wgmma_wait<1>();
#else
    wgmma_wait<2>();
#endif
    on_prior_done();
#endif
    wgmma_wait<0>();
    fence_registers(s);
    fence_registers(part);
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] += part[i];
#else
    issue(s, 0);
    wait_part_b();
    issue(part, 1);
    wgmma_wait<1>();
    on_prior_done();
    wgmma_wait<0>();
    fence_registers(s);
    fence_registers(part);
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] += part[i];
#endif
  }

  // Whole scores of this consumer's 32 keys from both consumers' channel halves: consumer c hands
  // the other's keys over through its `to_other` buffer (consumer 0: P_lo's, 1: the page's RoPE
  // chunk) and reads its own from the other's (8 KiB each, float4 per thread per four elements).
  // The first barrier makes both buffers free (both consumers' scores, and so their previous
  // P @ V, have completed); the second is the hand-over. Both consumers reach the same two
  // barrier instructions: bar.sync is the .aligned barrier, which PTX defines only when every
  // participating thread executes the same instruction (compute-sanitizer's synccheck flagged the
  // per-consumer copies this had before; docs/perf-log.md, entry 91). Only the stores and loads,
  // whose register indices must be compile-time constants, are per consumer.
  static __device__ __forceinline__ void add_other_half(float (&s)[16], const float (&half)[32], int wg,
                                                        uint32_t rope_k, uint32_t p_lo, int t) {
#ifdef FLASHMLA_EXPERIMENT_NO_SCORE_EXCHANGE
    // Timing only (wrong scores; docs/perf-log.md, entry 73): this consumer's partial sums of its own
    // keys are taken as their scores, so the page has no hand-over: no shared-memory traffic, and with
    // the value 2 none of its two barriers either (1 keeps them, to split the two costs).
    (void)rope_k, (void)p_lo, (void)t;
#if FLASHMLA_EXPERIMENT_NO_SCORE_EXCHANGE == 1
    named_barrier_sync(kBarScored, 2 * kWarpgroupThreads);
    named_barrier_sync(kBarHalves, 2 * kWarpgroupThreads);
#endif
    if (wg == 0) {
      keep_own_half<0>(s, half);
    } else {
      keep_own_half<1>(s, half);
    }
#else
    named_barrier_sync(kBarScored, 2 * kWarpgroupThreads);
    if (wg == 0) {
      send_other_half<0>(half, p_lo, t);
    } else {
      send_other_half<1>(half, rope_k, t);
    }
    named_barrier_sync(kBarHalves, 2 * kWarpgroupThreads);
    if (wg == 0) {
      add_received_half<0>(s, half, rope_k, t);
    } else {
      add_received_half<1>(s, half, p_lo, t);
    }
#endif
  }
  template <int kC>
  static __device__ __forceinline__ void send_other_half(const float (&half)[32], uint32_t to_other, int t) {
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int i = 16 * (1 - kC) + 4 * v;
      st_shared_f32x4(to_other + (v * kWarpgroupThreads + t) * 16, half[i], half[i + 1], half[i + 2], half[i + 3]);
    }
  }
  template <int kC>
  static __device__ __forceinline__ void add_received_half(float (&s)[16], const float (&half)[32],
                                                           uint32_t from_other, int t) {
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const float4 x = ld_shared_f32x4(from_other + (v * kWarpgroupThreads + t) * 16);
      const int i = 16 * kC + 4 * v;
      s[4 * v] = half[i] + x.x;
      s[4 * v + 1] = half[i + 1] + x.y;
      s[4 * v + 2] = half[i + 2] + x.z;
      s[4 * v + 3] = half[i + 3] + x.w;
    }
  }
  template <int kC>
  static __device__ __forceinline__ void keep_own_half(float (&s)[16], const float (&half)[32]) {
#pragma unroll
    for (int i = 0; i < 16; ++i) s[i] = half[16 * kC + i];
  }

  // Invisible keys (past seqlen, or in the future of a causal row) get -inf; own_max = this
  // thread's maxima of its rows (row0, row0 + 8). Only the last tiles of a row have such keys, so
  // the per-key test runs there alone.
  static __device__ __forceinline__ void mask_and_own_max(float (&s)[16], int key_base, const int (&lim)[2],
                                                          float (&own_max)[2]) {
    if (key_base + 32 > min(lim[0], lim[1])) {
#pragma unroll
      for (int jn = 0; jn < 4; ++jn) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key_base + 8 * jn + (e & 1);
          if (key >= lim[e >> 1]) s[4 * jn + e] = -INFINITY;
        }
      }
    }
    own_max[0] = own_max[1] = -INFINITY;
#pragma unroll
    for (int i = 0; i < 16; ++i) own_max[(i >> 1) & 1] = fmaxf(own_max[(i >> 1) & 1], s[i]);
  }

  // P = 2^(s*scale_log2 - m*scale_log2) in place; returns this thread's share of the row sums.
  static __device__ __forceinline__ void exponentiate(float (&s)[16], const float (&m)[2], float scale_log2,
                                                      float (&sum)[2]) {
    float base[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) base[e] = m[e] == -INFINITY ? 0.f : m[e] * scale_log2;
    sum[0] = sum[1] = 0.f;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      s[i] = exp2_ftz(fmaf(s[i], scale_log2, -base[(i >> 1) & 1]));
      sum[(i >> 1) & 1] += s[i];
    }
  }

  // P as 16-bit words in the accumulator order: word 2*jn + (row half) holds elements 4*jn + 2*(row
  // half) and the next. The fast path packs hi alone, and lo (P - hi) only on pages that take it.
  static __device__ __forceinline__ void pack_hi(const float (&pv)[16], uint32_t (&hi)[8]) {
#pragma unroll
    for (int w = 0; w < 8; ++w) hi[w] = HalfOps<T>::pack(pv[2 * w], pv[2 * w + 1]);
  }
  static __device__ __forceinline__ void pack_lo(const float (&pv)[16], const uint32_t (&hi)[8], uint32_t (&lo)[8]) {
#pragma unroll
    for (int w = 0; w < 8; ++w) {
      const float2 r = HalfOps<T>::unpack(hi[w]);
      lo[w] = HalfOps<T>::pack(pv[2 * w] - r.x, pv[2 * w + 1] - r.y);
    }
  }
  // Both terms at once (the slow path, which always takes lo).
  static __device__ __forceinline__ void pack(const float (&pv)[16], uint32_t (&hi)[8], uint32_t (&lo)[8]) {
    pack_hi(pv, hi);
    if constexpr (kSplitP) pack_lo(pv, hi, lo);
  }

  // Byte offset in the 64 x 64 P tile of this thread's first word of one consumer's 32 key columns
  // (from col0, a multiple of 32): word 2*jn of row0 lies at p_offset(...) ^ (16 * jn), of row0 + 8
  // 1024 B further. Key columns col0 + 8*jn are the 16-byte units col0/8 + jn, and the swizzle XORs
  // the unit with row % 8: since jn < 4 and col0/8 is a multiple of 4, that is the unit of jn = 0
  // XORed with jn. Rows row0 and row0 + 8 share the swizzle phase. One register instead of four
  // offsets, which ptxas rematerialized on every page (~40 integer instructions per warp).
  static __device__ __forceinline__ uint32_t p_offset(int row0, int col0, int tq) {
    return swizzled_offset(row0, col0 + 2 * tq);
  }

  // base: 1024-byte aligned, so (base + offset) ^ (16 * jn) = base + (offset ^ (16 * jn)).
  static __device__ __forceinline__ void store_p(uint32_t base, const uint32_t (&w)[8], uint32_t offset) {
    const uint32_t a = base + offset;
#pragma unroll
    for (int jn = 0; jn < 4; ++jn) {
      st_shared_b32(a ^ (16 * jn), w[2 * jn]);
      st_shared_b32((a ^ (16 * jn)) + 8 * 128, w[2 * jn + 1]);
    }
  }

  // This thread's sums of squared weights of one tile, per row (row0, row0 + 8).
  static __device__ __forceinline__ void sum_squares(const float (&pv)[16], float (&sq)[2]) {
    sq[0] = sq[1] = 0.f;
#pragma unroll
    for (int i = 0; i < 16; ++i) sq[(i >> 1) & 1] = fmaf(pv[i], pv[i], sq[(i >> 1) & 1]);
  }

  static __device__ __forceinline__ void scale_o(float (&o)[128], const float (&f)[2]) {
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] *= f[(i >> 1) & 1];
  }

  // P @ V over the k-steps of this consumer's own keys (16-key steps 2c, 2c + 1), P_hi only, with
  // A = the packed P_hi still in registers: the accumulator layout of the scores is the A-fragment
  // layout of a k16 step (words 4k..4k+3 are rows row0, row0 + 8 at keys 16k + 2tq and
  // 16k + 8 + 2tq). It issues before this consumer's P stores, with no proxy fence or warpgroup
  // barrier in front (docs/perf-log.md, entry 87). The words must stay unchanged until the group
  // completes: the caller retires it with wgmma_wait<1> behind the other keys' group.
  static __device__ __forceinline__ void pv_own_keys(float (&o)[128], const uint32_t (&hi)[8], uint32_t stage,
                                                     int half) {
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      WgmmaRs<T, 256>::mma(o, hi[4 * k], hi[4 * k + 1], hi[4 * k + 2], hi[4 * k + 3], v_desc(stage, half, 2 * half + k), 1);
    }
    wgmma_commit();
  }

  // The rest of the page's P @ V after pv_own_keys: P_hi of the other consumer's keys, and P_lo of
  // all keys when with_lo (the same in both consumers; see pv_with_lo on the branches).
  static __device__ __forceinline__ void pv_other_keys(float (&o)[128], uint32_t p_hi, uint32_t p_lo, uint32_t stage,
                                                       int half, bool with_lo) {
    // The other consumer's first key step, recomputed here: kept from the kernel's start, ptxas
    // spilled it and reloaded it right before these MMAs (docs/perf-log.md, entries 38 and 44).
    int other_kk;
    asm volatile("sub.s32 %0, 1, %1;\n\tshl.b32 %0, %0, 1;\n" : "=r"(other_kk) : "r"(half));
    if (kSplitP && with_lo) {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int kk = other_kk + k;
        Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_hi + kk * 32), v_desc(stage, half, kk), 1);
      }
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_lo + kk * 32), v_desc(stage, half, kk), 1);
      wgmma_commit();
    } else {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int kk = other_kk + k;
        Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_hi + kk * 32), v_desc(stage, half, kk), 1);
      }
      wgmma_commit();
    }
  }

  // The whole page's P @ V in one group, with P_lo for bf16: the slow path's, which always keeps lo.
  // The lo choice of pv_other_keys is a branch with its own fence, MMAs and commit in each arm on
  // purpose: an MMA sequence that spans a condition (an `if` or a guard predicate on the lo MMAs)
  // makes ptxas inject warpgroup.arrive and serialize every wgmma of the kernel (C7520;
  // docs/perf-log.md, entry 20).
  static __device__ __forceinline__ void pv_with_lo(float (&o)[128], uint32_t p_hi, uint32_t p_lo, uint32_t stage,
                                                    int half) {
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_hi + kk * 32), v_desc(stage, half, kk), 1);
      if constexpr (kSplitP) Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_lo + kk * 32), v_desc(stage, half, kk), 1);
    }
    wgmma_commit();
  }
};

#ifdef FLASHMLA_EXPERIMENT_PROBE_LOOP
// Timing only (wrong results; docs/perf-log.md, entry 88): the one-page probe's page loop
// (bench/seesaw_probe.cu, run_one_page<false>) in place of the kernel's, to tell whether the cycles
// a page between the two lie in the loop's code or around it. With RESIDENT_PAGES, NO_PAGE_WAITS and
// PRODUCER_EXITS it waits for the CTA's first two pages alone, as the probe waits for none; without
// them it waits for every page and releases each stage once its P @ V has completed, as the kernel
// does, so that it also runs with the pages streaming.
#if defined(FLASHMLA_EXPERIMENT_NO_PAGE_WAITS) != defined(FLASHMLA_EXPERIMENT_PRODUCER_EXITS)
#error "FLASHMLA_EXPERIMENT_PROBE_LOOP takes NO_PAGE_WAITS and PRODUCER_EXITS together or neither"
#endif
#endif

// kGridMerge: the grid was launched cooperatively and merges its split requests itself
// (grid_merge.cuh); a separate instantiation, so that the other calls run the kernel as it was.
template <typename T, bool kGridMerge>
__global__ void __launch_bounds__(kDecodeThreads, 1)
    mla_decode_wgmma_kernel(const __grid_constant__ DecodeParams p, const __grid_constant__ DecodeMaps maps) {
  using C = Consumer<T>;
  using L = WgmmaDecodeSmem;
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQ = sbase + L::kQ;
  float* s_row_max = reinterpret_cast<float*>(smem + L::kRowMax);
  float* s_row_sum = reinterpret_cast<float*>(smem + L::kRowSum);
  const Pipeline pl = pipeline_at(sbase + L::kStage0, sbase + L::kBars);
  const KvRing& ring = pl.ring;
  const uint32_t q_full = pl.q_full, q_empty = pl.q_empty;

  const int kv_head = blockIdx.z;
  const int tid = threadIdx.x;
  const int wg = warp_uniform(tid / kWarpgroupThreads);
  const int lane = tid & 31;
  const int m_base = blockIdx.y * kTileRows;

  CtaRequests work;
  if (!start_decode_cta<kTileRows, kTwoPartPages ? kEveryPage : kNoPages>(p, maps, pl, sQ, m_base, work)) return;
  const int32_t* fields = work.fields;

  // ------------------------------------------------------------------ consumers
#ifdef FLASHMLA_EXPERIMENT_CONSUMER_CONSTANT
  // Timing only (docs/perf-log.md, entry 97): each consumer's loop compiled for its index, as the
  // seesaw probe's kDutyConsumerConstant (entry 96), so that its addresses and selects fold.
  const int wg_runtime = wg;
  auto consumer_loop = [&](auto wg_constant) {
    constexpr int wg = decltype(wg_constant)::value;
#endif
  const int t = tid % kWarpgroupThreads;
  const int w = t / 32;
  const int g = lane >> 2;
  const int tq = lane & 3;
  const int row0 = 16 * w + g;   // and row0 + 8
  const float sl2 = p.scale_log2;   // > 0 (params.cpp)
  const float lazy_slack = kLazyMaxLog2 / sl2;
  const uint32_t sPlo = sbase + L::kPlo;
  const uint32_t p_offset = C::p_offset(row0, 32 * wg, tq);
  PhaseClocks clk;
  int it = 0;   // KV tiles consumed so far (same sequence as the producer)
  int nq = 0;   // Q tiles consumed so far

  for (int r = work.begin; r <= work.end; ++r) {
    const Segment sg = segment_of(p, fields, r);
    if (!sg.active) continue;
    const RequestOutput dst = request_output(p, r, sg.split_idx);   // before the pages (its definition says why)
    const int nblk = sg.blk_end - sg.blk_begin;

    int lim[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) lim[e] = visible_keys(p, sg.seqlen, m_base + row0 + 8 * e);

    float m[2] = {-INFINITY, -INFINITY};   // reference maxima of raw scores (<= the true ones + slack)
    float l_part[2] = {0.f, 0.f};          // this thread's share of its consumer's running sums
    float lo_dropped[2] = {0.f, 0.f};      // its sums of squared weights of tiles without P_lo
    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;

    if (nblk > 0) {
      clk.start();
      mbar_wait(q_full, nq & 1);
      clk.mark(8);   // per segment: waiting for its Q tile
      // Scores of tile j+1 are issued right behind tile j's P @ V, so the tensor core has the
      // next tile queued while this warpgroup waits; tile j's stage is released as soon as its
      // P @ V has completed.
      float s[16];
      // Waits on full barrier `bar` of KV tile number k (its whole page, or part B). NO_PAGE_WAITS
      // (timing only) skips the waits after the CTA's first two pages.
      auto wait_page = [&](uint32_t bar, int k) {
        if (!kSkipResidentPageWaits || k < 2) mbar_wait(bar, ring.full_parity(k));
      };
      // s = this consumer's 32 keys of KV tile number k over all channels.
      auto score_page = [&](int k, auto&& on_prior_done) {
#ifndef FLASHMLA_EXPERIMENT_SCORES_BY_KEYS
        float half[32];
        const uint32_t page = warp_uniform(ring.stage(k));
        C::scores_half(half, sQ, page, wg, on_prior_done,
                       [&] {
                         if constexpr (kTwoPartPages) wait_page(ring.full_b(k), k);
                       });
        // Consumer 0's incoming half goes into the page's RoPE chunk, consumer 1's into P_lo:
        // both are free once both consumers have scored the page.
        C::add_other_half(s, half, wg, page + 8 * kChunkBytes, sPlo, t);
#else
        C::scores(s, sQ, ring.stage(k) + 32 * wg * 128, on_prior_done);
#endif
      };
#ifdef FLASHMLA_EXPERIMENT_PROBE_LOOP
      {
        // Scores of page k, releasing the stage of page k - 1 (release) once its P @ V is done.
        auto score_probe = [&](int k, bool release) {
          wait_page(ring.full(k), k);
          wait_page(ring.full_b(k), k);
          auto done = [&] {
            if (!kSkipResidentPageWaits && release && lane == 0) mbar_arrive(ring.empty(k - 1));
          };
          // The probe's scores (templated on the consumer), then the kernel's hand-over, which
          // is the probe's.
          const uint32_t page = ring.stage(k), rope_k = page + 8 * kChunkBytes;
          float half[32];
          if (wg == 0) {
            channel_half_scores<T, 0>(half, sQ, page, done);
          } else {
            channel_half_scores<T, 1>(half, sQ, page, done);
          }
          C::add_other_half(s, half, wg, rope_k, sPlo, t);
        };
        float pm[2] = {0.f, 0.f}, psq[2] = {0.f, 0.f};
        score_probe(it, false);
        for (int j = 0; j < nblk; ++j) {
          const uint32_t st = ring.stage(it + j), rope = st + 8 * kChunkBytes;
          // The probe's softmax_fast: the raise test, then the exponentials, sums and squares.
          float own[2] = {-INFINITY, -INFINITY};
#pragma unroll
          for (int i = 0; i < 16; ++i) own[(i >> 1) & 1] = fmaxf(own[(i >> 1) & 1], s[i]);
          const bool raise = own[0] > pm[0] + lazy_slack || own[1] > pm[1] + lazy_slack;
          float sum[2] = {0.f, 0.f}, sq[2] = {0.f, 0.f};
#pragma unroll
          for (int i = 0; i < 16; ++i) {
            s[i] = exp2_ftz(fmaf(s[i], sl2, -pm[(i >> 1) & 1] * sl2));
            sum[(i >> 1) & 1] += s[i];
            sq[(i >> 1) & 1] = fmaf(s[i], s[i], sq[(i >> 1) & 1]);
          }
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            l_part[e] += sum[e];
            psq[e] += sq[e];
          }
          if (named_barrier_sync_or(kBarRaise, 2 * kWarpgroupThreads, raise)) pm[0] += 1.f;
          uint32_t hi[8];
          C::pack_hi(s, hi);
          C::pv_own_keys(o, hi, st, wg);
          C::store_p(rope, hi, p_offset);
          fence_proxy_async_smem();
          named_barrier_sync(kBarP, 2 * kWarpgroupThreads);
          C::pv_other_keys(o, rope, sPlo, st, wg, false);
          wgmma_wait<1>();
          if (j + 1 < nblk) score_probe(it + j + 1, true);
        }
        wgmma_wait<0>();
        if (kSkipResidentPageWaits) {
          // The producer waits for the CTA's first two stages to be released before it leaves.
          for (int k = it; k < it + nblk && k < 2; ++k) {
            if (lane == 0) mbar_arrive(ring.empty(k));
          }
        } else if (lane == 0) {
          mbar_arrive(ring.empty(it + nblk - 1));   // the segment's last page
        }
        // Keeps the squares' sums alive through the epilogue, as the probe's sink does.
        m[0] = pm[0];
        m[1] = pm[1] + psq[0];
      }
#else
      wait_page(ring.full(it), it);
      clk.mark(10);   // per segment: waiting for its first page
      score_page(it, [] {});
      clk.mark(11);   // per segment: its first page's scores and hand-over
      for (int j = 0; j < nblk; ++j) {
        clk.page();
        const int it_j = it + j;
        const uint32_t st = warp_uniform(ring.stage(it_j));
        const uint32_t rope = st + 8 * kChunkBytes;
        const int blk = sg.blk_begin + j;
        uint32_t hi[8], lo[8];
        float own_max[2], sum[2];
        C::mask_and_own_max(s, blk * plan::kBlockN + 32 * wg + 2 * tq, lim, own_max);
        // Fast path: P against the reference maxima m (the same in both consumers). A page whose
        // scores exceed m by more than the slack in any thread takes the slow path, decided here
        // for both consumers at once. The barrier also tells each consumer that the other has
        // read its partial scores (or, scoring by keys, finished the page's scores), so the RoPE
        // chunk (P_hi) and P_lo are free to be written.
        const bool raise = own_max[0] > m[0] + lazy_slack || own_max[1] > m[1] + lazy_slack;
        const bool slow = named_barrier_sync_or(kBarRaise, 2 * kWarpgroupThreads, raise);
        clk.mark(0);
#ifdef FLASHMLA_EXPERIMENT_SPIN_SOFTMAX
        spin_cycles(FLASHMLA_EXPERIMENT_SPIN_SOFTMAX);   // timing only: the softmax phase made longer (perf-log entry 55)
#endif
        const int valid = sg.seqlen - blk * plan::kBlockN;
        if (!slow) {
          C::exponentiate(s, m, sl2, sum);
          bool need_lo = false;
          float sq[2] = {0.f, 0.f};
          if constexpr (C::kSplitP) {
            C::sum_squares(s, sq);
#pragma unroll
            for (int e = 0; e < 2; ++e) need_lo |= wants_p_lo(lo_dropped[e], sq[e], l_part[e] + sum[e]);
          }
          C::pack_hi(s, hi);
          // Keys past the length are masked, so zeroing their V rows (this consumer's channels)
          // changes nothing the other consumer uses; this consumer's MMAs read them, so the zeros
          // must be visible to the async proxy first (the last page of a range only).
          if (valid < plan::kBlockN) {
            zero_tail_rows(st, wg, valid, t);
            fence_proxy_async_smem();
            named_barrier_sync(kBarGroup + wg, kWarpgroupThreads);
          }
          clk.mark(1);
          // This consumer's keys first, from registers: the tensor core works while P is stored.
          C::pv_own_keys(o, hi, st, wg);
          C::store_p(rope, hi, p_offset);
          fence_proxy_async_smem();
#ifdef FLASHMLA_EXPERIMENT_PLAIN_P_BARRIER
          // Timing only (docs/perf-log.md, entry 86): the P barrier without its lo vote, and no fast-path
          // page takes lo, to measure what the vote's bar.red.or and the lo branch cost.
          named_barrier_sync(kBarP, 2 * kWarpgroupThreads);
          const bool any_lo = false;
          (void)need_lo;
#else
          const bool any_lo = named_barrier_sync_or(kBarP, 2 * kWarpgroupThreads, need_lo);
#endif
          clk.mark(2);
          // P_lo only on the pages that take it (most go without): P_lo's buffer is free, since
          // both consumers have read their partial scores (kBarRaise).
          if (C::kSplitP && any_lo) {
            C::pack_lo(s, hi, lo);
            C::store_p(sPlo, lo, p_offset);
            fence_proxy_async_smem();
            named_barrier_sync(kBarPlo, 2 * kWarpgroupThreads);
          }
          C::pv_other_keys(o, rope, sPlo, st, wg, any_lo);
          // Retire the own keys' group (long done by now), so that the packed words it reads may
          // change; left in flight through the next page's scores, the words spilled (entry 48).
          wgmma_wait<1>();
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            l_part[e] += sum[e];
            if (!any_lo) lo_dropped[e] += sq[e];
          }
        } else {
          // Slow path (uniform): exchange the page's row maxima, move O and the sums to the new
          // reference, and take P against it, with lo.
          float tile_max[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            tile_max[e] = fmaxf(own_max[e], __shfl_xor_sync(0xffffffffu, own_max[e], 1));
            tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], 2));
          }
          if (tq == 0) {
            s_row_max[wg * 64 + row0] = tile_max[0];
            s_row_max[wg * 64 + row0 + 8] = tile_max[1];
          }
          named_barrier_sync(kBarMax, 2 * kWarpgroupThreads);
          float alpha[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            // max is exact and order-free: both consumers get the same bits.
            const float m_new = fmaxf(m[e], fmaxf(s_row_max[row0 + 8 * e], s_row_max[64 + row0 + 8 * e]));
            alpha[e] = softmax_rescale(m[e], m_new, sl2);
            m[e] = m_new;
          }
          C::exponentiate(s, m, sl2, sum);
          // P @ V of the previous page has completed (the scores' waits drained the group queue).
          // On the segment's first page O is still zero: nothing to move, and the 128 multiplies
          // would sit on that page's chain (docs/perf-log.md, entry 135).
          if (j > 0 && (alpha[0] != 1.f || alpha[1] != 1.f)) C::scale_o(o, alpha);
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            lo_dropped[e] *= alpha[e] * alpha[e];
            l_part[e] = l_part[e] * alpha[e] + sum[e];
          }
          C::pack(s, hi, lo);
          C::store_p(rope, hi, p_offset);
          if constexpr (C::kSplitP) C::store_p(sPlo, lo, p_offset);
          if (valid < plan::kBlockN) zero_tail_rows(st, wg, valid, t);
          fence_proxy_async_smem();
          clk.mark(1);
          // Every thread has read s_row_max before this barrier; the next writer is a later page.
          named_barrier_sync(kBarP, 2 * kWarpgroupThreads);
          clk.mark(2);
          C::pv_with_lo(o, rope, sPlo, st, wg);
        }
        clk.mark(3);
#ifdef FLASHMLA_EXPERIMENT_SPIN_AFTER_PV
        spin_cycles(FLASHMLA_EXPERIMENT_SPIN_AFTER_PV);   // timing only: a delay behind the P @ V issue (perf-log entry 55)
#endif
        auto release_stage = [&] {
          fence_registers(o);
          if (lane == 0) mbar_arrive(ring.empty(it_j));
        };
        if (j + 1 < nblk) {
#if defined(FLASHMLA_EXPERIMENT_EARLY_RELEASE) || defined(FLASHMLA_EXPERIMENT_ALWAYS_EARLY_RELEASE)
          // When the next page has not landed yet, this page's stage is released now rather than
          // after the next page's first score chunk (perf-log entry 55). ALWAYS_: on every page,
          // at the price of the next scores no longer queued behind this P @ V (entry 69).
#ifdef FLASHMLA_EXPERIMENT_ALWAYS_EARLY_RELEASE
          constexpr bool next_here = false;
#else
          const bool next_here = __all_sync(0xffffffffu, mbar_test(ring.full(it_j + 1), ring.full_parity(it_j + 1)));
#endif
          if (!next_here) {
            wgmma_wait<0>();
            release_stage();
          }
#else
          constexpr bool next_here = true;
#endif
          wait_page(ring.full(it_j + 1), it_j + 1);
          clk.mark(4);
          score_page(it_j + 1, [&] {
            clk.mark(5);
            if (next_here) release_stage();
          });
          clk.mark(6);
        } else {
          wgmma_wait<0>();
          release_stage();
          clk.mark(7);
        }
      }
#endif
      it += nblk;
      ++nq;
      if (lane == 0) mbar_arrive(q_empty);
    }

    // ---- epilogue: row sums of both consumers, in a fixed order (deterministic)
    timeline_epilogue(EpiloguePoint::kBegin);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      l_part[e] += __shfl_xor_sync(0xffffffffu, l_part[e], 1);
      l_part[e] += __shfl_xor_sync(0xffffffffu, l_part[e], 2);
    }
    if (tq == 0) {
      s_row_sum[wg * 64 + row0] = l_part[0];
      s_row_sum[wg * 64 + row0 + 8] = l_part[1];
    }
    named_barrier_sync(kBarRowSum, 2 * kWarpgroupThreads);
    timeline_epilogue(EpiloguePoint::kSummed);
    // p9 starts here: an interval from the epilogue's start (before the row-sum shuffles) read
    // negative on the GPU, i.e. the clock reads did not stay in program order around them.
    clk.start();

    store_wide_tile_rows<T>(p, dst, r, kv_head, m_base, row0, tq, wg, o, m,
                            [&](int, int rl) { return s_row_sum[rl] + s_row_sum[64 + rl]; });
    timeline_epilogue(EpiloguePoint::kStored);
    // The next request's epilogue rewrites s_row_sum; both consumers must have read it.
    named_barrier_sync(kBarRowSum, 2 * kWarpgroupThreads);
    clk.mark(9);   // per segment: the epilogue's O and lse stores and its last barrier
  }
  clk.flush(wg, t == 0);
  cta_span_end(it, nq);
#ifdef FLASHMLA_EXPERIMENT_CONSUMER_CONSTANT
  };
  if (wg_runtime == 0) {
    consumer_loop(std::integral_constant<int, 0>{});
  } else {
    consumer_loop(std::integral_constant<int, 1>{});
  }
#endif
  if constexpr (kGridMerge) merge_splits_in_grid<T>(p, smem, tid);
}

template <typename T>
void launch_decode_wide(const DecodeParams& params, cudaStream_t stream) {
  register_phase_clock_report();
#ifdef FLASHMLA_EXPERIMENT_GRID_MERGE   // docs/perf-log.md, entry 102
  launch_decode_kernel<mla_decode_wgmma_kernel<T, false>, WgmmaDecodeSmem::kBytes, kTileRows, kDecodeThreads,
                       mla_decode_wgmma_kernel<T, true>>(params, stream, "mla_decode_wgmma_kernel");
#else
  launch_decode_kernel<mla_decode_wgmma_kernel<T, false>, WgmmaDecodeSmem::kBytes, kTileRows>(params, stream,
                                                                                             "mla_decode_wgmma_kernel");
#endif
}

}  // namespace flashmla::sm90
