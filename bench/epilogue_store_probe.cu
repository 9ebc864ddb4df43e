// flashmla_epilogue_store_probe: how long a grid's burst of fp32 partial-output stores takes, by
// how the stores are made (docs/perf-log.md, entry 104), and whether merging two CTAs' partials
// over distributed shared memory before the stores would shorten it (entry 111). At b = 1 every
// decode CTA ends by storing its partial O at about the same time (16 rows x 2 KiB at R = 16, 64
// rows at R = 128), and the page timeline put that phase at ~1.7 us (R = 16) and ~3.8 us (R = 128)
// of thread 0's issue time.
//
// One CTA of 256 threads per SM (the decode kernels' consumer warpgroups), 128 KiB of shared memory
// so that no second CTA fits. Each CTA has `rows` rows of 512 floats to write. Forms:
//   narrow:     the narrow epilogue's scalar stores (a warp instruction: 4 rows x 32 bytes)
//   coalesced:  16-byte stores, a warp instruction 512 contiguous bytes
//   bulk:       the rows written to shared memory (16-byte stores, conflict-free), then one
//               cp.async.bulk store of the whole region by one thread
//   pair:       launched as clusters of two; CTA rank k keeps channels 256k..256k+255: it sends
//               the other half of its rows to its partner (st.async, 16 bytes a thread and
//               instruction, counted on the partner's mbarrier), waits for the partner's half of
//               its own channels, adds the two (weighted, as the lse merge would) and stores rows
//               x 256 floats with 16-byte stores: the pair writes one partial instead of two
//   pair bulk:  the same, the half sent as one bulk copy from the sender's shared memory
//   exchange:   the pair's exchange and merge without the global stores (the link's time alone)
// Per CTA, thread 0 records the global timer after a start barrier (a cluster barrier in the pair
// forms, after the mbarrier setup), once every thread has issued its stores (a barrier), and once
// they are complete (every thread's __threadfence, or the bulk group's wait, then a barrier). The
// pair forms end with a cluster barrier, which keeps a CTA alive while its partner may still read
// or write its shared memory. Printed: medians over launches of the grid's spans from the first
// start: the last CTA to issue, the last to complete, and the median CTA's issue and completion.
//
// Usage: flashmla_epilogue_store_probe [launches, default 30] [CTAs, default one an SM; rounded up
// to an even count for the pair forms' clusters]: few CTAs time one SM's store path alone, as in a
// call whose only busy CTA stores its tile (docs/perf-log.md, entry 135).
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
constexpr uint32_t kHalfBytesMax = kMaxRows * 256 * 4;   // 64 KiB: one channel half of the largest partial
enum Form : int { kNarrow, kCoalesced, kBulk, kPair, kPairBulk, kExchange, kForms };
const char* const kFormNames[kForms] = {"narrow scalar",         "coalesced 16 B",
                                        "smem + one bulk store", "pair: st.async, merge, rows x 256",
                                        "pair: bulk copy, merge, rows x 256", "pair exchange + merge only"};
__host__ __device__ bool paired(int form) { return form >= kPair; }   // launched as clusters of two

__device__ __forceinline__ float value_of(int cta, int j) { return 1.f + 1e-3f * (j & 1023) + 1e-6f * cta; }

// The pair forms: the partner's channel half of this CTA's rows arrives at [0, 64 KiB) of shared
// memory, the bulk form stages its own at [64, 128 KiB), and the mbarrier sits after both.
__device__ void pair_epilogue(uint8_t* smem, float* out, int rows, int form) {
  const uint32_t recv = smem_u32(smem);
  const uint32_t stage = recv + kHalfBytesMax;
  const uint32_t bar = stage + kHalfBytesMax;
  const int tid = threadIdx.x;
  const uint32_t rank = probe::cluster_rank();
  const uint32_t peer = rank ^ 1u;
  const uint32_t half_bytes = static_cast<uint32_t>(rows) * 256 * 4;
  const int half4 = rows * 64;   // float4s in one half of the rows: row j / 64, channels 4 (j % 64) of the half
  if (tid == 0) mbar_arrive_expect_tx(bar, half_bytes);
  const uint32_t peer_recv = probe::peer_addr(recv, peer), peer_bar = probe::peer_addr(bar, peer);
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
  // The pair's one partial: rows x 512 floats at the pair's region, this CTA's channel half.
  float4* region = reinterpret_cast<float4*>(out + static_cast<size_t>(blockIdx.x / 2) * rows * kCols);
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

// [start, issued, done] per CTA.
__global__ void __launch_bounds__(kThreads, 1) store_burst(float* out, int rows, int form, unsigned long long* times) {
  extern __shared__ __align__(128) uint8_t smem[];
  float* stage = reinterpret_cast<float*>(smem);
  float* region = out + static_cast<size_t>(blockIdx.x) * rows * kCols;
  const int tid = threadIdx.x;
  const bool pair = paired(form);
  if (pair) {
    if (tid == 0) {
      mbar_init(smem_u32(smem) + 2 * kHalfBytesMax, 1);
      fence_barrier_init();
    }
    probe::cluster_sync_all();
  } else {
    __syncthreads();
  }
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
  } else if (form == kBulk) {
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
  } else {
    pair_epilogue(smem, out, rows, form);
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
  if (pair) probe::cluster_sync_all();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// A launch of `ctas` CTAs, as clusters of two where `cluster_pairs`.
cudaLaunchConfig_t launch_config(int ctas, size_t smem, bool cluster_pairs, cudaLaunchAttribute* attribute) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(ctas), 1, 1);
  config.blockDim = dim3(kThreads, 1, 1);
  config.dynamicSmemBytes = smem;
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = 2;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = cluster_pairs ? 1 : 0;
  return config;
}

