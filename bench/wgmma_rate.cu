// flashmla_wgmma_rate: how fast the tensor core runs the decode kernels' MMA streams when both
// operands (or B only) come from shared memory, one or two warpgroups issuing at once.
//
// Each case is a pair of warpgroup roles run concurrently in one CTA per SM (all SMs busy, as in
// decode); every role repeats its stream `iters` times and its warpgroup's thread 0 times the loop
// with clock64. The table gives cycles per iteration (the slower warpgroup, mean over CTAs), the
// tensor work of both roles at 4096 dense FLOP per clock per SM, and their ratio. The data is
// arbitrary (tensor timing does not depend on it); docs/perf-log.md records what it settled.
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/wgmma_ops.cuh"

namespace {

using namespace flashmla::sm90;
using T = __nv_bfloat16;

__device__ __forceinline__ void* smem_ptr_of(uint32_t addr) {
  extern __shared__ __align__(1024) uint8_t smem[];
  return smem + (addr - static_cast<uint32_t>(__cvta_generic_to_shared(smem)));
}

constexpr uint32_t kChunk = 8192;     // one 64 x 64 bf16 tile, 128-byte swizzled rows
constexpr uint32_t kTile = 9 * kChunk;  // 64 rows x 576 channels
constexpr uint32_t kQOff = 0, kK0Off = kTile, kK1Off = 2 * kTile, kPOff = 3 * kTile;
constexpr uint32_t kSmemBytes = 3 * kTile + kChunk;

enum Role : int {
  kIdle,
  kScoresN32Chunked,  // the wide kernel's scores: 32 keys, 36 k-steps, chunks of 4 summed with FADDs
  kScoresN32Flat,     // the same in one accumulator
  kScoresN64Flat,     // a whole 64-key page, one accumulator
  kScoresN64Chunked,  // a whole page, chunks of 4, two accumulators alternating
  kScoresN64Serial,   // a whole page, chunks of 4 into one accumulator, each added before the next issues
  kScoresN64Serial6,  // the same with chunks of 6 k-steps
  kSplitCh9x2,        // one page, channels split between the warpgroups (m64n64, 18 k-steps each as
                      // two 9-step chunks in flight at once), then each adds the other's partial
                      // scores of its 32 keys through shared memory (a 256-thread barrier)
  kSplitCh6x3,        // the same with three 6-step chunks (the third issued after the first add)
  kPvN256Smem,        // P @ V for 256 output channels, P from shared memory (4 k-steps)
  kPvN256Regs,        // the same with P in registers
  kPv2N256Smem,       // two of kPvN256Smem per iteration (a seesaw pair's P @ V per warpgroup)
  kPv2N256Regs,       // two of kPvN256Regs per iteration
};

__host__ __device__ constexpr bool is_pv(int role) { return role >= kPvN256Smem; }
__host__ __device__ constexpr bool pv_in_regs(int role) { return role == kPvN256Regs || role == kPv2N256Regs; }
__host__ __device__ constexpr int pv_reps(int role) { return role >= kPv2N256Smem ? 2 : 1; }

__host__ __device__ constexpr int role_tensor_cycles(int role) {
  switch (role) {
    case kScoresN32Chunked:
    case kScoresN32Flat: return 36 * 64 * 32 * 16 * 2 / 4096;
    case kSplitCh9x2:
    case kSplitCh6x3: return 18 * 64 * 64 * 16 * 2 / 4096;
    case kScoresN64Flat:
    case kScoresN64Serial:
    case kScoresN64Serial6:
    case kScoresN64Chunked: return 36 * 64 * 64 * 16 * 2 / 4096;
    case kIdle: return 0;
    default: return pv_reps(role) * 4 * 64 * 256 * 16 * 2 / 4096;
  }
}

__device__ __forceinline__ uint64_t kdesc(uint32_t addr) { return smem_desc_sw128(addr, 16, 1024); }

__device__ __forceinline__ uint64_t vdesc(uint32_t k_tile, int half, int kk) {
  return smem_desc_sw128(k_tile + 4 * half * kChunk + kk * 16 * 128, kChunk, 1024);
}

// Scores of N keys over all 36 k-steps, `iters` times: in one accumulator, or (kChunked) in
// chunks of 4 k-steps into two alternating accumulators added with FADDs, the decode pattern.
template <int N, bool kChunked>
__device__ __forceinline__ float score_stream(uint32_t sQ, uint32_t keys, int iters) {
  float sink = 0.f;
  for (int it = 0; it < iters; ++it) {
    float s[N / 2];
    if constexpr (!kChunked) {
      wgmma_fence();
#pragma unroll
      for (int step = 0; step < 36; ++step) {
        const uint32_t off = step / 4 * kChunk + step % 4 * 32;
        Wgmma<T, N, 0, 0>::mma(s, kdesc(sQ + off), kdesc(keys + off), step != 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);
    } else {
      float part[2][N / 2];
      auto issue = [&](int c) {
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const uint32_t off = c * kChunk + k * 32;
          Wgmma<T, N, 0, 0>::mma(part[c & 1], kdesc(sQ + off), kdesc(keys + off), k != 0);
        }
        wgmma_commit();
      };
      auto add = [&](int c) {
        fence_registers(part[c & 1]);
#pragma unroll
        for (int i = 0; i < N / 2; ++i) s[i] = c == 0 ? part[c & 1][i] : s[i] + part[c & 1][i];
      };
      issue(0);
#pragma unroll
      for (int c = 1; c < 9; ++c) {
        issue(c);
        wgmma_wait<1>();
        add(c - 1);
      }
      wgmma_wait<0>();
      add(8);
    }
#pragma unroll
    for (int i = 0; i < N / 2; ++i) sink += s[i];
  }
  return sink;
}

template <int kRole>
__device__ __forceinline__ float run_role(uint32_t sbase, int wg, int iters) {
  const uint32_t sQ = sbase + kQOff;
  const uint32_t sK = sbase + (wg ? kK1Off : kK0Off);
  float sink = 0.f;
  if constexpr (kRole == kScoresN32Chunked || kRole == kScoresN32Flat) {
    // both consumers on one page, each its 32 keys, as in decode scoring by keys
    sink = score_stream<32, kRole == kScoresN32Chunked>(sQ, sbase + kK0Off + wg * 32 * 128, iters);
  } else if constexpr (kRole == kScoresN64Flat || kRole == kScoresN64Chunked) {
    sink = score_stream<64, kRole == kScoresN64Chunked>(sQ, sK, iters);
  } else if constexpr (kRole == kScoresN64Serial || kRole == kScoresN64Serial6) {
    constexpr int kSteps = kRole == kScoresN64Serial ? 4 : 6;
    for (int it = 0; it < iters; ++it) {
      float s[32], part[32];
#pragma unroll
      for (int c = 0; c < 36 / kSteps; ++c) {
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kSteps; ++k) {
          const int step = c * kSteps + k;
          const uint32_t off = step / 4 * kChunk + step % 4 * 32;
          if (c == 0) {
            Wgmma<T, 64, 0, 0>::mma(s, kdesc(sQ + off), kdesc(sK + off), k != 0);
          } else {
            Wgmma<T, 64, 0, 0>::mma(part, kdesc(sQ + off), kdesc(sK + off), k != 0);
          }
        }
        wgmma_commit();
        if (c > 0) {
          wgmma_wait<0>();
          fence_registers(part);
#pragma unroll
          for (int i = 0; i < 32; ++i) s[i] += part[i];
        }
      }
      wgmma_wait<0>();
      fence_registers(s);
#pragma unroll
      for (int i = 0; i < 32; ++i) sink += s[i];
    }
  } else if constexpr (kRole == kSplitCh9x2 || kRole == kSplitCh6x3) {
    // Warpgroup wg: V channels 256 wg .. +255 (chunks 4 wg .. 4 wg + 3) and RoPE channels
    // 512 + 32 wg .. +31 (steps 32 + 2 wg, 33 + 2 wg), the narrow kernel's split.
    const uint32_t page = sbase + kK0Off;
    float* xchg = reinterpret_cast<float*>(smem_ptr_of(sbase + kK1Off));   // [2 halves][16][128] floats
    const int t = threadIdx.x % 128;
    auto step_off = [&](int j) {
      const int step = j < 16 ? 16 * wg + j : 32 + 2 * wg + (j - 16);
      return uint32_t(step / 4 * kChunk + step % 4 * 32);
    };
    constexpr int kSteps = kRole == kSplitCh9x2 ? 9 : 6;
    for (int it = 0; it < iters; ++it) {
      float s[32], part[32];
      auto chunk = [&](float (&acc)[32], int c) {
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kSteps; ++k) {
          const uint32_t off = step_off(c * kSteps + k);
          Wgmma<T, 64, 0, 0>::mma(acc, kdesc(sQ + off), kdesc(page + off), k != 0);
        }
        wgmma_commit();
      };
      chunk(s, 0);
      chunk(part, 1);
      wgmma_wait<0>();
      fence_registers(s);
      fence_registers(part);
#pragma unroll
      for (int i = 0; i < 32; ++i) s[i] += part[i];
      if constexpr (kSteps == 6) {
        chunk(part, 2);
        wgmma_wait<0>();
        fence_registers(part);
#pragma unroll
        for (int i = 0; i < 32; ++i) s[i] += part[i];
      }
      // Keys 0-31 are s[0..15], keys 32-63 s[16..31]: hand the other warpgroup's keys over.
#pragma unroll
      for (int i = 0; i < 16; ++i) xchg[(1 - wg) * 2048 + i * 128 + t] = s[16 * (1 - wg) + i];
      named_barrier_sync(1, 256);
#pragma unroll
      for (int i = 0; i < 16; ++i) s[16 * wg + i] += xchg[wg * 2048 + i * 128 + t];
      named_barrier_sync(2, 256);   // the exchange buffer is rewritten next iteration
#pragma unroll
      for (int i = 0; i < 16; ++i) sink += s[16 * wg + i];
    }
  } else if constexpr (is_pv(kRole)) {
    float o[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) o[i] = 0.f;
    uint32_t a[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) a[i] = 0x3c003c00u + i;
    const uint32_t sP = sbase + kPOff;
    for (int it = 0; it < iters * pv_reps(kRole); ++it) {
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        if constexpr (!pv_in_regs(kRole)) {
          Wgmma<T, 256, 0, 1>::mma(o, kdesc(sP + kk * 32), vdesc(sK, wg, kk), 1);
        } else {
          WgmmaRs<T, 256>::mma(o, a[4 * kk], a[4 * kk + 1], a[4 * kk + 2], a[4 * kk + 3], vdesc(sK, wg, kk), 1);
        }
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o);
    }
