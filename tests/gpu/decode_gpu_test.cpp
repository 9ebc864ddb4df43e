// The CUDA decode (GPU metadata + split-KV decode + combine) against the CPU reference, through
// the public C++ API. Every output buffer and the workspace are filled with NaN before each call,
// so a single element the kernels fail to write shows up as a mismatch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <sstream>

#include "common/split_plan.h"
#include "gpu/gpu_harness.h"

namespace flashmla::testing {
namespace {

std::string describe(const CaseSpec& s) {
  std::ostringstream os;
  os << dtype_name(s.dtype) << " b=" << s.batch << " s_q=" << s.seqlen_q << " h_q=" << s.num_heads_q
     << " h_kv=" << s.num_heads_kv << (s.causal ? " causal" : "") << " schedule=" << wide_schedule_name(s.wide_schedule)
     << " seqlens=[";
  for (size_t i = 0; i < s.seqlens.size() && i < 8; ++i) os << (i ? "," : "") << s.seqlens[i];
  if (s.seqlens.size() > 8) os << ",...";
  os << "]";
  return os.str();
}

void expect_plan_matches_cpu(const Plan& gpu, const HostCase& c) {
  const int rows = c.spec.seqlen_q * (c.spec.num_heads_q / c.spec.num_heads_kv);
  const Plan cpu = cpu_plan(c.seqlens, rows, c.spec.num_heads_kv, gpu.num_sm_parts);
  EXPECT_EQ(gpu.metadata, cpu.metadata) << "GPU tile_scheduler_metadata differs from the CPU plan";
  EXPECT_EQ(gpu.num_splits, cpu.num_splits) << "GPU num_splits differs from the CPU plan";
}

void expect_matches(const DeviceOutput& got, const DeviceOutput& want, const CaseSpec& s) {
  const Comparison out = compare_out(got.out, want.out, s.dtype);
  EXPECT_TRUE(out.ok) << describe(s) << "\nout: " << out.message << " (max abs " << out.max_abs_error
                      << ", cosine diff " << out.cosine_diff << ", mismatches " << out.mismatches << ")";
  const Comparison lse = compare_lse(got.lse, want.lse);
  EXPECT_TRUE(lse.ok) << describe(s) << "\nlse: " << lse.message << " (max abs " << lse.max_abs_error
                      << ", mismatches " << lse.mismatches << ")";
}

void run_one(const CaseSpec& spec, int num_sm_parts) {
  SCOPED_TRACE(describe(spec));
  const HostCase c = make_case(spec);
  DeviceCase d(c);
  const Plan plan = d.make_plan(num_sm_parts);
  expect_plan_matches_cpu(plan, c);
  const DeviceOutput got = d.decode();
  expect_matches(got, reference_output(c), spec);
}

// A case with 64-row tiles left on automatic (the one-page kernel) runs under both schedules (WideSchedule).
void run_and_check(const CaseSpec& spec, int num_sm_parts = 0) {
  const int rows = spec.seqlen_q * (spec.num_heads_q / spec.num_heads_kv);
  if (spec.wide_schedule != WideSchedule::automatic || plan::decode_tile_rows(rows) != plan::kRowsPerTile) {
    run_one(spec, num_sm_parts);
    return;
  }
  for (WideSchedule schedule : {WideSchedule::one_page, WideSchedule::seesaw}) {
    CaseSpec s = spec;
    s.wide_schedule = schedule;
    run_one(s, num_sm_parts);
  }
}

CaseSpec spec_of(DType dtype, int batch, int s_q, int h_q, int h_kv, bool causal, std::vector<int> seqlens,
                 uint64_t seed) {
  CaseSpec s;
  s.dtype = dtype;
  s.batch = batch;
  s.seqlen_q = s_q;
  s.num_heads_q = h_q;
  s.num_heads_kv = h_kv;
  s.causal = causal;
  s.seqlens = std::move(seqlens);
  s.seed = seed;
  return s;
}

struct HeadPair {
  int h_q, h_kv;
};
const HeadPair kHeads[] = {{1, 1},  {16, 1},  {16, 2},  {16, 8},  {64, 1},  {64, 2},
                           {64, 8}, {128, 1}, {128, 2}, {128, 8}, {65, 1}};

// Every head layout x s_q x causal, three requests whose lengths cover a partial page, a page
// boundary and several pages (and, with few cost units, get split across many parts).
TEST(GpuDecode, ShapesBf16) {
  uint64_t seed = 100;
  for (const HeadPair& hp : kHeads) {
    for (int s_q : {1, 2, 4}) {
      for (bool causal : {false, true}) {
        run_and_check(spec_of(DType::bf16, 3, s_q, hp.h_q, hp.h_kv, causal, {65, 140, 3}, seed++));
      }
    }
  }
}

TEST(GpuDecode, ShapesFp16) {
  uint64_t seed = 200;
  for (const HeadPair& hp : {HeadPair{16, 1}, HeadPair{64, 2}, HeadPair{128, 8}, HeadPair{65, 1}, HeadPair{1, 1}}) {
    for (int s_q : {1, 4}) {
      for (bool causal : {false, true}) {
        run_and_check(spec_of(DType::fp16, 3, s_q, hp.h_q, hp.h_kv, causal, {140, 3, 65}, seed++));
      }
    }
  }
}

// Lengths at and around page boundaries, including empty requests, in one batch.
TEST(GpuDecode, Lengths) {
  uint64_t seed = 300;
  const std::vector<int> lens = {0, 1, 63, 64, 65, 140, 4096};
  for (DType dt : {DType::bf16, DType::fp16}) {
    for (int s_q : {1, 2, 4}) {
      for (bool causal : {false, true}) {
        run_and_check(spec_of(dt, static_cast<int>(lens.size()), s_q, 16, 1, causal, lens, seed++));
      }
    }
  }
  run_and_check(spec_of(DType::bf16, 7, 2, 128, 8, true, lens, seed++));
  for (int len : lens) run_and_check(spec_of(DType::bf16, 1, 1, 64, 1, false, {len}, seed++));
}

TEST(GpuDecode, VarlenBatch64) {
  std::vector<int> lens = random_seqlens(64, 1, 2000, 0.2, 7);
  run_and_check(spec_of(DType::bf16, 64, 1, 128, 1, false, lens, 400));
  run_and_check(spec_of(DType::fp16, 64, 2, 16, 1, true, lens, 401));
  run_and_check(spec_of(DType::bf16, 64, 4, 64, 8, true, random_seqlens(64, 0, 700, 0.3, 8), 402));
}

// Requests split over most parts: the slot-parallel combine with 64-channel chunks (8 and 16 rows)
// and 128-channel chunks (96 and 128 rows, plan::combine_threads_per_slot), an empty request beside.
TEST(GpuDecode, LongSingleRequestManySplits) {
  run_and_check(spec_of(DType::bf16, 1, 1, 16, 1, false, {32768}, 500));
  run_and_check(spec_of(DType::fp16, 1, 2, 16, 2, true, {32768}, 501));
  run_and_check(spec_of(DType::bf16, 1, 1, 128, 1, false, {20000}, 502));
  run_and_check(spec_of(DType::fp16, 2, 1, 48, 1, true, {9000, 0}, 503));
  // 8 rows: the slot-parallel combine with a CTA an SM at most (plan::combine_slot_ctas_per_sm), fp16.
  run_and_check(spec_of(DType::fp16, 1, 1, 8, 1, true, {20000}, 504));
}

// A few rows split over most parts: the slot-parallel combine, or, in builds with
// FLASHMLA_EXPERIMENT_GRID_MERGE on a device that takes cooperative launches, the decode grid's
// own merge (grid_merge.cuh), which FLASHMLA_GRID_MERGE=0 turns off. Both must match the
// reference, with 1, 2, 4 and 8 merge units at once per CTA (plan::grid_merge_units_at_once) and an
// unsplit or empty request beside split ones.
class GridMergeOff {
 public:
  GridMergeOff() {
    const char* v = std::getenv("FLASHMLA_GRID_MERGE");
    had_ = v != nullptr;
    if (had_) saved_ = v;
    setenv("FLASHMLA_GRID_MERGE", "0", 1);
  }
  ~GridMergeOff() {
    if (had_) {
      setenv("FLASHMLA_GRID_MERGE", saved_.c_str(), 1);
    } else {
      unsetenv("FLASHMLA_GRID_MERGE");
    }
  }

