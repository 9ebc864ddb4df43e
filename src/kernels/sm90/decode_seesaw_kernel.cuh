// Split-KV MLA decode kernel for 64-row tiles, seesaw schedule: the dispatch takes it for the wide
// tiles when DecodeParams::seesaw (WideSchedule::seesaw, asked for by the caller), the one-page
// kernel (decode_wgmma_kernel.cuh) otherwise (docs/perf-log.md, entries 98-119 and 130).
//
// Grid as the wide kernel's (decode_wgmma_kernel.cuh), 256 threads: two consumer warpgroups and no
// producer. The CTA's pages (every page of its active segments, in order) alternate between two
// 72 KiB buffers, page n in buffer n % 2, and consumer n % 2 owns page n. A segment's pages go in
// pairs (a, a + 1), and in each pair each consumer
//   - scores its own page whole (64 rows x 64 keys over all 576 channels, m64n64), its own channel
//     half's chunks first;
//   - exponentiates the scores against its own reference row maxima, multiplies its P into its O
//     half (channels 256c..+255) from registers, and hands over P_hi (in the page's RoPE chunk),
//     P_lo on the rare pages that take it (in its first V chunk of the page, once its own P @ V of
//     the page has completed), its maxima when they moved, and a flags word;
//   - then takes the other's page of the pair: that P into its O half.
// Each consumer keeps its own maxima: no softmax waits for the other's. A page is brought to the
// taker's maxima when it is taken (rare: after a raise): the taker's maxima move up to the
// giver's, and where they stay above, O is scaled up around that page's P @ V and back down after
// it. The epilogue brings both halves and both consumers' row sums to the larger maxima.
//
// Loads (no producer warpgroup): the owner loads every chunk of its pages, as TMA boxes of two
// chunks (the RoPE chunk alone), each box on its own full barrier and issued by lane 0 of one of
// the owner's warps. Page n + 2 goes into buffer n % 2 in two parts: the owner's V half once the
// owner's P @ V of page n has completed, then the other V half and the RoPE chunk once the other
// consumer has taken page n (a `taken` barrier, arrived by its four warps). Q: one tile per
// segment, loaded by the consumers once both have scored the previous segment's last page.
//
// Shared memory (224,720 B): Q (72 KiB) | buffer 0 | buffer 1 (72 KiB each) | published maxima
// (float[2][2][64]: consumer, slot, row) | the epilogue's exchange (float[2][2][2][64]: segment
// parity, consumer, row sums or maxima, row) | flags (uint32[2][2]) | each warp's page walk for its
// loads (SeesawLoadState[8]) | mbarriers.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/sm90/decode_pipeline.cuh"
#include "kernels/sm90/decode_wgmma_kernel.cuh"
#include "kernels/sm90/phase_clocks.cuh"
#include "kernels/sm90/wgmma_ops.cuh"
#include "kernels/sm90/wide_tile_stores.cuh"

