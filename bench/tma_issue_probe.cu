// flashmla_tma_issue_probe: what a TMA box issue costs the issuing lane, by box size, by the number
// of warps issuing a page, by how the load is issued, and with the SM alone or every SM streaming
// (docs/perf-log.md, entry 101). The seesaw kernel's consumers issue their own pages' boxes and each
// issue point held the warp ~250-300 cycles (entry 100); this asks whether that is the
// instruction's own cost, or waiting behind other boxes or the memory system's load.
//
// One CTA per SM (or one CTA alone), two 72 KiB page buffers. A page is 9 units of 8 KiB (64 rows
// of 128 bytes, 128-byte swizzle, as a cache chunk), sent as boxes of `box_units` units (1, 2 or 4;
// the last unit alone when 8 / box_units leaves one over, as the RoPE chunk). Box i of a page is
// issued by warp i % issuers, after the issuing warps have seen the page two back in the same
// buffer land (no compute: the stream's bound). Each issuing warp times its issue section (clock64
// around its boxes, each an expect-tx arrive and a tensor TMA load), and warp 0 times each of its
// boxes. Pages come from a 2 GiB source in a scattered order. Issue forms: see `Form`.
//
// Usage: flashmla_tma_issue_probe [pages per CTA, default 400]
// Prints a row per case (form x grid x box size x issuers x leftover unit): cycles of each issuing
// warp's section a page, cycles a box of warp 0 by position (its arrive in brackets), ns a page.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/ptx.cuh"

