// flashmla_split_roles_probe: page time of a wide-kernel schedule with the roles split by phase
// instead of by channel half, to weigh it before building it (docs/perf-log.md, entry 78).
//
//   flashmla_split_roles_probe [pages, default 800] [only the cases whose name has this]
//
// Three warpgroups a CTA (384 threads, 168 registers each: at 512 threads ptxas compiles every
// warpgroup to 128 registers whatever setmaxnreg asks, and serialises the m64n256 P @ V), one CTA
// an SM:
//   scorer (WG0): scores page n over all 576 channels (m64n64, 36 k-steps as four 9-step chunks,
//     the wide kernel's precision rule), runs the fast-path softmax of its 32 scores a thread,
//     writes P_hi into page n's RoPE chunk (dead once scored) and signals the page's P barrier;
//     then goes straight on to page n + 1, without waiting for page n's P @ V.
//   P @ V (WG1, WG2): warpgroup v multiplies P by its 256 V channels of page n (m64n256, P from
//     shared memory), then releases the page's buffer (one arrival per warp). Thread 0 of WG1 is
//     also the producer: once both have released buffer n % 2 it loads page n + 2 into it.
// So page n + 1's scores and softmax run under page n's P @ V, and no score is handed over between
// warpgroups. With two page buffers the period is at least (landing + hold) / 2, a page being held
// from its landing to its P @ V's completion.
//
// Cases: pages resident (the buffers are only signalled full once free, no bytes move: compute and
// the two-stage coupling only); pages from HBM (every page read once, as at R = 64); CTA pairs
// streaming the same pages (as the two row tiles of R = 128, the second read mostly from L2).
// Extras (run time): P_lo on a share of the pages, and request segments whose end writes O, as a
// decode kernel has them (see Extras).
// kScoreAccs: the scorer's chunk accumulators, 2 (a chunk's add waits for the next chunk's issue) or
// 3 (the next chunk is always queued). Timing only: no result is checked; the data are small
// values, so the softmax stays on its fast path, with no masks, slow path or P_lo, as in
// seesaw_probe.cu, whose one-page schedule is today's kernel's for comparison.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda_check.h"
#include "probe_wide_page.cuh"

