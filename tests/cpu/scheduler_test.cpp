// Invariants of the split plan (get_mla_metadata on Backend::cpu), checked by walking every
// part the way the decode kernel does, with plan::part_work.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "common/split_plan.h"
#include "flashmla/decode.h"

namespace flashmla {
namespace {

struct Plan {
  std::vector<int32_t> metadata;   // [num_parts, 8]
  std::vector<int32_t> num_splits; // [batch + 1]
};

Plan make_plan(const std::vector<int32_t>& seqlens, int num_parts, int rows_per_kv = 64) {
  Plan p;
  p.metadata.assign(static_cast<size_t>(num_parts) * kMetadataFields, -77);
  p.num_splits.assign(seqlens.size() + 1, -77);
  MetadataArgs args;
  args.cache_seqlens = seqlens.data();
  args.batch = static_cast<int>(seqlens.size());
  args.num_q_tokens_per_head_k = rows_per_kv;
  args.num_heads_kv = 1;
  args.num_sm_parts = num_parts;
  args.tile_scheduler_metadata = p.metadata.data();
  args.num_splits = p.num_splits.data();
  get_mla_metadata(Backend::cpu, args);
  return p;
}

struct Range {
  int request;
  int blk_begin;
  int blk_end;
  int split_idx;
  int part;
};

// The plan's fixed units a request (split_plan.h, request_fixed_cost), restated: 4 where a part
// has two or more row tiles of 64 rows, else 2.
int fixed_units(int rows_per_kv) { return rows_per_kv > 64 ? 4 : 2; }

// Checks one plan; returns through gtest assertions.
void check_plan(const std::vector<int32_t>& seqlens, int num_parts, int rows_per_kv = 64) {
  const Plan plan = make_plan(seqlens, num_parts, rows_per_kv);
  const int batch = static_cast<int>(seqlens.size());
  const int fixed = fixed_units(rows_per_kv);
  ASSERT_EQ(plan::request_fixed_cost(rows_per_kv), fixed);

  // Recomputed here from the model in split_plan.h's header comment, not from its helpers.
  std::vector<int64_t> start(batch + 1, 0);
  std::vector<int> nblk(batch);
  int64_t largest = 0;
  for (int r = 0; r < batch; ++r) {
    nblk[r] = (seqlens[r] + 63) / 64;
    start[r + 1] = start[r] + nblk[r] + fixed;
    largest = std::max<int64_t>(largest, nblk[r] + fixed);
  }
  const int64_t total = start[batch];
  // The span: the least cost in the model of split_plan.h (span, the fixed units where a request is
  // split, kCombineCostScaled / 64 for the combine then, kSlotCost a slot of a row tile's
  // min(rows_per_kv, 64) rows per part) among the spans of
  // num_parts - k busy parts for k < 1 + num_parts / 16 (at most 9), then the largest request's
  // cost (at least the k = 0 span); the earlier on a tie.
  const int64_t slot_rows = std::min(rows_per_kv, 64);
  const int span_candidates = std::min(1 + num_parts / 16, 9);
  std::vector<int64_t> spans;
  for (int k = 0; k < span_candidates; ++k) {
    const int n = num_parts - k;
    spans.push_back(std::max<int64_t>(1, (total + n - 1) / n));
  }
  spans.push_back(std::max(largest, spans[0]));
  int64_t span = 0, best_cost = -1;
  int busy_parts = 0;   // for the mean-load bound: num_parts - k, or 0 (no bound) for the last candidate
  for (size_t i = 0; i < spans.size(); ++i) {
    const int64_t s = spans[i];
    int64_t slots = 0;
    for (int r = 0; r < batch; ++r) {
      const int64_t a = start[r] + fixed, b = a + nblk[r];   // cuts q * s with a < q * s < b
      const int64_t cuts = nblk[r] > 0 ? (b - 1) / s - a / s : 0;
      if (cuts > 0) slots += cuts + 1;
    }
    const int64_t split = slots > 0 ? fixed * 64 + plan::kCombineCostScaled : 0;
    const int64_t cost = (s * 64 + split) * num_parts + plan::kSlotCost * slots * slot_rows;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      span = s;
      busy_parts = i + 1 < spans.size() ? num_parts - static_cast<int>(i) : 0;
    }
  }

