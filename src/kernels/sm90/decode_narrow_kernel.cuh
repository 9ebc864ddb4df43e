// Split-KV MLA decode kernel for narrow query groups (rows_per_kv = s_q * h_q / h_kv <= 32), Hopper.
//
// With 16 or 32 query rows per kv group, a 64-row tile (the wide kernel) computes 2-4x the rows
// it needs on every page, and the memory-bound shapes become compute-bound. This kernel puts
// the 64 keys of a page on the MMA's M side and the query rows on N (transposed products):
//
//   S^T [64 keys x R]     = K [64 x 576] . Q^T [576 x R]     wgmma m64nRk16, A = K, B = Q (K-major)
//   O^T [512 x R] += V^T [512 x 64 keys] . P^T [64 x R]      wgmma m64nRk16, A = V^T (M-major), B = P^T
//
// Grid (num_sm_parts, 1, num_heads_kv), 384 threads, one CTA per SM; the producer warpgroup
// (TMA stream of pages into a 2-stage ring, Q tile loads) is the wide kernel's
// (decode_pipeline.cuh), with a CTA's first four pages in two parts (kNarrowPagesInTwoParts). The
// two consumer warpgroups work on the same page:
//   - scores: WG c takes 288 of the 576 channels (18 k-steps) of S^T; the two partial sums meet
//     through shared memory (one 256-thread barrier). Each warpgroup then completes half of the
//     query columns (R/2 c..: it receives the other's partial sums of those and hands over its
//     own of the rest) and runs the softmax, the lo rule and the P^T stores of those columns
//     alone;
//   - softmax over keys, i.e. down the M side, against reference column maxima that move only
//     when a page raises a column's maximum by more than kLazyMaxLog2 (decode_pipeline.cuh): on
//     most pages no maximum crosses lanes or warps. A raising page (every column's first, and
//     later jumps) takes a uniform slow path that finds the column maxima over the 8 lanes
//     (shuffles) and the 4 warps (shared memory, a 128-thread barrier per warpgroup), and the
//     warpgroups publish their columns' rescale factors for O^T, which holds every column in
//     both. Until perf-log entry 105, R = 16 took the exact maxima of every page and ran the whole
//     softmax in both warpgroups;
//   - P^T is written with stmatrix.trans as a K-major B tile of R query rows x 64 keys; for bf16
//     the hi and lo terms of P (docs/design.md, precision) are stacked as 2R rows, so one
//     m64n(2R) MMA reads V once for both and the two halves of its accumulator are added at the
//     end: hi + lo costs no second pass over V. Each warpgroup writes hi and lo of its own
//     columns. At R = 32, P_lo is written as zeros where the lo rule lets a thread go without it
//     (zero operands cost the tensor core less power); R = 16 keeps lo on every page;
//   - output: WG c accumulates channels 256c..256c+255, four m64 channel tiles of O^T (R = 32,
//     bf16: 4 x 32 registers per thread).
//
// Shared memory: Q (R x 576) | KV stage 0 | KV stage 1 | P^T | score exchange | column maxima |
// column sums | mbarriers.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/sm90/decode_pipeline.cuh"
#include "kernels/sm90/grid_merge.cuh"
#include "kernels/sm90/phase_clocks.cuh"
#include "kernels/sm90/wgmma_ops.cuh"

