// The parts the two SM90 decode kernels share: the walk over a CTA's metadata row, the producer
// warpgroup (TMA stream of KV pages, cp.async loads of each request's Q tile), the zeroing of
// a tail page's garbage V rows, the visible-key limits, and the launch with its shared-memory
// opt-in. The kernels differ only in their consumers (decode_wgmma_kernel.cuh: 64 query rows
// per tile; decode_narrow_kernel.cuh: 16 or 32 rows, transposed products).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "common/decode_params.h"
#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/phase_clocks.cuh"
#include "kernels/sm90/programmatic_launch.h"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/smem_layout.cuh"

namespace flashmla::sm90 {

inline constexpr int kWarpgroupThreads = 128;
inline constexpr int kDecodeThreads = 3 * kWarpgroupThreads;   // 2 consumer warpgroups + producer
inline constexpr int kConsumerRegs = 232;
inline constexpr int kProducerRegs = 40;
inline constexpr int kQLoaderThreads = 96;   // producer warps 1-3
inline constexpr int kMaxDevices = 64;       // devices whose smem opt-in is remembered

// One request's share of this CTA's metadata row.
struct Segment {
  int seqlen;
  int blk_begin, blk_end;
  int split_idx;
  bool active;
};

__device__ __forceinline__ Segment segment_of(const DecodeParams& p, const int32_t* fields, int r) {
  const long long max_keys = static_cast<long long>(p.max_blocks_per_seq) * plan::kBlockN;
  int seqlen = p.cache_seqlens[r];
  if (seqlen < 0) seqlen = 0;
  if (seqlen > max_keys) seqlen = static_cast<int>(max_keys);
  const int nblk = plan::num_kv_blocks(seqlen);
  const plan::PartWork w = plan::part_work(fields, r, nblk);
  Segment s;
  s.seqlen = seqlen;
  s.blk_begin = w.blk_begin;
  s.blk_end = w.blk_end < nblk ? w.blk_end : nblk;
  if (s.blk_end < s.blk_begin) s.blk_end = s.blk_begin;
  s.split_idx = w.split_idx;
  s.active = w.active;
  return s;
}

// Keys of the request visible to query row m (token m / q_heads_per_kv): all of them, or for a
// causal s_q > 1 call those up to len - s_q + token.
__device__ __forceinline__ int visible_keys(const DecodeParams& p, int seqlen, int m) {
  int l = seqlen;
  if (p.causal) {
    const int c = seqlen - p.seqlen_q + m / p.q_heads_per_kv + 1;
    l = c < l ? c : l;
  }
  return l;
}

__device__ __forceinline__ uint64_t kmajor_desc(uint32_t addr) { return smem_desc_sw128(addr, 16, 1024); }

// KV ring of two 72 KiB stages, shared by the producer and the consumers. A ring of two-part
// pages fills each stage through two full barriers: full() for the chunks in_page_part_a, full_b()
// for the rest, so that the first score MMAs of a page may start while its last chunks land.
struct KvRing {
  uint32_t stage0, stage1, full0, full1, empty0, empty1, full_b0, full_b1;
  __device__ __forceinline__ uint32_t stage(int it) const { return (it & 1) ? stage1 : stage0; }
  __device__ __forceinline__ uint32_t full(int it) const { return (it & 1) ? full1 : full0; }
  __device__ __forceinline__ uint32_t full_b(int it) const { return (it & 1) ? full_b1 : full_b0; }
  __device__ __forceinline__ uint32_t empty(int it) const { return (it & 1) ? empty1 : empty0; }
  __device__ __forceinline__ uint32_t full_parity(int it) const { return (it >> 1) & 1; }
};

// The pipeline's mbarriers, 8 B each from a kernel layout's barrier offset: the ring's full0, full1,
// empty0, empty1, then the Q tile's full and empty (init_pipeline_barriers gives their counts),
// then, for a ring of two-part pages only, full_b0 and full_b1.
inline constexpr uint32_t kPipelineBarrierBytes = 48;
inline constexpr uint32_t kTwoPartBarrierBytes = 16;
#ifdef FLASHMLA_EXPERIMENT_UNWAITED_LOADS
inline constexpr uint32_t kUnwaitedLoadBarrierBytes = 8;   // after full_b1: counts the unwaited pages' bytes
#else
inline constexpr uint32_t kUnwaitedLoadBarrierBytes = 0;
#endif
// The experiment's barrier (FLASHMLA_EXPERIMENT_UNWAITED_LOADS): the 8 bytes after full_b1.
__device__ __forceinline__ uint32_t unwaited_load_barrier(const KvRing& ring) { return ring.full_b1 + 8; }

// The chunks of a two-part page's first part: channel chunks 0-2 and 4-6, which the first score
// MMAs of consumer 0 and 1 read (48 KiB); the second part is chunks 3, 7 and the RoPE chunk 8.
__host__ __device__ constexpr bool in_page_part_a(int chunk) { return chunk != 3 && chunk != 7 && chunk != 8; }
inline constexpr int kPagePartAChunks = [] {
  int n = 0;
  for (int c = 0; c < kHeadDim / kChunkCols; ++c) n += in_page_part_a(c) ? 1 : 0;
  return n;
}();

// A ring's two-part pages, as a count of the CTA's leading pages (its page numbers it <
// kPagesInTwoParts) that load in two parts: kNoPages, some, or kEveryPage. The later pages load
// whole, on full() alone. Each full_b() barrier then completes one phase per two-part page of its
// stage, and since those pages come first, page it waits for phase full_parity(it) on either barrier.
inline constexpr int kNoPages = 0;
inline constexpr int kEveryPage = 1 << 30;
template <int kPagesInTwoParts>
__device__ __forceinline__ bool page_in_two_parts(int it) {
  if constexpr (kPagesInTwoParts <= kNoPages) {
    return false;
  } else if constexpr (kPagesInTwoParts >= kEveryPage) {
    return true;
  } else {
    return it < kPagesInTwoParts;
  }
}

struct Pipeline {
  KvRing ring;
  uint32_t q_full, q_empty;
};

// stage0: the first KV stage (the second follows it); bars: kPipelineBarrierBytes of mbarriers.
__device__ __forceinline__ Pipeline pipeline_at(uint32_t stage0, uint32_t bars) {
  return Pipeline{KvRing{stage0, stage0 + kTileBytes, bars, bars + 8, bars + 16, bars + 24, bars + 48, bars + 56},
                  bars + 32, bars + 40};
}

// The row maxima P is taken against are allowed to lag behind the true ones: a page whose scores
// stay below the reference + kLazyMaxLog2 / scale_log2 is exponentiated against the reference as
// it is (P <= 2^kLazyMaxLog2, exact in fp32 sums and in the hi + lo split, whose error is relative),
// so the consumers need not agree on a new maximum on every page. Only a page that raises a
// row's maximum by more than that (every row's first page, or a jump of 2^8 in weight) takes the
// slow path: the consumers exchange their maxima and rescale P, O and the sums.
inline constexpr float kLazyMaxLog2 = 8.f;

// 2^((from - to) * scale_log2), the factor that moves a running sum from row maximum `from` to
// `to`; 1 while the row has seen no key (to = -inf).
__device__ __forceinline__ float softmax_rescale(float from, float to, float scale_log2) {
  return to == -INFINITY ? 1.f : exp2_ftz((from - to) * scale_log2);
}

// bf16 P enters P @ V as hi + lo bf16 terms, and the lo term is dropped where it carries little
// weight: it is dropped (wide kernel: for a page, by a vote of every thread; narrow kernel: per
// thread and page, over all its rows at once) when the squared weights that went without lo stay
// below tau^2 times the square of the thread's share of the running row sum. Summed over the
// threads of a row that bounds the dropped squared weights by tau^2 * (row sum)^2, so the dropped
// rounding errors (each under 2^-8 of its weight) have an RMS of about 2^-9 * tau * rms(V) or
// less in an output element, while the pages that carry a row's weight keep lo (docs/design.md,
// precision). tau = 0 keeps lo everywhere.
#ifndef FLASHMLA_P_LO_TAU
#define FLASHMLA_P_LO_TAU 0.25f
#endif
inline constexpr float kPLoTau2 = float(FLASHMLA_P_LO_TAU) * float(FLASHMLA_P_LO_TAU);

// Whether this thread wants the lo term: sq = its squared weights of the page (for one row), sum
// = its share of the row sum including the page, dropped = squared weights so far without lo (all
// three in the current row-maximum scale).
__device__ __forceinline__ bool wants_p_lo(float dropped, float sq, float sum) {
  return dropped + sq > kPLoTau2 * sum * sum;
}

// Where a request segment's rows go, in one int: `out`/`lse` when the request is not split
// (kUnsplit), else a partial slot (>= 0), or nowhere when the slot would lie outside the workspace
// (kNoSlot; a valid plan has none). The kernels read it at the segment's start and hold it through
// the page loop: read in the epilogue, its round trip to L2 held back every store of a CTA's
// segment (docs/perf-log.md, entry 80).
struct RequestOutput {
  static constexpr int kUnsplit = -1;
  static constexpr int kNoSlot = -2;
  int code;
  __device__ __forceinline__ bool split() const { return code != kUnsplit; }
  __device__ __forceinline__ bool slot_ok() const { return code >= 0; }
  __device__ __forceinline__ int slot() const { return code; }
};

__device__ __forceinline__ RequestOutput request_output(const DecodeParams& p, int r, int split_idx) {
  const int n_slots = p.num_splits[r + 1] - p.num_splits[r];
  if (n_slots <= 0) return {RequestOutput::kUnsplit};
  const int slot = p.num_splits[r] + split_idx;
  const bool ok = split_idx < n_slots && slot >= 0 && slot < p.max_partial_slots;
  return {ok ? slot : RequestOutput::kNoSlot};
}

// Natural-log lse of a row from its raw-score maximum m and its sum l of 2^((s - m) * scale_log2).
// A row that saw no key: +inf in the output (SPEC), -inf in a partial (it weighs nothing in the
// combine). No branch: logf(0) = -inf is computed and not selected, so that ptxas overlaps the
// epilogues' rows (a branch per row or column kept it from doing so, docs/perf-log.md, entry 134).
__device__ __forceinline__ float row_lse(float m, float l, float softmax_scale, bool split) {
  const float v = m * softmax_scale + logf(l);
  return l > 0.f ? v : (split ? -INFINITY : INFINITY);
}

// 1 / l for a row sum l, 0 for l = 0, with no branch. A row with a visible key has l >= 1 (the key
// at its reference maximum weighs exactly 1, and lazy maxima only ever lag below the true one),
// so l lies in the exponent range where rcp.approx and one Newton step, the fast path of IEEE
// 1.f / l, round correctly: the result equals 1.f / l bit for bit there.
__device__ __forceinline__ float row_sum_reciprocal(float l) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(l));
  r = fmaf(r, fmaf(-l, r, 1.f), r);
  return l > 0.f ? r : 0.f;
}

