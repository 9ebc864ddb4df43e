// flashmla_page_stream_probe: how fast 72 KiB pages reach shared memory through a ring of page
// stages, with no compute: the ceiling a decode kernel's page loop streams against (docs/perf-log.md,
// entry 55).
//
// One CTA per SM (a producer lane issuing nine 8 KiB bulk copies a page, a consumer warp waiting
// for each page, holding its stage for `hold` cycles, then releasing it), varied over:
//   - ring depth: 1, 2 or 3 stages of 72 KiB (the wide kernel has 2 beside its 72 KiB Q tile);
//   - hold: 0 (the raw stream) or the cycles a page loop keeps a stage (a page's compute);
//   - sharing: every CTA its own pages (R = 64: one row tile), CTA pairs on the same pages (the two
//     row tiles of R = 128, loading them separately, the second read mostly from L2), or CTA pairs
//     in a cluster of two, each loading half of every page with multicast to both;
//   - source: pages streamed once from a 4 GiB buffer (HBM) in address order, the same pages in a
//     scattered order (as a random block table gives them), or a 18 MiB set read over and over
//     (L2-resident: the L2 -> SM path alone).
// The consumer of every CTA times its pages with clock64 and globaltimer after a warm-up.
//
// `heat` mode (perf-log entry 71) adds warps of back-to-back bf16 tensor-core MMAs on registers to
// every CTA, so that the GPU draws the power a decode kernel draws and its SM clock falls to where
// the decode kernels run (the 700 W cap of an H200), and reports the stream's rate at that clock.
// It asks whether the memory-bound rows' pages land more slowly because of the clock alone.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "probe_cluster.cuh"
#include "probe_page_loop.cuh"

namespace {

using namespace flashmla::sm90;
using namespace probe;

constexpr uint32_t kChunk = 8192;
constexpr int kChunks = 9;
constexpr uint32_t kPage = kChunks * kChunk;
constexpr int kWarm = 8;
constexpr size_t kL2Pages = 256;   // 18 MiB: well inside the H100's and H200's 50 MB of L2
constexpr int kMaxHeatWarps = 16;
constexpr int kMaxThreads = 64 + 32 * kMaxHeatWarps;

enum Sharing : int { kSolo, kPairs, kMulticast };

struct Args {
  int iters;             // timed pages per CTA
  int hold;              // cycles the consumer keeps each stage
  const uint8_t* src;    // [src_pages, 72 KiB]
  size_t src_pages;
  int source;           // kHbmInOrder, kHbmScattered, kL2Set or kHbmRegions
  unsigned long long* cycles;   // [grid]
  unsigned long long* ns;       // [grid]
  float* sink;                  // [1], written only if the heaters' sums hit an impossible value
};

// One m16n8k16 bf16 MMA with fp32 accumulation, all operands in registers.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// A heater warp: tensor-core MMAs on non-zero operands (zeros draw less power) until the consumer
// raises `stop`. Operands of magnitude 2^-7 with mixed signs keep the sums far from overflow.
__device__ __forceinline__ void heat_until(uint32_t stop, float* sink) {
  const uint32_t lane = threadIdx.x & 31;
  uint32_t a[4], b[2];
#pragma unroll
  for (int i = 0; i < 4; ++i) a[i] = 0x3c01bc01u ^ (((lane + 7u * i) * 0x00250025u) & 0x007f007fu);
  b[0] = 0xbc033c05u ^ ((lane * 0x00130013u) & 0x007f007fu);
  b[1] = 0x3c07bc09u ^ ((lane * 0x00310031u) & 0x007f007fu);
  float acc[4][4] = {};
  uint32_t stopped = 0;
  while (!stopped) {
#pragma unroll
    for (int k = 0; k < 16; ++k) {
#pragma unroll
      for (int q = 0; q < 4; ++q) mma_bf16_16816(acc[q], a, b);
    }
    asm volatile("ld.volatile.shared.u32 %0, [%1];" : "=r"(stopped) : "r"(stop));
  }
  float total = 0.f;
#pragma unroll
  for (int q = 0; q < 4; ++q) total += acc[q][0] + acc[q][1] + acc[q][2] + acc[q][3];
  if (total == 12345.f) *sink = total;
}

// kHbmRegions (heat mode): each stream re-reads its own 256 pages (18 MiB) in a scattered order,
// so that a run of any length never reads a page another CTA read recently. Long runs of the
// other two orders let CTAs drift into convoys that share pages through L2 (6-7 TB/s "from HBM").
enum Source : int { kHbmInOrder, kHbmScattered, kL2Set, kHbmRegions };
constexpr size_t kRegionPages = 256;

__device__ __forceinline__ size_t page_of(const Args& a, int stream, int n) {
  if (a.source == kL2Set) return (size_t(stream) * 7 + n) % kL2Pages;
  if (a.source == kHbmRegions) return size_t(stream) * kRegionPages + ((size_t(n) * 0x9E3779B1ull) & (kRegionPages - 1));
  const size_t in_order = size_t(stream) * (kWarm + a.iters + 4) + n;
  if (a.source == kHbmInOrder) return in_order % a.src_pages;
  // An odd multiplier modulo a power of two is a permutation: every page still read once.
  return (in_order * 0x9E3779B1ull) & (a.src_pages - 1);
}

template <int kShare, int kStages>
__device__ __forceinline__ void stream_pages(const Args& a) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t base = smem_u32(smem);
  const uint32_t bars = base + kStages * kPage;
  const uint32_t stop = bars + 128;   // raised by the consumer when its pages are done (heat mode)
  auto full = [&](int s) { return bars + 8 * s; };
  auto empty = [&](int s) { return bars + 64 + 8 * s; };
  const uint32_t rank = kShare == kMulticast ? cluster_rank() : 0;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kShare == kMulticast ? 2 : 1);   // each CTA's consumer frees both copies
    }
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(stop), "r"(0u) : "memory");
    fence_barrier_init();
  }
  __syncthreads();
  if constexpr (kShare == kMulticast) cluster_sync_all();   // the peer's barriers exist
  const int stream = kShare == kSolo ? blockIdx.x : blockIdx.x / 2;
  const int total = kWarm + a.iters;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (warp == 0) {
    if (lane == 0) {
      for (int n = 0; n < total; ++n) {
        const int s = n % kStages;
        if (n >= kStages) mbar_wait(empty(s), (n / kStages - 1) & 1);
        mbar_arrive_expect_tx(full(s), kPage);
        const uint8_t* page = a.src + page_of(a, stream, n) * kPage;
        for (int c = 0; c < kChunks; ++c) {
          if constexpr (kShare == kMulticast) {
            if (c % 2 == int(rank)) bulk_load_multicast(base + s * kPage + c * kChunk, page + c * kChunk, kChunk, full(s), 0x3);
          } else {
            bulk_load(base + s * kPage + c * kChunk, page + c * kChunk, kChunk, full(s));
          }
        }
      }
    }
  } else if (warp == 1) {
    unsigned long long t0 = 0, n0 = 0;
    for (int n = 0; n < total; ++n) {
      if (n == kWarm) {
        t0 = clock64();
        n0 = global_ns();
      }
      const int s = n % kStages;
      mbar_wait(full(s), (n / kStages) & 1);
      if (a.hold > 0) {
        const long long until = clock64() + a.hold;
        while (clock64() < until) {
        }
      }
      __syncwarp();
      if (lane == 0) {
        mbar_arrive(empty(s));
        if constexpr (kShare == kMulticast) mbar_arrive_remote(peer_addr(empty(s), rank ^ 1));
      }
    }
    if (lane == 0) {
      a.cycles[blockIdx.x] = clock64() - t0;
      a.ns[blockIdx.x] = global_ns() - n0;
      asm volatile("st.volatile.shared.u32 [%0], %1;" ::"r"(stop), "r"(1u) : "memory");
    }
  } else {
    heat_until(stop, a.sink);
  }
  if constexpr (kShare == kMulticast) cluster_sync_all();   // no arrival reaches an exited peer
}