namespace {

using namespace flashmla::sm90;

constexpr int kUnits = 9;
constexpr uint32_t kUnitBytes = 8192;
constexpr uint32_t kPageBytes = kUnits * kUnitBytes;
constexpr int kWarm = 8;
constexpr int kMaxBoxes = 9;
constexpr int kThreads = 128;
constexpr size_t kSourceUnits = (size_t(2) << 30) / kUnitBytes;   // 2 GiB

// One map per box size (1, 2, 4 units): the source as rows of 64 bf16, in blocks of box_units * 64
// rows; a box is one block.
__device__ CUtensorMap g_maps[3];
struct ProbeMaps {
  CUtensorMap m[3];
};

// How a box is issued: lane 0 with the maps in global memory (kLaneGlobal) or in the kernel's
// parameters (kLaneParam, as the decode kernels hold theirs), or the whole warp with one lane
// elected inside the instruction sequence and warp-uniform operands (kElectParam).
// kLaneElect: lane 0 alone, through the elected sequence with a one-lane member mask.
enum Form : int { kLaneGlobal, kLaneParam, kElectParam, kLaneElect };

// The expect-tx arrive and the box load from one lane that elect.sync picks; every lane of the warp
// executes it with the same operands.
template <uint32_t kMembers>
__device__ __forceinline__ void elected_box(uint32_t dst, const CUtensorMap* map, uint32_t bar, uint32_t bytes, int c3) {
  asm volatile(
      "{\n.reg .pred p;\nelect.sync _|p, %6;\n"
      "@p mbarrier.arrive.expect_tx.shared::cta.b64 _, [%1], %3;\n"
      "@p cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%2, {%4, %4, %4, %5}], "
      "[%1];\n}\n" ::"r"(dst),
      "r"(bar), "l"(reinterpret_cast<uint64_t>(map)), "r"(bytes), "r"(0), "r"(c3), "n"(kMembers)
      : "memory");
}

struct Result {
  unsigned long long section[4];   // cycles in the issue sections of warps 0-3
  unsigned long long box[kMaxBoxes];   // warp 0's cycles a box, by its position in warp 0's share
  unsigned long long arrive[kMaxBoxes];   // of which its expect-tx arrive
  unsigned long long ns;           // wall time of the timed pages
};

__device__ __forceinline__ int map_index(int box_units) { return box_units == 1 ? 0 : (box_units == 2 ? 1 : 2); }

// with_unit: the unit left over after the big boxes is loaded too (as the RoPE chunk is).
template <int kForm>
__global__ void __launch_bounds__(kThreads, 1) issue_probe(const __grid_constant__ ProbeMaps maps, int box_units,
                                                            int issuers, bool with_unit, int pages, uint32_t seed,
                                                            Result* out) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t bars = sbase + 2 * kPageBytes;   // full[2][kMaxBoxes]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int big = 8 / box_units;                  // boxes of box_units units; then one unit if any is left
  const int boxes = big + (with_unit && big * box_units < kUnits ? 1 : 0);
  if (threadIdx.x == 0) {
    for (int i = 0; i < 2 * kMaxBoxes; ++i) mbar_init(bars + 8 * i, 1);
    fence_barrier_init();
  }
  __syncthreads();
  if (warp >= issuers) return;
  const CUtensorMap* all_maps = kForm == kLaneGlobal ? g_maps : maps.m;
  const CUtensorMap* big_map = &all_maps[map_index(box_units)];
  const CUtensorMap* unit_map = &all_maps[0];
  Result r{};
  unsigned long long t_start = 0;
  for (int k = 0; k < kWarm + pages; ++k) {
    const int b = k & 1;
    if (k >= 2 && lane == 0) {
      for (int i = warp; i < boxes; i += issuers) mbar_wait(bars + 8 * (b * kMaxBoxes + i), ((k - 2) >> 1) & 1);
    }
    __syncwarp();
    // Every issuing warp has seen its boxes of the page two back land; all issue together.
    named_barrier_sync(1, issuers * 32);
    if (k == kWarm) t_start = global_ns();
    // A scattered page: 9 consecutive units at a hashed position.
    const uint32_t h = (static_cast<uint32_t>(blockIdx.x) * 7919u + static_cast<uint32_t>(k) * 2654435761u) ^ seed;
    const int page_unit = static_cast<int>((h % (kSourceUnits / 16 - 1)) * 16);   // 16-unit aligned
    if (kForm == kElectParam || lane == 0) {
      const unsigned long long s0 = clock64();
      int pos = 0;
      for (int i = warp; i < boxes; i += issuers, ++pos) {
        const unsigned long long b0 = clock64();
        const int units = i < big ? box_units : 1;
        const uint32_t bar = bars + 8 * (b * kMaxBoxes + i);
        const uint32_t dst = sbase + b * kPageBytes + static_cast<uint32_t>(i * box_units) * kUnitBytes;
        const int unit = page_unit + i * box_units;   // a multiple of units: the block's index is exact
        if constexpr (kForm == kElectParam || kForm == kLaneElect) {
          elected_box<kForm == kElectParam ? 0xffffffffu : 1u>(dst, units == 1 ? unit_map : big_map, bar,
                                                               units * kUnitBytes, unit / units);
          if (k >= kWarm && warp == 0) r.box[pos] += clock64() - b0;
          continue;
        }
        mbar_arrive_expect_tx(bar, units * kUnitBytes);
        if (k >= kWarm && warp == 0) r.arrive[pos] += clock64() - b0;
        if (units == 1) {
          tma_load_4d(dst, unit_map, bar, 0, 0, 0, unit);
        } else {
          tma_load_4d(dst, big_map, bar, 0, 0, 0, unit / units);
        }
        if (k >= kWarm && warp == 0) r.box[pos] += clock64() - b0;
      }
      if (k >= kWarm) r.section[warp] += clock64() - s0;
    }
  }
  if (lane == 0) {
    for (int i = warp; i < boxes; i += issuers) {
      const int k = kWarm + pages;   // the last two pages land before the CTA leaves
      mbar_wait(bars + 8 * (((k - 2) & 1) * kMaxBoxes + i), ((k - 2) >> 1) & 1);
      mbar_wait(bars + 8 * (((k - 1) & 1) * kMaxBoxes + i), ((k - 1) >> 1) & 1);
    }
    Result* o = out + blockIdx.x;
    o->section[warp] = r.section[warp];
    if (warp == 0) {
      for (int i = 0; i < kMaxBoxes; ++i) {
        o->box[i] = r.box[i];
        o->arrive[i] = r.arrive[i];
      }
      o->ns = global_ns() - t_start;
    }
  }
}

