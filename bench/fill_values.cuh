// The value of element i of the benchmark's pseudo-random fills (bench/fill.cu), as a device
// function, so that a probe can hold the same values as the benchmark's q and cache.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bench {

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

enum class Dist { uniform, clamped_normal };

// uniform: in [-param, param), like torch's uniform_(-param, param). clamped_normal: normal with
// standard deviation param, clamped to [-1, 1], by Box-Muller on two 24-bit uniforms of one hash
// (u1 in (0, 1], so the logarithm is finite).
template <Dist kDist>
__device__ __forceinline__ float fill_value(size_t i, float param, uint64_t seed) {
  const uint64_t r = mix64(i ^ (seed * 0xd1b54a32d192ed03ull));
  const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
  if constexpr (kDist == Dist::uniform) {
    return (2.0f * u - 1.0f) * param;
  } else {
    const float u2 = static_cast<float>((r >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
    const float n = sqrtf(-2.0f * logf(u + 1.0f / 16777216.0f)) * cospif(2.0f * u2);
    return fminf(fmaxf(n * param, -1.0f), 1.0f);
  }
}

}  // namespace bench
