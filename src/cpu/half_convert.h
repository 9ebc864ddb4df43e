// 16-bit float storage formats (bf16, fp16) <-> float / double, round to nearest even.
// Bit-level on purpose: the reference must not depend on the compiler's (or the
// host's) support for _Float16/__bf16, and it must treat NaN, Inf and fp16 subnormals
// exactly as the GPU's conversions do.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "flashmla/types.h"

namespace flashmla::cpu {

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float value) {
  const uint32_t f = float_bits(value);
  if ((f & 0x7fffffffu) > 0x7f800000u) {
    // Keep the sign and the top payload bits, and force a quiet NaN: truncation alone
    // could turn a NaN with only low payload bits into an infinity.
    return static_cast<uint16_t>((f >> 16) | 0x0040u);
  }
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry out of the
  // mantissa correctly bumps the exponent (up to infinity).
  return static_cast<uint16_t>((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Subnormal (or zero): mantissa * 2^-24 is exact in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return bits_float(float_bits(magnitude) | sign);
  }
  if (exponent == 31) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_float(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

inline uint16_t float_to_fp16(float value) {
  const uint32_t f = float_bits(value);
  const uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t a = f & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  // 65520 is the midpoint between 65504 (odd mantissa) and 2^16: ties go to even, i.e. Inf.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (a < 0x38800000u) {
    // Below the smallest normal 2^-14: count units of 2^-24. Scaling by a power of two is
    // exact, and nearbyint rounds ties to even in the default rounding mode. 1024 units
    // encode as the smallest normal, which is the right bit pattern.
    const float units = std::nearbyint(std::fabs(value) * 16777216.0f);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(units));
  }
  uint32_t h = (((a >> 23) - 127 + 15) << 10) | ((a >> 13) & 0x3ffu);
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline float half_to_float(uint16_t h, DType dtype) {
  return dtype == DType::bf16 ? bf16_to_float(h) : fp16_to_float(h);
}

// Rounds a double straight to the 16-bit format (no double rounding through float):
// the result is first made exact in the target precision, then encoded.
inline uint16_t double_to_half(double value, DType dtype) {
  if (!std::isfinite(value) || value == 0.0) {
    return dtype == DType::bf16 ? float_to_bf16(static_cast<float>(value))
                                : float_to_fp16(static_cast<float>(value));
  }
  const int precision = dtype == DType::bf16 ? 8 : 11;     // significand bits incl. the implicit one
  const int min_exponent = dtype == DType::bf16 ? -126 : -14;
  int exponent = std::ilogb(value);
  if (exponent < min_exponent) exponent = min_exponent;  // subnormal spacing
  if (exponent > 200) exponent = 200;                     // far beyond either range: Inf anyway
  const double ulp = std::ldexp(1.0, exponent - (precision - 1));
  const double rounded = std::nearbyint(value / ulp) * ulp;
  const double max_finite = dtype == DType::bf16 ? 3.3895313892515355e38 : 65504.0;
  if (std::fabs(rounded) > max_finite) {
    return static_cast<uint16_t>((value < 0 ? 0x8000u : 0u) | (dtype == DType::bf16 ? 0x7f80u : 0x7c00u));
  }
  // `rounded` is exactly representable in the target, so the float encoders do no further rounding.
  const float as_float = static_cast<float>(rounded);
  return dtype == DType::bf16 ? float_to_bf16(as_float) : float_to_fp16(as_float);
}

}  // namespace flashmla::cpu