void run(int launches, int ctas_asked) {
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (ctas_asked > 0) sms = std::min(sms, ctas_asked + 1);
  sms &= ~1;   // whole clusters of two in the pair forms
  const size_t smem = 2 * kHalfBytesMax + 64;   // 128 KiB: one CTA an SM, as the decode kernels
  BENCH_CUDA(cudaFuncSetAttribute(store_burst, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  {
    cudaLaunchAttribute attribute[1];
    const cudaLaunchConfig_t config = launch_config(2, smem, true, attribute);
    int clusters = 0;
    BENCH_CUDA(cudaOccupancyMaxActiveClusters(&clusters, store_burst, &config));
    std::printf("CTAs: %d; the pair forms run as clusters of two (the device holds %d at once)\n\n", sms, clusters);
  }
  float* out = nullptr;
  unsigned long long* times = nullptr;
  BENCH_CUDA(cudaMalloc(&out, static_cast<size_t>(sms) * kMaxRows * kCols * 4));
  BENCH_CUDA(cudaMalloc(&times, static_cast<size_t>(sms) * 3 * sizeof(unsigned long long)));
  std::vector<unsigned long long> h(static_cast<size_t>(sms) * 3);
  std::printf("| rows a CTA | global KiB a CTA | form | last CTA issued, us | last CTA complete, us | median CTA issue, us "
              "| median CTA complete, us | grid GB/s to complete |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int rows : {16, 64}) {
    std::vector<double> issued[kForms], done[kForms], cta_issue[kForms], cta_done[kForms];
    for (int l = 0; l < launches + 2; ++l) {
      for (int form = 0; form < kForms; ++form) {   // forms alternate, launch by launch
        cudaLaunchAttribute attribute[1];
        const cudaLaunchConfig_t config = launch_config(sms, smem, paired(form), attribute);
        BENCH_CUDA(cudaLaunchKernelEx(&config, store_burst, out, rows, form, times));
        BENCH_CUDA(cudaGetLastError());
        BENCH_CUDA(cudaMemcpy(h.data(), times, h.size() * sizeof(h[0]), cudaMemcpyDeviceToHost));
        if (l < 2) continue;   // warm-up
        unsigned long long t0 = ~0ull, t_issued = 0, t_done = 0;
        for (int i = 0; i < sms; ++i) t0 = std::min(t0, h[i * 3]);
        std::vector<double> per_issue, per_done;
        for (int i = 0; i < sms; ++i) {
          t_issued = std::max(t_issued, h[i * 3 + 1]);
          t_done = std::max(t_done, h[i * 3 + 2]);
          per_issue.push_back(double(h[i * 3 + 1] - h[i * 3]) / 1e3);
          per_done.push_back(double(h[i * 3 + 2] - t0) / 1e3);
        }
        issued[form].push_back(double(t_issued - t0) / 1e3);
        done[form].push_back(double(t_done - t0) / 1e3);
        cta_issue[form].push_back(median(per_issue));
        cta_done[form].push_back(median(per_done));
      }
    }
    for (int form = 0; form < kForms; ++form) {
      const int kib = form == kExchange ? 0 : (paired(form) ? rows * 256 * 4 / 1024 : rows * kCols * 4 / 1024);
      const double d = median(done[form]);
      std::printf("| %d | %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f |\n", rows, kib, kFormNames[form],
                  median(issued[form]), d, median(cta_issue[form]), median(cta_done[form]),
                  double(sms) * kib * 1024 / (d * 1e3));
    }
  }
  BENCH_CUDA(cudaFree(out));
  BENCH_CUDA(cudaFree(times));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(argc > 1 ? std::max(1, std::atoi(argv[1])) : 30, argc > 2 ? std::atoi(argv[2]) : 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