#pragma unroll
    for (int i = 0; i < 128; ++i) sink += o[i];
  }
  return sink;
}

template <int kRole0, int kRole1>
__global__ void __launch_bounds__(256, 1) wgmma_rate_kernel(int iters, unsigned long long* cycles, float* sink) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  for (uint32_t i = threadIdx.x; i < kSmemBytes / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(smem)[i] = 0x3c003c00u ^ (i * 2654435761u & 0x00ff00ffu);
  }
  fence_proxy_async_smem();
  __syncthreads();
  const int wg = threadIdx.x / 128;
  (void)(wg == 0 ? run_role<kRole0>(sbase, 0, 2) : run_role<kRole1>(sbase, 1, 2));   // warm-up
  __syncthreads();
  const unsigned long long t0 = clock64();
  const float v = wg == 0 ? run_role<kRole0>(sbase, 0, iters) : run_role<kRole1>(sbase, 1, iters);
  const unsigned long long t1 = clock64();
  if (threadIdx.x % 128 == 0) cycles[blockIdx.x * 2 + wg] = t1 - t0;
  if (v == 12345.f) sink[threadIdx.x] = v;
}

struct Case {
  const char* name;
  int role0, role1;
  void (*kernel)(int, unsigned long long*, float*);
};

#define CASE(name, r0, r1) Case{name, r0, r1, wgmma_rate_kernel<r0, r1>}

