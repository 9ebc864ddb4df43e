// Corner cases of SPEC section 1 on the CPU reference: empty rows, garbage outside the valid
// cache, unusual head counts, strided inputs and outputs, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "naive_attention.h"
#include "run_cpu.h"

namespace flashmla::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

CaseSpec small_spec(DType dtype, int batch, std::vector<int> seqlens, uint64_t seed) {
  CaseSpec spec;
  spec.dtype = dtype;
  spec.batch = batch;
  spec.num_heads_q = 4;
  spec.seqlens = std::move(seqlens);
  spec.seed = seed;
  return spec;
}

size_t out_index(const CaseSpec& s, int r, int i, int h) {
  return ((static_cast<size_t>(r) * s.seqlen_q + i) * s.num_heads_q + h) * kHeadDimV;
}

size_t lse_index(const CaseSpec& s, int r, int i, int h) {
  return (static_cast<size_t>(r) * s.num_heads_q + h) * s.seqlen_q + i;
}

void expect_empty_row(const CaseSpec& s, const CpuOutput& o, int r, int i, int h) {
  for (int e = 0; e < kHeadDimV; ++e) {
    ASSERT_EQ(half_bits_to_float(o.out[out_index(s, r, i, h) + e], s.dtype), 0.0f)
        << "r=" << r << " i=" << i << " h=" << h << " e=" << e;
  }
  EXPECT_EQ(o.lse[lse_index(s, r, i, h)], kInf) << "r=" << r << " i=" << i << " h=" << h;
}

void expect_all_finite(const CpuOutput& o, DType dtype) {
  for (size_t i = 0; i < o.out.size(); ++i) {
    ASSERT_TRUE(std::isfinite(half_bits_to_float(o.out[i], dtype))) << "out[" << i << "]";
  }
  for (size_t i = 0; i < o.lse.size(); ++i) ASSERT_FALSE(std::isnan(o.lse[i])) << "lse[" << i << "]";
}

TEST(ReferenceCorner, ZeroLengthRequestsGiveZerosAndInfiniteLse) {
  for (DType dtype : {DType::bf16, DType::fp16}) {
    const CaseSpec spec = small_spec(dtype, 3, {0, 70, 0}, 1);
    const CpuOutput o = run_cpu(make_case(spec));
    for (int r : {0, 2}) {
      for (int h = 0; h < spec.num_heads_q; ++h) expect_empty_row(spec, o, r, 0, h);
    }
    for (int h = 0; h < spec.num_heads_q; ++h) EXPECT_TRUE(std::isfinite(o.lse[lse_index(spec, 1, 0, h)]));
    expect_all_finite(o, dtype);
  }
}

TEST(ReferenceCorner, CausalRowThatSeesNothing) {
  // seqlen 3, s_q 5: token i sees keys j <= i - 2, so tokens 0 and 1 see nothing and
  // token 2 sees key 0 alone, whose softmax weight is exactly 1.
  CaseSpec spec = small_spec(DType::bf16, 1, {3}, 2);
  spec.seqlen_q = 5;
  spec.causal = true;
  const HostCase c = make_case(spec);
  const CpuOutput o = run_cpu(c);
  for (int h = 0; h < spec.num_heads_q; ++h) {
    expect_empty_row(spec, o, 0, 0, h);
    expect_empty_row(spec, o, 0, 1, h);
    const uint16_t* key0 = &c.k_cache[static_cast<size_t>(c.block_table[0]) * c.k_stride[0]];
    for (int e = 0; e < kHeadDimV; ++e) ASSERT_EQ(o.out[out_index(spec, 0, 2, h) + e], key0[e]) << e;
    double dot = 0;
    const uint16_t* q = &c.q[2 * c.q_stride[1] + h * c.q_stride[2]];
    for (int e = 0; e < kHeadDimQK; ++e) {
      dot += static_cast<double>(half_bits_to_float(q[e], spec.dtype)) * half_bits_to_float(key0[e], spec.dtype);
    }
    EXPECT_NEAR(o.lse[lse_index(spec, 0, 2, h)], dot / std::sqrt(576.0), 1e-5);
  }
}