namespace flashmla::sm90 {

// A CTA's first four pages load in two parts (decode_pipeline.cuh), as the wide kernel's pages do:
// a warpgroup's first four score chunks (k-steps 0-11) read V chunks 4wg..4wg+2 only, which are
// part A, so they start while part B (chunks 3, 7 and RoPE) lands. That matters while every CTA's
// first pages queue at once (one long request: 1,1,16 took 0.87-0.98 of its time), and not once
// the stream runs; on every page it cost the memory-bound rows up to 2% (docs/perf-log.md, entry
// 109). FLASHMLA_EXPERIMENT_NARROW_TWO_PART=N: the first N pages instead (0: none).
#ifdef FLASHMLA_EXPERIMENT_NARROW_TWO_PART
inline constexpr int kNarrowPagesInTwoParts = FLASHMLA_EXPERIMENT_NARROW_TWO_PART;
#else
inline constexpr int kNarrowPagesInTwoParts = 4;
#endif
inline constexpr bool kNarrowTwoPart = kNarrowPagesInTwoParts > kNoPages;

template <typename T, int kRows>
struct NarrowLayout {
  static_assert(kRows == 16 || kRows == 32, "narrow tiles hold 16 or 32 query rows");
#ifdef FLASHMLA_EXPERIMENT_NARROW_SINGLE_P
  static constexpr bool kSplitP = false;   // timing only: one bf16 rounding of P misses SPEC's tolerance
#else
  static constexpr bool kSplitP = HalfOps<T>::kSplitP;
#endif
  static constexpr int kPRows = kSplitP ? 2 * kRows : kRows;   // N of the output MMA
  static constexpr uint32_t kQChunkBytes = kRows * 128;
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kStage0 = 9 * kQChunkBytes;        // multiple of 1 KiB
  static constexpr uint32_t kP = kStage0 + 2 * kTileBytes;   // after the two KV stages
  // The score exchange (exchange_own): float4 [2 wg][kRows / 16][128 threads]; the region keeps
  // room for kRows / 8, the whole-S^T exchange R = 16 had before perf-log entry 105.
  static constexpr uint32_t kXchg = kP + kPRows * 128;
  static constexpr uint32_t kColMax = kXchg + 2 * 128 * (kRows / 2) * 4;   // float [2 wg][4 warps][kRows]
  // The column sums, float [4 warps][kRows] that both warpgroups fill (each its own columns),
  // then the slow path's rescale factors, float [kRows]; the region keeps room for 2 x 4 x kRows.
  static constexpr uint32_t kColSum = kColMax + 2 * 4 * kRows * 4;
  static constexpr uint32_t kColAlpha = kColSum + 4 * kRows * 4;
  static constexpr uint32_t kBars = kColSum + 2 * 4 * kRows * 4;
  static constexpr uint32_t kBytes =
      kBars + kPipelineBarrierBytes + (kNarrowTwoPart ? kTwoPartBarrierBytes + kUnwaitedLoadBarrierBytes : 0);
  static_assert(kStage0 % 1024 == 0 && kP % 1024 == 0, "swizzled tiles need 1 KiB alignment");
  static_assert(kColAlpha + kRows * 4 <= kBars, "the split's rescale factors fit the column-sum region");
  static_assert(kBytes <= 227 * 1024, "decode CTA must fit Hopper's 227 KiB per block");
};

// Named barriers (0 is __syncthreads): the two consumer warpgroups, and each one alone.
enum : int { kBarScores = 1, kBarPReady = 2, kBarGroup0 = 3, kBarColumns = 5 };

template <typename T, int kRows>
struct NarrowConsumer {
  using L = NarrowLayout<T, kRows>;
  static constexpr bool kSplitP = L::kSplitP;
  static constexpr int kS = kRows / 2;        // S^T accumulators per thread
  static constexpr int kCols = kRows / 4;     // query columns per thread: 8 * (c / 2) + 2 * tq + c % 2
  static constexpr int kO = L::kPRows / 2;    // accumulators per thread of one 64-channel tile of O^T
  static constexpr int kStepsPerGroup = 18;   // of the 36 score k-steps
  // k-steps per tensor-core accumulation before a round-to-nearest add (see the wide kernel).
  static constexpr int kStepsPerChunk = 3;

  // Accumulator element i of a thread (warp w, lane 4g + tq): key row 16w + g + 8 * ((i >> 1) & 1)
  // of the page, query column 8 * (i >> 2) + 2 * tq + (i & 1).
  static __device__ __forceinline__ int col_of(int i) { return 2 * (i >> 2) + (i & 1); }   // index < kCols

  // This warpgroup's half of S^T: channels 256wg..256wg+255 (chunks 4wg..4wg+3, k-steps 0-15)
  // and RoPE channels 512 + 32wg..+31 (k-steps 16, 17), chunked like the wide kernel's scores.
  // The descriptors are a per-warpgroup base plus compile-time offsets, which keeps them in a
  // few registers. on_prior_done() runs once every wgmma group issued before this call has
  // completed; wait_part_b() before the first chunk that reads a two-part page's part B.
  template <typename F, typename W>
  static __device__ __forceinline__ void scores(float (&s)[kS], uint32_t sQ, uint32_t sK, int wg, F&& on_prior_done,
                                                W&& wait_part_b) {
    constexpr int kChunks = kStepsPerGroup / kStepsPerChunk;
    const uint64_t k_nope = kmajor_desc(sK + wg * 4 * kChunkBytes);
    const uint64_t q_nope = kmajor_desc(sQ + wg * 4 * L::kQChunkBytes);
    const uint64_t k_rope = kmajor_desc(sK + 8 * kChunkBytes + wg * 64);
    const uint64_t q_rope = kmajor_desc(sQ + 8 * L::kQChunkBytes + wg * 64);
    float part[2][kS];
    auto issue = [&](int c) {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < kStepsPerChunk; ++k) {
        const int step = c * kStepsPerChunk + k;
        const uint64_t a = step < 16 ? desc_add_at_use(k_nope, (step >> 2) * kChunkBytes + (step & 3) * 32)
                                     : desc_add_at_use(k_rope, (step - 16) * 32);
        const uint64_t b = step < 16 ? desc_add_at_use(q_nope, (step >> 2) * L::kQChunkBytes + (step & 3) * 32)
                                     : desc_add_at_use(q_rope, (step - 16) * 32);
        Wgmma<T, kRows, 0, 0>::mma(part[c & 1], a, b, k != 0);
      }
      wgmma_commit();
    };
    auto accumulate = [&](int c) {
      fence_registers(part[c & 1]);
#pragma unroll
      for (int i = 0; i < kS; ++i) s[i] = c == 0 ? part[c & 1][i] : s[i] + part[c & 1][i];
    };
    issue(0);
#pragma unroll
    for (int c = 1; c < kChunks; ++c) {
      if (c == kFirstPartBChunk) wait_part_b();
      issue(c);
      wgmma_wait<1>();
      if (c == 1) on_prior_done();
      accumulate(c - 1);
    }
    wgmma_wait<0>();
    accumulate(kChunks - 1);
  }

