// flashmla_store_beside_mma_probe: how much slower a warpgroup's work runs while the tensor core
// streams MMAs: none, the other warpgroup's (P @ V or score MMAs), or the warpgroup's own P @ V
// issued just before the work.
//
// docs/perf-log.md entry 83 found the wide kernel's softmax steps before the P barrier ~240 cycles
// slower when the warpgroup's own P @ V ran beside them. A seesaw overlaps one warpgroup's softmax
// with the other warpgroup's MMAs, so whether the effect crosses warpgroups, and which work it
// hits, decides what such a schedule can gain.
//
// One CTA per SM (all SMs busy, as in decode), two warpgroups. Warpgroup 1 is measured: each
// iteration it runs one round of work (enum Work: P-tile stores with their fence and barrier, the
// fast path's softmax before them, or exponentials or FMAs alone), timed by clock64 around
// exactly that. Warpgroup 0 idles or streams MMAs (both operands in shared memory) for longer
// than warpgroup 1's loop. The data is arbitrary.
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/wgmma_ops.cuh"

namespace {

using namespace flashmla::sm90;
using T = __nv_bfloat16;

constexpr uint32_t kChunk = 8192;                  // a 64 x 64 bf16 tile, 128-byte swizzled rows
constexpr uint32_t kVOff = 0;                      // V: 8 chunks (512 channels x 64 keys)
constexpr uint32_t kPOff = 8 * kChunk;             // P read by the MMAs (64 x 64)
constexpr uint32_t kStoreOff = 9 * kChunk;         // P written by warpgroup 1 (64 x 64)
constexpr uint32_t kSmemBytes = 10 * kChunk;

enum Mode : int {
  kAlone,          // warpgroup 0 idles
  kOtherWgMma,     // warpgroup 0 streams P @ V the whole time
  kOtherWgScores,  // warpgroup 0 streams score MMAs (m64n64k16, 32 accumulators a thread) instead
  kOwnMma,         // warpgroup 1 issues its own P @ V before each round, waits after it
  kOwnMmaNoStore,  // the same without the rounds (the MMAs' own time, for reference)
};

__device__ __forceinline__ uint64_t pdesc(uint32_t addr) { return smem_desc_sw128(addr, 16, 1024); }
__device__ __forceinline__ uint64_t vdesc(uint32_t base, int half, int kk) {
  return smem_desc_sw128(base + 4 * half * kChunk + kk * 16 * 128, kChunk, 1024);
}

// One consumer's P @ V of a page: 4 k-steps of m64n256k16 into o.
__device__ __forceinline__ void issue_pv(float (&o)[128], uint32_t sbase, int half) {
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    Wgmma<T, 256, 0, 1>::mma(o, pdesc(sbase + kPOff + kk * 32), vdesc(sbase + kVOff, half, kk), 1);
  }
  wgmma_commit();
}

enum Work : int {
  kStores,         // eight P-tile words a thread stored, the proxy fence, a 128-thread barrier
  kSoftmaxStores,  // the words first computed as the fast path does: 16 exponentials, their sums
                   // and squares, the bf16 packing; then kStores
  kExpOnly,        // the 16 exponentials and their sums alone (no stores, fence or barrier)
  kFmaOnly,        // 64 FMAs in 8 independent chains alone
};