namespace {

using namespace probe;

constexpr uint32_t kPlo = 3 * kPage;                // P_lo (64 x 64 bf16), on the pages that carry it
constexpr uint32_t kSmemBytes = 3 * kPage + kChunk;   // Q, two page buffers (P_hi in each page's RoPE chunk), P_lo
constexpr int kScorer = 0;
constexpr int kBarRaise = 1;   // the scorer's slow-path vote (128 threads)
constexpr int kBarStart = 2;   // the three compute warpgroups, before the timed pages

// Each buffer's full, empty and P-ready mbarriers, addressed by arithmetic (an array indexed by
// n % 2 would live in local memory).
struct Bars {
  uint32_t base;
  __device__ __forceinline__ uint32_t full(int b) const { return base + 8 * b; }
  __device__ __forceinline__ uint32_t empty(int b) const { return base + 16 + 8 * b; }
  __device__ __forceinline__ uint32_t p_ready(int b) const { return base + 32 + 8 * b; }
  __device__ __forceinline__ uint32_t lo_free() const { return base + 48; }   // P_lo read by the P @ V warps
};

// The scores of a page over all 576 channels, chunks of 9 k-steps added with round-to-nearest FADDs.
template <int kScoreAccs>
__device__ __forceinline__ void score_page(float (&s)[32], uint32_t sQ, uint32_t page) {
  float a[32];
  if constexpr (kScoreAccs == 3) {
    float b[32];
    score_chunk<9>(s, sQ, page, 0);
    score_chunk<9>(a, sQ, page, 9);
    score_chunk<9>(b, sQ, page, 18);
    wgmma_wait<2>();
    fence_registers(s);
    add_chunk<1>(s, a);
    score_chunk<9>(a, sQ, page, 27);
    add_chunk<1>(s, b);
    add_chunk<0>(s, a);
  } else {
    score_chunk<9>(s, sQ, page, 0);
    score_chunk<9>(a, sQ, page, 9);
    wgmma_wait<1>();
    fence_registers(s);
    add_chunk<0>(s, a);
    score_chunk<9>(a, sQ, page, 18);
    add_chunk<0>(s, a);
    score_chunk<9>(a, sQ, page, 27);
    add_chunk<0>(s, a);
  }
}

struct Timing {
  unsigned long long cycles, ns;
};

// What a decode kernel adds to the fast path, at a fixed rate (0: never).
struct Extras {
  int lo_every;    // every lo_every-th page also carries P_lo: stored by the scorer into the one P_lo
                   // buffer, multiplied by the P @ V warpgroups (four more k-steps)
  int seg_pages;   // a request segment ends every seg_pages pages: the P @ V warpgroups write O
                   // (fp32, as a split's partial) to global memory and start again from zero, while
                   // the scorer goes on with the next segment's pages
  float* out;      // [SMs][2 halves][32 float4s][128 threads][4]
  __device__ __forceinline__ bool lo_page(int n) const { return lo_every > 0 && n % lo_every == 0; }
  // Segments end at different pages on different CTAs, as a split plan's do.
  __device__ __forceinline__ bool segment_ends(int n) const {
    return seg_pages > 0 && (n + 1 + int(blockIdx.x) * 7) % seg_pages == 0;
  }
};

template <int kScoreAccs>
__device__ __forceinline__ float run_scorer(uint32_t sbase, const Bars& bars, int warm, int pages, const Extras& ex,
                                           Timing& tm) {
  const int t = threadIdx.x % 128, lane = t % 32;
  const int row0 = 16 * (t / 32) + (lane >> 2), tq = lane & 3;
  RowState st{{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};
  const float sl2 = 1e-6f;
  unsigned long long c0 = 0, n0 = 0;
  for (int n = 0; n < warm + pages; ++n) {
    if (n == warm) {
      named_barrier_sync(kBarStart, 384);
      c0 = clock64();
      n0 = global_ns();
    }
    const uint32_t page = sbase + (n & 1 ? kPage1 : kPage0);
    mbar_wait(bars.full(n & 1), (n >> 1) & 1);
    float s[32];
    score_page<kScoreAccs>(s, sbase + kQOff, page);
    const bool raise = softmax_fast<32>(s, st, sl2);
    if (named_barrier_sync_or(kBarRaise, 128, raise)) st.m[0] += 1.f;   // never taken with this data
    uint32_t hi[16];
    pack<32>(s, hi);
    store_p<16>(page + 8 * kChunk, hi, row0, 0, tq);
    if (ex.lo_page(n)) {
      const int k = n / ex.lo_every;   // lo pages so far
      uint32_t lo[16];
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const float2 h = HalfOps<T>::unpack(hi[i]);
        lo[i] = HalfOps<T>::pack(s[2 * i] - h.x, s[2 * i + 1] - h.y);
      }
      if (k > 0) mbar_wait(bars.lo_free(), (k - 1) & 1);
      store_p<16>(sbase + kPlo, lo, row0, 0, tq);
    }
    fence_proxy_async_smem();
    __syncwarp();
    if (lane == 0) mbar_arrive(bars.p_ready(n & 1));
  }
  tm = {clock64() - c0, global_ns() - n0};
  return st.l[0] + st.l[1] + st.sq[0];
}

// P @ V warpgroup `half`: O (64 rows x V channels 256*half..+255) += P V, page by page. Thread 0
// of warpgroup 0 refills each buffer once both warpgroups have released it.
__device__ __forceinline__ float run_pv(uint32_t sbase, const Bars& bars, int half, int warm, int pages,
                                       const PageStream& ps, bool load, const Extras& ex, Timing& tm) {
  float o[128];
  zero_o(o);
  const int total = warm + pages;
  const bool producer = half == 0 && threadIdx.x % 128 == 0;
  unsigned long long c0 = 0, n0 = 0;
  for (int n = 0; n < total; ++n) {
    if (n == warm) {
      named_barrier_sync(kBarStart, 384);
      c0 = clock64();
      n0 = global_ns();
    }
    const uint32_t page = sbase + (n & 1 ? kPage1 : kPage0);
    mbar_wait(bars.p_ready(n & 1), (n >> 1) & 1);
    const bool lo = ex.lo_page(n);
    pv_smem<4>(o, page + 8 * kChunk, page, half, 0);
    if (lo) pv_smem<4>(o, sbase + kPlo, page, half, 0);
    wgmma_wait<0>();
    if (threadIdx.x % 32 == 0) {
      mbar_arrive(bars.empty(n & 1));
      if (lo) mbar_arrive(bars.lo_free());
    }
    if (producer && n + 2 < total) {
      mbar_wait(bars.empty(n & 1), (n >> 1) & 1);
      fill_page(bars.full(n & 1), page, n & 1, (n >> 1) + 1, ps, load);
    }
    if (ex.segment_ends(n)) {
      fence_registers(o);
      // Coalesced: a warp's store instruction writes 512 contiguous bytes.
      float4* dst = reinterpret_cast<float4*>(ex.out) + (size_t(blockIdx.x) * 2 + half) * 128 * 32 + threadIdx.x % 128;
#pragma unroll
      for (int i = 0; i < 32; ++i) dst[i * 128] = make_float4(o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]);
      zero_o(o);
    }
  }
  tm = {clock64() - c0, global_ns() - n0};
  fence_registers(o);
  return sink_of(o, RowState{});
}

