// Probe: a grid-wide barrier inside one persistent grid against a kernel boundary with PDL
// (docs/perf-log.md, entry 62). The split requests of a small batch are merged by a second kernel
// today; this asks what merging them in the decode grid itself, behind a grid barrier, could save:
//   1. does cudaLaunchKernelEx take the cooperative and the programmatic-serialisation attributes
//      together, directly and under stream capture (CUDA graphs)?
//   2. what does one grid barrier cost with one CTA per SM and the decode kernel's shared memory?
//   3. what does a kernel boundary cost between two such grids launched with PDL (the second
//      waiting in griddepcontrol.wait), and without PDL?
// Prints one table; no GPU other than sm_90a is supported (same as the decode kernels).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include <cuda_runtime.h>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"

using flashmla::sm90::allow_dependent_launch;
using flashmla::sm90::wait_for_primary_grid;

namespace {

constexpr int kThreads = 384;
constexpr unsigned kSmemBytes = 230464;   // the wide decode kernel's dynamic shared memory

__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// A barrier over n CTAs on a monotonic 64-bit counter: arrival k belongs to barrier k / n, which
// completes when the counter reaches (k / n + 1) * n. No reset and no generation word, so it needs
// only to start at a multiple of n (zero) and never to be shared by two grids at once.
__device__ __forceinline__ void grid_sync(unsigned long long* count, unsigned n) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const unsigned long long arrival = atomicAdd(count, 1ull);
    const unsigned long long target = (arrival / n + 1) * n;
    while (load_acquire(count) < target) {
    }
  }
  __syncthreads();
}

// With barriers = 0, one CTA per SM that does next to nothing: what a kernel boundary costs.
__global__ void barrier_kernel(unsigned long long* count, int barriers, unsigned* sink) {
  extern __shared__ unsigned smem[];
  allow_dependent_launch();
  wait_for_primary_grid();
  const unsigned n = gridDim.x;
  for (int i = 0; i < barriers; ++i) grid_sync(count, n);
  if (threadIdx.x == 0) smem[0] = blockIdx.x;
  __syncthreads();
  if (threadIdx.x == 0 && smem[0] == 0xffffffffu) sink[0] = 1;
}

// A combine-sized grid: small CTAs, several per SM, little shared memory.
__global__ void __launch_bounds__(256) small_kernel(unsigned* sink) {
  __shared__ unsigned word[32];
  allow_dependent_launch();
  wait_for_primary_grid();
  if (threadIdx.x < 32) word[threadIdx.x] = blockIdx.x;
  __syncthreads();
  if (threadIdx.x == 0 && word[5] == 0xffffffffu) sink[0] = 1;
}

// One launch of `kernel` over `grid` CTAs with the given attributes.
struct LaunchShape {
  int grid;
  int threads;
  unsigned smem_bytes;
  bool cooperative;
  bool pdl;
};

template <typename... Params, typename... Args>
cudaError_t launch_kernel(const LaunchShape& shape, cudaStream_t s, void (*kernel)(Params...), Args... args) {
  cudaLaunchAttribute attrs[2];
  int n = 0;
  if (shape.cooperative) {
    attrs[n].id = cudaLaunchAttributeCooperative;
    attrs[n++].val.cooperative = 1;
  }
  if (shape.pdl) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(shape.grid);
  config.blockDim = dim3(shape.threads);
  config.dynamicSmemBytes = shape.smem_bytes;
  config.stream = s;
  config.attrs = attrs;
  config.numAttrs = n;
  return cudaLaunchKernelEx(&config, kernel, args...);
}

cudaError_t launch_barriers(bool cooperative, bool pdl, int grid, cudaStream_t s, unsigned long long* count,
                            int barriers, unsigned* sink) {
  return launch_kernel({grid, kThreads, kSmemBytes, cooperative, pdl}, s, barrier_kernel, count, barriers, sink);
}

cudaError_t launch_empty(bool pdl, int grid, cudaStream_t s, unsigned long long* count, unsigned* sink) {
  return launch_barriers(false, pdl, grid, s, count, 0, sink);
}

cudaError_t launch_small(int grid, cudaStream_t s, unsigned* sink) {
  return launch_kernel({grid, 256, 0, false, true}, s, small_kernel, sink);
}

template <typename F>
float time_us(cudaStream_t s, int calls, F&& body) {
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  body();   // warm-up
  BENCH_CUDA(cudaStreamSynchronize(s));
  std::vector<float> t;
  for (int rep = 0; rep < 7; ++rep) {
    BENCH_CUDA(cudaEventRecord(a, s));
    for (int i = 0; i < calls; ++i) body();
    BENCH_CUDA(cudaEventRecord(b, s));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0.f;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(1000.f * ms / calls);
  }
  std::sort(t.begin(), t.end());
  BENCH_CUDA(cudaEventDestroy(a));
  BENCH_CUDA(cudaEventDestroy(b));
  return t[t.size() / 2];
}

}  // namespace