namespace flashmla::sm90 {

inline constexpr int kSeesawThreads = 2 * kWarpgroupThreads;
inline constexpr int kPageChunks = kHeadDim / kChunkCols;   // 9

struct SeesawSmem {
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kBuffer0 = kTileBytes;          // buffer b at kBuffer0 + b * kTileBytes
  static constexpr uint32_t kRowMax = 3 * kTileBytes;       // float[2][2][64]: consumer, slot, row
  // float[2][2][2][64]: segment parity, consumer, (row sums, maxima), row: the epilogue's exchange.
  static constexpr uint32_t kExchange = kRowMax + 4 * 64 * 4;
  static constexpr uint32_t kFlags = kExchange + 8 * 64 * 4;  // uint32[2][2]: consumer, slot
  static constexpr uint32_t kLoaders = kFlags + 16;           // SeesawLoadState[8]: warp
  // full[2][9] (buffer, chunk), q_full, taken[2], handoff[2], exchange
  static constexpr uint32_t kBars = kLoaders + 8 * 32;
  static constexpr uint32_t kBytes = kBars + (2 * kPageChunks + 6) * 8;
};
static_assert(SeesawSmem::kBytes <= 227 * 1024, "decode CTA must fit Hopper's 227 KiB per block");
static_assert(SeesawSmem::kBuffer0 % 1024 == 0, "P tiles must be 1024-byte aligned");

// Phases of the experiment-only clocks (FLASHMLA_EXPERIMENT_PHASE_CLOCKS), cycles per CTA-page of
// each reporting thread: its own page's chunk waits (its V half; the rest) and score MMAs, softmax
// (mask and raise vote; exponentials and lo vote) and hand-over, the wait for and issue of the
// other's page, the MMA waits, the wait for the other to take my page, and the loads' issue; two
// slots count raised pages and pages with lo (per mille of pages), and one holds the hand-over's
// proxy fence (MEMBAR.ALL.CTA + FENCE.VIEW.ASYNC: it may wait for the thread's global stores).
// Outside the page loop: the CTA's first loads, a segment's setup (in practice the wait for the
// last epilogue's stores to read their registers: entry 119), Q wait, chunk waits of its first
// page, Q release and reload, and its epilogue (row-sum exchange, stores). Apart from those, by
// pair position in the segment: the whole of its first pair, of its last (when not the first) and
// of the others, and how many of each (x 1000) - these overlap the phases above, so the report's
// sum counts them twice.
enum SeesawPhase : int {
  kClkChunkWait, kClkScores, kClkHandOffWait, kClkTake, kClkMaskVote, kClkExp, kClkIssue, kClkPvWait, kClkTakenWait,
  kClkRelease, kClkRaisedPerMille, kClkOtherChunkWait, kClkReleaseBarrier, kClkBoxIssue, kClkPrologue,
  kClkSegmentSetup, kClkQWait, kClkFirstChunkWait, kClkQReload, kClkEpilogueExchange, kClkEpilogueStore,
  kClkPairFirst, kClkPairLast, kClkPairMiddle, kClkPairFirstN, kClkPairLastN, kClkPairMiddleN, kClkLoPerMille,
  kClkHandOffFence
};
static_assert(kClkHandOffFence < kPhaseCount, "phase_clocks.cuh: kPhaseCount too small for the seesaw's phases");

// Flag bits of a handed-over page: the owner's reference maxima moved since it last published them
// (they are in its slot), and the page's P_lo is in the owner's first V chunk of the page.
inline constexpr uint32_t kPageRefs = 1, kPageLo = 2;

// Named barriers (0 is __syncthreads). kSeeVote + c: consumer c's votes and its other 128-thread
// waits (zeroed tail rows visible, all four warps past their MMA waits). kSeeQ: both consumers
// (256, reached from either consumer's warps, so the unaligned form) are done with a Q tile. A
// page's hand-over is an mbarrier (seesaw_handoff), not a named barrier that one consumer arrives
// at and the other syncs on: compute-sanitizer's racecheck orders the words handed over by an
// mbarrier's arrivals and wait, and reports them under an arrive/sync pair (docs/perf-log.md,
// entries 100 and 119).
enum : int { kSeeVote = 1, kSeeQ = 3 };

__device__ __forceinline__ uint32_t seesaw_buffer(uint32_t sbase, int b) {
  return sbase + SeesawSmem::kBuffer0 + static_cast<uint32_t>(b) * kTileBytes;
}
__device__ __forceinline__ uint32_t seesaw_full(uint32_t sbase, int b, int chunk) {
  return sbase + SeesawSmem::kBars + static_cast<uint32_t>(b * kPageChunks + chunk) * 8;
}
__device__ __forceinline__ uint32_t seesaw_q_full(uint32_t sbase) {
  return sbase + SeesawSmem::kBars + 2 * kPageChunks * 8;
}
// The other consumer has taken the page in buffer b: its P @ V from that page (its V half and the
// P_hi in the RoPE chunk) has completed in all four of its warps.
__device__ __forceinline__ uint32_t seesaw_taken(uint32_t sbase, int b) {
  return sbase + SeesawSmem::kBars + (2 * kPageChunks + 1 + b) * 8;
}
// Consumer c has handed over its page of the pair (P_hi, P_lo if taken, maxima, flags): every one
// of its 128 threads arrives once its own stores are fenced. Phase n / 2 of consumer c's barrier
// is its page n (n % 2 == c); the owner's next arrival waits, through its loads, for the take.
__device__ __forceinline__ uint32_t seesaw_handoff(uint32_t sbase, int c) {
  return sbase + SeesawSmem::kBars + (2 * kPageChunks + 3 + c) * 8;
}
// Both consumers' row sums and maxima of a segment are in its exchange area: all 256 threads
// arrive; phase e is the CTA's e-th epilogue.
__device__ __forceinline__ uint32_t seesaw_exchange(uint32_t sbase) {
  return sbase + SeesawSmem::kBars + (2 * kPageChunks + 5) * 8;
}
// Fills of buffer n % 2 alternate the full barriers' phases.
__device__ __forceinline__ uint32_t seesaw_parity(int n) { return static_cast<uint32_t>(n >> 1) & 1u; }

// Chunks a TMA box carries: 2 (the chunk-pair map, kv_pairs), or 1 (kv's per-chunk boxes; the
// build flag FLASHMLA_SEESAW_BOX_CHUNKS=1, for A/B timing). A box's chunks land on the full barrier
// of its first chunk; the score groups and the take wait for those.
#ifdef FLASHMLA_SEESAW_BOX_CHUNKS
inline constexpr int kSeesawBoxChunks = FLASHMLA_SEESAW_BOX_CHUNKS;
#else
inline constexpr int kSeesawBoxChunks = 2;
#endif
static_assert(kSeesawBoxChunks == 1 || kSeesawBoxChunks == 2, "a seesaw box is one chunk or a pair");

// A loading warp's walk over its consumer's pages, in shared memory: only lane 0 uses it, and in
// registers it held ~10 of every thread's registers through the page loop, which had no
// headroom left (docs/perf-log.md, entry 127).
struct SeesawLoadState {
  int r, req_end, blk, blk_end;   // PageCursor's walk, at page `next`
  int next;                       // the next page to load (mine: next % 2 == c)
  int valid;
  int pad[2];
};
static_assert(sizeof(SeesawLoadState) == 32, "one 32-byte state a warp");

// Consumer C's loads (lane 0 of some of its warps, a box each): every chunk of its own pages (C,
// C + 2, ... of the CTA's page sequence). Page n + 2 replaces page n in buffer C in two parts: my V
// half once my own P @ V of page n has completed, the other V half and the RoPE chunk once the
// other consumer has taken page n (its `taken` barrier), which it does right after both hand-overs
// of the pair.
struct SeesawLoader {
  SeesawLoadState* st;   // this warp's
  int c;                 // the owner (consumer) and its buffer
  int page;              // block-table entry of page `next`, read a page ahead (a global load: kept here)

