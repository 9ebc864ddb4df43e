// The CPU reference against the naive formulation on randomized small cases: the reference
// must be the naive result correctly rounded (out to 16 bits, lse to float32).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "naive_attention.h"
#include "run_cpu.h"

namespace flashmla::testing {
namespace {

// Spacing of the 16-bit format around v (subnormal spacing below the smallest normal).
double ulp16(double v, DType dtype) {
  const int precision = dtype == DType::bf16 ? 8 : 11;
  const int min_exponent = dtype == DType::bf16 ? -126 : -14;
  const int exponent = v == 0.0 ? min_exponent : std::max(std::ilogb(v), min_exponent);
  return std::ldexp(1.0, exponent - (precision - 1));
}

double ulp32(double v) {
  const float f = static_cast<float>(std::fabs(v));
  return static_cast<double>(std::nextafter(f, INFINITY)) - f;
}

// Checks one case; the reference and the naive sums differ only by float64 rounding, so the
// 16-bit result must be within half a unit (plus that float64 noise) of the naive value.
void expect_matches_naive(const HostCase& c) {
  const CpuOutput ref = run_cpu(c);
  const NaiveResult naive = naive_attention(c);
  const DType dtype = c.spec.dtype;
  size_t failures = 0;
  for (size_t i = 0; i < ref.out.size() && failures < 5; ++i) {
    const double got = half_bits_to_float(ref.out[i], dtype);
    const double want = naive.out[i];
    const double allowed = 0.5 * ulp16(want, dtype) + 1e-12 * std::fabs(want);
    if (!(std::fabs(got - want) <= allowed)) {
      ADD_FAILURE() << "out[" << i << "] = " << got << ", naive " << want;
      ++failures;
    }
  }
  for (size_t i = 0; i < ref.lse.size() && failures < 10; ++i) {
    const double got = ref.lse[i];
    const double want = naive.lse[i];
    if (std::isinf(want)) {
      if (!(std::isinf(got) && got > 0)) {
        ADD_FAILURE() << "lse[" << i << "] = " << got << ", expected +inf (no visible key)";
        ++failures;
      }
      continue;
    }
    if (!(std::fabs(got - want) <= ulp32(want) + 1e-12 * std::fabs(want))) {
      ADD_FAILURE() << "lse[" << i << "] = " << got << ", naive " << want;
      ++failures;
    }
  }
  // The SPEC comparison of the test support must accept the correctly rounded naive result.
  std::vector<uint16_t> naive_out(naive.out.size());
  for (size_t i = 0; i < naive.out.size(); ++i) naive_out[i] = float_to_half_bits(static_cast<float>(naive.out[i]), dtype);
  std::vector<float> naive_lse(naive.lse.begin(), naive.lse.end());
  const Comparison out_cmp = compare_out(ref.out, naive_out, dtype);
  EXPECT_TRUE(out_cmp.ok) << out_cmp.message;
  const Comparison lse_cmp = compare_lse(ref.lse, naive_lse);
  EXPECT_TRUE(lse_cmp.ok) << lse_cmp.message;
}

struct HeadConfig {
  int h_q;
  int h_kv;
};

TEST(ReferenceVsNaive, RandomizedSmallCases) {
  const HeadConfig heads[] = {{1, 1},  {3, 1},   {16, 1}, {63, 1}, {65, 1},  {128, 1},
                              {16, 2}, {128, 2}, {2, 2},  {16, 8}, {128, 8}, {8, 8}};
  const int seqlen_qs[] = {1, 2, 3, 5};
  constexpr int kCases = 40;
  for (int seed = 0; seed < kCases; ++seed) {
    std::mt19937_64 rng(1000 + seed);
    CaseSpec spec;
    spec.dtype = seed % 2 ? DType::fp16 : DType::bf16;
    spec.causal = (seed / 2) % 2 == 1;
    spec.seqlen_q = seqlen_qs[(seed / 4) % 4];
    const HeadConfig h = heads[seed % 12];
    spec.num_heads_q = h.h_q;
    spec.num_heads_kv = h.h_kv;
    // Keep rows x keys small: the naive loops are slow on purpose.
    const int rows = spec.seqlen_q * spec.num_heads_q;
    const int max_len = rows > 200 ? 100 : 260;
    spec.batch = 1 + static_cast<int>(rng() % 4);
    spec.seqlens = random_seqlens(spec.batch, 1, max_len, 0.2, rng());
    if (seed % 7 == 0) spec.seqlens[0] = 0;
    if (seed % 5 == 0) spec.seqlens.back() = 64;   // exactly one full page
    if (seed % 3 == 0) spec.softmax_scale = 0.07f;
    spec.seed = rng();
    SCOPED_TRACE(::testing::Message() << "case " << seed << ": " << dtype_name(spec.dtype) << " causal="
                                      << spec.causal << " s_q=" << spec.seqlen_q << " h_q=" << spec.num_heads_q
                                      << " h_kv=" << spec.num_heads_kv << " b=" << spec.batch);
    expect_matches_naive(make_case(spec));
  }
}

TEST(ReferenceVsNaive, CausalWithMoreQueryTokensThanKeys) {
  CaseSpec spec;
  spec.dtype = DType::fp16;
  spec.causal = true;
  spec.seqlen_q = 5;
  spec.num_heads_q = 4;
  spec.batch = 5;
  spec.seqlens = {0, 1, 3, 5, 6};
  spec.seed = 11;
  expect_matches_naive(make_case(spec));
}

}  // namespace
}  // namespace flashmla::testing
