// Split-KV scheduling: how the KV blocks of a batch are divided among persistent CTAs.
//
// Pure functions, compiled for host and device from this one source: the CPU metadata,
// the GPU metadata kernel, the decode kernel's work loop and the CPU tests all use them,
// so the plan is the same bit for bit everywhere.
//
// Model. Request r costs cost_r = nblk_r + F units, where nblk_r is its number of 64-token KV
// tiles and F = request_fixed_cost(rows) stands for the per-request work that does not scale with
// length (loading Q, the first page's maxima, the softmax epilogue, writing the output). Requests
// are laid end to end on a line of cost units, P_r = sum of cost_{r'} for r' < r, total = P_b.
// The line is cut into pieces of T units, T = ceil(total / n) where n is num_parts or, where that
// keeps requests whole, a few fewer, or T = the largest request's cost (pick_plan_candidate):
// part p owns [p*T, (p+1)*T); parts past the total idle.
// A cut inside request r falls on block clamp(cut - P_r - F, 0, nblk_r) of it, so
// every block belongs to exactly one part, and each part's load is at most T + 2F - 1 units (the
// fixed units of requests at its edges).
//
// Splits. The non-empty block ranges of one request, in part order, are its splits
// 0, 1, ..., n_r - 1; everything about them has a closed form in (P_r, nblk_r, T), which is
// why no part needs to look at another part's work. A request with no blocks (seqlen 0) has
// one split, owned by the part whose range contains P_r, which writes its empty output.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FLASHMLA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FLASHMLA_HOST_DEVICE inline
#endif

