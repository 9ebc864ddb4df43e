// flashmla_pair_merge_probe: what a b = 1 decode epilogue would take if the two CTAs of a cluster
// merged their split partials through distributed shared memory before writing one (docs/perf-log.md,
// entry 111), against each CTA writing its own partial as today.
//
// At b = 1 every CTA ends by storing a partial O of `rows` x 512 fp32 (16 rows at h_q = 16, 64 at
// h_q = 128), all CTAs at about the same time, and the combine reads them back. A pair merge halves
// those bytes both ways: CTA rank k of a cluster of two keeps channels 256k..256k+255, sends the
// other half of its rows to its partner, adds the partner's half of its own channels (weighted,
// as the lse merge would), and stores rows x 256 floats. The question is whether the exchange over
// distributed shared memory (entry 54: ~20 B a clock an SM each way) costs less than the global
// bytes it saves.
//
// One CTA of 256 threads an SM (the decode kernels' consumer warpgroups), 128 KiB of shared memory
// so that no second CTA fits, launched as clusters of two in every form. Forms:
//   own:        today: each CTA stores its rows x 512 floats, 16-byte coalesced stores
//   pair:       st.async of the partner's half (16 bytes a thread and instruction) counted on its
//               mbarrier, wait for the own, merge, coalesced stores of rows x 256 floats
//   pair bulk:  the partner's half staged in own shared memory, one bulk copy into the partner's
//   exchange:   the pair's exchange and merge without the global stores (its link time alone)
// Per CTA, thread 0 records the global timer after a cluster barrier that follows the mbarrier
// setup, once every thread has issued its stores, and once they are complete (every thread's
// __threadfence, then a barrier). A final cluster barrier keeps a CTA alive while its partner may
// still read or write its shared memory. Printed: medians over launches of the grid's spans from
// the first start, for the last CTA to issue and the last to complete.
//
// Usage: flashmla_pair_merge_probe [launches, default 30]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "probe_cluster.cuh"

namespace {

using namespace flashmla::sm90;

constexpr int kThreads = 256;
constexpr int kCols = 512;
constexpr int kMaxRows = 64;
constexpr uint32_t kHalfBytesMax = kMaxRows * 256 * 4;   // 64 KiB: one half of the largest partial
enum Form : int { kOwn, kPair, kPairBulk, kExchange, kForms };
const char* const kFormNames[kForms] = {"own: rows x 512 each", "pair: st.async, merge, rows x 256",
                                        "pair: bulk copy, merge, rows x 256", "pair exchange + merge only"};

__device__ __forceinline__ float value_of(int cta, int j) { return 1.f + 1e-3f * (j & 1023) + 1e-6f * cta; }

// Shared memory: [0, 64 KiB) the partner's half as received, [64 KiB, 128 KiB) the own staging
// (bulk form), then one mbarrier.
__global__ void __launch_bounds__(kThreads, 1)
    pair_epilogue(float* out, int rows, int form, unsigned long long* times) {
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t recv = smem_u32(smem);
  const uint32_t stage = recv + kHalfBytesMax;
  const uint32_t bar = stage + kHalfBytesMax;
  const int tid = threadIdx.x;
  const uint32_t rank = probe::cluster_rank();
  const uint32_t peer = rank ^ 1u;
  const uint32_t half_bytes = static_cast<uint32_t>(rows) * 256 * 4;
  const int half4 = rows * 64;   // float4s in one half of the rows
  if (tid == 0) {
    mbar_init(bar, 1);
    fence_barrier_init();
  }
  probe::cluster_sync_all();
  if (tid == 0) times[blockIdx.x * 3 + 0] = global_ns();
  if (form == kOwn) {
    float4* region = reinterpret_cast<float4*>(out + static_cast<size_t>(blockIdx.x) * rows * kCols);
    for (int i = tid; i < rows * kCols / 4; i += kThreads) {
      const float v = value_of(blockIdx.x, i);
      region[i] = make_float4(v, v + 1.f, v + 2.f, v + 3.f);
    }
  } else {
    if (tid == 0) mbar_arrive_expect_tx(bar, half_bytes);
    const uint32_t peer_recv = probe::peer_addr(recv, peer), peer_bar = probe::peer_addr(bar, peer);
    // j indexes the float4s of a half: row j / 64, channels 4 (j % 64) of the half.
    if (form == kPairBulk) {
      for (int j = tid; j < half4; j += kThreads) {
        const float v = value_of(blockIdx.x, j + half4 * static_cast<int>(peer));
        asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(stage + 16u * j), "f"(v), "f"(v + 1.f),
                     "f"(v + 2.f), "f"(v + 3.f)
                     : "memory");
      }
      fence_proxy_async_smem();
      __syncthreads();
      if (tid == 0) probe::bulk_to_peer(peer_recv, stage, half_bytes, peer_bar);
    } else {
      for (int j = tid; j < half4; j += kThreads) {
        const float v = value_of(blockIdx.x, j + half4 * static_cast<int>(peer));
        probe::st_async_f32x4(peer_recv + 16u * j, v, v + 1.f, v + 2.f, v + 3.f, peer_bar);
      }
    }
    probe::mbar_wait_cluster(bar, 0);
    // The merged slot of the pair: rows x 512 floats at the lower rank's region, this CTA's half.
    const int pair = blockIdx.x / 2;
    float4* region = reinterpret_cast<float4*>(out + static_cast<size_t>(pair) * rows * kCols);
    const float w_own = rank == 0 ? 0.625f : 0.375f, w_peer = 1.f - w_own;
    float keep = 0.f;
    for (int j = tid; j < half4; j += kThreads) {
      float4 r;
      asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                   : "=f"(r.x), "=f"(r.y), "=f"(r.z), "=f"(r.w)
                   : "r"(recv + 16u * j)
                   : "memory");
      const float v = value_of(blockIdx.x, j + half4 * static_cast<int>(rank));
      const float4 m = make_float4(w_own * v + w_peer * r.x, w_own * (v + 1.f) + w_peer * r.y,
                                   w_own * (v + 2.f) + w_peer * r.z, w_own * (v + 3.f) + w_peer * r.w);
      if (form == kExchange) {
        keep += m.x + m.y + m.z + m.w;
      } else {
        region[(j / 64) * (kCols / 4) + 64 * rank + j % 64] = m;
      }
    }
    if (form == kExchange && keep == 12345.f) out[0] = keep;   // never true; keeps the merge
  }
  __syncthreads();
  if (tid == 0) times[blockIdx.x * 3 + 1] = global_ns();
  __threadfence();
  __syncthreads();
  if (tid == 0) times[blockIdx.x * 3 + 2] = global_ns();
  probe::cluster_sync_all();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void launch(int sms, size_t smem, cudaStream_t stream, float* out, int rows, int form, unsigned long long* times) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(sms), 1, 1);
  config.blockDim = dim3(kThreads, 1, 1);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = 2;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  BENCH_CUDA(cudaLaunchKernelEx(&config, pair_epilogue, out, rows, form, times));
}

