// flashmla_pipe_rate: lanes per clock per SM of the softmax's special-function work
// (docs/perf-log.md, entry 38): ex2.approx alone, cvt.rn.bf16x2.f32 (P's hi/lo packing) alone, and
// the two interleaved, which tells whether they share a pipe. One CTA per SM, eight independent
// chains per thread, clock64 around the loop.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

namespace {

enum Mode { kEx2 = 0, kCvt = 1, kBoth = 2 };

template <int kMode>
__global__ void pipe_loop(float* sink, int iters, long long* cycles) {
  float a[8];
  for (int i = 0; i < 8; ++i) a[i] = threadIdx.x * 1e-3f + i * 0.125f;
  __syncthreads();
  const long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (kMode != kCvt) asm volatile("ex2.approx.ftz.f32 %0, %0;\n" : "+f"(a[i]));
      if (kMode != kEx2) {
        // The packed result feeds the next step, so no conversion is loop-invariant.
        uint32_t r;
        asm volatile("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(a[i]), "f"(a[(i + 1) & 7]));
        if (kMode == kCvt) a[i] = __uint_as_float((r & 0x3fffffffu) | 0x3f000000u);
        else a[i] += __uint_as_float(r & 0x007fffffu);
      }
    }
  }
  __syncthreads();
  const long long t1 = clock64();
  float s = 0.f;
  for (int i = 0; i < 8; ++i) s += a[i];
  sink[blockIdx.x * blockDim.x + threadIdx.x] = s;
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "flashmla_pipe_rate: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

}  // namespace

int main() {
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
  constexpr int kThreads = 1024;
  constexpr int kIters = 4096;
  float* sink = nullptr;
  long long* cycles = nullptr;
  check(cudaMalloc(&sink, static_cast<size_t>(sms) * kThreads * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&cycles, sms * sizeof(long long)), "cudaMalloc");
  using Kernel = void (*)(float*, int, long long*);
  const Kernel kernels[3] = {pipe_loop<kEx2>, pipe_loop<kCvt>, pipe_loop<kBoth>};
  const char* names[3] = {"ex2.approx alone", "cvt.rn.bf16x2 alone", "ex2 + cvt interleaved"};
  std::printf("| stream | cycles | lanes per clock per SM, per instruction kind |\n|---|---|---|\n");
  for (int m = 0; m < 3; ++m) {
    kernels[m]<<<sms, kThreads>>>(sink, 16, cycles);   // warm-up
    kernels[m]<<<sms, kThreads>>>(sink, kIters, cycles);
    check(cudaGetLastError(), "launch");
    long long c = 0;
    check(cudaMemcpy(&c, cycles, sizeof(c), cudaMemcpyDeviceToHost), "cudaMemcpy");
    const double lanes = static_cast<double>(kThreads) * kIters * 8;
    std::printf("| %s | %lld | %.1f |\n", names[m], c, lanes / static_cast<double>(c));
  }
  check(cudaFree(sink), "cudaFree");
  check(cudaFree(cycles), "cudaFree");
  return 0;
}
