// The reference's bit-level 16-bit conversions against the arithmetic ones of the test support.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cpu/half_convert.h"
#include "support/test_case.h"

namespace flashmla {
namespace {

using testing::float_to_half_bits;
using testing::half_bits_to_float;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

uint16_t cpu_encode(float v, DType dtype) {
  return dtype == DType::bf16 ? cpu::float_to_bf16(v) : cpu::float_to_fp16(v);
}

void expect_same_encoding(float v, DType dtype) {
  const uint16_t a = cpu_encode(v, dtype);
  const uint16_t b = float_to_half_bits(v, dtype);
  if (std::isnan(v)) {
    EXPECT_TRUE(std::isnan(half_bits_to_float(a, dtype))) << "NaN input 0x" << std::hex << bits_of(v);
    return;
  }
  ASSERT_EQ(a, b) << dtype_name(dtype) << " encode of " << v << " (0x" << std::hex << bits_of(v) << ")";
}

class HalfConvert : public ::testing::TestWithParam<DType> {};

TEST_P(HalfConvert, DecodesEveryBitPatternLikeTheArithmeticDecoder) {
  const DType dtype = GetParam();
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float a = cpu::half_to_float(static_cast<uint16_t>(bits), dtype);
    const float b = half_bits_to_float(static_cast<uint16_t>(bits), dtype);
    if (std::isnan(b)) {
      ASSERT_TRUE(std::isnan(a)) << "bits " << bits;
    } else {
      ASSERT_EQ(bits_of(a), bits_of(b)) << "bits " << bits;
    }
  }
}

TEST_P(HalfConvert, EncodesRepresentableValuesMidpointsAndNeighbours) {
  const DType dtype = GetParam();
  for (uint32_t bits = 0; bits < 65535; ++bits) {
    const float lo = half_bits_to_float(static_cast<uint16_t>(bits), dtype);
    const float hi = half_bits_to_float(static_cast<uint16_t>(bits + 1), dtype);
    if (!std::isfinite(lo)) continue;
    expect_same_encoding(lo, dtype);
    // Round trip exactly.
    ASSERT_EQ(cpu_encode(lo, dtype), static_cast<uint16_t>(bits)) << "bits " << bits;
    if (!std::isfinite(hi) || (bits & 0x8000) != ((bits + 1) & 0x8000)) continue;
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);   // exact: a tie
    expect_same_encoding(mid, dtype);
    expect_same_encoding(std::nextafter(mid, 0.0f), dtype);
    expect_same_encoding(std::nextafter(mid, INFINITY), dtype);
  }
}

TEST_P(HalfConvert, EncodesRandomFloatsAndSpecials) {
  const DType dtype = GetParam();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    uint32_t b = static_cast<uint32_t>(rng());
    float v;
    std::memcpy(&v, &b, 4);
    expect_same_encoding(v, dtype);
  }
  for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, 3.4028235e38f, -3.4028235e38f}) {
    expect_same_encoding(v, dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, HalfConvert, ::testing::Values(DType::bf16, DType::fp16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(HalfConvertKnownValues, Fp16) {
  EXPECT_EQ(cpu::float_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(cpu::float_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(cpu::float_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(cpu::float_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(cpu::float_to_fp16(65520.0f), 0x7c00);      // tie goes to even: Inf
  EXPECT_EQ(cpu::float_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(cpu::float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);      // tie to even: 0
  EXPECT_EQ(cpu::float_to_fp16(std::ldexp(3.0f, -26)), 0x0001);      // 0.75 units rounds up
  EXPECT_EQ(cpu::float_to_fp16(std::ldexp(3.0f, -25)), 0x0002);      // 1.5 units: tie to even 2
  EXPECT_EQ(cpu::float_to_fp16(std::ldexp(1023.0f, -24)), 0x03ff);   // largest subnormal
  EXPECT_EQ(cpu::float_to_fp16(-INFINITY), 0xfc00);
  EXPECT_TRUE(std::isnan(cpu::fp16_to_float(0x7c01)));
  EXPECT_EQ(cpu::fp16_to_float(0x0001), std::ldexp(1.0f, -24));
}

TEST(HalfConvertKnownValues, Bf16) {
  EXPECT_EQ(cpu::float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(cpu::float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);           // tie to even
  EXPECT_EQ(cpu::float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);       // tie to even (up)
  EXPECT_EQ(cpu::float_to_bf16(3.4028235e38f), 0x7f80);                         // rounds past max
  const float low_payload_nan = [] { uint32_t b = 0x7f800001u; float f; std::memcpy(&f, &b, 4); return f; }();
  EXPECT_TRUE(std::isnan(cpu::bf16_to_float(cpu::float_to_bf16(low_payload_nan))));
}

TEST(HalfConvertKnownValues, DoubleRoundsOnceNotTwice) {
  // Through float, 1 + 2^-8 + 2^-40 would first become the tie 1 + 2^-8 and then round down.
  const double x = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  EXPECT_EQ(cpu::double_to_half(x, DType::bf16), 0x3f81);
  const double y = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(cpu::double_to_half(y, DType::fp16), 0x3c01);
  EXPECT_EQ(cpu::double_to_half(65520.0, DType::fp16), 0x7c00);
  EXPECT_EQ(cpu::double_to_half(-1e300, DType::bf16), 0xff80);
  EXPECT_EQ(cpu::double_to_half(std::ldexp(1.0, -25), DType::fp16), 0x0000);
  EXPECT_EQ(cpu::double_to_half(std::ldexp(1.0, -25) * (1 + 1e-12), DType::fp16), 0x0001);
  EXPECT_EQ(cpu::double_to_half(1e-300, DType::bf16), 0x0000);
  EXPECT_EQ(cpu::double_to_half(-0.0, DType::fp16), 0x8000);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 100.0);
  for (int i = 0; i < 100000; ++i) {
    const float f = static_cast<float>(normal(rng));   // exact in float: one rounding either way
    ASSERT_EQ(cpu::double_to_half(f, DType::bf16), float_to_half_bits(f, DType::bf16));
    ASSERT_EQ(cpu::double_to_half(f, DType::fp16), float_to_half_bits(f, DType::fp16));
  }
}

}  // namespace
}  // namespace flashmla