void run(int launches) {
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  sms &= ~1;   // whole clusters of two
  const size_t smem = 2 * kHalfBytesMax + 64;
  BENCH_CUDA(cudaFuncSetAttribute(pair_epilogue, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(2, 1, 1);
    config.blockDim = dim3(kThreads, 1, 1);
    config.dynamicSmemBytes = smem;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeClusterDimension;
    attribute[0].val.clusterDim.x = 2;
    attribute[0].val.clusterDim.y = 1;
    attribute[0].val.clusterDim.z = 1;
    config.attrs = attribute;
    config.numAttrs = 1;
    int clusters = 0;
    BENCH_CUDA(cudaOccupancyMaxActiveClusters(&clusters, pair_epilogue, &config));
    std::printf("CTAs: %d (clusters of two; the device holds %d such clusters at once)\n\n", sms, clusters);
  }
  float* out = nullptr;
  unsigned long long* times = nullptr;
  BENCH_CUDA(cudaMalloc(&out, static_cast<size_t>(sms) * kMaxRows * kCols * 4));
  BENCH_CUDA(cudaMalloc(&times, static_cast<size_t>(sms) * 3 * sizeof(unsigned long long)));
  std::vector<unsigned long long> h(static_cast<size_t>(sms) * 3);
  std::printf("| rows a CTA | form | global KiB a CTA | last CTA issued, us | last CTA complete, us | median CTA complete, us |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int rows : {16, 64}) {
    std::vector<double> issued[kForms], done[kForms], cta_done[kForms];
    for (int l = 0; l < launches + 2; ++l) {
      for (int form = 0; form < kForms; ++form) {   // forms alternate, launch by launch
        launch(sms, smem, nullptr, out, rows, form, times);
        BENCH_CUDA(cudaGetLastError());
        BENCH_CUDA(cudaMemcpy(h.data(), times, h.size() * sizeof(h[0]), cudaMemcpyDeviceToHost));
        if (l < 2) continue;   // warm-up
        unsigned long long t0 = ~0ull, t_issued = 0, t_done = 0;
        std::vector<double> per;
        for (int i = 0; i < sms; ++i) t0 = std::min(t0, h[i * 3]);
        for (int i = 0; i < sms; ++i) {
          t_issued = std::max(t_issued, h[i * 3 + 1]);
          t_done = std::max(t_done, h[i * 3 + 2]);
          per.push_back(double(h[i * 3 + 2] - t0) / 1e3);
        }
        issued[form].push_back(double(t_issued - t0) / 1e3);
        done[form].push_back(double(t_done - t0) / 1e3);
        cta_done[form].push_back(median(per));
      }
    }
    for (int form = 0; form < kForms; ++form) {
      const int kib = form == kOwn ? rows * kCols * 4 / 1024 : (form == kExchange ? 0 : rows * 256 * 4 / 1024);
      std::printf("| %d | %s | %d | %.2f | %.2f | %.2f |\n", rows, kFormNames[form], kib, median(issued[form]),
                  median(done[form]), median(cta_done[form]));
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