  std::vector<Range> ranges;
  std::vector<int64_t> load(num_parts, 0);
  for (int p = 0; p < num_parts; ++p) {
    const int32_t* row = &plan.metadata[static_cast<size_t>(p) * kMetadataFields];
    ASSERT_EQ(row[6], 0) << "part " << p;
    ASSERT_EQ(row[7], 0) << "part " << p;
    if (row[plan::kReqEnd] < row[plan::kReqBegin]) {
      // Idle parts are exactly those whose range starts past the total.
      ASSERT_GE(p * span, total) << "part " << p << " idle but has work";
      continue;
    }
    ASSERT_LT(p * span, total) << "part " << p << " should be idle";
    ASSERT_GE(row[plan::kReqBegin], 0);
    ASSERT_LT(row[plan::kReqEnd], batch);
    for (int r = row[plan::kReqBegin]; r <= row[plan::kReqEnd]; ++r) {
      const plan::PartWork w = plan::part_work(row, r, nblk[r]);
      if (!w.active) continue;
      ranges.push_back(Range{r, w.blk_begin, w.blk_end, w.split_idx, p});
      load[p] += w.blk_end - w.blk_begin;
      if (w.blk_begin == 0) load[p] += fixed;
    }
  }

  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.request != b.request ? a.request < b.request : a.blk_begin < b.blk_begin;
  });
  ASSERT_EQ(plan.num_splits[0], 0);
  size_t i = 0;
  int max_splits = 0;
  for (int r = 0; r < batch; ++r) {
    SCOPED_TRACE(::testing::Message() << "request " << r << " seqlen " << seqlens[r]);
    int n = 0;
    int covered = 0;   // blocks [0, covered) seen so far, each exactly once
    int last_part = -1;
    for (; i < ranges.size() && ranges[i].request == r; ++i, ++n) {
      const Range& g = ranges[i];
      ASSERT_EQ(g.blk_begin, covered) << "gap or overlap in the blocks";
      ASSERT_EQ(g.split_idx, n) << "split indexes must be 0, 1, ... in block order";
      ASSERT_GT(g.part, last_part) << "splits must follow part order";
      if (nblk[r] > 0) ASSERT_LT(g.blk_begin, g.blk_end) << "active ranges are not empty";
      covered = g.blk_end;
      last_part = g.part;
    }
    ASSERT_EQ(covered, nblk[r]) << "blocks not all covered";
    ASSERT_GE(n, 1) << "every request, even an empty one, is handled by one part";
    if (nblk[r] == 0) ASSERT_EQ(n, 1) << "an empty request is written by exactly one part";
    ASSERT_EQ(n, plan::request_num_splits(start[r], nblk[r], span, fixed));
    ASSERT_LE(n, num_parts);
    ASSERT_EQ(plan.num_splits[r + 1] - plan.num_splits[r], n > 1 ? n : 0);
    max_splits = std::max(max_splits, n);
  }
  ASSERT_EQ(i, ranges.size());
  ASSERT_LE(plan.num_splits[batch], 2 * (num_parts - 1)) << "more partial slots than the workspace holds";

  // Load bound. A part counts its blocks plus F = fixed for every request whose block 0 (or, for
  // an empty request, whose start) it holds. Those units all lie in the part's range [a, a + span),
  // except that the fixed units of the first request may begin up to F before a (its block 0 is at
  // P_r + F >= a) and those of an empty request owned last may reach F - 1 past the end. Hence
  // load <= span + 2F - 1 and, with span <= mean + 1 over the busy parts, max load <= that
  // mean + 2F (the spans of num_parts - k parts; the largest request's cost has the first bound
  // only). The loads add up to the total cost.
  int64_t sum = 0;
  for (int p = 0; p < num_parts; ++p) {
    ASSERT_LE(load[p], span + 2 * fixed - 1) << "part " << p;
    if (busy_parts > 0) {
      ASSERT_LE(static_cast<double>(load[p]), static_cast<double>(total) / busy_parts + 2 * fixed)
          << "part " << p;
    }
    sum += load[p];
  }
  ASSERT_EQ(sum, total);

  // Deterministic: recomputing gives the same plan.
  const Plan again = make_plan(seqlens, num_parts, rows_per_kv);
  ASSERT_EQ(again.metadata, plan.metadata);
  ASSERT_EQ(again.num_splits, plan.num_splits);
}