void run(int pages) {
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  void* src = nullptr;
  const size_t src_bytes = kSourceUnits * kUnitBytes;
  BENCH_CUDA(cudaMalloc(&src, src_bytes));
  BENCH_CUDA(cudaMemset(src, 0, src_bytes));
  CUtensorMap maps[3];
  const int box_units[3] = {1, 2, 4};
  for (int m = 0; m < 3; ++m) {
    const cuuint32_t rows = 64u * box_units[m];
    const cuuint64_t dims[4] = {64, rows, 1, kSourceUnits / box_units[m]};
    const cuuint64_t strides[3] = {128, 128ull * rows, 128ull * rows};
    const cuuint32_t box[4] = {64, rows, 1, 1};
    const CUresult rc = encode_swizzled_4d(maps[m], flashmla::DType::bf16, src, dims, strides, box);
    if (rc != CUDA_SUCCESS) throw std::runtime_error("cuTensorMapEncodeTiled failed: " + std::to_string(int(rc)));
  }
  BENCH_CUDA(cudaMemcpyToSymbol(g_maps, maps, sizeof(maps)));
  ProbeMaps param_maps;
  for (int m = 0; m < 3; ++m) param_maps.m[m] = maps[m];
  const int smem = 2 * kPageBytes + 2 * kMaxBoxes * 8;
  void (*const kernels[4])(ProbeMaps, int, int, bool, int, uint32_t, Result*) = {
      issue_probe<kLaneGlobal>, issue_probe<kLaneParam>, issue_probe<kElectParam>, issue_probe<kLaneElect>};
  const char* const form_names[4] = {"lane 0, maps in global", "lane 0, maps in params", "elected, maps in params",
                                     "lane 0 elected, maps in params"};
  for (auto kernel : kernels) {
    BENCH_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  }
  Result* d_out = nullptr;
  BENCH_CUDA(cudaMalloc(&d_out, sizeof(Result) * sms));
  std::vector<Result> h(sms);
  std::printf("pages a CTA %d; cycles a page (mean over CTAs)\n", pages);
  std::printf("| issue | grid | box KiB | issuers | boxes | sections of warps 0-3 | warp 0 a box (its arrive), by position | ns a page |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int form = 0; form < 4; ++form) {
  for (int grid : {1, sms}) {
    for (int bu : {1, 2, 4}) {
      for (int issuers : {1, 4}) {
       for (int with_unit : {1, 0}) {
        if ((bu == 1 || form != kLaneGlobal) && with_unit == 0) continue;
        const int big = 8 / bu, boxes = big + (with_unit && big * bu < kUnits ? 1 : 0);
        BENCH_CUDA(cudaMemset(d_out, 0, sizeof(Result) * sms));
        kernels[form]<<<grid, kThreads, smem>>>(param_maps, bu, issuers, with_unit != 0, pages, 12345u, d_out);
        BENCH_CUDA(cudaGetLastError());
        BENCH_CUDA(cudaDeviceSynchronize());
        BENCH_CUDA(cudaMemcpy(h.data(), d_out, sizeof(Result) * grid, cudaMemcpyDeviceToHost));
        double section[4] = {}, ns = 0, box[kMaxBoxes] = {}, arrive[kMaxBoxes] = {};
        for (int c = 0; c < grid; ++c) {
          for (int w = 0; w < issuers; ++w) section[w] += double(h[c].section[w]) / pages / grid;
          ns += double(h[c].ns) / pages / grid;
          for (int i = 0; i < kMaxBoxes; ++i) {
            box[i] += double(h[c].box[i]) / pages / grid;
            arrive[i] += double(h[c].arrive[i]) / pages / grid;
          }
        }
        std::printf("| %s | %s | %u | %d | %d |", form_names[form], grid == 1 ? "1 CTA" : "all SMs",
                    bu * kUnitBytes / 1024, issuers, boxes);
        for (int w = 0; w < issuers; ++w) std::printf(" %.0f", section[w]);
        std::printf(" |");
        const int mine = (boxes + issuers - 1) / issuers;
        for (int i = 0; i < mine; ++i) std::printf(" %.0f (%.0f)", box[i], arrive[i]);
        std::printf(" | %.0f |\n", ns);
       }
      }
    }
  }
  }
  BENCH_CUDA(cudaFree(d_out));
  BENCH_CUDA(cudaFree(src));
}

}  // namespace

int main(int argc, char** argv) {
  const int pages = argc > 1 ? std::atoi(argv[1]) : 400;
  if (pages < 2) {
    std::fprintf(stderr, "flashmla_tma_issue_probe: pages a CTA: expected an integer >= 2, got '%s'\n", argv[1]);
    return 2;
  }
  try {
    run(pages);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_tma_issue_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
