// flashmla_epilogue_store_probe: how long a grid's burst of fp32 partial-output stores takes, by
// how the stores are made (docs/perf-log.md, entry 104). At b = 1 every decode CTA ends by storing
// its partial O at about the same time (16 rows x 2 KiB at R = 16, 64 rows at R = 128), and the page
// timeline put that phase at ~1.7 us (R = 16) and ~3.8 us (R = 128) of thread 0's issue time.
//
// One CTA of 256 threads per SM (the decode kernels' consumer warpgroups), each writing `rows` rows
// of 512 floats to its own region. Forms:
//   narrow:     the narrow epilogue's scalar stores (a warp instruction: 4 rows x 32 bytes)
//   coalesced:  16-byte stores, a warp instruction 512 contiguous bytes
//   bulk:       the rows written to shared memory (16-byte stores, conflict-free), then one
//               cp.async.bulk store of the whole region by one thread
// Per CTA, thread 0 records the global timer after a start barrier, once every thread has issued
// its stores (a barrier), and once they are complete (every thread's __threadfence, or the bulk
// group's wait, then a barrier). Printed: medians over launches of the grid's spans from the first
// start, for the last CTA to issue and the last to complete.
//
// Usage: flashmla_epilogue_store_probe [launches, default 30]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"

namespace {

using namespace flashmla::sm90;

constexpr int kThreads = 256;
constexpr int kCols = 512;
enum Form : int { kNarrow, kCoalesced, kBulk, kForms };
const char* const kFormNames[kForms] = {"narrow scalar", "coalesced 16 B", "smem + one bulk store"};

// [start, issued, done] per CTA.
__global__ void __launch_bounds__(kThreads, 1) store_burst(float* out, int rows, int form, unsigned long long* times) {
  extern __shared__ __align__(128) float stage[];
  float* region = out + static_cast<size_t>(blockIdx.x) * rows * kCols;
  const int tid = threadIdx.x;
  __syncthreads();
  if (tid == 0) times[blockIdx.x * 3 + 0] = global_ns();
  const float v = 1.f + 1e-3f * tid;
  if (form == kNarrow) {
    // The narrow kernel's layout: warpgroup wg, warp w, lane (g, tq); query rows q = 8 (c / 2) + 2 tq
    // + c % 2 of each 16-row block, channels 256 wg + 64 tt + 16 w + g + 8 e.
    const int wg = tid / 128, w = (tid % 128) / 32, g = (tid & 31) >> 2, tq = tid & 3;
    for (int base = 0; base < rows; base += 16) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int q = base + 8 * (c >> 1) + 2 * tq + (c & 1);
#pragma unroll
        for (int tt = 0; tt < 4; ++tt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) region[q * kCols + 256 * wg + 64 * tt + 16 * w + g + 8 * e] = v;
        }
      }
    }
  } else if (form == kCoalesced) {
    float4* r4 = reinterpret_cast<float4*>(region);
    for (int i = tid; i < rows * kCols / 4; i += kThreads) r4[i] = make_float4(v, v, v, v);
  } else {
    float4* s4 = reinterpret_cast<float4*>(stage);
    for (int i = tid; i < rows * kCols / 4; i += kThreads) s4[i] = make_float4(v, v, v, v);
    fence_proxy_async_smem();
    __syncthreads();
    if (tid == 0) {
      asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(region),
                   "r"(smem_u32(stage)), "r"(rows * kCols * 4)
                   : "memory");
      asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
    }
  }
  __syncthreads();
  if (tid == 0) times[blockIdx.x * 3 + 1] = global_ns();
  if (form == kBulk) {
    if (tid == 0) asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
  } else {
    __threadfence();
  }
  __syncthreads();
  if (tid == 0) times[blockIdx.x * 3 + 2] = global_ns();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void run(int launches) {
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  constexpr int kMaxRows = 64;
  const size_t smem = kMaxRows * kCols * 4;   // 128 KiB: one CTA an SM, as the decode kernels
  BENCH_CUDA(cudaFuncSetAttribute(store_burst, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  float* out = nullptr;
  unsigned long long* times = nullptr;
  BENCH_CUDA(cudaMalloc(&out, static_cast<size_t>(sms) * kMaxRows * kCols * 4));
  BENCH_CUDA(cudaMalloc(&times, static_cast<size_t>(sms) * 3 * sizeof(unsigned long long)));
  std::vector<unsigned long long> h(static_cast<size_t>(sms) * 3);
  std::printf("| rows a CTA | KiB a CTA | form | last CTA issued, us | last CTA complete, us | median CTA issue, us | grid GB/s to complete |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int rows : {16, 64}) {
    std::vector<double> issued[kForms], done[kForms], cta_issue[kForms];
    for (int l = 0; l < launches + 2; ++l) {
      for (int form = 0; form < kForms; ++form) {   // forms alternate, launch by launch
        store_burst<<<sms, kThreads, smem>>>(out, rows, form, times);
        BENCH_CUDA(cudaGetLastError());
        BENCH_CUDA(cudaMemcpy(h.data(), times, h.size() * sizeof(h[0]), cudaMemcpyDeviceToHost));
        if (l < 2) continue;   // warm-up
        unsigned long long t0 = ~0ull, t_issued = 0, t_done = 0;
        std::vector<double> per;
        for (int i = 0; i < sms; ++i) {
          t0 = std::min(t0, h[i * 3]);
          t_issued = std::max(t_issued, h[i * 3 + 1]);
          t_done = std::max(t_done, h[i * 3 + 2]);
          per.push_back(double(h[i * 3 + 1] - h[i * 3]) / 1e3);
        }
        issued[form].push_back(double(t_issued - t0) / 1e3);
        done[form].push_back(double(t_done - t0) / 1e3);
        cta_issue[form].push_back(median(per));
      }
    }
    for (int form = 0; form < kForms; ++form) {
      const double bytes = double(sms) * rows * kCols * 4;
      const double d = median(done[form]);
      std::printf("| %d | %d | %s | %.2f | %.2f | %.2f | %.0f |\n", rows, rows * kCols * 4 / 1024, kFormNames[form],
                  median(issued[form]), d, median(cta_issue[form]), bytes / (d * 1e3));
    }
  }
  BENCH_CUDA(cudaFree(out));
  BENCH_CUDA(cudaFree(times));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(argc > 1 ? std::max(1, std::atoi(argv[1])) : 30);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