  // The first score chunk of scores() that reads part B of a two-part page: from k-step 12 on,
  // in both warpgroups, and never before it.
  static constexpr int kFirstPartBStep = 12;
  static constexpr int kFirstPartBChunk = kFirstPartBStep / kStepsPerChunk;
  static constexpr bool score_steps_split_at_part_b() {
    for (int wg = 0; wg < 2; ++wg) {
      for (int step = 0; step < kStepsPerGroup; ++step) {
        const int chunk = step < 16 ? 4 * wg + step / 4 : 8;   // the V chunk scores() reads (8: RoPE)
        if (in_page_part_a(chunk) != (step < kFirstPartBStep)) return false;
      }
    }
    return kFirstPartBStep % kStepsPerChunk == 0;
  }
  static_assert(score_steps_split_at_part_b(), "a warpgroup's k-steps before kFirstPartBStep read part A alone");

  // Column split: warpgroup c owns the second half of a thread's query columns if c = 1, the
  // first if c = 0, i.e. accumulator elements kOwnS * c.. (query columns
  // kOwnQ * c..). It completes the scores, softmax, sums, lo rule and P^T stores (hi and lo) of
  // those columns alone, so each warpgroup exponentiates half of S^T instead of all of it, and
  // both store the same share of P^T (docs/perf-log.md, entry 63). Local element k is element
  // kOwnS * wg + k; local column c' is column kOwnCols * wg + c'.
  static constexpr int kOwnS = kS / 2;
  static constexpr int kOwnCols = kCols / 2;
  static constexpr int kOwnQ = kRows / 2;   // query columns per warpgroup

  // The owned half of S^T: this warpgroup's partial sums of its own columns plus the other's,
  // which it receives through shared memory while handing over its partial sums of the other's.
  static __device__ __forceinline__ void exchange_own(const float (&s)[kS], float (&x)[kOwnS], uint8_t* xchg, int wg,
                                                      int t) {
    float4* mine = reinterpret_cast<float4*>(xchg) + wg * (kOwnS / 4) * kWarpgroupThreads + t;
    const float4* other = reinterpret_cast<const float4*>(xchg) + (1 - wg) * (kOwnS / 4) * kWarpgroupThreads + t;
    // (Selects rather than an index that depends on wg, which would put s in local memory.)
    auto theirs = [&](int k) { return wg == 0 ? s[kOwnS + k] : s[k]; };
    auto ours = [&](int k) { return wg == 0 ? s[k] : s[kOwnS + k]; };
#pragma unroll
    for (int v = 0; v < kOwnS / 4; ++v) {
      mine[v * kWarpgroupThreads] = make_float4(theirs(4 * v), theirs(4 * v + 1), theirs(4 * v + 2), theirs(4 * v + 3));
    }
    named_barrier_sync(kBarScores, 2 * kWarpgroupThreads);
#pragma unroll
    for (int v = 0; v < kOwnS / 4; ++v) {
      const float4 o = other[v * kWarpgroupThreads];
      x[4 * v] = ours(4 * v) + o.x;
      x[4 * v + 1] = ours(4 * v + 1) + o.y;
      x[4 * v + 2] = ours(4 * v + 2) + o.z;
      x[4 * v + 3] = ours(4 * v + 3) + o.w;
    }
  }

  // Invisible keys get -inf (tail pages only); own = this thread's maxima of its query columns
  // (its two keys). key0: the thread's first key (page start + 16w + g). kN accumulator elements
  // (kN / 2 columns, numbered as col_of numbers them).
  // lim_of(c): the visible keys of query column c, recomputed on tail pages rather than held in
  // registers through the page loop.
  template <int kN, typename F>
  static __device__ __forceinline__ void mask_and_own_max(float (&s)[kN], int page_key0, int key0, int lim_min,
                                                          F&& lim_of, float (&own)[kN / 2]) {
    if (page_key0 + plan::kBlockN > lim_min) {
      int lim[kN / 2];
#pragma unroll
      for (int c = 0; c < kN / 2; ++c) lim[c] = lim_of(c);
#pragma unroll
      for (int i = 0; i < kN; ++i) {
        if (key0 + 8 * ((i >> 1) & 1) >= lim[col_of(i)]) s[i] = -INFINITY;
      }
    }
#pragma unroll
    for (int c = 0; c < kN / 2; ++c) {
      const int i = 4 * (c >> 1) + (c & 1);
      own[c] = fmaxf(s[i], s[i + 2]);
    }
  }