int run_probe() {
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  BENCH_CUDA(cudaFuncSetAttribute(barrier_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  int per_sm = 0;
  BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, barrier_kernel, kThreads, kSmemBytes));
  cudaStream_t s;
  BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  unsigned long long* count = nullptr;
  unsigned* sink = nullptr;
  BENCH_CUDA(cudaMalloc(&count, sizeof(unsigned long long)));
  BENCH_CUDA(cudaMalloc(&sink, sizeof(unsigned)));
  BENCH_CUDA(cudaMemset(count, 0, sizeof(unsigned long long)));
  std::printf("SMs %d, CTAs per SM at %u B of shared memory: %d\n\n", sms, kSmemBytes, per_sm);

  // 1. Which attribute sets launch, directly and captured.
  std::printf("| attributes | direct launch | captured + replayed |\n|---|---|---|\n");
  for (int v = 0; v < 3; ++v) {
    const bool coop = v >= 1, pdl = v != 1;
    const char* name = v == 0 ? "PDL" : v == 1 ? "cooperative" : "cooperative + PDL";
    cudaError_t direct = launch_barriers(coop, pdl, sms, s, count, 1, sink);
    cudaError_t sync = cudaStreamSynchronize(s);
    if (direct == cudaSuccess) direct = sync;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaError_t captured = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    if (captured == cudaSuccess) {
      cudaError_t l1 = launch_barriers(coop, pdl, sms, s, count, 1, sink);
      cudaError_t l2 = launch_barriers(coop, pdl, sms, s, count, 1, sink);
      captured = cudaStreamEndCapture(s, &graph);
      if (captured == cudaSuccess) captured = l1 != cudaSuccess ? l1 : l2;
    }
    if (captured == cudaSuccess) captured = cudaGraphInstantiate(&exec, graph, 0);
    if (captured == cudaSuccess) captured = cudaGraphLaunch(exec, s);
    if (captured == cudaSuccess) captured = cudaStreamSynchronize(s);
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    std::printf("| %s | %s | %s |\n", name, cudaGetErrorString(direct), cudaGetErrorString(captured));
  }

  // 2-3. Costs, us per call (median of 7 repeats of 20 back-to-back calls).
  const int kCalls = 20;
  std::printf("\n| what | us per call |\n|---|---|\n");
  for (int barriers : {0, 1, 16}) {
    for (int coop = 0; coop < 2; ++coop) {
      const float us = time_us(s, kCalls, [&] {
        BENCH_CUDA(launch_barriers(coop != 0, true, sms, s, count, barriers, sink));
      });
      std::printf("| %s PDL grid, %d grid barriers | %.2f |\n", coop ? "cooperative" : "plain", barriers, us);
    }
  }
  for (int pdl = 0; pdl < 2; ++pdl) {
    const float one = time_us(s, kCalls, [&] { BENCH_CUDA(launch_empty(pdl != 0, sms, s, count, sink)); });
    const float two = time_us(s, kCalls, [&] {
      BENCH_CUDA(launch_empty(pdl != 0, sms, s, count, sink));
      BENCH_CUDA(launch_empty(pdl != 0, sms, s, count, sink));
    });
    std::printf("| empty grid%s: one kernel / two kernels a call | %.2f / %.2f |\n", pdl ? " with PDL" : "", one, two);
  }
  // 4. A decode-sized grid followed by a combine-sized one (PDL both ways), with the small kernel's
  // preferred shared-memory carveout left to the driver or set to the decode kernel's (maximum):
  // different carveouts may make the SMs reconfigure between the two kernels.
  for (int carve = 0; carve < 2; ++carve) {
    BENCH_CUDA(cudaFuncSetAttribute(small_kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                     carve ? 100 : -1));
    for (int small_grid : {128, 1024}) {
      const float us = time_us(s, kCalls, [&] {
        BENCH_CUDA(launch_empty(true, sms, s, count, sink));
        BENCH_CUDA(launch_small(small_grid, s, sink));
      });
      std::printf("| empty decode-sized grid + %d-CTA small grid, carveout %s | %.2f |\n", small_grid,
                  carve ? "max shared" : "default", us);
    }
  }
  BENCH_CUDA(cudaFree(count));
  BENCH_CUDA(cudaFree(sink));
  return 0;
}

int main() {
  try {
    return run_probe();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_grid_barrier_probe: %s\n", e.what());
    return 1;
  }
}