// The physical page of block blk of request r.
__device__ __forceinline__ int block_table_entry(const DecodeParams& p, int r, int blk) {
  return p.block_table[static_cast<int64_t>(r) * p.block_table_stride + blk];
}

// Walks the pages (request, block) of the active segments of a metadata row in consumer order.
struct PageCursor {
  const DecodeParams* p;
  const int32_t* fields;
  int r, req_end, blk, blk_end;
  bool valid;

  __device__ __forceinline__ PageCursor(const DecodeParams& params, const int32_t* f, int req_begin, int last)
      : p(&params), fields(f), r(req_begin - 1), req_end(last), blk(0), blk_end(0), valid(true) {
    next_request();
  }
  // A walk saved at a valid page (blk < blk_end of request r).
  __device__ __forceinline__ PageCursor(const DecodeParams& params, const int32_t* f, int r_at, int last, int blk_at,
                                        int blk_end_at)
      : p(&params), fields(f), r(r_at), req_end(last), blk(blk_at), blk_end(blk_end_at), valid(true) {}
  __device__ __forceinline__ void next_request() {
    for (++r; r <= req_end; ++r) {
      const Segment sg = segment_of(*p, fields, r);
      if (sg.active && sg.blk_begin < sg.blk_end) {
        blk = sg.blk_begin;
        blk_end = sg.blk_end;
        return;
      }
    }
    valid = false;
  }
  __device__ __forceinline__ void advance() {
    if (++blk >= blk_end) next_request();
  }
  __device__ __forceinline__ int page() const {
    return block_table_entry(*p, r, blk);   // blk < seqlen's blocks
  }
};