namespace flashmla::plan {

inline constexpr int kBlockN = 64;          // keys per KV tile: one cache page
inline constexpr int kRowsPerTile = 64;     // query rows (token x head of one kv group) per CTA

// Fields of one tile_scheduler_metadata row (int32[8]).
enum MetadataField : int {
  kReqBegin = 0,          // first request the part touches
  kBlkBegin = 1,          // first KV tile of kReqBegin
  kReqEnd = 2,            // last request the part touches (inclusive); kReqEnd < kReqBegin: idle part
  kBlkEnd = 3,            // one past the last KV tile of kReqEnd
  kFirstSplitIdx = 4,     // split index of the part's range of kReqBegin
  kFirstReqOwned = 5,     // 1 if the part's range starts exactly at kReqBegin's start (P_r)
};

FLASHMLA_HOST_DEVICE int num_kv_blocks(int seqlen) {
  // written so that lengths near INT_MAX do not overflow
  return seqlen <= 0 ? 0 : seqlen / kBlockN + (seqlen % kBlockN != 0 ? 1 : 0);
}

FLASHMLA_HOST_DEVICE int64_t request_cost(int seqlen, int fixed_cost) {
  return static_cast<int64_t>(num_kv_blocks(seqlen)) + fixed_cost;
}

FLASHMLA_HOST_DEVICE int num_row_tiles(int num_q_tokens_per_head_k) {
  return (num_q_tokens_per_head_k + kRowsPerTile - 1) / kRowsPerTile;
}

// Query rows per consumer tile of the decode kernel for rows_per_kv = s_q * h_q / h_kv rows:
// 16 or 32 (the narrow kernel: transposed products, keys on the MMA's 64-row side) when they
// fit, else 64 (the wide kernel). A narrow tile computes 16 or 32 rows instead of 64 per page,
// which keeps the memory-bound shapes streaming (docs/design.md).
FLASHMLA_HOST_DEVICE int decode_tile_rows(int rows_per_kv) {
  return rows_per_kv <= 16 ? 16 : (rows_per_kv <= 32 ? 32 : kRowsPerTile);
}

// F, the units the plan charges each request on top of its KV tiles, in pages of the kernel that
// runs the request's row tiles, for rows_per_kv = s_q * h_q / h_kv: 4 where a part has two or more
// row tiles (R > 64), else 2. A request segment costs the one-page kernel ~2.5 pages and the
// seesaw, which runs most tiles of R > 64, ~4.3 (CTA-span fits, perf-log entry 124). Charged too
// little, a part that starts several short requests gets as many pages as one that continues a
// long one. Same-call grid scans of 2, 3 and 4 (perf-log entry 125; 2 was tuned for every shape in
// entry 56, before the seesaw): at R > 64, 4 took 1-6% off the varlen rows of s_k 4096-8192 (H200
// and H100) and costs ~1% on 16,1,128,32768 (one more page a part). At R = 64, 3 gained ~1% where
// the seesaw runs but, odd, broke the whole-part fit of equal requests of 2^k pages (64,1,64,8192:
// 132 parts, some with two segments, instead of 129 of half a request each; 3% slower), and 4
// lost at s_k 4096; the narrow tiles lost with either.
// Host and device take F from here, so the CPU and GPU plans stay equal.
FLASHMLA_HOST_DEVICE int request_fixed_cost(int rows_per_kv) {
  return rows_per_kv > kRowsPerTile ? 4 : 2;
}

// CTAs per cluster along the grid's row-tile axis (y) for a decode grid of `num_row_tiles` row
// tiles of `tile_rows` rows: 2 when the wide kernel's row tiles pair up, else 1. The row tiles of
// a part read the same pages; launched as a cluster, a pair runs in one GPC (presumably the
// second read of each page then hits the L2 partition next to both). No data moves between the
// two CTAs. Measured 1-3% faster on the rows with two or four row tiles (perf-log entry 65).
// The launch keeps it only where the device holds the whole grid as clusters in one wave
// (launch_decode_kernel).
FLASHMLA_HOST_DEVICE constexpr int decode_cluster_rows(int tile_rows, int num_row_tiles) {
  return tile_rows == kRowsPerTile && num_row_tiles % 2 == 0 ? 2 : 1;
}

// Warps of the combine kernel that share one query row's slots: a power of two in
// [1, max_warps], about the number of splits per request the plan makes (num_parts / batch).
// Depends on the shapes only, so the merge order, and hence the result, is fixed for them.
FLASHMLA_HOST_DEVICE int combine_warps_per_row(int num_parts, int batch, int max_warps) {
  const int per_request = batch > 0 ? num_parts / batch : 1;
  int w = 1;
  while (w * 2 <= max_warps && w * 2 <= per_request) w *= 2;
  return w;
}

// Layout of the slot-parallel combine kernel, or 0 for the row-per-warp one. When a few long
// requests are split over most parts, the row-per-warp kernel has fewer CTAs than SMs (one row per
// CTA at most) and each CTA waits on long chains of loads; the slot-parallel kernel then gives a CTA
// one chunk of a row's channels and spreads the row's slots over its threads. Returned: the
// threads that load one slot's chunk, 4 channels each: 16 (64-channel chunks) when that grid fits
// one wave at four CTAs per SM, else 32 (128-channel chunks, within one wave since rows < sms).
// `rows` counts the query rows of one request over all kv heads, `sms` the SMs the plan spreads
// over. Depends on the shapes only, so the merge order, and hence the result, is fixed for them.
FLASHMLA_HOST_DEVICE int combine_threads_per_slot(int num_parts, int batch, int rows, int sms) {
  if (batch <= 0 || rows <= 0 || num_parts / batch < 2) return 0;
  const int64_t total_rows = static_cast<int64_t>(batch) * rows;
  if (total_rows >= sms) return 0;
  return total_rows * 8 <= 4 * static_cast<int64_t>(sms) ? 16 : 32;
}

// CTAs an SM the slot-parallel combine is built for, from its grid's size: 1 where the grid has at
// most one CTA an SM (`sms` as in combine_threads_per_slot), so that a thread may hold every slot
// load of its round in registers; else 4, so that the grid stays one wave (b = 4 and 1,1,128 have
// 512 CTAs). Both builds sum the slots in the same order: the result does not depend on it.
FLASHMLA_HOST_DEVICE int combine_slot_ctas_per_sm(int64_t ctas, int sms) { return ctas <= sms ? 1 : 4; }

// Whether the decode grid merges its split requests itself, behind a grid barrier, instead of
// the combine kernel: for the shapes the slot-parallel combine serves (a few rows, each split over
// many parts), where the second kernel's launch and hand-over are a large share of the call
// (docs/perf-log.md, entries 62 and 102). The launch must also be cooperative, which the device
// decides (launch_decode_kernel), and the build must have FLASHMLA_EXPERIMENT_GRID_MERGE (entry
// 102 measured it no faster than the combine). `ctas` is the decode grid's size.
FLASHMLA_HOST_DEVICE bool merge_in_decode_grid(int num_parts, int batch, int rows, int ctas) {
  return combine_threads_per_slot(num_parts, batch, rows, ctas) != 0;
}

// The decode grid's merge deals out units of (request, kv head, query row, 64 channels);
// each CTA merges this many units at once, its 16 slot groups shared round-robin among them: the
// smallest power of two in [1, 16] whose batches cover every unit in one round, else 16 (more
// rounds). Depends on the shapes only, so the merge order, and hence the result, is fixed for them.
FLASHMLA_HOST_DEVICE int grid_merge_units_at_once(int64_t units, int ctas) {
  int k = 1;
  while (k < 16 && static_cast<int64_t>(ctas) * k < units) k *= 2;
  return k;
}

// Units of cost per part. At least 1 so that parts always advance.
FLASHMLA_HOST_DEVICE int64_t part_span(int64_t total_cost, int num_parts) {
  const int64_t t = (total_cost + num_parts - 1) / num_parts;
  return t < 1 ? 1 : t;
}

// Fewer busy parts to keep requests whole. Cut into num_parts equal pieces, a batch of near-equal
// requests is split almost everywhere: 64 requests of 128 pages over 66 parts are 66 pieces of 127
// units, each request in two, so every part runs two request segments and the combine merges 128
// partial slots; over 64 parts (span 130) each part runs one whole request and nothing is merged.
// A piece that starts inside a request costs its part a segment the model does not charge (the
// F units sit at the request's start), and a split request costs the combine its slots.
// The plan therefore tries candidate spans and keeps the cheapest in plan_cost_scaled (the
// earlier candidate on a tie):
// - k = 0 .. plan_span_candidates(num_parts) - 1: the span of num_parts - k busy parts. Measured:
//   FlashMLA's planner keeps such requests whole, and took 0.83-0.86 of our time on 64,1,128,8192
//   and 128,1,128,4096 with fixed lengths (H100; docs/perf-log.md, entry 124).
// - the last: the largest request's cost (at least the k = 0 span), so that a batch of equal
//   requests runs one whole request a part however many parts idle. Fewer requests than parts, each
//   of a few pages, are otherwise cut where F and the span fall apart: 64 requests of 4 pages at
//   R = 64 (6 units each) over 132 parts ran at span 4 (96 busy parts, 64 requests split) with a
//   combine, 1.26x FlashMLA's time in CUDA graphs (H200; entry 132).
inline constexpr int kMaxSpanCandidates = 9;
inline constexpr int kMaxPlanCandidates = kMaxSpanCandidates + 1;
FLASHMLA_HOST_DEVICE int plan_span_candidates(int num_parts) {
  const int k = num_parts / 16;   // up to ~6% of the parts idle
  return 1 + (k < kMaxSpanCandidates - 1 ? k : kMaxSpanCandidates - 1);
}
FLASHMLA_HOST_DEVICE int plan_candidates(int num_parts) { return plan_span_candidates(num_parts) + 1; }

// The span of candidate i of plan_candidates(num_parts); max_request_cost is the largest
// request_cost of the batch.
FLASHMLA_HOST_DEVICE int64_t candidate_span(int i, int64_t total_cost, int num_parts, int64_t max_request_cost) {
  if (i < plan_span_candidates(num_parts)) return part_span(total_cost, num_parts - i);
  const int64_t equal = part_span(total_cost, num_parts);
  return max_request_cost > equal ? max_request_cost : equal;
}

// Units of one part that merging one partial slot of 64 rows costs, spread over the parts: the
// combine of 128 slots of 128 rows took ~18 us on 66 parts of two row tiles, ~8.5 CTA-pages of
// ~2.1 us (H100, entry 124), so ~4.4 units for each slot of 64 rows and part.
inline constexpr int64_t kSlotCost = 4;

// Rows a row tile carries, for the slot cost: min(rows_per_kv, 64), at least 1.
FLASHMLA_HOST_DEVICE int plan_rows_per_tile(int rows_per_kv) {
  return rows_per_kv < 1 ? 1 : (rows_per_kv < kRowsPerTile ? rows_per_kv : kRowsPerTile);
}

// What the combine's grid costs a plan that splits any request, beyond its slots, in 1/64 units: a
// quarter of a page, for its hand-over from the decode grid and its first round of loads. It
// decides the near-ties between a few short requests cut into parts of 1-8 pages with a combine
// and one whole request a part with none, which the model otherwise handed to the split plan
// (the earlier candidate on a tie). Over the 45 measured rows whose pick it changes (b = 2-512,
// requests of 2-64 pages) whole took 0.92 (H200) and 0.90 (H100) of the time, 0.76-1.02; half a
// page also took rows of R = 32 that ran up to 1.08x slower whole (docs/perf-log.md, entry 133).
inline constexpr int64_t kCombineCostScaled = 16;

// The model's cost of a plan, times 64 * num_parts (integers, so that CPU and GPU pick alike): the
// span, F more where some request is split (a part starting inside it), the combine's fixed cost
// then, and the slots' merge. rows_per_kv: s_q * h_q / h_kv; a slot weighs the rows of its row
// tile, min(rows_per_kv, 64).
FLASHMLA_HOST_DEVICE int64_t plan_cost_scaled(int64_t span, int64_t slots, int num_parts, int rows_per_kv) {
  const int64_t split = slots > 0 ? request_fixed_cost(rows_per_kv) * 64 + kCombineCostScaled : 0;
  return (span * 64 + split) * num_parts + kSlotCost * slots * plan_rows_per_tile(rows_per_kv);
}

// The candidate of least cost, given each candidate's span and partial slots.
FLASHMLA_HOST_DEVICE int pick_plan_candidate(const int64_t* spans, const int64_t* slots, int candidates,
                                             int num_parts, int rows_per_kv) {
  int best = 0;
  int64_t best_cost = plan_cost_scaled(spans[0], slots[0], num_parts, rows_per_kv);
  for (int k = 1; k < candidates; ++k) {
    const int64_t c = plan_cost_scaled(spans[k], slots[k], num_parts, rows_per_kv);
    if (c < best_cost) {
      best_cost = c;
      best = k;
    }
  }
  return best;
}

// The KV tile of request r (starting at P_r, nblk tiles) at which a cut at `pos` falls.
FLASHMLA_HOST_DEVICE int block_at(int64_t pos, int64_t request_start, int nblk, int fixed_cost) {
  const int64_t b = pos - request_start - fixed_cost;
  return b <= 0 ? 0 : (b >= nblk ? nblk : static_cast<int>(b));
}

// Number of splits (non-empty block ranges) of a request: 1 + the cuts strictly inside its blocks.
FLASHMLA_HOST_DEVICE int request_num_splits(int64_t request_start, int nblk, int64_t span, int fixed_cost) {
  if (nblk <= 0) return 1;
  const int64_t first_block_pos = request_start + fixed_cost;          // position of block 0
  const int64_t end_pos = first_block_pos + nblk;                       // P_{r+1}
  // cuts q*span with first_block_pos < q*span < end_pos
  const int64_t q_lo = first_block_pos / span + 1;
  const int64_t q_hi = (end_pos + span - 1) / span - 1;
  return 1 + static_cast<int>(q_hi >= q_lo ? q_hi - q_lo + 1 : 0);
}

// Split index of part p's range of a request that the part does not start (P_r < p*span).
// Counts the cuts q*span <= p*span that fall strictly after the request's block 0 position.
FLASHMLA_HOST_DEVICE int split_index_for_part(int part, int64_t request_start, int64_t span, int fixed_cost) {
  const int64_t idx = static_cast<int64_t>(part) - (request_start + fixed_cost) / span;
  return idx > 0 ? static_cast<int>(idx) : 0;
}

// Slots of split partials a request needs in the workspace: none when it is not split.
FLASHMLA_HOST_DEVICE int request_partial_slots(int num_splits) {
  return num_splits > 1 ? num_splits : 0;
}

// The same for the request that starts at `request_start` with `seqlen` keys, cut at `span`.
FLASHMLA_HOST_DEVICE int request_partial_slots(int64_t request_start, int seqlen, int64_t span, int fixed_cost) {
  return request_partial_slots(request_num_splits(request_start, num_kv_blocks(seqlen), span, fixed_cost));
}

// Writes the metadata fields that request r contributes: the begin of every part whose
// range starts inside [P_r, P_{r+1}) and the end of every part whose range ends inside
// (P_r, P_{r+1}]. Each part's begin and end are written by exactly one request.
// `row(p)` returns a pointer to part p's kMetadataFields int32s.
template <typename RowOf>
FLASHMLA_HOST_DEVICE void emit_part_bounds(int r, int64_t request_start, int seqlen, int64_t span,
                                           int64_t total_cost, int num_parts, int fixed_cost, RowOf row) {
  const int nblk = num_kv_blocks(seqlen);
  const int64_t request_end = request_start + nblk + fixed_cost;
  for (int64_t p = request_start / span; p < num_parts; ++p) {
    const int64_t begin = p * span;
    if (begin >= request_end) break;
    const int64_t end = begin + span < total_cost ? begin + span : total_cost;
    int32_t* fields = row(static_cast<int>(p));
    if (begin >= request_start) {
      fields[kReqBegin] = r;
      fields[kBlkBegin] = block_at(begin, request_start, nblk, fixed_cost);
      fields[kFirstSplitIdx] = split_index_for_part(static_cast<int>(p), request_start, span, fixed_cost);
      fields[kFirstReqOwned] = begin == request_start ? 1 : 0;
    }
    if (end > request_start && end <= request_end) {
      fields[kReqEnd] = r;
      fields[kBlkEnd] = block_at(end, request_start, nblk, fixed_cost);
    }
  }
}

// Row contents for a part that gets no work (its range starts past the total cost).
template <typename Fields>
FLASHMLA_HOST_DEVICE void write_idle_part(Fields* fields) {
  fields[kReqBegin] = 0;
  fields[kBlkBegin] = 0;
  fields[kReqEnd] = -1;
  fields[kBlkEnd] = 0;
  fields[kFirstSplitIdx] = 0;
  fields[kFirstReqOwned] = 0;
  fields[6] = 0;
  fields[7] = 0;
}

// What one part does with request r, derived from its metadata row. The decode kernel and
// the CPU tests walk requests req_begin..req_end and call this for each.
struct PartWork {
  int blk_begin;   // KV tiles [blk_begin, blk_end) of the request
  int blk_end;
  int split_idx;   // which split of the request this range is
  bool active;     // false: nothing to do for this request in this part
};

FLASHMLA_HOST_DEVICE PartWork part_work(const int32_t* fields, int r, int nblk) {
  PartWork w;
  const bool first = r == fields[kReqBegin];
  w.blk_begin = first ? fields[kBlkBegin] : 0;
  w.blk_end = r == fields[kReqEnd] ? fields[kBlkEnd] : nblk;
  if (w.blk_end > nblk) w.blk_end = nblk;
  if (w.blk_begin < 0) w.blk_begin = 0;
  w.split_idx = first ? fields[kFirstSplitIdx] : 0;
  if (nblk == 0) {
    w.active = !first || fields[kFirstReqOwned] != 0;   // the owner writes the empty output
  } else {
    w.active = w.blk_begin < w.blk_end;
  }
  return w;
}

}  // namespace flashmla::plan