  // Query column c of a thread (lane 4g + tq): the N index of its accumulator elements.
  static __device__ __forceinline__ int query_of(int c, int tq) { return 8 * (c >> 1) + 2 * tq + (c & 1); }

  // The page's maxima of this thread's query columns over all 64 keys: the column's 8 lanes
  // (shuffles), then its 4 warps through col_max ([4 warps][kRows]) and one 128-thread barrier.
  // kNC columns, the first being query column q0 + query_of(0, tq).
  template <int kNC>
  static __device__ __forceinline__ void page_column_max(const float (&own)[kNC], float* col_max, int w, int g,
                                                         int tq, int bar_group, float (&tile)[kNC], int q0) {
    float cmax[kNC];
#pragma unroll
    for (int c = 0; c < kNC; ++c) {
      float v = own[c];
      v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
      v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
      v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
      cmax[c] = v;
    }
    if (g == 0) {
#pragma unroll
      for (int c = 0; c < kNC; ++c) col_max[w * kRows + q0 + query_of(c, tq)] = cmax[c];
    }
    named_barrier_sync(bar_group, kWarpgroupThreads);
#pragma unroll
    for (int c = 0; c < kNC; ++c) {
      const int q = q0 + query_of(c, tq);
      tile[c] = fmaxf(fmaxf(col_max[q], col_max[kRows + q]), fmaxf(col_max[2 * kRows + q], col_max[3 * kRows + q]));
    }
  }

  // O^T columns times alpha of their query column (hi and lo halves alike).
  static __device__ __forceinline__ void scale_o(float (&o)[4][kO], const float (&alpha)[kCols]) {
#pragma unroll
    for (int tt = 0; tt < 4; ++tt) {
#pragma unroll
      for (int i = 0; i < kO; ++i) o[tt][i] *= alpha[col_of(i) % kCols];
    }
  }

  // bf16, R = 32 (each warpgroup over its own columns): whether this thread's P_lo of the page is kept,
  // by the lo rule (wants_p_lo, decode_pipeline.cuh) taken over all its query columns at once, so
  // that it needs one register: lo_dropped holds the squared weights this thread wrote without lo,
  // summed over its columns, in a scale no smaller than any column's (the callers scale it by the
  // largest of the columns' factors). A column's share is then at most lo_dropped, so requiring
  // lo_dropped + sq <= tau^2 * l^2 for the smallest of the thread's column sums l bounds every
  // column as the rule does. l_part: the thread's share of the column sums, this page included.
  template <int kN>
  static __device__ __forceinline__ bool keeps_lo(const float (&pv)[kN], const float (&l_part)[kN / 2],
                                                  float& lo_dropped) {
#ifdef FLASHMLA_EXPERIMENT_NARROW_ZERO_LO
    return false;   // timing only: P_lo zero everywhere (what the MMA's zero operands save)
#endif
    float sq = 0.f, l_min = l_part[0];
#pragma unroll
    for (int i = 0; i < kN; ++i) sq = fmaf(pv[i], pv[i], sq);
#pragma unroll
    for (int c = 1; c < kN / 2; ++c) l_min = fminf(l_min, l_part[c]);
    if (wants_p_lo(lo_dropped, sq, l_min)) return true;
    lo_dropped += sq;
    return false;
  }

  // The largest of the columns' rescale factors, squared: lo_dropped's factor (keeps_lo).
  template <int kNC>
  static __device__ __forceinline__ float max_square(const float (&f)[kNC]) {
    float x = f[0];
#pragma unroll
    for (int c = 1; c < kNC; ++c) x = fmaxf(x, f[c]);
    return x * x;
  }

  // The lo term of the pair (a, b) whose hi term is `hi`.
  static __device__ __forceinline__ uint32_t lo_word(float a, float b, uint32_t hi) {
    const float2 r = HalfOps<T>::unpack(hi);
    return HalfOps<T>::pack(a - r.x, b - r.y);
  }