// Producer warp 0, one lane: every page of every active segment of the metadata row, in the
// order the consumers walk them, as nine 64-channel x 64-token TMA boxes (128-byte swizzle).
// Each stage is released by one arrival per consumer warp (8). For a page in two parts
// (page_in_two_parts) the boxes of part A (in_page_part_a) go first, on full(), then the others on
// full_b(). kOneRowTile: the kernel's grids always have one row tile per kv head (the narrow
// kernels, whose tile holds every row).
template <int kPagesInTwoParts, bool kOneRowTile>
__device__ __forceinline__ void produce_kv_pages(const DecodeParams& p, const CUtensorMap* kv_map,
                                                 const int32_t* fields, int req_begin, int req_end, int kv_head,
                                                 const KvRing& ring) {
  prefetch_tensor_map(kv_map);
  // A page read by one CTA only (one row tile per kv head) is dead in L2 once it has landed, so
  // it is loaded evict-first; with two row tiles the second CTA's read should hit L2
  // (docs/perf-log.md, entry 15).
#if defined(FLASHMLA_EXPERIMENT_NO_EVICT_FIRST) || defined(FLASHMLA_EXPERIMENT_L2_PAGES)
  const bool evict_first = false;
#else
  // A constant where the kernel always has one row tile, so that its producer has no second,
  // unhinted load path (perf-log entry 68).
  const bool evict_first = kOneRowTile || p.num_row_tiles == 1;
#endif
  const uint64_t policy = l2_policy_evict_first();
  // The table entry of the part's first tile, read before the cursor has read its request's
  // length: the two reads overlap, and the CTA's first page is issued one round trip to L2 sooner
  // (perf-log entry 80). Used only when the cursor starts there; an unused read stays in the table.
  const int first_blk = fields[plan::kBlkBegin];
  const bool first_read = req_begin <= req_end && first_blk >= 0 && first_blk < p.max_blocks_per_seq;
  const int first_page =
      first_read ? block_table_entry(p, req_begin, first_blk) : 0;
  PageCursor load(p, fields, req_begin, req_end);
#ifdef FLASHMLA_EXPERIMENT_STAGGER_NS
  // Timing only (perf-log entry 94): part x issues its first page (x % 8) x STAGGER_NS ns late, so
  // that the parts' page streams do not start in phase.
  {
    const unsigned long long t0 = global_ns();
    const unsigned long long delay = (blockIdx.x % 8) * static_cast<unsigned long long>(FLASHMLA_EXPERIMENT_STAGGER_NS);
    while (global_ns() - t0 < delay) {
    }
  }
#endif
  // Producer clocks: p0 = wait for a free stage, p1 = TMA issue to landed. A page's landing is
  // waited for only after the next page has been issued (or after the last one), which never
  // delays an issue: the next stage to free is the landed page's own. Waiting right after each
  // issue held one page in flight and slowed memory-bound rows (docs/perf-log.md, entry 32).
  PhaseClocks clk;
#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
  uint32_t issued = 0;   // when the last page issued was
  auto landed = [&](int page_it) {
    mbar_wait(ring.full(page_it), ring.full_parity(page_it));
    clk.add_since(1, issued);
  };
#endif
  int it = 0;
  for (; load.valid; ++it, load.advance()) {
    clk.start();
    mbar_wait(ring.empty(it), ring.full_parity(it) ^ 1);
    clk.mark(0);
    clk.page();
    timeline_page_issued(it);
    const bool two_part = page_in_two_parts<kPagesInTwoParts>(it);
#if defined(FLASHMLA_EXPERIMENT_RESIDENT_PAGES) || defined(FLASHMLA_EXPERIMENT_L2_PREFETCH_PAGES)
    // Timing only (wrong results). RESIDENT_PAGES (perf-log entry 55): each stage is loaded once
    // per CTA, and later pages reuse its bytes, so the page loop runs with no loads in flight.
    // L2_PREFETCH_PAGES (entry 83): the same, but each later page is still read from HBM into L2
    // (a bulk prefetch), so the page loop runs with the HBM traffic and none of the L2 -> SM moves
    // or shared-memory writes.
#if defined(FLASHMLA_EXPERIMENT_NO_PAGE_WAITS) && defined(FLASHMLA_EXPERIMENT_PRODUCER_EXITS)
    // Timing only (perf-log entry 87): the wide kernel's consumers wait for no page after the CTA's
    // first two, so its producer warp can leave, to measure what the producer's barrier waits and
    // cursor cost them. (The narrow kernels wait for every page.)
    if (kPagesInTwoParts >= kEveryPage && it >= 2) break;
#endif
    if (it >= 2) {
#ifdef FLASHMLA_EXPERIMENT_L2_PREFETCH_PAGES
#pragma unroll
      for (int c = 0; c < kHeadDim / kChunkCols; ++c) tma_prefetch_4d_l2(kv_map, c * kChunkCols, 0, kv_head, load.page());
#endif
      mbar_arrive(ring.full(it));
      if (two_part) mbar_arrive(ring.full_b(it));
      continue;
    }
#endif
    // Timing only (wrong results; perf-log entry 55), FLASHMLA_EXPERIMENT_UNWAITED_LOADS: the page's
    // stage is signalled full at once, and its loads still go out into it, counted on a barrier
    // nobody waits for. The page loop then runs with the loads' shared-memory writes and traffic,
    // but never waits for a page.
#ifdef FLASHMLA_EXPERIMENT_UNWAITED_LOADS
    constexpr bool kUnwaited = kPagesInTwoParts >= kEveryPage;
#else
    constexpr bool kUnwaited = false;
#endif
    if constexpr (kUnwaited) {
      mbar_arrive(ring.full(it));
      mbar_arrive(ring.full_b(it));
      asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(unwaited_load_barrier(ring)),
                   "r"(kTileBytes)
                   : "memory");
    } else {
      mbar_arrive_expect_tx(ring.full(it), two_part ? kPagePartAChunks * kChunkBytes : kTileBytes);
    }
#ifdef FLASHMLA_EXPERIMENT_L2_PAGES
    // Timing only (wrong results; perf-log entry 57): each part cycles over two pages of its own
    // (the row tiles of a part share them, as they share real pages), so every load after the
    // first two hits L2: the page loop with its L2 -> SM traffic and shared-memory writes, and
    // no HBM reads.
    const int page = static_cast<int>((2u * blockIdx.x + static_cast<unsigned>(it & 1)) % static_cast<unsigned>(p.num_blocks));
#elif defined(FLASHMLA_EXPERIMENT_STREAM_PAGES)
    // Timing only (wrong results; perf-log entry 94): the page probe's order. Each part streams
    // consecutive pages of the cache from its own offset (its row tiles share them), and the block
    // table is not read. Offsets evenly spaced (1) or scattered by a multiplicative hash (2), as the
    // probe's are.
#if FLASHMLA_EXPERIMENT_STREAM_PAGES == 2
    const int64_t stream_start = static_cast<int64_t>(blockIdx.x * 2654435761u);
#else
    const int64_t stream_start = static_cast<int64_t>(blockIdx.x) * (p.num_blocks / static_cast<int>(gridDim.x));
#endif
    const int page = static_cast<int>((stream_start + it) % p.num_blocks);
    (void)first_page;
#else
    // Out of range: TMA fills zeros.
    const int page = it == 0 && load.r == req_begin && load.blk == first_blk ? first_page : load.page();
#endif
    auto load_chunk = [&](int c, uint32_t full) {
      const uint32_t dst = ring.stage(it) + c * kChunkBytes;
#ifdef FLASHMLA_EXPERIMENT_BULK_PAGES
      // Timing only (wrong results; perf-log entries 58, 94): the page's 72 contiguous KiB (one kv
      // head) as nine 8 KiB 1-D bulk copies, as the page probes load them, instead of nine boxes of
      // 64 rows 1,152 bytes apart. Chunk c then holds rows 64c / 9.. of the page, not channels 64c...
      if (p.num_heads_kv == 1 && page >= 0 && page < p.num_blocks) {
        const char* src = static_cast<const char*>(p.k_cache) + static_cast<int64_t>(page) * p.k_stride_block * 2 +
                          static_cast<int64_t>(c) * kChunkBytes;
        if (evict_first) {
          bulk_load_hint(dst, src, kChunkBytes, full, policy);
        } else {
          bulk_load(dst, src, kChunkBytes, full);
        }
        return;
      }
#endif
      if (evict_first) {
        tma_load_4d_hint(dst, kv_map, full, c * kChunkCols, 0, kv_head, page, policy);
      } else {
        tma_load_4d(dst, kv_map, full, c * kChunkCols, 0, kv_head, page);
      }
    };
    if constexpr (kUnwaited) {
#pragma unroll
      for (int c = 0; c < kHeadDim / kChunkCols; ++c) load_chunk(c, unwaited_load_barrier(ring));
      continue;
    }
    if (two_part) {
#pragma unroll
      for (int c = 0; c < kHeadDim / kChunkCols; ++c) {
        if (in_page_part_a(c)) load_chunk(c, ring.full(it));
      }
      mbar_arrive_expect_tx(ring.full_b(it), kTileBytes - kPagePartAChunks * kChunkBytes);
#pragma unroll
      for (int c = 0; c < kHeadDim / kChunkCols; ++c) {
        if (!in_page_part_a(c)) load_chunk(c, ring.full_b(it));
      }
    } else {
#pragma unroll
      for (int c = 0; c < kHeadDim / kChunkCols; ++c) load_chunk(c, ring.full(it));
    }
#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
    const uint32_t now = clk.now();
    if (it > 0) landed(it - 1);
    issued = now;
#endif
  }