  // Lane 0 of each of the owner's warps, before its first loads.
  __device__ __forceinline__ void init(const DecodeParams& p, const int32_t* fields, int begin, int end, int owner,
                                       SeesawLoadState* state) {
    st = state;
    c = owner;
    PageCursor cursor(p, fields, begin, end);
    if (c == 1) cursor.advance();
    page = cursor.valid ? cursor.page() : 0;
    save(cursor, owner);
  }
  __device__ __forceinline__ void save(const PageCursor& cursor, int next) const {
    *st = SeesawLoadState{cursor.r, cursor.req_end, cursor.blk, cursor.blk_end, next, cursor.valid ? 1 : 0, {0, 0}};
  }

  // Chunks [ch, ch + n) of the page into buffer c, on chunk ch's full barrier.
  __device__ __forceinline__ void box(int ch, int n, const DecodeParams& p, const DecodeMaps& maps, uint32_t sbase,
                                      int kv_head) const {
    const uint32_t full = seesaw_full(sbase, c, ch);
    const uint32_t dst = seesaw_buffer(sbase, c) + ch * kChunkBytes;
    const bool evict_first = p.num_row_tiles == 1;
    mbar_arrive_expect_tx(full, n * kChunkBytes);
    if (n == 2) {
      if (evict_first) {
        tma_load_5d_hint(dst, &maps.kv_pairs, full, 0, 0, ch, kv_head, page, l2_policy_evict_first());
      } else {
        tma_load_5d(dst, &maps.kv_pairs, full, 0, 0, ch, kv_head, page);
      }
    } else if (evict_first) {
      tma_load_4d_hint(dst, &maps.kv, full, ch * kChunkCols, 0, kv_head, page, l2_policy_evict_first());
    } else {
      tma_load_4d(dst, &maps.kv, full, ch * kChunkCols, 0, kv_head, page);
    }
  }
  // My next page, if any, in two parts: my V half (own_part) once my MMAs of the page it replaces
  // have completed; the other V half and the RoPE chunk (rest) once the other consumer has taken
  // that page too (first: the CTA's first page of mine, whose buffer is free).
  // Lane 0 of warp w issues its share, so that no warp holds up the warpgroup's MMAs by a whole
  // page's boxes. One-chunk boxes: chunk w of each V half, and warp 0 the RoPE chunk. Chunk pairs:
  // warps 0 and 1 my V half, warps 2 and 3 the other half, warp 1 the RoPE chunk.
  // after_take: my V half of the page it replaces holds my P_lo, so it too waits for the take.
  __device__ __forceinline__ void own_part(int w, bool after_take, const DecodeParams& p, const DecodeMaps& maps,
                                           uint32_t sbase, int kv_head) const {
    if (!st->valid || (kSeesawBoxChunks == 2 && w >= 2)) return;
    if (after_take) mbar_wait(seesaw_taken(sbase, c), seesaw_parity(st->next - 2));
    box(4 * c + kSeesawBoxChunks * w, kSeesawBoxChunks, p, maps, sbase, kv_head);
  }
  __device__ __forceinline__ void rest(int w, bool first, const DecodeParams& p, const int32_t* fields,
                                       const DecodeMaps& maps, uint32_t sbase, int kv_head, PhaseClocks& clk) {
    if (!st->valid) return;
    clk.mark(kClkRelease);
    const bool half = kSeesawBoxChunks == 1 || w >= 2, rope = w == (kSeesawBoxChunks == 1 ? 0 : 1);
    if (!first && (half || rope)) mbar_wait(seesaw_taken(sbase, c), seesaw_parity(st->next - 2));
    clk.mark(kClkTakenWait);
    if (half) {
      box(4 * (1 - c) + kSeesawBoxChunks * (w % (4 / kSeesawBoxChunks)), kSeesawBoxChunks, p, maps, sbase, kv_head);
    }
    if (rope) box(kPageChunks - 1, 1, p, maps, sbase, kv_head);
    clk.mark(kClkBoxIssue);
    advance(p, fields);
  }
  // On to my page after this one (two further in the CTA's page sequence). Within a request (every
  // page but a segment's last one or two) that is two blocks on, one compare and branch; the walk
  // across requests only when the request ends (docs/perf-log.md, entry 122).
  __device__ __forceinline__ void advance(const DecodeParams& p, const int32_t* fields) {
    SeesawLoadState s = *st;
    s.next += 2;
    if (s.blk + 2 < s.blk_end) {
      s.blk += 2;
      *st = s;
      page = block_table_entry(p, s.r, s.blk);
      return;
    }
    PageCursor cursor(p, fields, s.r, s.req_end, s.blk, s.blk_end);
    cursor.advance();
    if (cursor.valid) cursor.advance();
    if (cursor.valid) page = cursor.page();
    save(cursor, s.next);
  }
};

// The chunk that consumer C scores at position i of its own page: its V half, the other half, RoPE.
template <int C>
__device__ __forceinline__ constexpr int owner_chunk_at(int i) {
  return i < 4 ? 4 * C + i : (i < 8 ? 4 * (1 - C) + i - 4 : 8);
}

// s = Q K^T of the 64 rows x 64 keys of the page in buffer C (all 576 channels) in two fresh
// accumulators of 18 k-steps each, added with round-to-nearest FADDs once all 36 have completed:
// s takes my V half and RoPE steps 0-1, part the other V half and RoPE steps 2-3. Each box's steps
// are issued as soon as its full barrier completes, with no wait for earlier steps in between. 18
// steps in one accumulator is the wide kernel's measured precision bound (docs/perf-log.md, entries
// 74 and 92). Entry 100's groups of 8 steps, each waited for and added before the next, measured
// slower: each wait drained the tensor pipe (entry 117).
template <typename T, int C>
__device__ __forceinline__ void seesaw_scores(float (&s)[32], uint32_t sbase, uint32_t parity, bool first,
                                              PhaseClocks& clk) {
  float part[32];
  const uint64_t q = kmajor_desc(sbase + SeesawSmem::kQ), k = kmajor_desc(seesaw_buffer(sbase, C));
  // k-steps s4_begin..s4_end-1 of the chunk at position pos of my page's score order.
  auto steps = [&](float (&acc)[32], int pos, int s4_begin, int s4_end, bool accumulate) {
    const int ch = owner_chunk_at<C>(pos);
#pragma unroll
    for (int s4 = s4_begin; s4 < s4_end; ++s4) {
      const uint32_t off = ch * kChunkBytes + s4 * 32;
      Wgmma<T, 64, 0, 0>::mma(acc, desc_add_at_use(q, off), desc_add_at_use(k, off), accumulate || s4 != s4_begin);
    }
  };
  clk.mark(kClkScores);
#pragma unroll
  for (int pos = 0; pos < 8; pos += 2) {
    mbar_wait(seesaw_full(sbase, C, owner_chunk_at<C>(pos)), parity);
    if (kSeesawBoxChunks == 1) mbar_wait(seesaw_full(sbase, C, owner_chunk_at<C>(pos + 1)), parity);
    clk.mark(first ? kClkFirstChunkWait : (pos < 4 ? kClkChunkWait : kClkOtherChunkWait));
    wgmma_fence();
    if (pos < 4) {
      steps(s, pos, 0, 4, pos != 0);
      steps(s, pos + 1, 0, 4, true);
    } else {
      steps(part, pos, 0, 4, pos != 4);
      steps(part, pos + 1, 0, 4, true);
    }
    wgmma_commit();
    clk.mark(kClkScores);
  }
  mbar_wait(seesaw_full(sbase, C, 8), parity);
  clk.mark(first ? kClkFirstChunkWait : kClkOtherChunkWait);
  wgmma_fence();
  steps(s, 8, 0, 2, true);
  steps(part, 8, 2, 4, true);
  wgmma_commit();
  wgmma_wait<0>();
  fence_registers(s);
  fence_registers(part);
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] += part[i];
  clk.mark(kClkScores);
}