  // Column split: this warpgroup's query columns of P^T, hi (rows kOwnQ * wg..) and, for bf16, lo
  // (kRows rows further; zeros unless keep_lo: the output MMA keeps its shape, and zero operands
  // cost the tensor core less power), with stmatrix.trans: matrix 2 * jn + e of a thread's term is
  // keys 16w + 8e.. x its columns 8jn.., stored as memory rows (one query column each) of 8 keys.
  static __device__ __forceinline__ void store_p_own(const float (&x)[kOwnS], uint32_t sP, int wg, int w, int lane,
                                                     bool keep_lo) {
    constexpr int kM = kOwnS / 2;   // matrices per term: 4 (R = 32) or 2 (R = 16)
    uint32_t hi[kM], lo[kM];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      const float a = x[2 * mi], b = x[2 * mi + 1];
      hi[mi] = HalfOps<T>::pack(a, b);
      if constexpr (kSplitP) lo[mi] = keep_lo ? lo_word(a, b, hi[mi]) : 0u;
    }
    const int r = lane & 7;
    auto addr_of = [&](int mi, uint32_t rows) {
      const int q = kOwnQ * wg + 8 * (mi >> 1) + r;
      return sP + (rows + q) * 128 + ((((2 * w + (mi & 1)) ^ r) & 7) << 4);
    };
    if constexpr (kM == 4) {
      const uint32_t addr = addr_of(lane >> 3, 0);
      stmatrix_x4_trans(addr, hi[0], hi[1], hi[2], hi[3]);
      if constexpr (kSplitP) stmatrix_x4_trans(addr + kRows * 128, lo[0], lo[1], lo[2], lo[3]);
    } else if constexpr (kSplitP) {   // lanes 0-15 address the hi matrices, 16-31 the lo ones
      stmatrix_x4_trans(addr_of((lane >> 3) & 1, lane >= 16 ? kRows : 0), hi[0], hi[1], lo[0], lo[1]);
    } else {
      stmatrix_x2_trans(addr_of((lane >> 3) & 1, 0), hi[0], hi[1]);
    }
  }

  // O^T of this warpgroup's channels (tiles 4wg..4wg+3) += V^T P^T over the page's 64 keys.
  static __device__ __forceinline__ void pv(float (&o)[4][kO], uint32_t sP, uint32_t stage, int wg) {
    const uint64_t vt = smem_desc_sw128(stage + 4 * wg * kChunkBytes, kChunkBytes, 1024);
    const uint64_t pt = kmajor_desc(sP);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int tt = 0; tt < 4; ++tt) {
        Wgmma<T, L::kPRows, 1, 0>::mma(o[tt], desc_add_at_use(vt, tt * kChunkBytes + kk * 16 * 128), desc_add_at_use(pt, kk * 32), 1);
      }
    }
    wgmma_commit();
  }

  static __device__ __forceinline__ void fence_all(float (&o)[4][kO]) {
#pragma unroll
    for (int tt = 0; tt < 4; ++tt) fence_registers(o[tt]);
  }
};

