// Experiment-only instrumentation (FLASHMLA_EXPERIMENT_PHASE_CLOCKS): every consumer thread reads
// clock64 at the phase boundaries of a page and adds the cycles since the last mark to a per-phase
// register total; thread 0 of each consumer warpgroup adds its totals to a device array when the
// CTA ends, and the host prints cycles per page per phase when the process exits. Without the macro
// every call below compiles to nothing.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime_api.h>

namespace flashmla::sm90 {

inline constexpr int kPhaseCount = 11;

#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
// [consumer warpgroup][phase], then [wg][kPhaseCount] = pages seen, [+1] = CTA cycles (construction
// to flush), [+2] = CTA nanoseconds (globaltimer), [+3] = CTAs.
inline constexpr int kClockSlots = kPhaseCount + 4;
static __device__ unsigned long long g_phase_clocks[4][kClockSlots];   // [2]: the page producer, [3]: a Q loader

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

struct PhaseClocks {
  unsigned long long last = 0;
  unsigned long long total[kPhaseCount] = {};
  unsigned long long pages = 0;
  unsigned long long cta_clock0, cta_ns0;
  __device__ PhaseClocks() {
#ifdef __CUDA_ARCH__
    cta_clock0 = clock64();
    cta_ns0 = global_ns();
#endif
  }
  __device__ __forceinline__ void start() { last = clock64(); }
  __device__ __forceinline__ void mark(int phase) {
    const unsigned long long now = clock64();
    total[phase] += now - last;
    last = now;
  }
  __device__ __forceinline__ void page() { ++pages; }
  // Phases outside the page loop (a request's Q wait, its epilogue): cycles since `from` (now()).
  __device__ __forceinline__ void add_since(int phase, unsigned long long from) { total[phase] += clock64() - from; }
  __device__ __forceinline__ unsigned long long now() const { return clock64(); }
  __device__ __forceinline__ void flush(int wg, bool leader) {
    if (!leader) return;
    for (int i = 0; i < kPhaseCount; ++i) atomicAdd(&g_phase_clocks[wg][i], total[i]);
    atomicAdd(&g_phase_clocks[wg][kPhaseCount], pages);
    atomicAdd(&g_phase_clocks[wg][kPhaseCount + 1], clock64() - cta_clock0);
    atomicAdd(&g_phase_clocks[wg][kPhaseCount + 2], global_ns() - cta_ns0);
    atomicAdd(&g_phase_clocks[wg][kPhaseCount + 3], 1ull);
  }
};

// static, like g_phase_clocks: each translation unit (kernel family and dtype) has its own counters,
// registers its own report, and prints it if its kernels ran.
static void print_phase_clocks() {
  unsigned long long h[4][kClockSlots];
  if (cudaMemcpyFromSymbol(h, g_phase_clocks, sizeof(h)) != cudaSuccess) return;
  if (h[0][kPhaseCount] == 0 && h[2][kPhaseCount] == 0) return;
  for (int wg = 0; wg < 4; ++wg) {
    const double pages = h[wg][kPhaseCount] ? double(h[wg][kPhaseCount]) : 1.0;
    const double ctas = h[wg][kPhaseCount + 3] ? double(h[wg][kPhaseCount + 3]) : 1.0;
    double sum = 0;
    std::fprintf(stderr, "phase_clocks wg%d pages=%llu cycles/page:", wg, h[wg][kPhaseCount]);
    for (int i = 0; i < kPhaseCount; ++i) {
      std::fprintf(stderr, " p%d=%.0f", i, h[wg][i] / pages);
      sum += h[wg][i] / pages;
    }
    std::fprintf(stderr, " sum=%.0f | per CTA: pages=%.1f cycles=%.0f us=%.2f GHz=%.3f\n", sum, pages / ctas,
                 h[wg][kPhaseCount + 1] / ctas, h[wg][kPhaseCount + 2] / ctas / 1000.0,
                 double(h[wg][kPhaseCount + 1]) / double(h[wg][kPhaseCount + 2] ? h[wg][kPhaseCount + 2] : 1));
  }
}

static void register_phase_clock_report() {
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit(print_phase_clocks);
  }
}
#else
struct PhaseClocks {
  __device__ __forceinline__ void start() {}
  __device__ __forceinline__ void mark(int) {}
  __device__ __forceinline__ void page() {}
  __device__ __forceinline__ void add_since(int, unsigned long long) {}
  __device__ __forceinline__ unsigned long long now() const { return 0; }
  __device__ __forceinline__ void flush(int, bool) {}
};
inline void register_phase_clock_report() {}
#endif

}  // namespace flashmla::sm90