// Calls f with consumer index c as a compile-time constant. The MMA issue sections go through it:
// their shared-memory descriptors then stay in uniform registers (a descriptor computed from a
// runtime index is moved there before every MMA), while the rest of the loop is one instance.
template <typename F>
__device__ __forceinline__ void with_consumer_index(int c, F&& f) {
  if (c == 0) {
    f(std::integral_constant<int, 0>{});
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

// P @ V of my page into my O half: P (hi or lo words, in the score accumulator layout) from
// registers, V from my channel half of buffer C.
template <typename T, int C>
__device__ __forceinline__ void seesaw_pv_own(float (&o)[128], const uint32_t (&w)[16], uint32_t sbase) {
  const uint32_t own_buf = seesaw_buffer(sbase, C);
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    WgmmaRs<T, 256>::mma(o, w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3], v_desc(own_buf, C, k), 1);
  }
  wgmma_commit();
}

// P @ V of the other's page (buffer 1 - C) into my O half: P from the 64 x 64 tile at p_tile
// (K-major), V from my channel half of that page.
template <typename T, int C>
__device__ __forceinline__ void seesaw_pv_taken(float (&o)[128], uint32_t p_tile, uint32_t sbase) {
  const uint32_t other_buf = seesaw_buffer(sbase, 1 - C);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) Wgmma<T, 256, 0, 1>::mma(o, kmajor_desc(p_tile + kk * 32), v_desc(other_buf, C, kk), 1);
  wgmma_commit();
}