enum Source : int { kResident, kHbm, kPairs };

template <int kSource, int kScoreAccs>
__global__ void __launch_bounds__(384, 1)
    split_roles_probe_kernel(int warm, int pages, Extras ex, unsigned long long* cycles, unsigned long long* ns,
                             float* sink, const uint8_t* src, size_t src_pages) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const Bars bars{sbase + kSmemBytes};
  // Small values: scores near zero, so no reference maximum moves (the fast path throughout). The
  // global pages hold the byte 0x3c (bf16 0.0115) for the same reason.
  for (uint32_t i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(smem)[i] = 0x3c003c00u ^ (i * 2654435761u & 0x007f007fu);
  }
  if (threadIdx.x == 0) {
    for (int b = 0; b < 2; ++b) {
      mbar_init(bars.full(b), 1);
      mbar_init(bars.empty(b), 8);     // the P @ V warpgroups' warps
      mbar_init(bars.p_ready(b), 4);   // the scorer's warps
    }
    mbar_init(bars.lo_free(), 8);
    fence_barrier_init();
  }
  fence_proxy_async_smem();
  __syncthreads();
  const int wg = threadIdx.x / 128;
  const int total = warm + pages;
  constexpr bool kLoad = kSource != kResident;
  const PageStream ps{src, src_pages, size_t(kSource == kPairs ? blockIdx.x / 2 : blockIdx.x) * 2 * (total + 2), 0};
  if (threadIdx.x == 128) {
    fill_page(bars.full(0), sbase + kPage0, 0, 0, ps, kLoad);
    fill_page(bars.full(1), sbase + kPage1, 1, 0, ps, kLoad);
  }
  Timing tm{};
  const float v = wg == kScorer ? run_scorer<kScoreAccs>(sbase, bars, warm, pages, ex, tm)
                                : run_pv(sbase, bars, wg - 1, warm, pages, ps, kLoad, ex, tm);
  if (threadIdx.x % 128 == 0) {
    cycles[blockIdx.x * 3 + wg] = tm.cycles;
    ns[blockIdx.x * 3 + wg] = tm.ns;
  }
  if (v == 12345.f) sink[threadIdx.x] = v;
}