#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
  if (it > 0) landed(it - 1);
#endif
#ifdef FLASHMLA_EXPERIMENT_UNWAITED_LOADS
  // The CTA outlives its last loads: the phase completes once all bytes landed.
  if constexpr (kPagesInTwoParts >= kEveryPage) {
    mbar_arrive(unwaited_load_barrier(ring));
    mbar_wait(unwaited_load_barrier(ring), 0);
  }
#endif
  clk.flush(2, true);
}

// Request r's Q tile (kRows query rows from m_base = token0 * q_heads_per_kv + the head offset of
// head0, all 576 channels) into sQ as nine TMA boxes of kRows x 128 B on q_full: one thread.
template <int kRows>
__device__ __forceinline__ void issue_q_tile_tma(const DecodeMaps& maps, int r, int token0, int head0, uint32_t sQ,
                                                 uint32_t q_full) {
  mbar_arrive_expect_tx(q_full, kRows * kHeadDim * 2);
#pragma unroll
  for (int c = 0; c < kHeadDim / kChunkCols; ++c) {
    tma_load_4d(sQ + c * kRows * 128, &maps.q, q_full, c * kChunkCols, head0, token0, r);
  }
}

// The same tile as 16-byte cp.async copies, by threads qt = 0..threads-1 (each commits its group;
// the caller waits for it and fences it for the async proxy). Rows past rows_per_kv are zero-filled.
template <int kRows>
__device__ __forceinline__ void issue_q_tile_cp_async(const DecodeParams& p, int r, int kv_head, int m_base,
                                                      uint32_t sQ, int qt, int threads) {
  const char* q_base = static_cast<const char*>(p.q);
  for (int u = qt; u < kRows * kUnitsPerRow; u += threads) {
    const int row = u / kUnitsPerRow;
    const int col = (u % kUnitsPerRow) * 8;
    const int m = m_base + row;
    const uint32_t dst = sQ + swizzled_offset(row, col, kRows * 128);
    if (m < p.rows_per_kv) {
      int i, h;
      token_and_head(p, kv_head, m, i, h);
      cp_async_16(dst, q_base + 2 * (r * p.q_stride_b + i * p.q_stride_s + h * p.q_stride_h + col), 16);
    } else {
      cp_async_16(dst, q_base, 0);
    }
  }
  cp_async_commit();
}

