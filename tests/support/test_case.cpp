// Random paged-cache cases and SPEC-tolerance comparisons for every test suite.
// The 16-bit conversions here are written arithmetically (not with the bit tricks of
// src/cpu/half_convert.h) so that a CPU test can check one against the other.
#include "support/test_case.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace flashmla::testing {
namespace {

struct Format {
  int precision;      // significand bits including the implicit one
  int min_exponent;   // of the smallest normal
  int max_exponent;
  int bias;
  uint32_t exponent_mask;
};

Format format_of(DType dtype) {
  return dtype == DType::bf16 ? Format{8, -126, 127, 127, 0xffu} : Format{11, -14, 15, 15, 0x1fu};
}

uint16_t nan_bits(DType dtype) { return dtype == DType::bf16 ? 0x7fc0 : 0x7e00; }
uint16_t inf_bits(DType dtype, bool negative) {
  const uint16_t bits = dtype == DType::bf16 ? 0x7f80 : 0x7c00;
  return negative ? static_cast<uint16_t>(bits | 0x8000) : bits;
}

// Garbage that must never reach a result: NaN, +Inf and -Inf in turn.
uint16_t poison_bits(DType dtype, size_t i) {
  switch (i % 3) {
    case 0: return nan_bits(dtype);
    case 1: return inf_bits(dtype, false);
    default: return inf_bits(dtype, true);
  }
}

// N(0, 1) draws that depend on (seed, index) alone (a splitmix64 hash of the index, then
// Box-Muller on its two 32-bit halves), so that a fill splits across threads and any thread count
// gives the same values. One mt19937_64 stream over a 65,536-request case's 2.6 G cache elements
// took ~190 s (of GpuDecodeLimits.Batch65536's 217-264 s on the device machines).
float normal_at(uint64_t seed, uint64_t index) {
  uint64_t x = seed + (index + 1) * 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  const double u1 = (static_cast<double>(x >> 32) + 1.0) * 0x1p-32;   // (0, 1]
  const double u2 = static_cast<double>(x & 0xffffffffull) * 0x1p-32;  // [0, 1)
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// f(i) for i in [0, n), in contiguous ranges on the machine's hardware threads, at least `grain`
// indices a thread.
template <typename F>
void parallel_for(size_t n, size_t grain, F f) {
  const size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), (n + grain - 1) / grain);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) f(i);
    return;
  }
  auto run = [&](size_t t) {
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) f(i);
  };
  std::vector<std::thread> pool;
  size_t started = 1;
  try {
    for (; started < threads; ++started) pool.emplace_back(run, started);
  } catch (const std::system_error&) {
    // No more threads to be had: this one runs the ranges left.
  }
  for (size_t t = started; t < threads; ++t) run(t);
  run(0);
  for (std::thread& th : pool) th.join();
}

std::string format_value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

bool same_special(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b;   // both infinite: same sign
}

}  // namespace

uint16_t float_to_half_bits(float value, DType dtype) {
  const Format f = format_of(dtype);
  if (std::isnan(value)) return nan_bits(dtype);
  const bool negative = std::signbit(value);
  const uint16_t sign = negative ? 0x8000 : 0;
  if (std::isinf(value)) return inf_bits(dtype, negative);
  const double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude == 0.0) return sign;
  int binary_exponent = 0;
  std::frexp(magnitude, &binary_exponent);   // magnitude = m * 2^binary_exponent, m in [0.5, 1)
  int exponent = std::max(binary_exponent - 1, f.min_exponent);
  const double scaled = std::ldexp(magnitude, f.precision - 1 - exponent);
  double significand = std::floor(scaled);
  const double fraction = scaled - significand;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(significand, 2.0) == 1.0)) significand += 1.0;
  const double implicit_one = std::ldexp(1.0, f.precision - 1);
  if (significand == 2.0 * implicit_one) {
    significand = implicit_one;
    ++exponent;
  }
  if (exponent > f.max_exponent) return inf_bits(dtype, negative);
  const uint32_t mantissa_bits = static_cast<uint32_t>(f.precision - 1);
  if (significand < implicit_one) return static_cast<uint16_t>(sign | static_cast<uint32_t>(significand));
  const uint32_t field = static_cast<uint32_t>(exponent + f.bias);
  return static_cast<uint16_t>(sign | (field << mantissa_bits) |
                               static_cast<uint32_t>(significand - implicit_one));
}

