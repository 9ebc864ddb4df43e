// Experiment-only instrumentation (FLASHMLA_EXPERIMENT_PHASE_CLOCKS): every consumer thread reads
// clock64 at the phase boundaries of a page and adds the cycles since the last mark to a per-phase
// register total; thread 0 of each consumer warpgroup adds its totals to a device array when the
// CTA ends, and the host prints cycles per page per phase when the process exits. Without the macro
// every call below compiles to nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/sm90/ptx.cuh"

namespace flashmla::sm90 {

inline constexpr int kPhaseCount = 29;

#if defined(FLASHMLA_EXPERIMENT_PHASE_CLOCKS) || defined(FLASHMLA_EXPERIMENT_CTA_SPANS)
// Registers an instrumentation's report to print when the process exits, once per translation unit.
template <void (*kReport)()>
void register_report_at_exit() {
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit(kReport);
  }
}
#endif

#ifdef FLASHMLA_EXPERIMENT_PHASE_CLOCKS
// [consumer warpgroup][phase], then [wg][kPhaseCount] = pages seen, [+1] = CTA cycles (construction
// to flush), [+2] = CTA nanoseconds (globaltimer), [+3] = CTAs.
inline constexpr int kClockSlots = kPhaseCount + 4;
static __device__ unsigned long long g_phase_clocks[4][kClockSlots];   // [2]: the page producer, [3]: a Q loader
// $FLASHMLA_CLOCK_PAIRS, copied here when the first clocked kernel launches: which of a segment's page
// pairs a kernel with pairs (the seesaw) lets its in-pair phases count (0: all).
static __device__ int g_clock_pair_mode;

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
  bool counting = true;            // marks add their cycles (gate)
  __device__ PhaseClocks() {
#ifdef __CUDA_ARCH__
    cta_clock0 = clock32();
    cta_ns0 = static_cast<uint32_t>(global_ns());
#endif
  }
  __device__ __forceinline__ void start() { last = clock32(); }
  __device__ __forceinline__ void mark(int phase) {
    const uint32_t now = clock32();
    if (counting) total[phase] += now - last;
    last = now;
  }
  // Marks until the next gate add their cycles only when `on` (count and add_since always do).
  __device__ __forceinline__ void gate(bool on) { counting = on; }
  __device__ __forceinline__ int pair_mode() const { return g_clock_pair_mode; }
  __device__ __forceinline__ void page() { ++pages; }
  __device__ __forceinline__ void add_pages(int n) { pages += static_cast<uint32_t>(n); }
  // Counts an event in a phase slot (the report prints it per page).
  __device__ __forceinline__ void count(int phase, uint32_t n) { total[phase] += n; }
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
  static bool mode_set = false;
  if (!mode_set) {
    mode_set = true;
    const char* env = std::getenv("FLASHMLA_CLOCK_PAIRS");
    const int mode = env ? std::atoi(env) : 0;
    cudaMemcpyToSymbol(g_clock_pair_mode, &mode, sizeof(mode));
  }
  register_report_at_exit<print_phase_clocks>();
}
#else
struct PhaseClocks {
  __device__ __forceinline__ void start() {}
  __device__ __forceinline__ void mark(int) {}
  __device__ __forceinline__ void gate(bool) {}
  __device__ __forceinline__ int pair_mode() const { return 0; }
  __device__ __forceinline__ void page() {}
  __device__ __forceinline__ void add_pages(int) {}
  __device__ __forceinline__ void count(int, uint32_t) {}
  __device__ __forceinline__ void add_since(int, uint32_t) {}
  __device__ __forceinline__ uint32_t now() const { return 0; }
  __device__ __forceinline__ void flush(int, bool) {}
};
inline void register_phase_clock_report() {}
#endif

// Experiment-only instrumentation (FLASHMLA_EXPERIMENT_CTA_SPANS): thread 0 of each decode CTA
// records the global timer and clock after the PDL wait and after its last epilogue, its SM, and
// the KV pages and request segments it computed. At exit the host prints the last launch's span
// and spread of CTA end times, and writes every CTA's record to $FLASHMLA_CTA_SPANS_CSV when set
// (scripts/cta_spans.sh fits costs a page and a segment to them). Four clock reads and eight
// stores a CTA, so the kernel keeps its clock, unlike the phase clocks. Without the macro both
// calls compile to nothing.
// Points of a combine CTA that the CTA-span build records (combine_span_mark).
enum CombineMark { kCombineBegin, kCombineWaited, kCombineStored, kCombineSlotsSummed, kCombinePartsAdded };