int run_probe(int pages, const char* only) {
  using Kernel = void (*)(int, int, Extras, unsigned long long*, unsigned long long*, float*, const uint8_t*, size_t);
  struct Case {
    const char* name;
    Kernel kernel;
    int lo_every = 0, seg_pages = 0;
  } cases[] = {
      {"split roles, resident, 2 score accumulators", split_roles_probe_kernel<kResident, 2>},
      {"split roles, resident, 3 score accumulators", split_roles_probe_kernel<kResident, 3>},
      {"split roles, pages from HBM, 2 score accumulators", split_roles_probe_kernel<kHbm, 2>},
      {"split roles, pages from HBM, 3 score accumulators", split_roles_probe_kernel<kHbm, 3>},
      {"split roles, CTA pairs, 2 score accumulators", split_roles_probe_kernel<kPairs, 2>},
      {"split roles, CTA pairs, 3 score accumulators", split_roles_probe_kernel<kPairs, 3>},
      {"split roles, resident, 3 accs, P_lo every 16th page", split_roles_probe_kernel<kResident, 3>, 16},
      {"split roles, pages from HBM, 3 accs, P_lo every 16th page", split_roles_probe_kernel<kHbm, 3>, 16},
      {"split roles, CTA pairs, 3 accs, P_lo every 16th page", split_roles_probe_kernel<kPairs, 3>, 16},
      {"split roles, resident, 3 accs, P_lo on every page", split_roles_probe_kernel<kResident, 3>, 1},
      {"split roles, CTA pairs, 3 accs, P_lo on every page", split_roles_probe_kernel<kPairs, 3>, 1},
      {"split roles, pages from HBM, 3 accs, a segment every 32 pages", split_roles_probe_kernel<kHbm, 3>, 0, 32},
      {"split roles, CTA pairs, 3 accs, a segment every 32 pages", split_roles_probe_kernel<kPairs, 3>, 0, 32},
      {"split roles, CTA pairs, 3 accs, P_lo every 16th page, a segment every 32", split_roles_probe_kernel<kPairs, 3>, 16, 32},
  };
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  // 4 GiB of pages: larger than L2 many times over, read once per page visit.
  const size_t src_pages = (size_t(4) << 30) / kPage;
  uint8_t* d_src = nullptr;
  BENCH_CUDA(cudaMalloc(&d_src, src_pages * kPage));
  BENCH_CUDA(cudaMemset(d_src, 0x3c, src_pages * kPage));
  unsigned long long *d_cycles = nullptr, *d_ns = nullptr;
  float* d_sink = nullptr;
  BENCH_CUDA(cudaMalloc(&d_cycles, sizeof(unsigned long long) * 3 * sms));
  BENCH_CUDA(cudaMalloc(&d_ns, sizeof(unsigned long long) * 3 * sms));
  BENCH_CUDA(cudaMalloc(&d_sink, sizeof(float) * 384));
  float* d_out = nullptr;
  BENCH_CUDA(cudaMalloc(&d_out, sizeof(float) * sms * 2 * 128 * 128));
  unsigned long long* hc = new unsigned long long[3 * sms];
  unsigned long long* hn = new unsigned long long[3 * sms];
  constexpr int kWarm = 8;
  std::printf("| schedule | cycles per page (scorer) | (P @ V 0) | (P @ V 1) | tensor work per page | work / time | SM GHz | ns per page | page bytes / time, GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    if (only != nullptr && std::strstr(c.name, only) == nullptr) continue;
    BENCH_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes + 64));
    const Extras ex{c.lo_every, c.seg_pages, d_out};
    c.kernel<<<sms, 384, kSmemBytes + 64>>>(kWarm, pages, ex, d_cycles, d_ns, d_sink, d_src, src_pages);
    BENCH_CUDA(cudaGetLastError());
    BENCH_CUDA(cudaDeviceSynchronize());
    BENCH_CUDA(cudaMemcpy(hc, d_cycles, sizeof(unsigned long long) * 3 * sms, cudaMemcpyDeviceToHost));
    BENCH_CUDA(cudaMemcpy(hn, d_ns, sizeof(unsigned long long) * 3 * sms, cudaMemcpyDeviceToHost));
    double per[3] = {0, 0, 0}, cyc = 0, nsec = 0;
    for (int b = 0; b < sms; ++b) {
      for (int w = 0; w < 3; ++w) {
        per[w] += double(hc[3 * b + w]) / pages / sms;
        cyc += double(hc[3 * b + w]);
        nsec += double(hn[3 * b + w]);
      }
    }
    const double ghz = cyc / nsec, ns_page = nsec / (3.0 * sms) / pages;
    const double work = 2176.0;   // scores 1,152 + P @ V (hi) 1,024 tensor cycles a page
    double tmax = per[0];
    for (double p : per) tmax = p > tmax ? p : tmax;
    std::printf("| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f | %.0f |\n", c.name, per[0], per[1], per[2], work,
                work / tmax, ghz, ns_page, double(kPage) * sms / ns_page);
  }
  delete[] hc;
  delete[] hn;
  BENCH_CUDA(cudaFree(d_src));
  BENCH_CUDA(cudaFree(d_cycles));
  BENCH_CUDA(cudaFree(d_ns));
  BENCH_CUDA(cudaFree(d_sink));
  BENCH_CUDA(cudaFree(d_out));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int pages = argc > 1 ? std::atoi(argv[1]) : 800;
  const char* only = argc > 2 ? argv[2] : nullptr;
  if (pages < 1) {
    std::fprintf(stderr, "flashmla_split_roles_probe: pages must be positive, got %d\n", pages);
    return 1;
  }
  try {
    return run_probe(pages, only);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_split_roles_probe: %s\n", e.what());
    return 1;
  }
}
