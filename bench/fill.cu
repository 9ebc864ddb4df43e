// Deterministic pseudo-random fill of 16-bit float buffers on the device (the KV caches of
// the grid rows are several GB: generating them on the host would dominate the run).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "bench.h"
#include "cuda_check.h"

namespace bench {
namespace {

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <bool kBf16>
__device__ __forceinline__ uint16_t to_half_bits(float v) {
  if constexpr (kBf16) {
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    return *reinterpret_cast<const uint16_t*>(&h);
  } else {
    const __half h = __float2half_rn(v);
    return *reinterpret_cast<const uint16_t*>(&h);
  }
}

template <bool kBf16>
__global__ void fill_kernel(uint16_t* dst, size_t count, float scale, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t r = mix64(i ^ (seed * 0xd1b54a32d192ed03ull));
    // Uniform in [-scale, scale), like torch's uniform_(-scale, scale) in the Python benchmark.
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
    dst[i] = to_half_bits<kBf16>((2.0f * u - 1.0f) * scale);
  }
}

// Box-Muller on two 24-bit uniforms from one hash: u1 in (0, 1], so the logarithm is finite.
template <bool kBf16>
__global__ void fill_normal_kernel(uint16_t* dst, size_t count, float sigma, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t r = mix64(i ^ (seed * 0xd1b54a32d192ed03ull));
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * (1.0f / 16777216.0f);
    const float u2 = static_cast<float>((r >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
    const float n = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    dst[i] = to_half_bits<kBf16>(fminf(fmaxf(n * sigma, -1.0f), 1.0f));
  }
}

unsigned fill_blocks(size_t count, int threads) {
  const size_t want = (count + threads - 1) / threads;
  return static_cast<unsigned>(want < 65536 ? want : 65536);
}

}  // namespace

void fill_clamped_normal_half(void* dst, size_t count, flashmla::DType dtype, float sigma, uint64_t seed,
                              cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  const unsigned blocks = fill_blocks(count, threads);
  if (dtype == flashmla::DType::bf16) {
    fill_normal_kernel<true><<<blocks, threads, 0, stream>>>(static_cast<uint16_t*>(dst), count, sigma, seed);
  } else {
    fill_normal_kernel<false><<<blocks, threads, 0, stream>>>(static_cast<uint16_t*>(dst), count, sigma, seed);
  }
  BENCH_CUDA(cudaGetLastError());
}

void fill_random_half(void* dst, size_t count, flashmla::DType dtype, float scale, uint64_t seed,
                      cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  const unsigned blocks = fill_blocks(count, threads);
  if (dtype == flashmla::DType::bf16) {
    fill_kernel<true><<<blocks, threads, 0, stream>>>(static_cast<uint16_t*>(dst), count, scale, seed);
  } else {
    fill_kernel<false><<<blocks, threads, 0, stream>>>(static_cast<uint16_t*>(dst), count, scale, seed);
  }
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace bench