 private:
  bool had_ = false;
  std::string saved_;
};

std::vector<CaseSpec> few_rows_many_splits() {
  return {spec_of(DType::bf16, 1, 1, 16, 1, false, {32768}, 510),
          spec_of(DType::fp16, 1, 1, 128, 1, false, {20000}, 511),
          spec_of(DType::bf16, 4, 1, 16, 1, false, {12000, 64, 9000, 30000}, 512),
          spec_of(DType::fp16, 2, 1, 48, 1, true, {9000, 0}, 513),
          spec_of(DType::bf16, 1, 2, 32, 4, true, {7000}, 514),
          spec_of(DType::bf16, 1, 2, 16, 1, true, {7000}, 515)};
}

TEST(GpuDecode, FewRowsManySplits) {
  for (const CaseSpec& spec : few_rows_many_splits()) run_and_check(spec);
}

TEST(GpuDecode, FewRowsManySplitsGridMergeOff) {
  GridMergeOff off;
  for (const CaseSpec& spec : few_rows_many_splits()) run_and_check(spec);
}

// Long ranges per CTA (two parts) with softmaxes from flat to sharp: the bf16 kernels drop P's lo
// term where it carries little of a row's weight (the wide kernel per page, the narrow kernel per
// thread and page; docs/design.md, precision), so most pages of the flat rows go without it and
// the sharp rows keep it where their weight sits.
TEST(GpuDecode, LongRangesSoftmaxSharpness) {
  uint64_t seed = 550;
  for (float sharpness : {0.5f, 1.0f, 2.0f, 4.0f, 8.0f}) {
    CaseSpec wide = spec_of(DType::bf16, 3, 1, 128, 1, false, {8192, 5000, 300}, seed++);
    wide.softmax_scale = sharpness / 24.0f;   // 576^-0.5 = 1/24
    run_and_check(wide, 2);
    CaseSpec causal = spec_of(DType::bf16, 2, 2, 32, 1, true, {6000, 2100}, seed++);
    causal.softmax_scale = sharpness / 24.0f;
    run_and_check(causal, 2);
    CaseSpec narrow = spec_of(DType::bf16, 2, 1, 16, 1, false, {9000, 700}, seed++);
    narrow.softmax_scale = sharpness / 24.0f;
    run_and_check(narrow, 1);
    // The narrow kernel with 32 rows (lazy maxima), where P_lo is dropped by the same rule.
    CaseSpec narrow32 = spec_of(DType::bf16, 2, 1, 32, 1, false, {7000, 900}, seed++);
    narrow32.softmax_scale = sharpness / 24.0f;
    run_and_check(narrow32, 2);
  }
}

// Very sharp softmaxes: a row's maximum keeps jumping by far more than the lazy-maximum slack
// (2^8 in weight) deep into a range, so the kernels' slow path (maxima found across threads, P, O
// and the sums rescaled) runs on many pages besides the first: the wide kernel, the narrow kernel
// with 16 and 32 rows, bf16 and fp16, causal s_q = 2 included.
TEST(GpuDecode, RowMaximaJumpMidRange) {
  uint64_t seed = 560;
  for (float sharpness : {16.0f, 32.0f}) {
    for (DType dt : {DType::bf16, DType::fp16}) {
      for (CaseSpec spec : {spec_of(dt, 3, 1, 128, 1, false, {8192, 3000, 130}, seed),
                            spec_of(dt, 2, 2, 64, 1, true, {5000, 700}, seed + 1),
                            spec_of(dt, 3, 1, 16, 1, false, {9000, 2500, 70}, seed + 2),
                            spec_of(dt, 2, 1, 32, 1, false, {7000, 1900}, seed + 3),
                            spec_of(dt, 2, 2, 16, 1, true, {6000, 650}, seed + 4)}) {
        spec.softmax_scale = sharpness / 24.0f;
        run_and_check(spec, 2);
      }
      seed += 5;
    }
  }
}

TEST(GpuDecode, PaddedQueryStride) {
  CaseSpec s = spec_of(DType::bf16, 3, 2, 16, 1, true, {300, 0, 77}, 600);
  s.q_token_stride_pad = 64;
  run_and_check(s);
}

TEST(GpuDecode, Deterministic) {
  const CaseSpec spec = spec_of(DType::bf16, 4, 2, 64, 1, true, {5000, 17, 1000, 129}, 700);
  const HostCase c = make_case(spec);
  DeviceCase d(c);
  d.make_plan();
  const DeviceOutput a = d.decode();
  const DeviceOutput b = d.decode();
  ASSERT_EQ(a.out.size(), b.out.size());
  EXPECT_EQ(0, std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(uint16_t))) << "out differs";
  EXPECT_EQ(0, std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float))) << "lse differs";
  expect_matches(a, reference_output(c), spec);
}