TEST(ReferenceCorner, CausalIsIgnoredForOneQueryToken) {
  CaseSpec spec = small_spec(DType::fp16, 2, {100, 7}, 3);
  const CpuOutput plain = run_cpu(make_case(spec));
  spec.causal = true;
  const CpuOutput causal = run_cpu(make_case(spec));
  EXPECT_EQ(plain.out, causal.out);
  EXPECT_EQ(plain.lse, causal.lse);
}

TEST(ReferenceCorner, PoisonedUnusedCacheDoesNotChangeTheResult) {
  for (DType dtype : {DType::bf16, DType::fp16}) {
    CaseSpec spec = small_spec(dtype, 4, {1, 63, 65, 130}, 4);
    spec.seqlen_q = 2;
    spec.causal = true;
    spec.extra_blocks = 5;
    spec.extra_table_columns = 3;
    spec.poison_unused = true;
    const HostCase poisoned = make_case(spec);
    spec.poison_unused = false;
    const HostCase clean = make_case(spec);
    // The poisoned case really holds garbage and unused ids.
    size_t non_finite = 0;
    for (uint16_t v : poisoned.k_cache) non_finite += !std::isfinite(half_bits_to_float(v, dtype));
    EXPECT_GT(non_finite, 0u);
    const CpuOutput a = run_cpu(poisoned);
    const CpuOutput b = run_cpu(clean);
    expect_all_finite(a, dtype);
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.lse, b.lse);
  }
}

TEST(ReferenceCorner, UnusedTableSlotsHoldTheUnusedBlockId) {
  CaseSpec spec = small_spec(DType::bf16, 3, {0, 64, 129}, 5);
  spec.extra_table_columns = 4;
  const HostCase c = make_case(spec);
  const int used[] = {0, 1, 3};
  for (int r = 0; r < 3; ++r) {
    for (int i = used[r]; i < c.max_blocks_per_seq; ++i) {
      ASSERT_EQ(c.block_table[r * c.max_blocks_per_seq + i], kUnusedBlockId);
    }
  }
  const CpuOutput o = run_cpu(c);
  expect_all_finite(o, spec.dtype);
  const NaiveResult naive = naive_attention(c);
  const Comparison cmp = compare_lse(o.lse, std::vector<float>(naive.lse.begin(), naive.lse.end()));
  EXPECT_TRUE(cmp.ok) << cmp.message;
}

TEST(ReferenceCorner, HeadCountsThatAreNotMultiplesOf64) {
  struct Heads { int q, kv; };
  for (Heads h : {Heads{65, 1}, Heads{63, 1}, Heads{6, 2}, Heads{24, 8}, Heads{8, 8}, Heads{130, 2}}) {
    CaseSpec spec = small_spec(h.q % 2 ? DType::bf16 : DType::fp16, 2, {40, 90}, 6 + h.q);
    spec.num_heads_q = h.q;
    spec.num_heads_kv = h.kv;
    const HostCase c = make_case(spec);
    const CpuOutput o = run_cpu(c);
    const NaiveResult naive = naive_attention(c);
    std::vector<uint16_t> expected(naive.out.size());
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = float_to_half_bits(static_cast<float>(naive.out[i]), spec.dtype);
    const Comparison cmp = compare_out(o.out, expected, spec.dtype);
    EXPECT_TRUE(cmp.ok) << "h_q=" << h.q << " h_kv=" << h.kv << "\n" << cmp.message;
    const Comparison lse_cmp = compare_lse(o.lse, std::vector<float>(naive.lse.begin(), naive.lse.end()));
    EXPECT_TRUE(lse_cmp.ok) << lse_cmp.message;
  }
}