// kGridMerge: as in the wide kernel (grid_merge.cuh).
template <typename T, int kRows, bool kGridMerge>
__global__ void __launch_bounds__(kDecodeThreads, 1)
    mla_decode_narrow_kernel(const __grid_constant__ DecodeParams p, const __grid_constant__ DecodeMaps maps) {
  using C = NarrowConsumer<T, kRows>;
  using L = NarrowLayout<T, kRows>;
  constexpr int kS = C::kS, kCols = C::kCols, kO = C::kO;
  // The warpgroups split the query columns (C::exchange_own) and take them against lazy maxima
  // (kLazyMaxLog2). Each holds kOwnCols columns of the softmax state.
  constexpr int kStateCols = C::kOwnCols;
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQ = sbase + L::kQ;
  const uint32_t sP = sbase + L::kP;
  const Pipeline pl = pipeline_at(sbase + L::kStage0, sbase + L::kBars);
  const KvRing& ring = pl.ring;
  const uint32_t q_full = pl.q_full, q_empty = pl.q_empty;

  const int m_base = blockIdx.y * kRows;
  const int kv_head = blockIdx.z;
  const int tid = threadIdx.x;
  const int wg = warp_uniform(tid / kWarpgroupThreads);
  const int lane = tid & 31;

  CtaRequests work;
  if (!start_decode_cta<kRows, kNarrowPagesInTwoParts>(p, maps, pl, sQ, m_base, work)) return;
  const int32_t* fields = work.fields;

  // ------------------------------------------------------------------ consumers
  const int t = tid % kWarpgroupThreads;
  const int w = t / 32;
  const int g = lane >> 2;
  const int tq = lane & 3;
  const float sl2 = p.scale_log2;
  const float lazy_slack = kLazyMaxLog2 / sl2;
  float* col_max = reinterpret_cast<float*>(smem + L::kColMax) + wg * 4 * kRows;   // [4 warps][kRows]
  float* col_sum = reinterpret_cast<float*>(smem + L::kColSum);   // [4 warps][kRows], both warpgroups fill it
  float* col_alpha = reinterpret_cast<float*>(smem + L::kColAlpha);
  const int bar_group = kBarGroup0 + wg;
  auto query_of = [&](int c) { return C::query_of(c, tq); };
  PhaseClocks clk;
  int it = 0;
  int nq = 0;

  for (int r = work.begin; r <= work.end; ++r) {
    const Segment sg = segment_of(p, fields, r);
    if (!sg.active) continue;
    const RequestOutput dst = request_output(p, r, sg.split_idx);   // before the pages (its definition says why)
    const int nblk = sg.blk_end - sg.blk_begin;

    auto lim_of = [&](int c) { return visible_keys(p, sg.seqlen, m_base + query_of(c)); };
    int lim_min = sg.seqlen;
#pragma unroll
    for (int c = 0; c < kCols; ++c) lim_min = min(lim_min, lim_of(c));

    // Per query column that this warpgroup owns (the column split).
    float m[kStateCols], l_part[kStateCols];
    float lo_dropped = 0.f;   // bf16: squared weights written without P_lo (keeps_lo)
#pragma unroll
    for (int c = 0; c < kStateCols; ++c) {
      m[c] = -INFINITY;
      l_part[c] = 0.f;
    }
    // The lo rule runs at R = 32 only: there the rows are bound by the power cap and the zeros
    // save energy; R = 16 streams at the memory rate at b >= 4 (docs/perf-log.md, entries 57 and
    // 104) and keeps lo everywhere.
    float o[4][kO];
#pragma unroll
    for (int tt = 0; tt < 4; ++tt) {
#pragma unroll
      for (int i = 0; i < kO; ++i) o[tt][i] = 0.f;
    }

    if (nblk > 0) {
      const uint32_t q_wait0 = clk.now();
      mbar_wait(q_full, nq & 1);
      clk.add_since(8, q_wait0);   // per segment: waiting for its Q tile
      float s[kS];
      const uint32_t first0 = clk.now();
      mbar_wait(ring.full(it), ring.full_parity(it));
      timeline_page_waited(it);
      clk.add_since(10, first0);   // per segment: waiting for its first page
      // Part B of a two-part page (decode_pipeline.cuh), waited for by each warpgroup itself.
      auto wait_part_b = [&](int k) {
        if (page_in_two_parts<kNarrowPagesInTwoParts>(k)) mbar_wait(ring.full_b(k), ring.full_parity(k));
      };
      C::scores(s, sQ, warp_uniform(ring.stage(it)), wg, [] {}, [&] { wait_part_b(it); });
      clk.start();
      for (int j = 0; j < nblk; ++j) {
        clk.page();
        const int it_j = it + j;
        const uint32_t st = warp_uniform(ring.stage(it_j));
        const int blk = sg.blk_begin + j;
        // Column split: this warpgroup completes its own query columns (x, kN elements).
        constexpr int kN = C::kOwnS, kNC = C::kOwnCols;
        float x[kN];
        C::exchange_own(s, x, smem + L::kXchg, wg, t);   // both warpgroups' scores of this page are done
        clk.mark(0);
        // Fast path: P against the reference maxima m (kLazyMaxLog2). A thread whose scores
        // exceed m by more than the slack takes its own maxima (P <= 1) and flags the page; the
        // P barrier's OR then sends both warpgroups down the slow path below.
        float own[kNC];
        C::mask_and_own_max(x, blk * plan::kBlockN, blk * plan::kBlockN + 16 * w + g, lim_min,
                            [&](int c) { return lim_of(kNC * wg + c); }, own);
        bool raise = false;
#pragma unroll
        for (int c = 0; c < kNC; ++c) raise |= own[c] > m[c] + lazy_slack;
        // The maxima this thread's P is taken against; its share of the sums moves there too.
        auto ref = [&](int c) { return raise ? fmaxf(m[c], own[c]) : m[c]; };
        float sum[kNC];
#pragma unroll
        for (int c = 0; c < kNC; ++c) sum[c] = 0.f;
#pragma unroll
        for (int i = 0; i < kN; ++i) {
          const int c = C::col_of(i);
          const float r = ref(c);
          x[i] = exp2_ftz(fmaf(x[i], sl2, r == -INFINITY ? 0.f : -r * sl2));
          sum[c] += x[i];
        }
        if constexpr (C::kSplitP) {
          if (raise) {
            float f[kNC];
#pragma unroll
            for (int c = 0; c < kNC; ++c) {
              f[c] = softmax_rescale(m[c], ref(c), sl2);
              l_part[c] *= f[c];
            }
            lo_dropped *= C::max_square(f);
          }
#pragma unroll
          for (int c = 0; c < kNC; ++c) l_part[c] += sum[c];
        } else {
#pragma unroll
          for (int c = 0; c < kNC; ++c) l_part[c] = (raise ? l_part[c] * softmax_rescale(m[c], ref(c), sl2) : l_part[c]) + sum[c];
        }
        // R = 16 keeps lo everywhere: its rows are bound by HBM, and zeros there gained nothing
        // (docs/perf-log.md, entry 57).
        const bool keep_lo = C::kSplitP && (kRows == 16 || C::keeps_lo(x, l_part, lo_dropped));
        C::store_p_own(x, sP, wg, w, lane, keep_lo);
        const int valid = sg.seqlen - blk * plan::kBlockN;
        if (valid < plan::kBlockN) zero_tail_rows(st, wg, valid, t);
        fence_proxy_async_smem();
        clk.mark(1);
        // P^T (and zeroed V rows) visible, and one answer for both warpgroups on the slow path.
        if (named_barrier_sync_or(kBarPReady, 2 * kWarpgroupThreads, raise)) {
          // Slow path (uniform): the page's maxima of this warpgroup's columns over their 8 lanes
          // and 4 warps, then P and the sums moved to the new reference and P stored again; O^T,
          // which holds every query column in both warpgroups, moves by the factors both publish.
          float tile_max[kNC], alpha[kNC], f[kNC];
          C::page_column_max(own, col_max, w, g, tq, bar_group, tile_max, C::kOwnQ * wg);
#pragma unroll
          for (int c = 0; c < kNC; ++c) {
            const float m_new = fmaxf(m[c], tile_max[c]);
            alpha[c] = softmax_rescale(m[c], m_new, sl2);
            f[c] = softmax_rescale(ref(c), m_new, sl2);
            m[c] = m_new;
            l_part[c] *= f[c];
          }
          lo_dropped *= C::max_square(f);
#pragma unroll
          for (int i = 0; i < kN; ++i) x[i] *= f[C::col_of(i)];
          // The lo choice stays the fast path's: a column's weights, sums and dropped weights
          // move by the same factor, which keeps its bound (keeps_lo).
          C::store_p_own(x, sP, wg, w, lane, keep_lo);
          fence_proxy_async_smem();
          if (w == 0 && g == 0) {
#pragma unroll
            for (int c = 0; c < kNC; ++c) col_alpha[C::kOwnQ * wg + query_of(c)] = alpha[c];
          }
          // Every warp of this group has read col_max before the next page's slow path rewrites
          // it, and every thread reads col_alpha before the next page's exchange.
          named_barrier_sync(kBarPReady, 2 * kWarpgroupThreads);
          float alpha_all[kCols];
          bool moved = false;
#pragma unroll
          for (int c = 0; c < kCols; ++c) {
            alpha_all[c] = col_alpha[query_of(c)];
            moved |= alpha_all[c] != 1.f;
          }
          // P @ V of the previous page has completed (the scores' waits drained the group queue).
          // Not on the segment's first page, where O^T is still zero (entry 135).
          if (moved && j > 0) C::scale_o(o, alpha_all);
        }
        clk.mark(2);
        C::pv(o, sP, st, wg);
        clk.mark(3);
        auto release = [&] {
          C::fence_all(o);
          if (lane == 0) mbar_arrive(ring.empty(it_j));
        };
        if (j + 1 < nblk) {
#ifdef FLASHMLA_EXPERIMENT_NARROW_EARLY_RELEASE
          // Timing only (docs/perf-log.md, entry 71): this page's stage is released as soon as its
          // P @ V has completed, before the next page is waited for, so that its reload is never
          // held back by the next page's landing; the next scores are no longer queued behind P @ V.
          constexpr bool kReleaseBeforeNext = true;
          wgmma_wait<0>();
          release();
#else
          constexpr bool kReleaseBeforeNext = false;
#endif
          mbar_wait(ring.full(it_j + 1), ring.full_parity(it_j + 1));
          timeline_page_waited(it_j + 1);
          clk.mark(4);
          C::scores(
              s, sQ, warp_uniform(ring.stage(it_j + 1)), wg,
              [&] {
                clk.mark(5);
                if (!kReleaseBeforeNext) release();
              },
              [&] { wait_part_b(it_j + 1); });
          clk.mark(6);
        } else {
          wgmma_wait<0>();
          release();
          clk.mark(7);
        }
      }
      it += nblk;
      ++nq;
      if (lane == 0) mbar_arrive(q_empty);
    }

    // ---- epilogue: column sums over the 8 lanes and 4 warps of a column, in a fixed order
    const uint32_t epi0 = clk.now();
    timeline_epilogue(EpiloguePoint::kBegin);
    // Each warpgroup sums its own columns, and both read every column.
    const int q_state0 = C::kOwnQ * wg;
#pragma unroll
    for (int c = 0; c < kStateCols; ++c) {
      l_part[c] += __shfl_xor_sync(0xffffffffu, l_part[c], 4);
      l_part[c] += __shfl_xor_sync(0xffffffffu, l_part[c], 8);
      l_part[c] += __shfl_xor_sync(0xffffffffu, l_part[c], 16);
    }
    if (g == 0) {
#pragma unroll
      for (int c = 0; c < kStateCols; ++c) col_sum[w * kRows + q_state0 + query_of(c)] = l_part[c];
    }
    auto sums_barrier = [&] { named_barrier_sync(kBarColumns, 2 * kWarpgroupThreads); };
    sums_barrier();
    timeline_epilogue(EpiloguePoint::kSummed);

    // The columns' normalisation and stores. A thread holds channels g and g + 8 of each 16-channel
    // run of a row (four runs, e = 0, 1 below); lanes g and g ^ 1 swap one value so that each
    // stores two adjacent channels, whole 32-byte sectors a row (bf16; 64 bytes in fp32). The
    // column loop has no branch, so that ptxas overlaps the columns' chains (reciprocal, log,
    // head index, addresses): branched per column, a one-page call's epilogue took ~0.5 us a
    // column, 2.6 us at R = 16 and 4.7 us at R = 32 (docs/perf-log.md, entry 134). The swap needs
    // the whole warp: rows past the kv group's last skip only their stores.
    const bool odd_g = (g & 1) != 0;
    const int ch0 = 256 * wg + 16 * w + g + (odd_g ? 7 : 0);
    // base: out (T) or the partial slots (float); the branch below is the same for the whole warp.
    auto store_columns = [&](auto* base, float* lse_base) {
      using D = std::remove_reference_t<decltype(*base)>;
      constexpr bool kToOut = !std::is_same_v<D, float>;
#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
      // Timing only (docs/perf-log.md, entry 79): no O stores; a sum that never matches keeps
      // P @ V alive.
      float keep = 0.f;
#endif
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int q = query_of(c);
        const int mrow = m_base + q;
        const bool row_ok = mrow < p.rows_per_kv;
        const float l = ((col_sum[q] + col_sum[kRows + q]) + col_sum[2 * kRows + q]) + col_sum[3 * kRows + q];
        const float inv = row_sum_reciprocal(l);
        // The lse of a column comes from the warpgroup that holds its maximum.
        const bool lse_writer = c / kStateCols == wg && w == 0 && g == 0;
        const float lse = row_lse(m[c % kStateCols], l, p.softmax_scale, !kToOut);
        int64_t row_at, lse_at;
        if constexpr (kToOut) {
          int i, h;
          token_and_head(p, kv_head, mrow, i, h);
          row_at = r * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h;
          lse_at = r * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s;
        } else {
          lse_at = (static_cast<int64_t>(dst.slot()) * p.num_heads_kv + kv_head) * p.rows_per_kv + mrow;
          row_at = lse_at * kDimV;
        }
        D* row = base + row_at + ch0;
        const int jn = c >> 1, b = c & 1;
#pragma unroll
        for (int tt = 0; tt < 4; ++tt) {
          float v[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int idx = 4 * jn + 2 * e + b;
            v[e] = o[tt][idx];
            if constexpr (C::kSplitP) v[e] += o[tt][idx + kRows / 2];
            v[e] *= inv;
          }
          // the swap: even g sends channel g + 8 and gets g + 1, odd g sends g and gets g + 7
          const float got = __shfl_xor_sync(0xffffffffu, odd_g ? v[0] : v[1], 4);
          const float first = odd_g ? got : v[0];
          const float second = odd_g ? v[1] : got;
#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
          keep += first + second;
#else
          if constexpr (kToOut) {
            if (row_ok) *reinterpret_cast<uint32_t*>(row + 64 * tt) = HalfOps<T>::pack(first, second);
          } else {
            if (row_ok) *reinterpret_cast<float2*>(row + 64 * tt) = make_float2(first, second);
          }
#endif
        }
        if (row_ok && lse_writer) lse_base[lse_at] = lse;
      }
#ifdef FLASHMLA_EXPERIMENT_NO_O_STORES
      if (keep == 12345.f) base[0] = static_cast<D>(0.f);
#endif
    };
    if (!dst.split()) {
      store_columns(static_cast<T*>(p.out), p.lse);
    } else if (dst.slot_ok()) {
      store_columns(p.partial_o, p.partial_lse);
    }
    timeline_epilogue(EpiloguePoint::kStored);
    // The next request's epilogue rewrites col_sum; every warp that reads it must have read it.
    sums_barrier();
    clk.add_since(9, epi0);   // per segment: epilogue
  }
  clk.flush(wg, t == 0);
  cta_span_end(it, nq);
  if constexpr (kGridMerge) merge_splits_in_grid<T>(p, smem, tid);
}

template <typename T, int kRows>
void launch_decode_narrow(const DecodeParams& params, cudaStream_t stream) {
  register_phase_clock_report();
#ifdef FLASHMLA_EXPERIMENT_GRID_MERGE   // docs/perf-log.md, entry 102
  launch_decode_kernel<mla_decode_narrow_kernel<T, kRows, false>, NarrowLayout<T, kRows>::kBytes, kRows, kDecodeThreads,
                       mla_decode_narrow_kernel<T, kRows, true>>(params, stream, "mla_decode_narrow_kernel");
#else
  launch_decode_kernel<mla_decode_narrow_kernel<T, kRows, false>, NarrowLayout<T, kRows>::kBytes, kRows>(
      params, stream, "mla_decode_narrow_kernel");
#endif
}

}  // namespace flashmla::sm90