// One plan (from the first case's lengths) serves three layers with different q and cache.
TEST(GpuDecode, MetadataReusedAcrossCalls) {
  const std::vector<int> lens = {3000, 0, 64, 1500, 9};
  CaseSpec base = spec_of(DType::fp16, 5, 1, 128, 1, false, lens, 800);
  const HostCase c0 = make_case(base);
  DeviceCase d0(c0);
  d0.make_plan();
  for (int layer = 1; layer <= 3; ++layer) {
    CaseSpec s = base;
    s.seed = 800 + layer;
    const HostCase cl = make_case(s);
    DeviceCase dl(cl);
    SCOPED_TRACE("layer " + std::to_string(layer));
    expect_matches(d0.decode(&dl), reference_output(cl), s);
  }
}

// Metadata + decode + combine captured in a CUDA graph: no host synchronisation inside.
TEST(GpuDecode, CudaGraphCapture) {
  for (DType dt : {DType::bf16, DType::fp16}) {
    const CaseSpec spec = spec_of(dt, 3, 2, 128, 8, true, {2000, 0, 130}, 1000);
    const HostCase c = make_case(spec);
    DeviceCase d(c);
    d.make_plan();
    d.decode();   // warm-up outside the capture, as a serving engine does
    expect_matches(d.decode_in_graph(), reference_output(c), spec);
  }
}

}  // namespace
}  // namespace flashmla::testing