// Row state of one consumer. m: the reference maxima of its O half and of its own pages' P (the
// other consumer's may differ: its pages' P are brought to mine when I take them). l, lo_dropped:
// the row sums and squared weights without lo of its own pages, in m. m_other: the other's maxima
// as last published. changed: m moved since I last published it; ahead: some row of m may be above
// m_other. ahead is the same in every thread of the consumer, and so is changed between pages (a raise
// is a warp's own, bf16: its page takes lo, and every lo page publishes the consumer's maxima).
template <typename T>
struct SeesawRows {
  float m[2], l[2], lo_dropped[2], m_other[2];
  bool changed, ahead;
  // Moves to new maxima m_new (>= m), with O and the sums. O has no MMA in flight.
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

// A factor that P from a page in a smaller reference is brought up to mine with is capped here: a
// page 2^64 below the reference weighs nothing next to the page that set it.
inline constexpr float kMaxRefLift = 18446744073709551616.f;   // 2^64

// One consumer of the seesaw. Both run this one instance of the code with their index c (the same
// in all of a consumer's threads), so that the SM's instruction caches hold one page loop, not two
// (entry 117: the two compiled instances spent ~14% of their warps' time on instruction fetch).
template <typename T>
struct SeesawConsumer {
  using Ops = Consumer<T>;

  uint32_t sbase;
  int c, other;   // my index (my buffer, my channel half) and the other consumer's
  int t, row0, tq;
  float sl2, lazy_slack;

  __device__ __forceinline__ uint32_t rope_of(int b) const { return seesaw_buffer(sbase, b) + 8 * kChunkBytes; }
  // Where the owner of buffer b hands over P_lo: the first chunk of its V half.
  __device__ __forceinline__ uint32_t p_lo_of(int b) const { return seesaw_buffer(sbase, b) + 4 * b * kChunkBytes; }
  __device__ __forceinline__ uint32_t row_max_slot(int c, int slot) const {
    return sbase + SeesawSmem::kRowMax + static_cast<uint32_t>((2 * c + slot) * 64) * 4;
  }
  __device__ __forceinline__ uint32_t flags_slot(int c, int slot) const {
    return sbase + SeesawSmem::kFlags + static_cast<uint32_t>(2 * c + slot) * 4;
  }

