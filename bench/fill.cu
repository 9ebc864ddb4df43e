// Deterministic pseudo-random fill of 16-bit float buffers on the device (the KV caches of
// the grid rows are several GB: generating them on the host would dominate the run).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "bench.h"
#include "cuda_check.h"
#include "fill_values.cuh"

namespace bench {
namespace {

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

template <bool kBf16, Dist kDist>
__global__ void fill_kernel(uint16_t* dst, size_t count, float param, uint64_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    dst[i] = to_half_bits<kBf16>(fill_value<kDist>(i, param, seed));
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