#ifdef FLASHMLA_EXPERIMENT_CTA_SPANS
inline constexpr int kMaxSpanCtas = 8192;
// [start ns, end ns, start cycle, end cycle, KV pages, request segments with pages]
static __device__ unsigned long long g_cta_span[kMaxSpanCtas][6];
static __device__ unsigned int g_cta_span_sm[kMaxSpanCtas];
static __device__ unsigned int g_cta_span_grid[4];                  // grid x, y, z of the last launch

__device__ __forceinline__ int span_index() {
  return static_cast<int>((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x);
}
// Every launch's first CTA start and last CTA end, in a log of kMaxLoggedLaunches launches: the
// launches of a process are serialised by their PDL waits, so the n-th CTA to start belongs to
// launch n / (CTAs a launch). Written to $FLASHMLA_LAUNCH_LOG (decode) and
// $FLASHMLA_LAUNCH_LOG.combine at exit. Starts are stored complemented so that one atomicMax keeps
// the earliest.
inline constexpr int kMaxLoggedLaunches = 4096;
static __device__ unsigned long long g_launch_log[kMaxLoggedLaunches][2];   // [~first start, last end]
static __device__ unsigned int g_launch_ctas_started;
static __device__ unsigned int g_launch_slot_of_cta[kMaxSpanCtas];

// The launch of the calling CTA, from a count of the CTAs of its kernel started so far.
__device__ __forceinline__ unsigned int launch_of_cta(unsigned int* ctas_started) {
  return atomicAdd(ctas_started, 1u) / (gridDim.x * gridDim.y * gridDim.z);
}

__device__ __forceinline__ void log_launch_start(int i, unsigned long long t) {
  const unsigned int slot = launch_of_cta(&g_launch_ctas_started);
  g_launch_slot_of_cta[i] = slot;
  if (slot < kMaxLoggedLaunches) atomicMax(&g_launch_log[slot][0], ~t);
}
__device__ __forceinline__ void log_launch_end(int i, unsigned long long t) {
  const unsigned int slot = g_launch_slot_of_cta[i];
  if (slot < kMaxLoggedLaunches) atomicMax(&g_launch_log[slot][1], t);
}

__device__ __forceinline__ void cta_span_start() {
  const int i = span_index();
  if (threadIdx.x != 0 || i >= kMaxSpanCtas) return;
  unsigned int sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  const unsigned long long t = global_ns();
  g_cta_span[i][0] = t;
  log_launch_start(i, t);
  g_cta_span[i][1] = 0;
  g_cta_span[i][2] = clock64();
  g_cta_span_sm[i] = sm;
  if (i == 0) {
    g_cta_span_grid[0] = gridDim.x;
    g_cta_span_grid[1] = gridDim.y;
    g_cta_span_grid[2] = gridDim.z;
  }
}
__device__ __forceinline__ void cta_span_end(int pages, int segments) {
  const int i = span_index();
  if (threadIdx.x == 0 && i < kMaxSpanCtas) {
    g_cta_span[i][3] = clock64();
    const unsigned long long t = global_ns();
    g_cta_span[i][1] = t;
    log_launch_end(i, t);
    g_cta_span[i][4] = static_cast<unsigned long long>(pages);
    g_cta_span[i][5] = static_cast<unsigned long long>(segments);
  }
}

#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
// Experiment-only, on top of the CTA spans (FLASHMLA_EXPERIMENT_PAGE_TIMELINE): per CTA, the global
// timer when its first Q tile landed; when each of its first kTimelinePages pages was issued (the
// producer), landed (an observer thread of the producer warpgroup that waits on the full barriers,
// where Q comes by TMA) and was taken by the consumers (narrow kernel); and the three points of its
// last epilogue (TimelineEvent). Written as extra CSV columns, so that the bytes landed over the
// whole grid can be binned in time (scripts/page_timeline.py, perf-log entry 104).
inline constexpr int kTimelinePages = 32;
enum TimelineEvent : int {
  kTlQLanded = 0,
  kTlEpilogue = 1,      // the consumers' last epilogue begins (thread 0)
  kTlEpiSummed = 2,     // its row or column sums are complete (after their barrier)
  kTlEpiStored = 3,     // thread 0 has issued its last O store
  kTlIssue0 = 4,
  kTlLanded0 = kTlIssue0 + kTimelinePages,
  kTlWaited0 = kTlLanded0 + kTimelinePages,   // consumer thread 0's wait for the page returned (narrow kernel)
  kTlEvents = kTlWaited0 + kTimelinePages
};
static __device__ unsigned long long g_page_timeline[kMaxSpanCtas][kTlEvents];
__device__ __forceinline__ void timeline_mark(int event) {
  const int i = span_index();
  if (i < kMaxSpanCtas) g_page_timeline[i][event] = global_ns();
}
#endif

static void print_cta_spans() {
  static unsigned long long h[kMaxSpanCtas][6];
  static unsigned int sm[kMaxSpanCtas];
  unsigned int grid[4] = {};
  if (cudaMemcpyFromSymbol(grid, g_cta_span_grid, sizeof(grid)) != cudaSuccess || grid[0] == 0) return;
  if (cudaMemcpyFromSymbol(h, g_cta_span, sizeof(h)) != cudaSuccess) return;
  if (cudaMemcpyFromSymbol(sm, g_cta_span_sm, sizeof(sm)) != cudaSuccess) return;
  const int n = std::min(static_cast<int>(grid[0] * grid[1] * grid[2]), kMaxSpanCtas);
  unsigned long long t0 = ~0ull, last_start = 0, t_end = 0, first_end = ~0ull;
  double sum = 0, dmax = 0, cycles = 0;
  for (int i = 0; i < n; ++i) {
    cycles += double(h[i][3] - h[i][2]);
    t0 = std::min(t0, h[i][0]);
    last_start = std::max(last_start, h[i][0]);
    t_end = h[i][1] > t_end ? h[i][1] : t_end;
    first_end = h[i][1] < first_end ? h[i][1] : first_end;
    const double d = double(h[i][1] - h[i][0]);
    sum += d;
    dmax = d > dmax ? d : dmax;
  }
  std::fprintf(stderr,
               "cta_spans grid=%ux%ux%u ctas=%d | span %.2f us | starts within %.2f us | ends from %.2f to %.2f us | "
               "CTA us mean %.2f max %.2f | GHz %.3f | abs ns %llu..%llu\n",
               grid[0], grid[1], grid[2], n, (t_end - t0) / 1e3, (last_start - t0) / 1e3, (first_end - t0) / 1e3,
               (t_end - t0) / 1e3, sum / n / 1e3, dmax / 1e3, cycles / sum, t0, t_end);
  if (const char* path = std::getenv("FLASHMLA_CTA_SPANS_CSV")) {
    if (FILE* f = std::fopen(path, "w")) {
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
      static unsigned long long tl[kMaxSpanCtas][kTlEvents];
      const bool have_tl = cudaMemcpyFromSymbol(tl, g_page_timeline, sizeof(tl)) == cudaSuccess;
      // Times relative to t0; -1 where the event was not reached (beyond the CTA's pages).
      auto rel = [&](int i, int e) {
        return tl[i][e] >= t0 && tl[i][e] <= t_end ? static_cast<long long>(tl[i][e] - t0) : -1ll;
      };
#endif
      std::fprintf(f, "x,y,z,sm,start_ns,end_ns,cycles,pages,segments");
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
      std::fprintf(f, ",q_landed_ns,epilogue_ns,epi_summed_ns,epi_stored_ns");
      for (int k = 0; k < kTimelinePages; ++k) std::fprintf(f, ",issue%d_ns", k);
      for (int k = 0; k < kTimelinePages; ++k) std::fprintf(f, ",landed%d_ns", k);
      for (int k = 0; k < kTimelinePages; ++k) std::fprintf(f, ",waited%d_ns", k);
#endif
      std::fprintf(f, "\n");
      for (int i = 0; i < n; ++i) {
        const int x = i % grid[0], y = (i / grid[0]) % grid[1], z = i / (grid[0] * grid[1]);
        std::fprintf(f, "%d,%d,%d,%u,%llu,%llu,%llu,%llu,%llu", x, y, z, sm[i], h[i][0] - t0, h[i][1] - t0,
                     h[i][3] - h[i][2], h[i][4], h[i][5]);
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
        for (int e = 0; e < kTlEvents; ++e) {
          const bool page_event = e >= kTlIssue0;
          const int page = (e - kTlIssue0) % kTimelinePages;
          const bool reached = have_tl && (!page_event || static_cast<unsigned long long>(page) < h[i][4]);
          std::fprintf(f, ",%lld", reached ? rel(i, e) : -1ll);
        }
#endif
        std::fprintf(f, "\n");
      }
      std::fclose(f);
    }
  }
}
// Writes launches [0, started / ctas a launch) of a log as "first_ns,last_ns" lines.
static void write_launch_log(const char* path, const unsigned long long (&log)[kMaxLoggedLaunches][2],
                             unsigned int started, unsigned int ctas_a_launch) {
  if (path == nullptr || ctas_a_launch == 0) return;
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) return;
  std::fprintf(f, "first_ns,last_ns\n");
  const unsigned int n = std::min(started / ctas_a_launch, static_cast<unsigned int>(kMaxLoggedLaunches));
  for (unsigned int k = 0; k < n; ++k) std::fprintf(f, "%llu,%llu\n", ~log[k][0], log[k][1]);
  std::fclose(f);
}