template <int kShare, int kStages>
__global__ void __launch_bounds__(kMaxThreads, 1) stream_kernel(Args a) {
  stream_pages<kShare, kStages>(a);
}

template <int kStages>
__global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(kMaxThreads, 1) stream_kernel_cluster(Args a) {
  stream_pages<kMulticast, kStages>(a);
}

struct Case {
  int share, stages;
  void (*kernel)(Args);
};

const char* share_name(int s) {
  return s == kSolo ? "own pages" : s == kPairs ? "CTA pairs, each loads" : "CTA pairs, multicast";
}

const char* const kSourceNames[] = {"HBM, in order", "HBM, scattered", "L2 set"};

// The source buffer, the per-CTA clocks and the grid every case runs on.
struct Rig {
  int ctas = 0;
  size_t src_pages = 65536;   // 4.5 GiB, as large as the grid's largest cache; a power of two
  uint8_t* src = nullptr;
  unsigned long long *cycles = nullptr, *ns = nullptr;
  float* sink = nullptr;
  unsigned long long *host_cycles = nullptr, *host_ns = nullptr;

  Rig() {
    int sms = 0;
    BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    ctas = sms & ~1;
    BENCH_CUDA(cudaMalloc(&src, src_pages * kPage));
    BENCH_CUDA(cudaMemset(src, 0x3c, src_pages * kPage));
    BENCH_CUDA(cudaMalloc(&cycles, sizeof(unsigned long long) * ctas));
    BENCH_CUDA(cudaMalloc(&ns, sizeof(unsigned long long) * ctas));
    BENCH_CUDA(cudaMalloc(&sink, sizeof(float)));
    host_cycles = new unsigned long long[ctas];
    host_ns = new unsigned long long[ctas];
  }
  ~Rig() {
    delete[] host_cycles;
    delete[] host_ns;
    cudaFree(src);
    cudaFree(cycles);
    cudaFree(ns);
    cudaFree(sink);
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  struct Result {
    double cycles_per_page, ns_per_page, ghz, into_gbs;
  };

  // Mean cycles and ns a page over the CTAs, and the rate into the SMs.
  Result run(const Case& c, int iters, int hold, int source, int heat_warps) {
    const size_t smem = c.stages * kPage + 256;
    BENCH_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    Args a{iters, hold, src, src_pages, source, cycles, ns, sink};
    c.kernel<<<ctas, 64 + 32 * heat_warps, smem>>>(a);
    BENCH_CUDA(cudaGetLastError());
    BENCH_CUDA(cudaDeviceSynchronize());
    BENCH_CUDA(cudaMemcpy(host_cycles, cycles, sizeof(unsigned long long) * ctas, cudaMemcpyDeviceToHost));
    BENCH_CUDA(cudaMemcpy(host_ns, ns, sizeof(unsigned long long) * ctas, cudaMemcpyDeviceToHost));
    Result r{0, 0, 0, 0};
    for (int b = 0; b < ctas; ++b) {
      r.cycles_per_page += double(host_cycles[b]) / iters / ctas;
      r.ns_per_page += double(host_ns[b]) / iters / ctas;
    }
    r.ghz = r.cycles_per_page / r.ns_per_page;
    r.into_gbs = double(ctas) * kPage / r.ns_per_page;   // bytes per ns = GB/s
    return r;
  }
};

int run_probe(int iters) {
  const Case cases[] = {
      {kSolo, 1, stream_kernel<kSolo, 1>},         {kSolo, 2, stream_kernel<kSolo, 2>},
      {kSolo, 3, stream_kernel<kSolo, 3>},         {kPairs, 1, stream_kernel<kPairs, 1>},
      {kPairs, 2, stream_kernel<kPairs, 2>},       {kPairs, 3, stream_kernel<kPairs, 3>},
      {kMulticast, 1, stream_kernel_cluster<1>},   {kMulticast, 2, stream_kernel_cluster<2>},
      {kMulticast, 3, stream_kernel_cluster<3>},
  };
  const int holds[] = {0, 2200, 3000};
  Rig rig;
  std::printf("CTAs: %d, pages per CTA: %d (after %d warm-up pages), page %u B\n\n", rig.ctas, iters, kWarm, kPage);
  std::printf("| source | sharing | stages | hold cycles | cycles per page | ns per page | SM GHz | into SMs, GB/s | from L2 to SMs, GB/s | distinct pages, GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  for (int source = 0; source < 3; ++source) {
    for (const Case& c : cases) {
      for (int hold : holds) {
        const Rig::Result r = rig.run(c, iters, hold, source, 0);
        const double from_l2 = c.share == kMulticast ? r.into_gbs / 2 : r.into_gbs;
        const double distinct = c.share == kSolo ? r.into_gbs : r.into_gbs / 2;
        std::printf("| %s | %s | %d | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f |\n", kSourceNames[source],
                    share_name(c.share), c.stages, hold, r.cycles_per_page, r.ns_per_page, r.ghz, r.into_gbs,
                    from_l2, distinct);
      }
    }
  }
  return 0;
}

// Heat mode: own pages from HBM in a scattered order (kHbmRegions), with
// 0 to 16 heater warps a CTA. Each case runs long enough (`iters` pages a CTA, ~0.5 s by default)
// for the power controller to settle the clock; an untimed run of the same case goes first.
int run_heat(int iters) {
  const Case cases[] = {{kSolo, 1, stream_kernel<kSolo, 1>},
                        {kSolo, 2, stream_kernel<kSolo, 2>},
                        {kSolo, 3, stream_kernel<kSolo, 3>}};
  const int holds[] = {0, 2000};
  const int heats[] = {0, 4, 8, 16};
  Rig rig;
  if (size_t(rig.ctas) * kRegionPages > rig.src_pages) {
    std::fprintf(stderr, "flashmla_page_stream_probe: %d CTAs of %zu pages exceed the %zu-page buffer\n", rig.ctas,
                 kRegionPages, rig.src_pages);
    return 1;
  }
  std::printf("CTAs: %d, pages per CTA: %d (after %d warm-up pages), page %u B, own pages from HBM (each CTA its own 256, scattered)\n\n",
              rig.ctas, iters, kWarm, kPage);
  std::printf("| stages | hold cycles | heater warps | cycles per page | ns per page | SM GHz | into SMs, GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    for (int hold : holds) {
      for (int heat : heats) {
        rig.run(c, iters, hold, kHbmRegions, heat);   // settles the clock for this load
        const Rig::Result r = rig.run(c, iters, hold, kHbmRegions, heat);
        std::printf("| %d | %d | %d | %.0f | %.0f | %.2f | %.0f |\n", c.stages, hold, heat, r.cycles_per_page,
                    r.ns_per_page, r.ghz, r.into_gbs);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool heat = argc > 1 && std::string(argv[1]) == "heat";
  const int first_number = heat ? 2 : 1;
  const int iters = argc > first_number ? std::atoi(argv[first_number]) : (heat ? 200000 : 400);
  if (iters <= 0) {
    std::fprintf(stderr, "usage: flashmla_page_stream_probe [heat] [pages per CTA > 0]\n");
    return 2;
  }
  try {
    return heat ? run_heat(iters) : run_probe(iters);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_page_stream_probe: %s\n", e.what());
    return 1;
  }
}