// Producer warps 1-3: the Q tile (kRows query rows from m_base, all 576 channels, chunks of
// kRows x 128 B) of every segment that has pages; rows past rows_per_kv are zero-filled. The
// consumers hold a Q tile for a whole request (q_empty: one arrival per consumer warp). With a Q
// tensor map (maps.q_by_tma) one thread loads each tile with TMA; otherwise (a grouping of rows
// no box describes, or a q layout TMA rejects) the 96 threads load it with cp.async.
template <int kRows>
__device__ __forceinline__ void load_q_tiles(const DecodeParams& p, const DecodeMaps& maps, const int32_t* fields,
                                             int req_begin, int req_end, int kv_head, int m_base, uint32_t sQ,
                                             uint32_t q_full, uint32_t q_empty, int qt) {
  // TMA: one thread, nine boxes per tile (make_decode_maps). Issuing the tile as 4,608 16-byte
  // cp.async took ~16,000 cycles a tile beside the consumers' MMAs (docs/perf-log.md, entry 26).
  const bool by_tma = maps.q_by_tma != 0;
  if (by_tma && qt != 0) return;
  if (by_tma) prefetch_tensor_map(&maps.q);
  const int token0 = m_base / p.q_heads_per_kv;
  const int head0 = kv_head * p.q_heads_per_kv + m_base % p.q_heads_per_kv;
  int n = 0;
  PhaseClocks clk;   // Q loader 0: p0 = wait for q_empty, p1 = issue, p2 = cp.async wait_all; pages = tiles
  for (int r = req_begin; r <= req_end; ++r) {
    const Segment sg = segment_of(p, fields, r);
    if (!sg.active || sg.blk_begin >= sg.blk_end) continue;
    clk.start();
    mbar_wait_idle(q_empty, (n & 1) ^ 1);
    clk.mark(0);
    clk.page();
    ++n;
    if (by_tma) {
      issue_q_tile_tma<kRows>(maps, r, token0, head0, sQ, q_full);
      clk.mark(1);
      continue;
    }
    issue_q_tile_cp_async<kRows>(p, r, kv_head, m_base, sQ, qt, kQLoaderThreads);
    clk.mark(1);
    cp_async_wait_all();
    clk.mark(2);
    fence_proxy_async_smem();
    mbar_arrive(q_full);
  }
  clk.flush(3, qt == 0);
}

