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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

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

enum Sharing : int { kSolo, kPairs, kMulticast };

struct Args {
  int iters;             // timed pages per CTA
  int hold;              // cycles the consumer keeps each stage
  const uint8_t* src;    // [src_pages, 72 KiB]
  size_t src_pages;
  int source;           // kHbmInOrder, kHbmScattered or kL2Set
  unsigned long long* cycles;   // [grid]
  unsigned long long* ns;       // [grid]
};

enum Source : int { kHbmInOrder, kHbmScattered, kL2Set };

__device__ __forceinline__ size_t page_of(const Args& a, int stream, int n) {
  if (a.source == kL2Set) return (size_t(stream) * 7 + n) % kL2Pages;
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
  auto full = [&](int s) { return bars + 8 * s; };
  auto empty = [&](int s) { return bars + 64 + 8 * s; };
  const uint32_t rank = kShare == kMulticast ? cluster_rank() : 0;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kShare == kMulticast ? 2 : 1);   // each CTA's consumer frees both copies
    }
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
  } else {
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
    }
  }
  if constexpr (kShare == kMulticast) cluster_sync_all();   // no arrival reaches an exited peer
}

template <int kShare, int kStages>
__global__ void __launch_bounds__(64, 1) stream_kernel(Args a) {
  stream_pages<kShare, kStages>(a);
}

template <int kStages>
__global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(64, 1) stream_kernel_cluster(Args a) {
  stream_pages<kMulticast, kStages>(a);
}

struct Case {
  int share, stages;
  void (*kernel)(Args);
};

const char* share_name(int s) {
  return s == kSolo ? "own pages" : s == kPairs ? "CTA pairs, each loads" : "CTA pairs, multicast";
}

int run_probe(int iters) {
  const Case cases[] = {
      {kSolo, 1, stream_kernel<kSolo, 1>},         {kSolo, 2, stream_kernel<kSolo, 2>},
      {kSolo, 3, stream_kernel<kSolo, 3>},         {kPairs, 1, stream_kernel<kPairs, 1>},
      {kPairs, 2, stream_kernel<kPairs, 2>},       {kPairs, 3, stream_kernel<kPairs, 3>},
      {kMulticast, 1, stream_kernel_cluster<1>},   {kMulticast, 2, stream_kernel_cluster<2>},
      {kMulticast, 3, stream_kernel_cluster<3>},
  };
  const int holds[] = {0, 2200, 3000};
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int ctas = sms & ~1;
  const size_t src_pages = 65536;   // 4.5 GiB, as large as the grid's largest cache; a power of two
  uint8_t* d_src = nullptr;
  BENCH_CUDA(cudaMalloc(&d_src, src_pages * kPage));
  BENCH_CUDA(cudaMemset(d_src, 0x3c, src_pages * kPage));
  unsigned long long *d_cycles = nullptr, *d_ns = nullptr;
  BENCH_CUDA(cudaMalloc(&d_cycles, sizeof(unsigned long long) * ctas));
  BENCH_CUDA(cudaMalloc(&d_ns, sizeof(unsigned long long) * ctas));
  unsigned long long* hc = new unsigned long long[ctas];
  unsigned long long* hn = new unsigned long long[ctas];
  std::printf("CTAs: %d, pages per CTA: %d (after %d warm-up pages), page %u B\n\n", ctas, iters, kWarm, kPage);
  std::printf("| source | sharing | stages | hold cycles | cycles per page | ns per page | SM GHz | into SMs, GB/s | from L2 to SMs, GB/s | distinct pages, GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  const char* source_names[] = {"HBM, in order", "HBM, scattered", "L2 set"};
  for (int source = 0; source < 3; ++source) {
    for (const Case& c : cases) {
      for (int hold : holds) {
        const size_t smem = c.stages * kPage + 128;
        BENCH_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
        Args a{iters, hold, d_src, src_pages, source, d_cycles, d_ns};
        c.kernel<<<ctas, 64, smem>>>(a);
        BENCH_CUDA(cudaGetLastError());
        BENCH_CUDA(cudaDeviceSynchronize());
        BENCH_CUDA(cudaMemcpy(hc, d_cycles, sizeof(unsigned long long) * ctas, cudaMemcpyDeviceToHost));
        BENCH_CUDA(cudaMemcpy(hn, d_ns, sizeof(unsigned long long) * ctas, cudaMemcpyDeviceToHost));
        double cyc = 0, nsec = 0;
        for (int b = 0; b < ctas; ++b) {
          cyc += double(hc[b]) / iters / ctas;
          nsec += double(hn[b]) / iters / ctas;
        }
        const double into = double(ctas) * kPage / nsec;   // bytes per ns = GB/s
        const double from_l2 = c.share == kMulticast ? into / 2 : into;
        const double distinct = c.share == kSolo ? into : into / 2;
        std::printf("| %s | %s | %d | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f |\n", source_names[source],
                    share_name(c.share), c.stages, hold, cyc, nsec, cyc / nsec, into, from_l2, distinct);
      }
    }
  }
  delete[] hc;
  delete[] hn;
  BENCH_CUDA(cudaFree(d_src));
  BENCH_CUDA(cudaFree(d_cycles));
  BENCH_CUDA(cudaFree(d_ns));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 400;
  if (iters <= 0) {
    std::fprintf(stderr, "usage: flashmla_page_stream_probe [pages per CTA > 0]\n");
    return 2;
  }
  try {
    return run_probe(iters);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_page_stream_probe: %s\n", e.what());
    return 1;
  }
}