std::vector<int32_t> random_lengths(std::mt19937_64& rng, int batch) {
  std::vector<int32_t> lengths(batch);
  const int style = static_cast<int>(rng() % 5);
  const int common = static_cast<int>(rng() % (1 << 20 | 1));
  for (int32_t& len : lengths) {
    switch (style) {
      case 0: len = static_cast<int32_t>(rng() % ((1 << 20) + 1)); break;            // uniform
      case 1: len = static_cast<int32_t>((1ull << (rng() % 21)) - 1 + rng() % 2); break;  // log-spread
      case 2: len = rng() % 3 == 0 ? 0 : static_cast<int32_t>(rng() % 5000); break;  // many empty
      case 3: len = common; break;                                                   // all equal
      default: len = static_cast<int32_t>(rng() % 200); break;                       // short
    }
  }
  return lengths;
}

const int kPartCounts[] = {1, 2, 7, 66, 132, 264};
const int kRowsPerKv[] = {16, 64, 128, 1, 65, 256, 48};   // both fixed costs, 7 against kPartCounts' 6

TEST(Scheduler, RandomSmallBatches) {
  std::mt19937_64 rng(2024);
  for (int iter = 0; iter < 300; ++iter) {
    const int batch = 1 + static_cast<int>(rng() % (iter < 200 ? 16 : 300));
    const std::vector<int32_t> lengths = random_lengths(rng, batch);
    const int parts = kPartCounts[iter % 6];
    SCOPED_TRACE(::testing::Message() << "iter " << iter << " batch " << batch << " parts " << parts << " rows "
                                      << kRowsPerKv[iter % 7]);
    check_plan(lengths, parts, kRowsPerKv[iter % 7]);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(Scheduler, LargeBatches) {
  std::mt19937_64 rng(99);
  const int batches[] = {4096, 65536, 65536, 20000};
  for (int k = 0; k < 4; ++k) {
    const std::vector<int32_t> lengths = random_lengths(rng, batches[k]);
    const int parts = kPartCounts[(k * 5 + 1) % 6];
    SCOPED_TRACE(::testing::Message() << "batch " << batches[k] << " parts " << parts << " rows " << kRowsPerKv[k]);
    check_plan(lengths, parts, kRowsPerKv[k]);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(Scheduler, EdgeShapes) {
  for (int parts : kPartCounts) {
    for (int rows : {16, 64, 128}) {
      SCOPED_TRACE(::testing::Message() << parts << " parts, " << rows << " rows");
      check_plan({0}, parts, rows);                    // less work than parts: most parts idle
      check_plan({1}, parts, rows);
      check_plan({0, 0, 0, 0}, parts, rows);
      check_plan({1 << 20}, parts, rows);              // one long request split everywhere
      check_plan({64 * 1000, 0, 64 * 1000}, parts, rows);
      check_plan(std::vector<int32_t>(300, 0), parts, rows);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(Scheduler, EmptyBatchMakesEveryPartIdle) {
  for (int parts : kPartCounts) {
    std::vector<int32_t> metadata(static_cast<size_t>(parts) * kMetadataFields, 5);
    int32_t num_splits = -1;
    MetadataArgs args;
    args.batch = 0;
    args.num_q_tokens_per_head_k = 1;
    args.num_sm_parts = parts;
    args.tile_scheduler_metadata = metadata.data();
    args.num_splits = &num_splits;
    get_mla_metadata(Backend::cpu, args);
    EXPECT_EQ(num_splits, 0);
    for (int p = 0; p < parts; ++p) {
      const int32_t* row = &metadata[static_cast<size_t>(p) * kMetadataFields];
      EXPECT_LT(row[plan::kReqEnd], row[plan::kReqBegin]);
      EXPECT_EQ(row[6], 0);
      EXPECT_EQ(row[7], 0);
    }
  }
}

TEST(Scheduler, SmPartsNeverExceedTheSmCount) {
  for (int h_kv : {1, 2, 8}) {
    for (int rows = 1; rows <= 16384; ++rows) {
      const int parts = num_sm_parts_for(132, rows, h_kv);
      ASSERT_GE(parts, 1);
      ASSERT_LE(parts, 132) << "rows " << rows << " h_kv " << h_kv;
      // When a part's CTAs fit on the GPU, all parts together fit too.
      const int ctas_per_part = plan::num_row_tiles(rows) * h_kv;
      if (ctas_per_part <= 132) ASSERT_LE(parts * ctas_per_part, 132) << "rows " << rows << " h_kv " << h_kv;
    }
  }
  EXPECT_EQ(num_sm_parts_for(132, 64, 1), 132);
  EXPECT_EQ(num_sm_parts_for(132, 128, 1), 66);
}

// Busy parts (rows with work) and partial slots of a plan.
std::pair<int, int> busy_parts_and_slots(const Plan& plan, int num_parts) {
  int busy = 0;
  for (int p = 0; p < num_parts; ++p) {
    const int32_t* row = &plan.metadata[static_cast<size_t>(p) * kMetadataFields];
    busy += row[plan::kReqEnd] >= row[plan::kReqBegin] ? 1 : 0;
  }
  return {busy, plan.num_splits.back()};
}

// Equal requests that a few idle parts keep whole are not split (perf-log entry 124): 64 of 8192
// keys over 66 parts run as 64 parts of one request each, 128 of 4096 as 64 parts of two, 256 of
// 2048 as 64 of four, all with no partial slot; where splitting is inherent (16 of 32768 keys, a
// request four parts long) or the equal span already cuts at request boundaries (132 of 4096 keys
// on 132 parts), every part stays busy. Fewer short requests than parts run one a part with the
// rest idle (the largest request's span, perf-log entry 132): 64 of 256 keys at 64 rows over 132
// parts, and 100 of them. Where a split plan only ties with one whole request a part, the combine's
// fixed cost keeps them whole (perf-log entry 133): 16 of 256 keys and 8 of 128 at 128 rows, 64 of
// 256 at 16 rows, 512 of 2048 at 16 rows as 128 parts of four; 24 of 128 keys at 32 rows and 48 of
// 256 at 16 rows, cheaper split in the model, stay split.
TEST(Scheduler, FewerBusyPartsKeepEqualRequestsWhole) {
  struct Case {
    int batch, keys, parts, rows, busy, slots;
  };
  const Case cases[] = {{64, 8192, 66, 128, 64, 0},  {128, 4096, 66, 128, 64, 0}, {256, 2048, 66, 128, 64, 0},
                        {128, 4096, 132, 16, 128, 0}, {132, 4096, 132, 16, 132, 0}, {64, 256, 132, 64, 64, 0},
                        {100, 256, 132, 64, 100, 0}, {16, 256, 66, 128, 16, 0},   {8, 128, 66, 128, 8, 0},
                        {64, 256, 132, 16, 64, 0},    {512, 2048, 132, 16, 128, 0}, {24, 128, 132, 32, 96, 48},
                        {48, 256, 132, 16, 96, 96}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.batch << " x " << c.keys << " keys, " << c.parts << " parts");
    const std::vector<int32_t> lengths(c.batch, c.keys);
    const auto [busy, slots] = busy_parts_and_slots(make_plan(lengths, c.parts, c.rows), c.parts);
    EXPECT_EQ(busy, c.busy);
    EXPECT_EQ(slots, c.slots);
    check_plan(lengths, c.parts, c.rows);
  }
  const std::vector<int32_t> long_requests(16, 32768);
  const auto [busy, slots] = busy_parts_and_slots(make_plan(long_requests, 66, 128), 66);
  EXPECT_EQ(busy, 66);
  EXPECT_GT(slots, 16);
  // Fewer than 16 parts: no span candidate but the equal span, and the largest request's cost (two
  // requests of 100 pages over 3 parts stay split: 68 units a part and 4 slots beat 102 units).
  EXPECT_EQ(plan::plan_candidates(15), 2);
  EXPECT_EQ(busy_parts_and_slots(make_plan({6400, 6400}, 3, 64), 3).first, 3);
}

}  // namespace
}  // namespace flashmla

TEST(Scheduler, CombineWarpsPerRowFollowSplitsPerRequest) {
  using flashmla::plan::combine_warps_per_row;
  EXPECT_EQ(combine_warps_per_row(132, 1, 8), 8);    // one request over every part
  EXPECT_EQ(combine_warps_per_row(66, 16, 8), 4);    // about 4 parts per request
  EXPECT_EQ(combine_warps_per_row(66, 128, 8), 1);   // a few slots per request
  EXPECT_EQ(combine_warps_per_row(3, 1, 8), 2);      // a power of two not above the splits
  EXPECT_EQ(combine_warps_per_row(132, 0, 8), 1);    // empty batch: any valid width
  for (int parts = 1; parts <= 300; ++parts) {
    for (int batch : {1, 2, 3, 7, 64, 1000}) {
      const int w = combine_warps_per_row(parts, batch, 8);
      EXPECT_GE(w, 1);
      EXPECT_LE(w, 8);
      EXPECT_EQ(w & (w - 1), 0) << "power of two, dividing the 8 warps of a CTA";
    }
  }
}

// The decode grid merges its own splits exactly where the slot-parallel combine would run; each
// CTA takes the fewest units at once (a power of two up to its 16 slot groups) that cover them.
TEST(Scheduler, GridMergeShapesAndUnitsAtOnce) {
  using flashmla::plan::combine_threads_per_slot;
  using flashmla::plan::grid_merge_units_at_once;
  using flashmla::plan::merge_in_decode_grid;
  EXPECT_TRUE(merge_in_decode_grid(132, 1, 16, 132));    // b = 1, h_q = 16
  EXPECT_TRUE(merge_in_decode_grid(66, 1, 128, 132));    // b = 1, h_q = 128
  EXPECT_FALSE(merge_in_decode_grid(66, 4, 128, 132));   // 512 rows: the row-per-warp combine
  EXPECT_FALSE(merge_in_decode_grid(1, 1, 16, 132));     // never split
  for (int parts = 1; parts <= 300; parts += 13) {
    for (int batch : {1, 2, 5, 64}) {
      for (int rows : {1, 16, 48, 128}) {
        EXPECT_EQ(merge_in_decode_grid(parts, batch, rows, 132), combine_threads_per_slot(parts, batch, rows, 132) != 0);
      }
    }
  }
  EXPECT_EQ(grid_merge_units_at_once(128, 132), 1);    // b = 1, h_q = 16: 16 rows x 8 units
  EXPECT_EQ(grid_merge_units_at_once(132, 132), 1);
  EXPECT_EQ(grid_merge_units_at_once(133, 132), 2);
  EXPECT_EQ(grid_merge_units_at_once(256, 132), 2);
  EXPECT_EQ(grid_merge_units_at_once(512, 132), 4);    // b = 4, h_q = 16
  EXPECT_EQ(grid_merge_units_at_once(1024, 132), 8);   // b = 1, h_q = 128
  EXPECT_EQ(grid_merge_units_at_once(2112, 132), 16);
  EXPECT_EQ(grid_merge_units_at_once(100000, 132), 16);   // more than one round
  EXPECT_EQ(grid_merge_units_at_once(0, 132), 1);
  for (int64_t units = 1; units <= 5000; units += 37) {
    const int k = grid_merge_units_at_once(units, 132);
    EXPECT_EQ(k & (k - 1), 0) << "a power of two dividing the 16 slot groups";
    EXPECT_LE(k, 16);
    if (k < 16) EXPECT_GE(132 * k, units) << "one round";
    if (k > 1) EXPECT_LT(132 * (k / 2), units) << "the fewest at once";
  }
}

TEST(Scheduler, CombineSlotLayoutOnlyForFewRowsWithManySlots) {
  using flashmla::plan::combine_threads_per_slot;
  EXPECT_EQ(combine_threads_per_slot(132, 1, 16, 132), 16);     // b = 1, h_q = 16: 64-channel chunks, 128 CTAs
  EXPECT_EQ(combine_threads_per_slot(66, 1, 128, 132), 32);     // b = 1, h_q = 128: 128-channel chunks, 512 CTAs
  EXPECT_EQ(combine_threads_per_slot(132, 4, 16, 132), 16);     // b = 4, h_q = 16: 512 CTAs
  EXPECT_EQ(combine_threads_per_slot(66, 4, 128, 132), 0);      // 512 rows: a row per warp fills the GPU
  EXPECT_EQ(combine_threads_per_slot(132, 16, 16, 132), 0);     // 256 rows
  EXPECT_EQ(combine_threads_per_slot(132, 128, 16, 132), 0);    // about one split per request
  EXPECT_EQ(combine_threads_per_slot(1, 1, 16, 132), 0);        // never split
  EXPECT_EQ(combine_threads_per_slot(132, 0, 16, 132), 0);      // empty batch
  EXPECT_EQ(combine_threads_per_slot(132, 2, 33, 132), 16);     // 66 rows: 528 CTAs, one wave
  EXPECT_EQ(combine_threads_per_slot(132, 2, 34, 132), 32);     // 68 rows: 272 CTAs
  for (int parts = 1; parts <= 300; parts += 7) {
    for (int batch : {1, 2, 3, 7, 64, 1000}) {
      for (int rows : {1, 16, 33, 128, 256}) {
        const int t = combine_threads_per_slot(parts, batch, rows, 132);
        EXPECT_TRUE(t == 0 || t == 16 || t == 32) << t;
        if (t != 0) {
          const int64_t ctas = static_cast<int64_t>(batch) * rows * (128 / t);
          EXPECT_GE(parts / batch, 2) << "only requests split over several parts";
          EXPECT_LT(static_cast<int64_t>(batch) * rows, 132) << "only when a row per CTA leaves SMs idle";
          EXPECT_LE(ctas, 4 * 132) << "one wave at four CTAs per SM";
        }
      }
    }
  }
}

// The slot-parallel combine takes the one-CTA-an-SM register budget only where its grid has at
// most a CTA an SM; that happens with 64-channel chunks only, and four CTAs an SM keep every other
// slot-parallel grid in one wave.
TEST(Scheduler, CombineSlotCtasPerSmFollowTheGridSize) {
  using flashmla::plan::combine_slot_ctas_per_sm;
  using flashmla::plan::combine_threads_per_slot;
  EXPECT_EQ(combine_slot_ctas_per_sm(128, 132), 1);   // b = 1, h_q = 16: 16 rows x 8 chunks
  EXPECT_EQ(combine_slot_ctas_per_sm(132, 132), 1);
  EXPECT_EQ(combine_slot_ctas_per_sm(133, 132), 4);
  EXPECT_EQ(combine_slot_ctas_per_sm(512, 132), 4);   // b = 1, h_q = 128; b = 4, h_q = 16
  for (int parts = 2; parts <= 300; parts += 7) {
    for (int batch : {1, 2, 3, 7}) {
      for (int rows = 1; rows <= 140; ++rows) {
        const int t = combine_threads_per_slot(parts, batch, rows, 132);
        if (t == 0) continue;
        const int64_t ctas = static_cast<int64_t>(batch) * rows * (128 / t);
        const int per_sm = combine_slot_ctas_per_sm(ctas, 132);
        EXPECT_LE(ctas, static_cast<int64_t>(per_sm) * 132) << "one wave";
        if (t == 32) EXPECT_EQ(per_sm, 4) << "128-channel chunks never have a CTA an SM at most";
      }
    }
  }
}

TEST(Scheduler, DecodeTileRowsCoverTheRowsOfAKvGroup) {
  using flashmla::plan::decode_tile_rows;
  EXPECT_EQ(decode_tile_rows(1), 16);
  EXPECT_EQ(decode_tile_rows(16), 16);    // h_q = 16, s_q = 1
  EXPECT_EQ(decode_tile_rows(17), 32);
  EXPECT_EQ(decode_tile_rows(32), 32);    // h_q = 32, s_q = 1; h_q = 16, s_q = 2
  EXPECT_EQ(decode_tile_rows(33), 64);
  EXPECT_EQ(decode_tile_rows(128), 64);   // wide tiles, ceil(rows / 64) of them
  for (int rows = 1; rows <= 300; ++rows) {
    const int t = decode_tile_rows(rows);
    // A narrow tile holds every row of the group (the grid has one row tile then).
    if (t < 64) EXPECT_LE(rows, t);
    EXPECT_EQ(flashmla::plan::num_row_tiles(rows), (rows + 63) / 64);
  }
}

TEST(Scheduler, DecodeClustersPairTheWideRowTilesOfAPart) {
  using flashmla::plan::decode_cluster_rows;
  using flashmla::plan::decode_tile_rows;
  using flashmla::plan::num_row_tiles;
  EXPECT_EQ(decode_cluster_rows(64, 2), 2);   // h_q = 128, s_q = 1 (R = 128)
  EXPECT_EQ(decode_cluster_rows(64, 4), 2);   // h_q = 128, s_q = 2 (R = 256): two pairs
  EXPECT_EQ(decode_cluster_rows(64, 1), 1);   // R = 64: one row tile, nothing shares its pages
  EXPECT_EQ(decode_cluster_rows(64, 3), 1);   // R = 192: an odd tile count cannot pair up
  EXPECT_EQ(decode_cluster_rows(32, 1), 1);   // narrow kernels: one row tile
  EXPECT_EQ(decode_cluster_rows(16, 1), 1);
  for (int rows = 1; rows <= 1024; ++rows) {
    const int tiles = num_row_tiles(rows);
    const int c = decode_cluster_rows(decode_tile_rows(rows), tiles);
    ASSERT_TRUE(c == 1 || c == 2) << rows;
    EXPECT_EQ(tiles % c, 0) << "a cluster must tile the grid's y extent, rows " << rows;
    if (c == 2) EXPECT_GT(rows, 64) << "only wide tiles of a group with several row tiles pair up";
  }
}
