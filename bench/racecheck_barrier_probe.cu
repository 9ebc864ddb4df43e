// Does compute-sanitizer's racecheck model named barriers that two warpgroups reach from different
// instructions? (docs/perf-log.md, entry 100.) The seesaw kernel hands words between its consumer
// warpgroups through shared memory, ordered only by such barriers, and racecheck reports those
// words. Each case here is race-free by the PTX memory model; run it under racecheck:
//   compute-sanitizer --tool racecheck flashmla_racecheck_barrier_probe CASE
// CASE 0: both warpgroups write, then read the other's word, around one bar.sync instruction.
// CASE 1: the same with each warpgroup's code compiled for its index (integral_constant), so each
//         reaches its own copy of barrier.sync (not .aligned), as the seesaw's consumers do.
// CASE 2: a hand-over loop: warpgroup 1 writes a word and arrives (barrier.arrive), warpgroup 0
//         syncs and reads it, then hands back the same way before the next write.
// CASE 3: case 2's loop, then case 1's exchange on a third barrier (the seesaw's epilogue after its
//         page loop).
// CASE 4: case 3 as two segments, the exchange followed by a second sync on its barrier, and both
//         the loop and the exchange using word 0 (the seesaw's epilogue reuses the words of the
//         maxima that its loop hands over).
// CASE 5: case 2's hand-over loop on two mbarriers (every thread of warpgroup 1 writes its word and
//         arrives on `full`, 128 arrivals; warpgroup 0 waits for the phase, reads, and arrives on
//         `empty`, which warpgroup 1 waits for before its next write): the form the seesaw's
//         hand-overs would take if racecheck models mbarrier ordering (entry 119).
// CASE 6: case 5 with one arrival a warp (lane 0, after __syncwarp; 4 arrivals a phase).
// The program checks every value it reads and exits non-zero on a mismatch.
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include <cuda_runtime_api.h>

#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"

namespace {

using namespace flashmla::sm90;

constexpr int kIters = 64;

__global__ void __launch_bounds__(256, 1) barrier_probe(int mode, int* errors) {
  __shared__ uint32_t words[128];
  __shared__ alignas(8) uint64_t bars[2];
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
  const uint32_t base = smem_u32(words);
  if (mode >= 5) {
    const uint32_t full = smem_u32(&bars[0]), empty = smem_u32(&bars[1]);
    const int arrivals = mode == 5 ? 128 : 4;
    if (threadIdx.x == 0) {
      mbar_init(full, arrivals);
      mbar_init(empty, arrivals);
      fence_barrier_init();
    }
    __syncthreads();
    auto arrive = [&](uint32_t bar) {
      if (mode == 5) {
        mbar_arrive(bar);
      } else {
        __syncwarp();
        if (t % 32 == 0) mbar_arrive(bar);
      }
    };
    for (int i = 0; i < kIters; ++i) {
      const uint32_t parity = static_cast<uint32_t>(i) & 1u;
      if (wg == 1) {
        if (i > 0) mbar_wait(empty, parity ^ 1u);
        st_shared_b32(base + 4 * t, static_cast<uint32_t>(1000 * i + t));
        arrive(full);
      } else {
        mbar_wait(full, parity);
        if (ld_shared_b32(base + 4 * t) != static_cast<uint32_t>(1000 * i + t)) atomicAdd(errors, 1);
        arrive(empty);
      }
    }
    return;
  }
  if (mode == 0) {
    if (t == 0) st_shared_b32(base + 4 * wg, 100u + wg);
    named_barrier_sync(5, 256);
    if (t == 0 && ld_shared_b32(base + 4 * (1 - wg)) != 101u - wg) atomicAdd(errors, 1);
    return;
  }
  auto run = [&](auto index) {
    constexpr int C = decltype(index)::value;
    if (mode == 1) {
      if (t == 0) st_shared_b32(base + 4 * C, 100u + C);
      named_barrier_sync_unaligned(5, 256);
      if (t == 0 && ld_shared_b32(base + 4 * (1 - C)) != 101u - C) atomicAdd(errors, 1);
      return;
    }
    for (int seg = 0; seg < (mode == 4 ? 2 : 1); ++seg) {
    for (int i = 0; i < kIters; ++i) {   // modes 2 to 4
      if constexpr (C == 1) {
        if (t == 0) st_shared_b32(base, static_cast<uint32_t>(i));
        named_barrier_arrive_unaligned(5, 256);
        named_barrier_sync_unaligned(6, 256);
      } else {
        named_barrier_sync_unaligned(5, 256);
        if (t == 0 && ld_shared_b32(base) != static_cast<uint32_t>(i)) atomicAdd(errors, 1);
        named_barrier_arrive_unaligned(6, 256);
      }
    }
    if (mode >= 3) {
      if (t == 0) st_shared_b32(base + 4 * C, 200u + C);
      named_barrier_sync_unaligned(7, 256);
      if (t == 0 && ld_shared_b32(base + 4 * (1 - C)) != 201u - C) atomicAdd(errors, 1);
      if (mode == 4) named_barrier_sync_unaligned(7, 256);
    }
    }
  };
  if (wg == 0) {
    run(std::integral_constant<int, 0>{});
  } else {
    run(std::integral_constant<int, 1>{});
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int mode = argc > 1 ? std::atoi(argv[1]) : 0;
  if (mode < 0 || mode > 6) {
    std::fprintf(stderr, "usage: %s CASE (0 to 6)\n", argv[0]);
    return 2;
  }
  int* errors = nullptr;
  if (cudaMalloc(&errors, sizeof(int)) != cudaSuccess || cudaMemset(errors, 0, sizeof(int)) != cudaSuccess) return 1;
  barrier_probe<<<1, 256>>>(mode, errors);
  int host = -1;
  if (cudaMemcpy(&host, errors, sizeof(int), cudaMemcpyDeviceToHost) != cudaSuccess) {
    std::fprintf(stderr, "case %d: %s\n", mode, cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::printf("case %d: %d wrong reads\n", mode, host);
  cudaFree(errors);
  return host == 0 ? 0 : 1;
}