// One round of warpgroup 1's work. Stores go to the decode kernel's P addresses (rows row0 and
// row0 + 8, four 16-byte units XORed by the swizzle). acc keeps every result live.
template <int kWork>
__device__ __forceinline__ void work_round(uint32_t tile, int t, uint32_t value, float (&acc)[8]) {
  if constexpr (kWork == kFmaOnly) {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[c] = fmaf(acc[c], 0.999f, __uint_as_float(0x3c000000u | (value + c)));
    }
    return;
  }
  float p[16];
  if constexpr (kWork != kStores) {
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      p[i] = exp2_ftz(fmaf(__uint_as_float(0x3f000000u | ((value + i) & 0xfffu)), 0.09f, -1.f));
      acc[(i >> 1) & 1] += p[i];
    }
  }
  if constexpr (kWork == kExpOnly) return;
  uint32_t words[8];
  if constexpr (kWork == kSoftmaxStores) {
#pragma unroll
    for (int i = 0; i < 16; ++i) acc[2 + ((i >> 1) & 1)] = fmaf(p[i], p[i], acc[2 + ((i >> 1) & 1)]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(p[2 * i], p[2 * i + 1]);
      words[i] = *reinterpret_cast<const uint32_t*>(&h);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) words[i] = value + i;
  }
  const int w = t / 32, lane = t % 32;
  const int row0 = 16 * w + lane / 4;
  const uint32_t a = tile + row0 * 128 + ((((lane % 4) * 4) / 16) ^ (row0 % 8)) * 16 + ((lane % 4) * 4) % 16;
#pragma unroll
  for (int jn = 0; jn < 4; ++jn) {
    st_shared_b32(a ^ (16 * jn), words[2 * jn]);
    st_shared_b32((a ^ (16 * jn)) + 8 * 128, words[2 * jn + 1]);
  }
  fence_proxy_async_smem();
  named_barrier_sync(1, 128);
}

// 18 k-steps of a page's scores over a channel half, m64n64k16 into s (the decode kernel's score
// MMAs; Q and K both from shared memory, here the V and P tiles).
__device__ __forceinline__ void issue_scores(float (&s)[32], uint32_t sbase) {
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < 18; ++k) {
    const uint32_t off = k / 4 * kChunk + k % 4 * 32;
    Wgmma<T, 64, 0, 0>::mma(s, pdesc(sbase + kVOff + off), pdesc(sbase + kVOff + 4 * kChunk + off % kChunk), k != 0);
  }
  wgmma_commit();
}

template <int kMode, int kWork>
__global__ void __launch_bounds__(256, 1) store_probe_kernel(int iters, unsigned long long* out, float* sink) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  // Finite operands (the MMAs' timing does not depend on their values).
  uint32_t* words = reinterpret_cast<uint32_t*>(smem);
  for (uint32_t i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) words[i] = 0x3f803f80u;   // bf16 pairs of 1.0
  fence_proxy_async_smem();
  __syncthreads();
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
  unsigned long long round_cycles = 0, loop_cycles = 0;
  float acc[8] = {};
  if (wg == 0) {
    if constexpr (kMode == kOtherWgScores) {
      float sc[32];
      // 18 k-steps are 576 tensor cycles: far more rounds than warpgroup 1's loop needs.
      for (int it = 0; it < 8 * iters + 16; ++it) {
        issue_scores(sc, sbase);
        wgmma_wait<0>();
      }
      fence_registers(sc);
#pragma unroll
      for (int i = 0; i < 32; ++i) o[i] += sc[i];
    }
    if constexpr (kMode == kOtherWgMma) {
      // Long enough to cover warpgroup 1's loop (a round there takes well under 4 P @ V's).
      for (int it = 0; it < 4 * iters + 8; ++it) {
        issue_pv(o, sbase, 0);
        wgmma_wait<1>();
      }
      wgmma_wait<0>();
    }
  } else {
    constexpr bool kOwn = kMode == kOwnMma || kMode == kOwnMmaNoStore;
    const unsigned long long l0 = clock64();
    for (int it = 0; it < iters; ++it) {
      if constexpr (kOwn) issue_pv(o, sbase, 1);
      if constexpr (kMode != kOwnMmaNoStore) {
        const unsigned long long s0 = clock64();
        work_round<kWork>(sbase + kStoreOff, t, static_cast<uint32_t>(it * 16 + t), acc);
        round_cycles += clock64() - s0;
      }
      if constexpr (kOwn) wgmma_wait<0>();
    }
    loop_cycles = clock64() - l0;
  }
  fence_registers(o);
  float v = 0.f;
#pragma unroll
  for (int i = 0; i < 128; ++i) v += o[i];