  // My page of the pair (in buffer c): scores s, masked past lim (keys of blk from key0), softmax
  // against my maxima, P @ V into my O half (left in flight), and the hand-over: P_hi in the page's
  // RoPE chunk, P_lo (pages that take it) in my first V chunk of the page once my P @ V of it has
  // completed, my maxima if they moved, and the flags, in slot `slot`. Returns whether it took lo.
  __device__ __forceinline__ bool own_page(float (&o)[128], float (&s)[32], SeesawRows<T>& rows, int key0,
                                           const int (&lim)[2], int valid, int slot, PhaseClocks& clk) const {
    float own_max[2], own_max_hi[2];
    Ops::mask_and_own_max(reinterpret_cast<float(&)[16]>(s[0]), key0 + 2 * tq, lim, own_max);
    Ops::mask_and_own_max(reinterpret_cast<float(&)[16]>(s[16]), key0 + 32 + 2 * tq, lim, own_max_hi);
#pragma unroll
    for (int e = 0; e < 2; ++e) own_max[e] = fmaxf(own_max[e], own_max_hi[e]);
    const bool raise = own_max[0] > rows.m[0] + lazy_slack || own_max[1] > rows.m[1] + lazy_slack;
    // bf16: a raise is a warp's own (its 16 rows, quad maxima by shuffles), with no 128-thread vote;
    // it forces lo, whose vote tells the consumer, and the publish and `ahead` key on lo (entry 121).
    const bool raised =
        Ops::kSplitP ? __any_sync(0xffffffffu, raise) : named_barrier_sync_or(kSeeVote + c, kWarpgroupThreads, raise);
    clk.mark(kClkMaskVote);
    clk.count(kClkRaisedPerMille, raised ? 1000u : 0u);
    if (raised) {
      // New maxima from the quad's row maxima (a row's four threads), the same in the whole quad.
      float m_new[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float tile_max = fmaxf(own_max[e], __shfl_xor_sync(0xffffffffu, own_max[e], 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        m_new[e] = fmaxf(rows.m[e], tile_max);
      }
      rows.raise_to(m_new, sl2, o);   // nothing in flight: the last pair ended with wgmma_wait<0>
      rows.changed = true;
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
      lo = named_barrier_sync_or(kSeeVote + c, kWarpgroupThreads, need_lo);
      clk.count(kClkLoPerMille, lo ? 1000u : 0u);
    }
    // Where some warp raised, the consumer's maxima may be above the other's: a uniform signal for it
    // is lo (bf16: a raise implies lo), else the raise vote itself (fp16).
    if (Ops::kSplitP ? lo : raised) rows.ahead = true;
    clk.mark(kClkExp);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      rows.l[e] += sum[e] + sum_hi[e];
      if (!lo) rows.lo_dropped[e] += sq[e];
    }
    uint32_t hi[16];
    Ops::pack_hi(reinterpret_cast<const float(&)[16]>(s[0]), reinterpret_cast<uint32_t(&)[8]>(hi[0]));
    Ops::pack_hi(reinterpret_cast<const float(&)[16]>(s[16]), reinterpret_cast<uint32_t(&)[8]>(hi[8]));
    const uint32_t own_buf = seesaw_buffer(sbase, c);
    if (valid < plan::kBlockN) {
      zero_tail_rows(own_buf, c, valid, t);   // my scores of the page are done
      fence_proxy_async_smem();
      named_barrier_sync(kSeeVote + c, kWarpgroupThreads);
    }
    with_consumer_index(c, [&](auto ci) { seesaw_pv_own<T, decltype(ci)::value>(o, hi, sbase); });
    const uint32_t rope = rope_of(c);
    Ops::store_p(rope, reinterpret_cast<const uint32_t(&)[8]>(hi[0]), Ops::p_offset(row0, 0, tq));
    Ops::store_p(rope, reinterpret_cast<const uint32_t(&)[8]>(hi[8]), Ops::p_offset(row0, 32, tq));
    if (Ops::kSplitP && lo) {
      uint32_t lw[16];
      Ops::pack_lo(reinterpret_cast<const float(&)[16]>(s[0]), reinterpret_cast<const uint32_t(&)[8]>(hi[0]),
                   reinterpret_cast<uint32_t(&)[8]>(lw[0]));
      Ops::pack_lo(reinterpret_cast<const float(&)[16]>(s[16]), reinterpret_cast<const uint32_t(&)[8]>(hi[8]),
                   reinterpret_cast<uint32_t(&)[8]>(lw[8]));
      with_consumer_index(c, [&](auto ci) { seesaw_pv_own<T, decltype(ci)::value>(o, lw, sbase); });
      // My V half of the page is free once my P @ V of it has completed (in all four warps): P_lo
      // goes into its first chunk, which the owner reloads only after the other has taken the page.
      wgmma_wait<0>();
      named_barrier_sync(kSeeVote + c, kWarpgroupThreads);
      const uint32_t p_lo = p_lo_of(c);
      Ops::store_p(p_lo, reinterpret_cast<const uint32_t(&)[8]>(lw[0]), Ops::p_offset(row0, 0, tq));
      Ops::store_p(p_lo, reinterpret_cast<const uint32_t(&)[8]>(lw[8]), Ops::p_offset(row0, 32, tq));
    }
    uint32_t flags = lo ? kPageLo : 0u;
    // Uniform in the consumer: a raise in any warp took lo (kSplitP), a take's moves were voted.
    if (rows.changed || lo) {
      if (tq == 0) {
#pragma unroll
        for (int e = 0; e < 2; ++e) st_shared_b32(row_max_slot(c, slot) + 4 * (row0 + 8 * e), __float_as_uint(rows.m[e]));
      }
      flags |= kPageRefs;
      rows.changed = false;
    }
    if (t == 0) st_shared_b32(flags_slot(c, slot), flags);
    clk.mark(kClkIssue);
    fence_proxy_async_smem();
    clk.mark(kClkHandOffFence);
    mbar_arrive(seesaw_handoff(sbase, c));
    return lo;
  }

  // The other's page of the pair (in buffer `other`), handed over in slot `slot`: its P, brought to my
  // maxima, into my O half (left in flight), after my V half of its tail rows is zeroed.
  // Returns whether the page came with P_lo (its groups: hi, then lo).
  __device__ __forceinline__ bool take_other_page(float (&o)[128], SeesawRows<T>& rows, int valid, uint32_t phase,
                                                  int slot, PhaseClocks& clk) const {
    mbar_wait(seesaw_handoff(sbase, other), phase);
    clk.mark(kClkHandOffWait);
    const uint32_t flags = ld_shared_b32(flags_slot(other, slot));
    // Where the two maxima may differ (rare: after a raise), mine move up to the other's, and
    // where mine stay above, its P is brought up to mine by scaling O the other way around it.
    bool lift = false;
    float lift_by[2] = {1.f, 1.f};
    if ((flags & kPageRefs) || rows.ahead) {
      if (flags & kPageRefs) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          rows.m_other[e] = __uint_as_float(ld_shared_b32(row_max_slot(other, slot) + 4 * (row0 + 8 * e)));
        }
      }
      float m_new[2];
      bool up = false, below = false;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        m_new[e] = fmaxf(rows.m[e], rows.m_other[e]);
        up |= m_new[e] != rows.m[e];
        below |= rows.m_other[e] < m_new[e];
      }
      wgmma_wait<0>();   // my own page's P @ V, into O
      fence_registers(o);
      rows.raise_to(m_new, sl2, o);
      rows.changed |= named_barrier_sync_or(kSeeVote + c, kWarpgroupThreads, up);
      lift = named_barrier_sync_or(kSeeVote + c, kWarpgroupThreads, below);
      rows.ahead = lift;
      if (lift) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          lift_by[e] = rows.m_other[e] < rows.m[e] ? fminf(exp2_ftz((rows.m[e] - rows.m_other[e]) * sl2), kMaxRefLift) : 1.f;
        }
        Ops::scale_o(o, lift_by);
      }
    }
    const uint32_t other_buf = seesaw_buffer(sbase, other);
    // My V half of the page landed on barriers that its owner waited for: the bytes are visible to
    // this warpgroup's MMAs once it has observed those phases too (the waits return at once).
