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

enum class Dist { uniform, clamped_normal };

// uniform: in [-param, param), like torch's uniform_(-param, param). clamped_normal: normal with
// standard deviation param, clamped to [-1, 1], by Box-Muller on two 24-bit uniforms of one hash
// (u1 in (0, 1], so the logarithm is finite).
template <bool kBf16, Dist kDist>
__global__ void fill_kernel(uint16_t* dst, size_t count, float param, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const uint64_t r = mix64(i ^ (seed * 0xd1b54a32d192ed03ull));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
    float v;
    if constexpr (kDist == Dist::uniform) {
      v = (2.0f * u - 1.0f) * param;
    } else {
      const float u2 = static_cast<float>((r >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
      const float n = sqrtf(-2.0f * logf(u + 1.0f / 16777216.0f)) * cospif(2.0f * u2);
      v = fminf(fmaxf(n * param, -1.0f), 1.0f);
    }
    dst[i] = to_half_bits<kBf16>(v);
  }
}

template <Dist kDist>
void fill(void* dst, size_t count, flashmla::DType dtype, float param, uint64_t seed, cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  const size_t want = (count + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65536 ? want : 65536);
  uint16_t* p = static_cast<uint16_t*>(dst);
  if (dtype == flashmla::DType::bf16) {
    fill_kernel<true, kDist><<<blocks, threads, 0, stream>>>(p, count, param, seed);
  } else {
    fill_kernel<false, kDist><<<blocks, threads, 0, stream>>>(p, count, param, seed);
  }
  BENCH_CUDA(cudaGetLastError());
}

}  // namespace

void fill_random_half(void* dst, size_t count, flashmla::DType dtype, float scale, uint64_t seed,
                      cudaStream_t stream) {
  fill<Dist::uniform>(dst, count, dtype, scale, seed, stream);
}

void fill_clamped_normal_half(void* dst, size_t count, flashmla::DType dtype, float sigma, uint64_t seed,
                              cudaStream_t stream) {
  fill<Dist::clamped_normal>(dst, count, dtype, sigma, seed, stream);
}

}  // namespace bench