float half_bits_to_float(uint16_t bits, DType dtype) {
  const Format f = format_of(dtype);
  const int mantissa_bits = f.precision - 1;
  const bool negative = (bits & 0x8000) != 0;
  const uint32_t field = (bits >> mantissa_bits) & f.exponent_mask;
  const uint32_t mantissa = bits & ((1u << mantissa_bits) - 1u);
  double value;
  if (field == f.exponent_mask) {
    value = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else if (field == 0) {
    value = std::ldexp(static_cast<double>(mantissa), f.min_exponent - mantissa_bits);
  } else {
    value = std::ldexp(static_cast<double>(mantissa + (1u << mantissa_bits)),
                       static_cast<int>(field) - f.bias - mantissa_bits);
  }
  return static_cast<float>(negative ? -value : value);
}

size_t HostCase::out_elements() const {
  return static_cast<size_t>(spec.batch) * spec.seqlen_q * spec.num_heads_q * kHeadDimV;
}

size_t HostCase::lse_elements() const {
  return static_cast<size_t>(spec.batch) * spec.num_heads_q * spec.seqlen_q;
}

DecodeArgs HostCase::args(const void* q_ptr, const void* k_ptr, const int32_t* table_ptr,
                          const int32_t* seqlens_ptr, void* out_ptr, float* lse_ptr) const {
  DecodeArgs a;
  a.dtype = spec.dtype;
  a.batch = spec.batch;
  a.seqlen_q = spec.seqlen_q;
  a.num_heads_q = spec.num_heads_q;
  a.num_heads_kv = spec.num_heads_kv;
  a.head_dim = kHeadDimQK;
  a.head_dim_v = kHeadDimV;
  a.num_blocks = num_blocks;
  a.page_block_size = kPageBlockSize;
  a.max_blocks_per_seq = max_blocks_per_seq;
  a.q = q_ptr;
  std::copy(q_stride, q_stride + 4, a.q_stride);
  a.k_cache = k_ptr;
  std::copy(k_stride, k_stride + 4, a.k_stride);
  a.block_table = table_ptr;
  a.block_table_stride[0] = max_blocks_per_seq;
  a.block_table_stride[1] = 1;
  a.cache_seqlens = seqlens_ptr;
  a.out = out_ptr;
  a.out_stride[3] = 1;
  a.out_stride[2] = kHeadDimV;
  a.out_stride[1] = static_cast<int64_t>(spec.num_heads_q) * kHeadDimV;
  a.out_stride[0] = a.out_stride[1] * spec.seqlen_q;
  a.lse = lse_ptr;
  a.lse_stride[2] = 1;
  a.lse_stride[1] = spec.seqlen_q;
  a.lse_stride[0] = static_cast<int64_t>(spec.num_heads_q) * spec.seqlen_q;
  a.softmax_scale = spec.softmax_scale;
  a.wide_schedule = spec.wide_schedule;
  a.causal = spec.causal;
  return a;
}

DecodeArgs HostCase::host_args(void* out_ptr, float* lse_ptr) const {
  return args(q.data(), k_cache.data(), block_table.data(), seqlens.data(), out_ptr, lse_ptr);
}

HostCase make_case(const CaseSpec& spec) {
  if (static_cast<int>(spec.seqlens.size()) != spec.batch) {
    throw std::invalid_argument("make_case: seqlens.size() must equal batch");
  }
  HostCase c;
  c.spec = spec;
  c.seqlens.assign(spec.seqlens.begin(), spec.seqlens.end());
  std::mt19937_64 rng(spec.seed);

  std::vector<int> pages(spec.batch);
  int used = 0;
  int longest = 0;
  for (int r = 0; r < spec.batch; ++r) {
    pages[r] = (std::max(spec.seqlens[r], 0) + kPageBlockSize - 1) / kPageBlockSize;
    used += pages[r];
    longest = std::max(longest, pages[r]);
  }
  c.num_blocks = std::max(1, used + spec.extra_blocks);
  c.max_blocks_per_seq = std::max(1, longest + spec.extra_table_columns);

  // Pages go to requests in a random order, as a serving engine's allocator would leave them.
  std::vector<int32_t> permutation(c.num_blocks);
  std::iota(permutation.begin(), permutation.end(), 0);
  std::shuffle(permutation.begin(), permutation.end(), rng);
  c.block_table.assign(static_cast<size_t>(spec.batch) * c.max_blocks_per_seq, 0);
  std::vector<bool> page_used(c.num_blocks, false);
  int next_page = 0;
  for (int r = 0; r < spec.batch; ++r) {
    for (int i = 0; i < c.max_blocks_per_seq; ++i) {
      int32_t& entry = c.block_table[static_cast<size_t>(r) * c.max_blocks_per_seq + i];
      if (i < pages[r]) {
        entry = permutation[next_page++];
        page_used[entry] = true;
      } else {
        entry = spec.poison_unused ? kUnusedBlockId : 0;
      }
    }
  }

  // Scores of N(0,1) vectors over 576 channels have a standard deviation of about 1 after the
  // default scale: a softmax that is neither uniform nor one-hot.
  const uint64_t q_seed = rng(), cache_seed = rng();
  const int64_t token_stride = static_cast<int64_t>(spec.num_heads_q) * kHeadDimQK + spec.q_token_stride_pad;
  const int64_t token_values = static_cast<int64_t>(spec.num_heads_q) * kHeadDimQK;
  c.q_stride[3] = 1;
  c.q_stride[2] = kHeadDimQK;
  c.q_stride[1] = token_stride;
  c.q_stride[0] = token_stride * spec.seqlen_q;
  c.q.assign(static_cast<size_t>(c.q_stride[0]) * spec.batch, 0);
  parallel_for(static_cast<size_t>(spec.batch) * spec.seqlen_q, 64, [&](size_t t) {
    uint16_t* token = c.q.data() + t * token_stride;
    for (int64_t e = 0; e < token_values; ++e) {
      token[e] = float_to_half_bits(normal_at(q_seed, t * token_values + e), spec.dtype);
    }
    for (int e = 0; e < spec.q_token_stride_pad; ++e) {
      token[token_values + e] = spec.poison_unused ? poison_bits(spec.dtype, e) : 0;
    }
  });

  c.k_stride[3] = 1;
  c.k_stride[2] = kHeadDimQK;
  c.k_stride[1] = static_cast<int64_t>(spec.num_heads_kv) * kHeadDimQK;
  c.k_stride[0] = c.k_stride[1] * kPageBlockSize;
  c.k_cache.resize(static_cast<size_t>(c.k_stride[0]) * c.num_blocks);
  // Every element is drawn whether or not it is poisoned afterwards, so a poisoned case and an
  // unpoisoned one with the same seed hold the same valid data.
  parallel_for(c.k_cache.size(), size_t{1} << 16, [&](size_t i) {
    c.k_cache[i] = float_to_half_bits(normal_at(cache_seed, i), spec.dtype);
  });
  if (spec.poison_unused) {
    size_t counter = 0;
    auto poison_rows = [&](int32_t page, int first_row) {
      uint16_t* base = c.k_cache.data() + static_cast<size_t>(page) * c.k_stride[0];
      for (size_t e = static_cast<size_t>(first_row) * c.k_stride[1]; e < static_cast<size_t>(c.k_stride[0]); ++e) {
        base[e] = poison_bits(spec.dtype, counter++);
      }
    };
    for (int r = 0; r < spec.batch; ++r) {
      const int tail = spec.seqlens[r] % kPageBlockSize;
      if (pages[r] > 0 && tail != 0) {
        poison_rows(c.block_table[static_cast<size_t>(r) * c.max_blocks_per_seq + pages[r] - 1], tail);
      }
    }
    for (int32_t page = 0; page < c.num_blocks; ++page) {
      if (!page_used[page]) poison_rows(page, 0);
    }
  }
  return c;
}

std::vector<int> random_seqlens(int batch, int lo, int hi, double zero_fraction, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> length(lo, hi);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<int> lengths(batch);
  for (int& len : lengths) len = coin(rng) < zero_fraction ? 0 : length(rng);
  return lengths;
}

namespace {

// Shared by compare_out and compare_lse: element tolerance, special positions, cosine.
template <typename Value>
Comparison compare_values(size_t n_actual, size_t n_expected, Value value_of, const char* name,
                          double abs_tol, double rel_tol, bool check_cosine) {
  Comparison result;
  std::ostringstream msg;
  if (n_actual != n_expected) {
    result.ok = false;
    msg << name << ": " << n_actual << " elements, expected " << n_expected;
    result.message = msg.str();
    return result;
  }
  constexpr size_t kShown = 8;
  double dot = 0.0, norms = 0.0;
  for (size_t i = 0; i < n_actual; ++i) {
    double a, b;
    value_of(i, a, b);
    bool good;
    if (!std::isfinite(a) || !std::isfinite(b)) {
      good = same_special(a, b);
    } else {
      const double diff = std::fabs(a - b);
      result.max_abs_error = std::max(result.max_abs_error, diff);
      good = diff <= abs_tol || diff <= rel_tol * std::fabs(b);
      dot += a * b;
      norms += a * a + b * b;
    }
    if (!good) {
      if (result.mismatches < kShown) {
        msg << name << "[" << i << "]: got " << format_value(a) << ", expected " << format_value(b) << "\n";
      }
      ++result.mismatches;
    }
  }
  if (result.mismatches > kShown) msg << "... " << result.mismatches << " mismatches in all\n";
  result.cosine_diff = norms > 0.0 ? 1.0 - 2.0 * dot / norms : 0.0;
  if (check_cosine && result.cosine_diff > 5e-6) {
    msg << name << ": cosine difference " << format_value(result.cosine_diff) << " > 5e-6\n";
    result.ok = false;
  }
  if (result.mismatches > 0) result.ok = false;
  result.message = result.ok ? std::string() : msg.str();
  return result;
}

}  // namespace

Comparison compare_out(const std::vector<uint16_t>& actual, const std::vector<uint16_t>& expected,
                       DType dtype) {
  return compare_values(
      actual.size(), expected.size(),
      [&](size_t i, double& a, double& b) {
        a = half_bits_to_float(actual[i], dtype);
        b = half_bits_to_float(expected[i], dtype);
      },
      "out", 8e-4, 2.01 / 128.0, /*check_cosine=*/true);
}

Comparison compare_lse(const std::vector<float>& actual, const std::vector<float>& expected) {
  return compare_values(
      actual.size(), expected.size(),
      [&](size_t i, double& a, double& b) {
        a = actual[i];
        b = expected[i];
      },
      "lse", 1e-6, 8.01 / 65536.0, /*check_cosine=*/false);
}

}  // namespace flashmla::testing
