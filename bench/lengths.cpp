// Cache lengths of the benchmark rows.
//
// ANCHORS.md's b=128 rows draw each request's length as max(N(s_k, s_k/2), s_q), seed 0,
// converted to int32 by truncation, with Python's `random` module. To give the C++ and the
// Python benchmark identical lengths (and so identical FLOP/byte counts and rooflines), this
// file reproduces that generator: MT19937 seeded the way Python seeds it from the integer 0
// (init_by_array with the one-word key {0}), 53-bit doubles built from two 32-bit draws, and
// the Kinderman-Monahan ratio-of-uniforms normal sampler that random.normalvariate uses.
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bench.h"

namespace bench {
namespace {

class PyCompatibleMT {
 public:
  explicit PyCompatibleMT(uint32_t seed_word) {
    const uint32_t key[1] = {seed_word};
    seed_by_array(key, 1);
  }

  uint32_t next_u32() {
    if (index_ >= kN) twist();
    uint32_t y = state_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
  }

  // Uniform double in [0, 1) with 53 random bits (27 + 26 bits of two draws).
  double next_double() {
    const double hi = static_cast<double>(next_u32() >> 5);
    const double lo = static_cast<double>(next_u32() >> 6);
    return (hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0);
  }

  double normal(double mu, double sigma) {
    const double magic = 4.0 * std::exp(-0.5) / std::sqrt(2.0);
    for (;;) {
      const double u1 = next_double();
      const double u2 = 1.0 - next_double();
      const double z = magic * (u1 - 0.5) / u2;
      if (z * z / 4.0 <= -std::log(u2)) return mu + z * sigma;
    }
  }

 private:
  static constexpr int kN = 624;
  static constexpr int kM = 397;

  void seed_linear(uint32_t s) {
    state_[0] = s;
    for (int i = 1; i < kN; ++i) {
      state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    }
    index_ = kN;
  }

  void seed_by_array(const uint32_t* key, int key_len) {
    seed_linear(19650218u);
    int i = 1, j = 0;
    for (int k = (kN > key_len ? kN : key_len); k > 0; --k) {
      state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1664525u)) + key[j] +
                  static_cast<uint32_t>(j);
      ++i;
      ++j;
      if (i >= kN) {
        state_[0] = state_[kN - 1];
        i = 1;
      }
      if (j >= key_len) j = 0;
    }
    for (int k = kN - 1; k > 0; --k) {
      state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1566083941u)) -
                  static_cast<uint32_t>(i);
      ++i;
      if (i >= kN) {
        state_[0] = state_[kN - 1];
        i = 1;
      }
    }
    state_[0] = 0x80000000u;
    index_ = kN;
  }

  void twist() {
    for (int i = 0; i < kN; ++i) {
      const uint32_t y = (state_[i] & 0x80000000u) | (state_[(i + 1) % kN] & 0x7fffffffu);
      uint32_t v = state_[(i + kM) % kN] ^ (y >> 1);
      if (y & 1u) v ^= 0x9908b0dfu;
      state_[i] = v;
    }
    index_ = 0;
  }

  std::array<uint32_t, kN> state_{};
  int index_ = kN;
};

}  // namespace

std::vector<int> cache_lengths(const Config& c, uint64_t seed) {
  if (seed > 0xffffffffu) throw std::runtime_error("cache_lengths: seed must fit in 32 bits");
  std::vector<int> lengths(static_cast<size_t>(c.b), c.s_k);
  if (!c.varlen) return lengths;
  PyCompatibleMT rng(static_cast<uint32_t>(seed));
  for (int& len : lengths) {
    double v = rng.normal(static_cast<double>(c.s_k), static_cast<double>(c.s_k) / 2.0);
    if (v < c.s_q) v = c.s_q;
    len = static_cast<int>(v);  // truncation toward zero, as a float stored into an int32 tensor
  }
  return lengths;
}

}  // namespace bench