// Both kernels' barriers: each KV stage fills with one TMA transaction count (two, on full and
// full_b, for two-part pages) and is released by one arrival per consumer warp (8); the Q tile
// fills with one TMA transaction count (or the 96 cp.async loader threads' arrivals) and is
// released by the 8 consumer warps. One thread, before the CTA's first __syncthreads.
template <bool kTwoPart>
__device__ __forceinline__ void init_pipeline_barriers(const Pipeline& pl, bool q_by_tma) {
  mbar_init(pl.ring.full0, 1);
  mbar_init(pl.ring.full1, 1);
  if constexpr (kTwoPart) {
    mbar_init(pl.ring.full_b0, 1);
    mbar_init(pl.ring.full_b1, 1);
#ifdef FLASHMLA_EXPERIMENT_UNWAITED_LOADS
    mbar_init(unwaited_load_barrier(pl.ring), 1);
#endif
  }
  mbar_init(pl.ring.empty0, 8);
  mbar_init(pl.ring.empty1, 8);
  mbar_init(pl.q_full, q_by_tma ? 1 : kQLoaderThreads);
  mbar_init(pl.q_empty, 8);
  fence_barrier_init();
}

#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
// The page timeline's observer (one thread of the producer warpgroup): when the CTA's first Q tile
// and each of its first pages landed, from the full barriers (for a two-part page, its second part).
template <int kPagesInTwoParts>
__device__ __forceinline__ void observe_page_landings(const DecodeParams& p, const int32_t* fields, int req_begin,
                                                      int req_end, const KvRing& ring, uint32_t q_full) {
  int pages = 0;
  for (PageCursor c(p, fields, req_begin, req_end); c.valid && pages < kTimelinePages; c.advance()) ++pages;
  if (pages == 0) return;
  mbar_wait_idle(q_full, 0);
  timeline_mark(kTlQLanded);
  for (int it = 0; it < pages; ++it) {
    mbar_wait_idle(ring.full(it), ring.full_parity(it));
    if (page_in_two_parts<kPagesInTwoParts>(it)) mbar_wait_idle(ring.full_b(it), ring.full_parity(it));
    timeline_mark(kTlLanded0 + it);
  }
}
#endif