static void print_launch_log() {
  static unsigned long long log[kMaxLoggedLaunches][2];
  unsigned int grid[4] = {}, started = 0;
  if (cudaMemcpyFromSymbol(grid, g_cta_span_grid, sizeof(grid)) != cudaSuccess || grid[0] == 0) return;
  if (cudaMemcpyFromSymbol(&started, g_launch_ctas_started, sizeof(started)) != cudaSuccess) return;
  if (cudaMemcpyFromSymbol(log, g_launch_log, sizeof(log)) != cudaSuccess) return;
  write_launch_log(std::getenv("FLASHMLA_LAUNCH_LOG"), log, started, grid[0] * grid[1] * grid[2]);
}

static void register_cta_span_report() {
  register_report_at_exit<print_cta_spans>();
  register_report_at_exit<print_launch_log>();
}

// The combine's CTAs of the last launch: thread 0 records when the CTA began, when its wait for the
// decode grid returned (CTAs that wait), and, in CTAs that merge a row, when its slots were summed,
// its partial merges added and its output stored. All on the decode report's global timer, so that
// the two reports place the combine after the decode CTAs. Marks left at 0 were not reached.
inline constexpr int kCombineMarks = kCombinePartsAdded + 1;
inline constexpr int kMaxCombineCtas = 16384;
static __device__ unsigned long long g_combine_span[kMaxCombineCtas][kCombineMarks];
static __device__ unsigned int g_combine_ctas;
static __device__ unsigned long long g_combine_log[kMaxLoggedLaunches][2];   // [~first wait return, last merge end]
static __device__ unsigned int g_combine_ctas_started;
static __device__ unsigned int g_combine_slot_of_cta[kMaxCombineCtas];