#pragma unroll
    for (int i = 0; i < 4; i += kSeesawBoxChunks) mbar_wait(seesaw_full(sbase, other, 4 * c + i), phase);
    if (valid < plan::kBlockN) {
      zero_tail_rows(other_buf, c, valid, t);
      fence_proxy_async_smem();
      named_barrier_sync(kSeeVote + c, kWarpgroupThreads);
    }
    const bool with_lo = Ops::kSplitP && (flags & kPageLo);
    with_consumer_index(c, [&](auto ci) {
      constexpr int kC = decltype(ci)::value;
      seesaw_pv_taken<T, kC>(o, rope_of(1 - kC), sbase);   // P_hi
      if (with_lo) seesaw_pv_taken<T, kC>(o, p_lo_of(1 - kC), sbase);
    });
    if (lift) {
      wgmma_wait<0>();
      fence_registers(o);
      float back[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) back[e] = 1.f / lift_by[e];
      Ops::scale_o(o, back);
    }
    clk.mark(kClkTake);
    return with_lo;
  }
};

template <typename T>
__global__ void __launch_bounds__(kSeesawThreads, 1)
    mla_decode_seesaw_kernel(const __grid_constant__ DecodeParams p, const __grid_constant__ DecodeMaps maps) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQ = sbase + SeesawSmem::kQ;
  const uint32_t q_full = seesaw_q_full(sbase);
  const int kv_head = blockIdx.z;
  const int tid = threadIdx.x;
  const int m_base = blockIdx.y * kTileRows;

  if (tid == 0) {
    for (int b = 0; b < 2; ++b) {
      for (int ch = 0; ch < kPageChunks; ++ch) mbar_init(seesaw_full(sbase, b, ch), 1);
      mbar_init(seesaw_taken(sbase, b), kWarpgroupThreads / 32);
      mbar_init(seesaw_handoff(sbase, b), kWarpgroupThreads);
    }
    mbar_init(seesaw_exchange(sbase), kSeesawThreads);
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

  {
    const int c = tid / kWarpgroupThreads;
    const int t = tid - c * kWarpgroupThreads;
    const int lane = t & 31;
    SeesawConsumer<T> cs;
    cs.sbase = sbase;
    cs.c = c;
    cs.other = 1 - c;
    cs.t = t;
    cs.row0 = 16 * (t / 32) + (lane >> 2);
    cs.tq = lane & 3;
    cs.sl2 = p.scale_log2;
    cs.lazy_slack = kLazyMaxLog2 / cs.sl2;
    SeesawLoader loader;
    PhaseClocks clk;
    const int warp = t / 32;
    clk.start();
    if (lane == 0) {
      loader.init(p, fields, req_begin, req_end, c,
                  reinterpret_cast<SeesawLoadState*>(smem + SeesawSmem::kLoaders) + tid / 32);
      loader.own_part(warp, false, p, maps, sbase, kv_head);
      loader.rest(warp, true, p, fields, maps, sbase, kv_head, clk);
    }
    clk.mark(kClkPrologue);
    int it = 0;   // pages of the CTA before this segment
    int nq = 0;   // Q tiles used
    int ne = 0;   // epilogues run
    for (int r = req_begin; r <= req_end; ++r) {
      const Segment sg = segment_of(p, fields, r);
      if (!sg.active) continue;
      const RequestOutput dst = request_output(p, r, sg.split_idx);
      const int nblk = sg.blk_end - sg.blk_begin;
      int lim[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) lim[e] = visible_keys(p, sg.seqlen, m_base + cs.row0 + 8 * e);
      SeesawRows<T> rows{{-INFINITY, -INFINITY}, {0.f, 0.f}, {0.f, 0.f}, {-INFINITY, -INFINITY}, false, false};
      float o[128];
#pragma unroll
      for (int i = 0; i < 128; ++i) o[i] = 0.f;
      clk.mark(kClkSegmentSetup);
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
        clk.add_pages(nblk);
        clk.mark(kClkQWait);
        // Pairs of pages (a, a + 1): each consumer scores and hands over its own, then takes the
        // other's. The segment's last pair may have one page.
        for (int a = first; a < end; a += 2) {
          const uint32_t pair_start = clk.now();
          // Clock builds, $FLASHMLA_CLOCK_PAIRS: the in-pair phases count only 1 the first pairs of a
          // CTA's later segments, 2 its middle pairs, 3 the first pair of its first segment (0: all).
          if (const int mode = clk.pair_mode()) {
            clk.gate(mode == 1 ? a == first && first > 0 : (mode == 2 ? a != first && a + 2 < end : a == first && first == 0));
          }
          const int mine = (a & 1) == c ? a : a + 1, theirs = (a & 1) == c ? a + 1 : a;
          const int slot = ((a - first) >> 1) & 1;
          bool lo = false;
          if (mine < end) {
            float s[32];
            with_consumer_index(c, [&](auto ci) {
              seesaw_scores<T, decltype(ci)::value>(s, sbase, seesaw_parity(mine), a == first, clk);
            });
            lo = cs.own_page(o, s, rows, (sg.blk_begin + mine - first) * plan::kBlockN, lim, valid_of(mine), slot, clk);
          }
          bool their_lo = false;
          if (theirs < end) their_lo = cs.take_other_page(o, rows, valid_of(theirs), seesaw_parity(theirs), slot, clk);
          // My V half of my page is free once my P @ V of it has completed in all four warps (the
          // other's page's groups, issued after mine, may still run); unless it holds my P_lo.
          if (mine < end && !lo) {
            if (theirs >= end) {
              wgmma_wait<0>();
            } else if (their_lo) {
              wgmma_wait<2>();
            } else {
              wgmma_wait<1>();
            }
            clk.mark(kClkPvWait);
            named_barrier_sync(kSeeVote + c, kWarpgroupThreads);
            clk.mark(kClkReleaseBarrier);
            if (lane == 0) loader.own_part(warp, false, p, maps, sbase, kv_head);
            clk.mark(kClkBoxIssue);
          }
          wgmma_wait<0>();
          clk.mark(kClkPvWait);
          if (theirs < end && lane == 0) mbar_arrive(seesaw_taken(sbase, 1 - c));
          if (mine < end) {
            if (lo) {
              named_barrier_sync(kSeeVote + c, kWarpgroupThreads);
              if (lane == 0) loader.own_part(warp, true, p, maps, sbase, kv_head);
            }
            if (lane == 0) loader.rest(warp, false, p, fields, maps, sbase, kv_head, clk);
          }
          clk.mark(kClkRelease);
          const int position = a == first ? kClkPairFirst : (a + 2 >= end ? kClkPairLast : kClkPairMiddle);
          clk.add_since(position, pair_start);
          clk.count(position + 3, 1000u);
        }
        clk.gate(true);
        it = end;
        ++nq;
        // Both consumers have scored every page of the segment: Q may be reloaded.
        named_barrier_sync_unaligned(kSeeQ, kSeesawThreads);
        load_q(next_paged(r + 1));
        clk.mark(kClkQReload);
      }
      // Epilogue: both halves and row sums to the larger of the two consumers' maxima, the sums
      // added in a fixed order (deterministic).
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        rows.l[e] += __shfl_xor_sync(0xffffffffu, rows.l[e], 1);
        rows.l[e] += __shfl_xor_sync(0xffffffffu, rows.l[e], 2);
      }
      // Exchange areas alternate by segment, so that no barrier closes the epilogue: a consumer
      // writes this parity's area again only past the next segment's exchange, which the other
      // arrives at after its reads here; the hand-over slots were read before this exchange.
      // An mbarrier, not a named barrier: racecheck reported the exchange's words under a
      // 256-thread barrier.sync (docs/perf-log.md, entry 119).
      float* exch = reinterpret_cast<float*>(smem + SeesawSmem::kExchange) + (ne & 1) * 256;
      float* s_row_sum = exch;          // [consumer * 128 + row]
      float* s_row_max = exch + 64;     // [consumer * 128 + row]
      if (cs.tq == 0) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          s_row_sum[c * 128 + cs.row0 + 8 * e] = rows.l[e];
          s_row_max[c * 128 + cs.row0 + 8 * e] = rows.m[e];
        }
      }
      mbar_arrive(seesaw_exchange(sbase));
      mbar_wait(seesaw_exchange(sbase), static_cast<uint32_t>(ne) & 1u);
      clk.mark(kClkEpilogueExchange);
      float m_final[2], l_final[2], alpha[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int rl = cs.row0 + 8 * e;
        const float m0 = s_row_max[rl], m1 = s_row_max[128 + rl];
        m_final[e] = fmaxf(m0, m1);
        l_final[e] = s_row_sum[rl] * softmax_rescale(m0, m_final[e], cs.sl2) +
                     s_row_sum[128 + rl] * softmax_rescale(m1, m_final[e], cs.sl2);
        alpha[e] = softmax_rescale(c == 0 ? m0 : m1, m_final[e], cs.sl2);
      }
      if (alpha[0] != 1.f || alpha[1] != 1.f) Consumer<T>::scale_o(o, alpha);
      store_wide_tile_rows<T>(p, dst, r, kv_head, m_base, cs.row0, cs.tq, c, o, m_final,
                              [&](int e, int) { return l_final[e]; });
      clk.mark(kClkEpilogueStore);
      ++ne;
    }
    cta_span_end(it, nq);
    // Thread 0 (the loader) and thread 32 of each consumer report, in slots c and 2 + c.
    clk.flush(t == 32 ? 2 + c : c, t == 0 || t == 32);
  }
}

template <typename T>
void launch_decode_seesaw(const DecodeParams& params, cudaStream_t stream) {
  register_phase_clock_report();
  launch_decode_kernel<mla_decode_seesaw_kernel<T>, SeesawSmem::kBytes, kTileRows, kSeesawThreads>(
      params, stream, "mla_decode_seesaw_kernel");
}

}  // namespace flashmla::sm90