// The producer warpgroup (thread pt of 128): warp 0 streams pages, warps 1-3 load Q tiles of kRows rows.
template <int kRows, int kPagesInTwoParts>
__device__ __forceinline__ void run_producer(const DecodeParams& p, const DecodeMaps& maps, const int32_t* fields,
                                             int req_begin, int req_end, int kv_head, int m_base, const KvRing& ring,
                                             uint32_t sQ, uint32_t q_full, uint32_t q_empty, int pt) {
  regs_decrease<kProducerRegs>();
  if (pt == 0) {
    produce_kv_pages<kPagesInTwoParts, (kRows < plan::kRowsPerTile)>(p, &maps.kv, fields, req_begin, req_end, kv_head,
                                                                     ring);
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
  } else if (pt == 64 && maps.q_by_tma != 0) {   // a thread the TMA Q loader leaves idle
    observe_page_landings<kPagesInTwoParts>(p, fields, req_begin, req_end, ring, q_full);
#endif
  } else if (pt >= 32) {
    load_q_tiles<kRows>(p, maps, fields, req_begin, req_end, kv_head, m_base, sQ, q_full, q_empty, pt - 32);
  }
}

// A CTA's range of requests: its row of the split plan (common/split_plan.h).
struct CtaRequests {
  const int32_t* fields;
  int begin, end;   // inclusive
};

// The start both decode kernels share: the pipeline barriers, the wait for the previous kernel
// (PDL), the CTA's metadata row, the early launch of the combine (PDL), and the producer
// warpgroup's whole run. Returns false in the producer's threads, which are done by then; the
// consumers return with their registers raised. kPagesInTwoParts: the CTA's leading pages that
// load in two parts (page_in_two_parts).
template <int kRows, int kPagesInTwoParts>
__device__ __forceinline__ bool start_decode_cta(const DecodeParams& p, const DecodeMaps& maps, const Pipeline& pl,
                                                 uint32_t sQ, int m_base, CtaRequests& work) {
  const int tid = threadIdx.x;
  if (tid == 0) init_pipeline_barriers<(kPagesInTwoParts > kNoPages)>(pl, maps.q_by_tma != 0);
  // This grid is launched with programmatic serialisation (launch_decode_kernel): it may start
  // while the previous kernel of the stream drains, so nothing in global memory (metadata, block
  // table, q, cache) is read before that kernel has completed.
  wait_for_primary_grid();
  cta_span_start();
  work.fields = p.tile_metadata + static_cast<int64_t>(blockIdx.x) * kMetadataFields;
  work.begin = work.fields[plan::kReqBegin];
  work.end = work.fields[plan::kReqEnd];

  // The combine may be scheduled once every CTA of this grid has started; it waits for this
  // grid's results itself, and its CTAs only fit on SMs that this kernel has left.
  allow_dependent_launch();
  __syncthreads();

  if (tid >= 2 * kWarpgroupThreads) {
    run_producer<kRows, kPagesInTwoParts>(p, maps, work.fields, work.begin, work.end, blockIdx.z, m_base, pl.ring, sQ,
                                  pl.q_full, pl.q_empty, tid - 2 * kWarpgroupThreads);
    return false;
  }
  regs_increase<kConsumerRegs>();
  return true;
}

// Cache rows at or past `valid` of a tail page may hold NaN/Inf: zero them in V channel chunks
// 4*half..4*half+3 so that P = 0 times garbage stays 0. t: thread index in the warpgroup.
__device__ __forceinline__ void zero_tail_rows(uint32_t stage, int half, int valid, int t) {
  const int units = (plan::kBlockN - valid) * 32;   // 16-byte units: rows x 4 chunks x 8
  for (int u = t; u < units; u += kWarpgroupThreads) {
    const int row = valid + u / 32;
    const int chunk = 4 * half + (u / 8) % 4;
    const uint32_t addr = stage + chunk * kChunkBytes + row * 128 + (u % 8) * 16;
    asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(addr), "r"(0) : "memory");
  }
}