__device__ __forceinline__ void combine_span_mark(CombineMark what) {
  const int i = span_index();
  if (threadIdx.x != 0 || i >= kMaxCombineCtas) return;
  const unsigned long long t = global_ns();
  g_combine_span[i][what] = t;
  if (what == kCombineBegin) {
    for (int k = 1; k < kCombineMarks; ++k) g_combine_span[i][k] = 0;
    if (i == 0) g_combine_ctas = gridDim.x * gridDim.y * gridDim.z;
    g_combine_slot_of_cta[i] = launch_of_cta(&g_combine_ctas_started);
    return;
  }
  const unsigned int slot = g_combine_slot_of_cta[i];
  if (slot >= kMaxLoggedLaunches) return;
  if (what == kCombineWaited) atomicMax(&g_combine_log[slot][0], ~t);
  if (what == kCombineStored) atomicMax(&g_combine_log[slot][1], t);
}

static void print_combine_spans() {
  static unsigned long long h[kMaxCombineCtas][kCombineMarks];
  unsigned int n = 0;
  if (cudaMemcpyFromSymbol(&n, g_combine_ctas, sizeof(n)) != cudaSuccess || n == 0) return;
  if (cudaMemcpyFromSymbol(h, g_combine_span, sizeof(h)) != cudaSuccess) return;
  n = std::min(n, static_cast<unsigned int>(kMaxCombineCtas));
  unsigned long long begin0 = ~0ull, begin1 = 0, wait0 = ~0ull, wait1 = 0, end1 = 0;
  unsigned int merged = 0;
  for (unsigned int i = 0; i < n; ++i) {
    begin0 = std::min(begin0, h[i][kCombineBegin]);
    begin1 = std::max(begin1, h[i][kCombineBegin]);
    if (h[i][kCombineWaited] != 0) {
      wait0 = std::min(wait0, h[i][kCombineWaited]);
      wait1 = std::max(wait1, h[i][kCombineWaited]);
    }
    if (h[i][kCombineStored] != 0) {
      ++merged;
      end1 = std::max(end1, h[i][kCombineStored]);
    }
  }
  std::fprintf(stderr,
               "combine_spans ctas=%u merging=%u | abs ns: begins %llu..%llu, waits return %llu..%llu, last merge "
               "ends %llu\n",
               n, merged, begin0, begin1, wait0, wait1, end1);
  // Phases of the merging CTAs: wait -> slots summed -> parts added -> stored.
  std::vector<double> ph[3];
  for (unsigned int i = 0; i < n; ++i) {
    const unsigned long long waited = h[i][kCombineWaited], summed = h[i][kCombineSlotsSummed];
    if (h[i][kCombineStored] == 0 || summed == 0) continue;
    const unsigned long long added = h[i][kCombinePartsAdded] != 0 ? h[i][kCombinePartsAdded] : summed;
    ph[0].push_back(double(summed - waited) / 1e3);
    ph[1].push_back(double(added - summed) / 1e3);
    ph[2].push_back(double(h[i][kCombineStored] - added) / 1e3);
  }
  if (!ph[0].empty()) {
    std::fprintf(stderr, "combine_phases us (median / max over merging CTAs):");
    const char* names[3] = {"slots", "parts", "store"};
    for (int k = 0; k < 3; ++k) {
      std::sort(ph[k].begin(), ph[k].end());
      std::fprintf(stderr, " %s %.2f / %.2f", names[k], ph[k][ph[k].size() / 2], ph[k].back());
    }
    std::fprintf(stderr, "\n");
  }
}
static void print_combine_log() {
  static unsigned long long log[kMaxLoggedLaunches][2];
  unsigned int n = 0, started = 0;
  if (cudaMemcpyFromSymbol(&n, g_combine_ctas, sizeof(n)) != cudaSuccess || n == 0) return;
  if (cudaMemcpyFromSymbol(&started, g_combine_ctas_started, sizeof(started)) != cudaSuccess) return;
  if (cudaMemcpyFromSymbol(log, g_combine_log, sizeof(log)) != cudaSuccess) return;
  const char* decode_path = std::getenv("FLASHMLA_LAUNCH_LOG");
  if (decode_path == nullptr) return;
  const std::string path = std::string(decode_path) + ".combine";
  write_launch_log(path.c_str(), log, started, n);
}

