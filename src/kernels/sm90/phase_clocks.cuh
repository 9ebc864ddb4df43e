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

inline constexpr int kPhaseCount = 12;

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

__device__ __forceinline__ uint32_t clock32() {
  uint32_t t;
  asm volatile("mov.u32 %0, %%clock;" : "=r"(t));
  return t;
}

// 32-bit totals (a CTA's phase totals stay far below 2^32 cycles) and a 32-bit clock whose
// differences wrap correctly: half the registers of 64-bit ones, which the wide kernel spilled.
struct PhaseClocks {
  uint32_t last = 0;
  uint32_t total[kPhaseCount] = {};
  uint32_t pages = 0;
  uint32_t cta_clock0, cta_ns0;   // a CTA lasts far less than 2^32 cycles or nanoseconds
  __device__ PhaseClocks() {
#ifdef __CUDA_ARCH__
    cta_clock0 = clock32();
    cta_ns0 = static_cast<uint32_t>(global_ns());
#endif
  }
  __device__ __forceinline__ void start() { last = clock32(); }
  __device__ __forceinline__ void mark(int phase) {
    const uint32_t now = clock32();
    total[phase] += now - last;
    last = now;
  }
  __device__ __forceinline__ void page() { ++pages; }
  // Phases outside the page loop (a request's Q wait, its epilogue): cycles since `from` (now()).
  __device__ __forceinline__ void add_since(int phase, uint32_t from) { total[phase] += clock32() - from; }
  __device__ __forceinline__ uint32_t now() const { return clock32(); }
  __device__ __forceinline__ void flush(int wg, bool leader) {
    if (!leader) return;
    for (int i = 0; i < kPhaseCount; ++i) atomicAdd(&g_phase_clocks[wg][i], static_cast<unsigned long long>(total[i]));
    atomicAdd(&g_phase_clocks[wg][kPhaseCount], static_cast<unsigned long long>(pages));
    atomicAdd(&g_phase_clocks[wg][kPhaseCount + 1], static_cast<unsigned long long>(clock32() - cta_clock0));
    atomicAdd(&g_phase_clocks[wg][kPhaseCount + 2],
              static_cast<unsigned long long>(static_cast<uint32_t>(global_ns()) - cta_ns0));
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
  __device__ __forceinline__ void add_since(int, uint32_t) {}
  __device__ __forceinline__ uint32_t now() const { return 0; }
  __device__ __forceinline__ void flush(int, bool) {}
};
inline void register_phase_clock_report() {}
#endif

// Experiment-only: a delay of `cycles` inserted into a phase (FLASHMLA_EXPERIMENT_SPIN_*), to see
// how much of it reaches the kernel's time, i.e. whether that phase is on the critical path.
__device__ __forceinline__ void spin_cycles(long long cycles) {
  const long long until = clock64() + cycles;
  while (clock64() < until) {
  }
}

}  // namespace flashmla::sm90