#pragma unroll
  for (int i = 0; i < 8; ++i) v += acc[i];
  if (v == 12345.f) sink[threadIdx.x] = v;
  if (wg == 1 && t == 0) {
    out[2 * blockIdx.x] = round_cycles;
    out[2 * blockIdx.x + 1] = loop_cycles;
  }
}

int run_probe(int iters) {
  struct Case {
    const char* name;
    void (*kernel)(int, unsigned long long*, float*);
  };
  const Case cases[] = {
      {"stores + fence + barrier, warpgroup 0 idle", store_probe_kernel<kAlone, kStores>},
      {"the same beside warpgroup 0's P @ V", store_probe_kernel<kOtherWgMma, kStores>},
      {"the same beside its own P @ V (issued first)", store_probe_kernel<kOwnMma, kStores>},
      {"its own P @ V alone (no stores)", store_probe_kernel<kOwnMmaNoStore, kStores>},
      {"softmax (16 exponentials, sums, squares, packing) + stores + fence + barrier, alone",
       store_probe_kernel<kAlone, kSoftmaxStores>},
      {"the same beside warpgroup 0's P @ V", store_probe_kernel<kOtherWgMma, kSoftmaxStores>},
      {"the same beside its own P @ V (issued first)", store_probe_kernel<kOwnMma, kSoftmaxStores>},
      {"16 exponentials and sums only, alone", store_probe_kernel<kAlone, kExpOnly>},
      {"the same beside warpgroup 0's P @ V", store_probe_kernel<kOtherWgMma, kExpOnly>},
      {"the same beside its own P @ V (issued first)", store_probe_kernel<kOwnMma, kExpOnly>},
      {"softmax + stores beside warpgroup 0's score MMAs", store_probe_kernel<kOtherWgScores, kSoftmaxStores>},
      {"64 FMAs (8 chains) only, alone", store_probe_kernel<kAlone, kFmaOnly>},
      {"the same beside warpgroup 0's P @ V", store_probe_kernel<kOtherWgMma, kFmaOnly>},
      {"the same beside its own P @ V (issued first)", store_probe_kernel<kOwnMma, kFmaOnly>},
      {"the same beside warpgroup 0's score MMAs", store_probe_kernel<kOtherWgScores, kFmaOnly>},
  };
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  unsigned long long* d_out = nullptr;
  float* d_sink = nullptr;
  BENCH_CUDA(cudaMalloc(&d_out, sizeof(unsigned long long) * 2 * sms));
  BENCH_CUDA(cudaMalloc(&d_sink, sizeof(float) * 256));
  std::vector<unsigned long long> h_out(2 * static_cast<size_t>(sms));
  std::printf("| case | round, cycles | warpgroup 1 iteration, cycles |\n|---|---|---|\n");
  for (const Case& c : cases) {
    BENCH_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    for (int rep = 0; rep < 2; ++rep) {   // the first launch warms up
      c.kernel<<<sms, 256, kSmemBytes>>>(iters, d_out, d_sink);
      BENCH_CUDA(cudaGetLastError());
      BENCH_CUDA(cudaDeviceSynchronize());
    }
    BENCH_CUDA(cudaMemcpy(h_out.data(), d_out, sizeof(unsigned long long) * h_out.size(), cudaMemcpyDeviceToHost));
    double store = 0, loop = 0;
    for (int b = 0; b < sms; ++b) {
      store += double(h_out[2 * b]) / iters / sms;
      loop += double(h_out[2 * b + 1]) / iters / sms;
    }
    std::printf("| %s | %.0f | %.0f |\n", c.name, store, loop);
  }
  BENCH_CUDA(cudaFree(d_out));
  BENCH_CUDA(cudaFree(d_sink));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 400;
  if (iters <= 0) {
    std::fprintf(stderr, "usage: flashmla_store_beside_mma_probe [iterations > 0]\n");
    return 2;
  }
  try {
    return run_probe(iters);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_store_beside_mma_probe: %s\n", e.what());
    return 1;
  }
}