TEST(ReferenceCorner, PaddedQueryTokensGiveTheSameResult) {
  CaseSpec spec = small_spec(DType::fp16, 2, {77, 200}, 7);
  spec.seqlen_q = 3;
  spec.causal = true;
  const CpuOutput contiguous = run_cpu(make_case(spec));
  spec.q_token_stride_pad = 40;   // filled with NaN/Inf by make_case
  const HostCase padded = make_case(spec);
  ASSERT_EQ(padded.q_stride[1], 4 * 576 + 40);
  const CpuOutput strided = run_cpu(padded);
  EXPECT_EQ(contiguous.out, strided.out);
  EXPECT_EQ(contiguous.lse, strided.lse);
}

TEST(ReferenceCorner, CustomOutAndLseStrides) {
  CaseSpec spec = small_spec(DType::bf16, 2, {50, 130}, 8);
  spec.seqlen_q = 3;
  spec.num_heads_q = 6;
  spec.num_heads_kv = 2;
  const HostCase c = make_case(spec);
  const CpuOutput dense = run_cpu(c);

  // out rows padded and tokens spaced apart; lse stored as [batch, s_q, h_q] with padding.
  const int64_t out_stride[4] = {3 * 7000, 7000, 520, 1};
  const int64_t lse_stride[3] = {3 * 8, 1, 8};
  constexpr uint16_t kSentinel = 0x1234;
  std::vector<uint16_t> out(static_cast<size_t>(2 * out_stride[0]), kSentinel);
  std::vector<float> lse(static_cast<size_t>(2 * lse_stride[0]), -7.0f);
  DecodeArgs args = c.host_args(out.data(), lse.data());
  std::copy(out_stride, out_stride + 4, args.out_stride);
  std::copy(lse_stride, lse_stride + 3, args.lse_stride);
  mla_decode(Backend::cpu, args);

  std::vector<bool> written(out.size(), false), lse_written(lse.size(), false);
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 3; ++i) {
      for (int h = 0; h < 6; ++h) {
        for (int e = 0; e < 512; ++e) {
          const size_t at = r * out_stride[0] + i * out_stride[1] + h * out_stride[2] + e;
          ASSERT_EQ(out[at], dense.out[out_index(spec, r, i, h) + e]);
          written[at] = true;
        }
        const size_t at = r * lse_stride[0] + h * lse_stride[1] + i * lse_stride[2];
        ASSERT_EQ(lse[at], dense.lse[lse_index(spec, r, i, h)]);
        lse_written[at] = true;
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (!written[i]) ASSERT_EQ(out[i], kSentinel) << "out written outside its rows at " << i;
  }
  for (size_t i = 0; i < lse.size(); ++i) {
    if (!lse_written[i]) ASSERT_EQ(lse[i], -7.0f) << "lse written outside its elements at " << i;
  }
}

TEST(ReferenceCorner, EmptyBatchIsANoOpEvenWithNullPointers) {
  DecodeArgs args;
  args.batch = 0;
  args.num_heads_q = 16;
  args.max_blocks_per_seq = 1;
  EXPECT_NO_THROW(mla_decode(Backend::cpu, args));
}

TEST(ReferenceCorner, RepeatedRunsAreBitIdentical) {
  CaseSpec spec = small_spec(DType::bf16, 3, {300, 1, 129}, 9);
  spec.num_heads_q = 32;
  spec.seqlen_q = 2;
  const HostCase c = make_case(spec);
  const CpuOutput a = run_cpu(c);
  const CpuOutput b = run_cpu(c);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
}

TEST(ReferenceCorner, MetadataAndWorkspaceAreIgnoredByTheCpuBackend) {
  const HostCase c = make_case(small_spec(DType::fp16, 2, {10, 100}, 10));
  const CpuOutput plain = run_cpu(c);
  CpuOutput o;
  o.out.assign(c.out_elements(), 0);
  o.lse.assign(c.lse_elements(), 0);
  DecodeArgs args = c.host_args(o.out.data(), o.lse.data());
  args.num_sm_parts = 0;
  args.tile_scheduler_metadata = nullptr;
  args.num_splits = nullptr;
  mla_decode(Backend::cpu, args);
  EXPECT_EQ(o.out, plain.out);
  EXPECT_EQ(o.lse, plain.lse);
}

}  // namespace
}  // namespace flashmla::testing