// Whether calls may merge their split requests in the decode grid (plan::merge_in_decode_grid);
// FLASHMLA_GRID_MERGE=0 in the environment keeps the combine kernel for every call.
inline bool grid_merge_enabled() {
  const char* v = std::getenv("FLASHMLA_GRID_MERGE");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// Launches a decode kernel of signature (DecodeParams, DecodeMaps) over the plan's grid, then
// the combine when the plan has splits. kMergingKernel, where given, is the same kernel ending in
// merge_splits_in_grid: it runs instead, with no combine, where the call's shapes and the device
// allow (plan::merge_in_decode_grid, a cooperative launch of the whole grid). Opting in to
// > 48 KiB of dynamic shared memory is per kernel and per device, and so are the queries of how
// many clusters of two and how many cooperative CTAs the device holds; all are done once per
// device, so the calls a serving engine captures into a CUDA graph are launches only. Each
// instantiation of this template (one per kernel) keeps its own record.
template <auto kKernel, uint32_t kSmemBytes, int kQRows, int kThreads = kDecodeThreads, auto kMergingKernel = nullptr>
void launch_decode_kernel(const DecodeParams& params, cudaStream_t stream, const char* name) {
  constexpr bool kCanMerge = !std::is_null_pointer_v<decltype(kMergingKernel)>;
  register_cta_span_report();
  const DecodeMaps maps = make_decode_maps(params, kQRows);
  const dim3 grid(params.num_sm_parts, params.num_row_tiles, params.num_heads_kv);
  constexpr bool kMayPair = plan::decode_cluster_rows(kQRows, 2) > 1;   // the kernel's tiles can pair up
  // Per device: 0 until configured, then 1 + the clusters of two CTAs it holds at once, and 1 +
  // the CTAs a cooperative launch of the merging kernel may have.
  static std::atomic<int> configured[kMaxDevices] = {};
  static std::atomic<int> cooperative_ctas[kMaxDevices] = {};
  int device = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  int pairs = device < kMaxDevices ? configured[device].load(std::memory_order_acquire) - 1 : -1;
  int coop_ctas = device < kMaxDevices ? cooperative_ctas[device].load(std::memory_order_acquire) - 1 : -1;
  if (pairs < 0) {
    const int smem_bytes = static_cast<int>(kSmemBytes);
    cuda_check(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
    pairs = kMayPair ? max_active_clusters(kKernel, 2u, kThreads, kSmemBytes) : 0;
    coop_ctas = 0;
    if constexpr (kCanMerge) {
      cuda_check(cudaFuncSetAttribute(kMergingKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
      coop_ctas = max_cooperative_ctas(kMergingKernel, device, kThreads, kSmemBytes);
    }
    if (device < kMaxDevices) {
      cooperative_ctas[device].store(coop_ctas + 1, std::memory_order_release);
      configured[device].store(pairs + 1, std::memory_order_release);
    }
  }
  const int64_t ctas = static_cast<int64_t>(grid.x) * grid.y * grid.z;
  const bool merge_in_grid = kCanMerge && params.num_sm_parts > 1 && ctas <= coop_ctas &&
                             plan::merge_in_decode_grid(params.num_sm_parts, params.batch,
                                                        params.num_heads_kv * params.rows_per_kv, static_cast<int>(ctas)) &&
                             grid_merge_enabled();
  if constexpr (kCanMerge) {
    if (merge_in_grid) {
      // Without clusters: a cooperative launch is sized in CTAs, and these calls' CTAs share few pages.
      launch_programmatic_clustered(kMergingKernel, grid, 1u, kThreads, kSmemBytes, stream, name, true, params, maps);
      return;
    }
  }
  // Row tiles that read the same pages run as clusters of two (plan::decode_cluster_rows), where
  // the device holds the whole grid that way at once: the plan's grid is one wave, and a cluster
  // launch must not make it two.
  unsigned cluster_y = static_cast<unsigned>(plan::decode_cluster_rows(kQRows, params.num_row_tiles));
  if (cluster_y > 1 && 2 * static_cast<int64_t>(pairs) < ctas) cluster_y = 1;
  // Programmatic serialisation: the grid may be scheduled while the previous kernel drains (the
  // previous call's combine triggers it at its start) and waits for it in start_decode_cta. That
  // hides the launch gap between calls, e.g. between layers.
  launch_programmatic_clustered(kKernel, grid, cluster_y, kThreads, kSmemBytes, stream, name, false, params, maps);
#ifndef FLASHMLA_EXPERIMENT_SKIP_COMBINE   // timing only: split requests keep no output
  if (params.num_sm_parts > 1) launch_combine(params, stream);
#endif
}

}  // namespace flashmla::sm90