static void register_combine_span_report() {
  register_report_at_exit<print_combine_spans>();
  register_report_at_exit<print_combine_log>();
}
#else
__device__ __forceinline__ void cta_span_start() {}
__device__ __forceinline__ void cta_span_end(int, int) {}
inline void register_cta_span_report() {}
__device__ __forceinline__ void combine_span_mark(CombineMark) {}
inline void register_combine_span_report() {}
#endif

#if defined(FLASHMLA_EXPERIMENT_PAGE_TIMELINE) && !defined(FLASHMLA_EXPERIMENT_CTA_SPANS)
#error "FLASHMLA_EXPERIMENT_PAGE_TIMELINE extends the CTA spans: define FLASHMLA_EXPERIMENT_CTA_SPANS too"
#endif
// The page timeline's marks in the kernels; nothing without FLASHMLA_EXPERIMENT_PAGE_TIMELINE.
__device__ __forceinline__ void timeline_page_issued(int it) {
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
  if (it < kTimelinePages) timeline_mark(kTlIssue0 + it);
#endif
}
__device__ __forceinline__ void timeline_page_waited(int it) {
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
  if (threadIdx.x == 0 && it < kTimelinePages) timeline_mark(kTlWaited0 + it);
#endif
}
// The consumers' last epilogue: begun, its sums complete, thread 0's last O store issued.
enum class EpiloguePoint { kBegin, kSummed, kStored };
__device__ __forceinline__ void timeline_epilogue(EpiloguePoint point) {
#ifdef FLASHMLA_EXPERIMENT_PAGE_TIMELINE
  if (threadIdx.x == 0) timeline_mark(kTlEpilogue + static_cast<int>(point));
#else
  (void)point;
#endif
}

// Experiment-only: a delay of `cycles` inserted into a phase (FLASHMLA_EXPERIMENT_SPIN_*), to see
// how much of it reaches the kernel's time, i.e. whether that phase is on the critical path.
__device__ __forceinline__ void spin_cycles(long long cycles) {
  const long long until = clock64() + cycles;
  while (clock64() < until) {
  }
}

}  // namespace flashmla::sm90