const char* role_name(int r) {
  switch (r) {
    case kScoresN32Chunked: return "scores n32 chunked";
    case kScoresN32Flat: return "scores n32 flat";
    case kScoresN64Flat: return "scores n64 flat";
    case kScoresN64Chunked: return "scores n64 chunked";
    case kSplitCh9x2: return "channel-split scores 9+9 + exchange";
    case kSplitCh6x3: return "channel-split scores 6+6+6 + exchange";
    case kScoresN64Serial: return "scores n64 serial 4-step chunks";
    case kScoresN64Serial6: return "scores n64 serial 6-step chunks";
    case kPvN256Smem: return "PV n256 P smem";
    case kPvN256Regs: return "PV n256 P regs";
    case kPv2N256Smem: return "2 x PV n256 P smem";
    case kPv2N256Regs: return "2 x PV n256 P regs";
    default: return "-";
  }
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  const Case cases[] = {
      CASE("decode scores (both on one page)", kScoresN32Chunked, kScoresN32Chunked),
      CASE("decode scores, one accumulator", kScoresN32Flat, kScoresN32Flat),
      CASE("n32 scores, one warpgroup", kScoresN32Flat, kIdle),
      CASE("n32 chunked, one warpgroup", kScoresN32Chunked, kIdle),
      CASE("n64 page, one warpgroup", kScoresN64Flat, kIdle),
      CASE("n64 page chunked, one warpgroup", kScoresN64Chunked, kIdle),
      CASE("n64 pages, two warpgroups", kScoresN64Flat, kScoresN64Flat),
      CASE("n64 pages chunked, two warpgroups", kScoresN64Chunked, kScoresN64Chunked),
      CASE("P @ V smem, two warpgroups", kPvN256Smem, kPvN256Smem),
      CASE("P @ V smem, one warpgroup", kPvN256Smem, kIdle),
      CASE("P @ V regs, one warpgroup", kPvN256Regs, kIdle),
      CASE("P @ V regs, two warpgroups", kPvN256Regs, kPvN256Regs),
      CASE("n64 chunked beside P @ V smem", kScoresN64Chunked, kPv2N256Smem),
      CASE("n64 chunked beside P @ V regs", kScoresN64Chunked, kPv2N256Regs),
      CASE("n32 decode scores beside P @ V smem", kScoresN32Chunked, kPv2N256Smem),
      CASE("channel split 9+9, exchange", kSplitCh9x2, kSplitCh9x2),
      CASE("channel split 6+6+6, exchange", kSplitCh6x3, kSplitCh6x3),
      CASE("n64 serial, one warpgroup", kScoresN64Serial, kIdle),
      CASE("n64 serial, two warpgroups", kScoresN64Serial, kScoresN64Serial),
      CASE("n64 serial beside P @ V smem", kScoresN64Serial, kPv2N256Smem),
      CASE("n64 serial beside P @ V regs", kScoresN64Serial, kPv2N256Regs),
      CASE("n64 serial 6, one warpgroup", kScoresN64Serial6, kIdle),
      CASE("n64 serial 6, two warpgroups", kScoresN64Serial6, kScoresN64Serial6),
      CASE("n64 serial 6 beside P @ V smem", kScoresN64Serial6, kPv2N256Smem),
  };
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "SM count");
  unsigned long long* d_cycles = nullptr;
  float* d_sink = nullptr;
  check(cudaMalloc(&d_cycles, sizeof(unsigned long long) * 2 * sms), "cudaMalloc");
  check(cudaMalloc(&d_sink, sizeof(float) * 256), "cudaMalloc");
  std::vector<unsigned long long> cycles(2 * sms);
  std::printf("| case | warpgroup 0 | warpgroup 1 | cycles/iter wg0 | wg1 | tensor work | work / time |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::string json = "[";
  for (const Case& c : cases) {
    check(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes), "smem attribute");
    c.kernel<<<sms, 256, kSmemBytes>>>(iters, d_cycles, d_sink);
    check(cudaGetLastError(), c.name);
    check(cudaDeviceSynchronize(), c.name);
    check(cudaMemcpy(cycles.data(), d_cycles, sizeof(unsigned long long) * 2 * sms, cudaMemcpyDeviceToHost), "copy");
    double per[2] = {0, 0};
    for (int b = 0; b < sms; ++b) {
      for (int w = 0; w < 2; ++w) per[w] += double(cycles[2 * b + w]) / iters / sms;
    }
    const double work = role_tensor_cycles(c.role0) + role_tensor_cycles(c.role1);
    // With two roles of different length, both loops run `iters` times: the pair's work is done
    // when the slower one ends.
    const double t = c.role1 == kIdle ? per[0] : (per[0] > per[1] ? per[0] : per[1]);
    std::printf("| %s | %s | %s | %.0f | %.0f | %.0f | %.2f |\n", c.name, role_name(c.role0), role_name(c.role1), per[0],
                c.role1 == kIdle ? 0.0 : per[1], work, work / t);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s{\"case\":\"%s\",\"wg0\":%.1f,\"wg1\":%.1f,\"work\":%.0f}", json.size() > 1 ? "," : "",
                  c.name, per[0], per[1], work);
    json += buf;
  }
  json += "]";
  std::printf("JSON %s\n", json.c_str());
  return 0;
}
