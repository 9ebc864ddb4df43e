// Hardware ceilings measured in the same run as the decode rows, on the same GPU:
//   - streaming HBM read bandwidth: our own kernel, 16-byte loads over a multi-GiB buffer;
//   - bf16 tensor-core peak: a cuBLAS n^3 GEMM (bf16 in/out, f32 compute) on random data.
// Both report the median of several timed runs.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <cublas_v2.h>

#include "bench.h"
#include "cuda_check.h"

namespace bench {
namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusName(status) + ": " +
                             cublasGetStatusString(status));
  }
}

// Grid-stride sum of 16-byte words, four loads in flight per thread, streaming (evict-first)
// loads. The xor-reduced result lands in *sink so the loads cannot be removed.
__global__ void __launch_bounds__(512) stream_read_kernel(const uint4* __restrict__ src, size_t n, unsigned* sink) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = __ldcs(src + i);
    const uint4 b = __ldcs(src + i + stride);
    const uint4 c = __ldcs(src + i + 2 * stride);
    const uint4 d = __ldcs(src + i + 3 * stride);
    acc += (a.x ^ b.y) + (a.y ^ b.z) + (a.z ^ b.w) + (a.w ^ b.x) +
           (c.x ^ d.y) + (c.y ^ d.z) + (c.z ^ d.w) + (c.w ^ d.x);
  }
  for (; i < n; i += stride) {
    const uint4 a = __ldcs(src + i);
    acc += a.x + a.y + a.z + a.w;
  }
  for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if ((threadIdx.x & 31) == 0) atomicAdd(sink, acc);
}

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    BENCH_CUDA(cudaEventCreate(&start));
    BENCH_CUDA(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  float ms() const {
    BENCH_CUDA(cudaEventSynchronize(stop));
    float v = 0;
    BENCH_CUDA(cudaEventElapsedTime(&v, start, stop));
    return v;
  }
};

template <typename T>
struct DeviceBuffer {
  T* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { BENCH_CUDA(cudaMalloc(&p, bytes)); }
  ~DeviceBuffer() { cudaFree(p); }
};

void measure_read(Ceilings& out, double read_gib, cudaStream_t stream) {
  size_t free_bytes = 0, total_bytes = 0;
  BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  size_t bytes = static_cast<size_t>(read_gib * 1024.0 * 1024.0 * 1024.0);
  const size_t cap = free_bytes / 10 * 8;
  if (bytes > cap) {
    std::fprintf(stderr, "note: streaming-read buffer reduced from %.2f GiB to %.2f GiB (free memory)\n",
                 read_gib, cap / 1073741824.0);
    bytes = cap;
  }
  bytes &= ~static_cast<size_t>(4095);
  if (bytes == 0) throw std::runtime_error("no device memory for the streaming-read buffer");
  DeviceBuffer<uint4> buf(bytes);
  DeviceBuffer<unsigned> sink(sizeof(unsigned));
  BENCH_CUDA(cudaMemsetAsync(sink.p, 0, sizeof(unsigned), stream));
  fill_random_half(buf.p, bytes / 2, flashmla::DType::bf16, 1.0f, 77, stream);

  int device = 0, sms = 0, per_sm = 0;
  BENCH_CUDA(cudaGetDevice(&device));
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int threads = 512;
  BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, stream_read_kernel, threads, 0));
  const int blocks = sms * std::max(per_sm, 1);
  const size_t n = bytes / sizeof(uint4);

  EventPair ev;
  for (int i = 0; i < 3; ++i) stream_read_kernel<<<blocks, threads, 0, stream>>>(buf.p, n, sink.p);
  BENCH_CUDA(cudaGetLastError());
  for (int i = 0; i < 11; ++i) {
    BENCH_CUDA(cudaEventRecord(ev.start, stream));
    stream_read_kernel<<<blocks, threads, 0, stream>>>(buf.p, n, sink.p);
    BENCH_CUDA(cudaGetLastError());
    BENCH_CUDA(cudaEventRecord(ev.stop, stream));
    out.read_samples_gbps.push_back(static_cast<double>(bytes) / (ev.ms() * 1e-3) / 1e9);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  out.read_buffer_bytes = static_cast<double>(bytes);
  out.read_gbps = median_of(out.read_samples_gbps);
}

void measure_gemm(Ceilings& out, int n, cudaStream_t stream) {
  const size_t elems = static_cast<size_t>(n) * n;
  DeviceBuffer<uint16_t> a(elems * 2), b(elems * 2), c(elems * 2);
  fill_random_half(a.p, elems, flashmla::DType::bf16, 1.0f, 91, stream);
  fill_random_half(b.p, elems, flashmla::DType::bf16, 1.0f, 92, stream);

  cublasHandle_t handle = nullptr;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { cublasDestroy(h); }
  } guard{handle};
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  auto gemm = [&] {
    check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.p, CUDA_R_16BF, n,
                              b.p, CUDA_R_16BF, n, &beta, c.p, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx(bf16, compute f32)");
  };
  const int per_sample = 5;
  EventPair ev;
  for (int i = 0; i < 5; ++i) gemm();
  for (int s = 0; s < 9; ++s) {
    BENCH_CUDA(cudaEventRecord(ev.start, stream));
    for (int i = 0; i < per_sample; ++i) gemm();
    BENCH_CUDA(cudaEventRecord(ev.stop, stream));
    const double sec = ev.ms() * 1e-3 / per_sample;
    out.gemm_samples_tflops.push_back(2.0 * n * static_cast<double>(n) * n / sec / 1e12);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  out.gemm_n = n;
  out.gemm_tflops = median_of(out.gemm_samples_tflops);
}

}  // namespace

Ceilings measure_ceilings(double read_gib, int gemm_n, cudaStream_t stream) {
  Ceilings c;
  measure_read(c, read_gib, stream);
  measure_gemm(c, gemm_n, stream);
  return c;
}

}  // namespace bench
