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

inline constexpr int kPhaseCount = 8;

#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
// [consumer warpgroup][phase], then [warpgroup][kPhaseCount] = pages seen.
static __device__ unsigned long long g_phase_clocks[3][kPhaseCount + 1];   // [2]: the page producer

struct PhaseClocks {
  unsigned long long last = 0;
  unsigned long long total[kPhaseCount] = {};
  unsigned long long pages = 0;
  __device__ __forceinline__ void start() { last = clock64(); }
  __device__ __forceinline__ void mark(int phase) {
    const unsigned long long now = clock64();
    total[phase] += now - last;
    last = now;
  }
  __device__ __forceinline__ void page() { ++pages; }
  __device__ __forceinline__ void flush(int wg, bool leader) {
    if (!leader) return;
    for (int i = 0; i < kPhaseCount; ++i) atomicAdd(&g_phase_clocks[wg][i], total[i]);
    atomicAdd(&g_phase_clocks[wg][kPhaseCount], pages);
  }
};

inline void print_phase_clocks() {
  unsigned long long h[3][kPhaseCount + 1];
  if (cudaMemcpyFromSymbol(h, g_phase_clocks, sizeof(h)) != cudaSuccess) return;
  for (int wg = 0; wg < 3; ++wg) {
    const double pages = h[wg][kPhaseCount] ? double(h[wg][kPhaseCount]) : 1.0;
    double sum = 0;
    std::fprintf(stderr, "phase_clocks wg%d pages=%llu cycles/page:", wg, h[wg][kPhaseCount]);
    for (int i = 0; i < kPhaseCount; ++i) {
      std::fprintf(stderr, " p%d=%.0f", i, h[wg][i] / pages);
      sum += h[wg][i] / pages;
    }
    std::fprintf(stderr, " sum=%.0f\n", sum);
  }
}

inline void register_phase_clock_report() {
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
  __device__ __forceinline__ void flush(int, bool) {}
};
inline void register_phase_clock_report() {}
#endif

}  // namespace flashmla::sm90