namespace flashmla::testing {
namespace {

// The limits the library promises (issue 3): s_q up to 128 with h_q = 128 (16384 rows per kv head, one
// SM part), a batch of 65536 requests, and a single cache of 2^20 tokens.
TEST(GpuDecodeLimits, SeqlenQ128Heads128) {
  run_and_check(spec_of(DType::bf16, 1, 128, 128, 1, true, {300}, 2000));
}

TEST(GpuDecodeLimits, Batch65536) {
  CaseSpec s = spec_of(DType::bf16, 65536, 1, 16, 1, false, random_seqlens(65536, 0, 80, 0.1, 2001), 2001);
  s.extra_blocks = 1;
  run_and_check(s);
}

TEST(GpuDecodeLimits, CacheOf2To20Tokens) {
  CaseSpec s = spec_of(DType::fp16, 1, 1, 16, 1, false, {1 << 20}, 2002);
  s.extra_blocks = 1;
  run_and_check(s);
}

// Small cases for compute-sanitizer (memcheck, racecheck: scripts/gpu_suite.sh sanitize). Together
// they reach every code path: unsplit and split requests, the combine, zero lengths, partial pages,
// causal masks, odd head counts, h_kv > 1, both dtypes.
TEST(Sanitize, SplitAndUnsplitRequests) {
  run_and_check(spec_of(DType::bf16, 4, 2, 16, 1, true, {0, 65, 700, 1}, 1000));
  run_and_check(spec_of(DType::fp16, 3, 1, 65, 1, false, {140, 0, 63}, 1001));
  run_and_check(spec_of(DType::bf16, 2, 4, 16, 2, true, {3, 129}, 1002));
}

TEST(Sanitize, OneLongRequest) {
  run_and_check(spec_of(DType::bf16, 1, 1, 128, 1, false, {2000}, 1003));
}

}  // namespace
}  // namespace flashmla::testing
