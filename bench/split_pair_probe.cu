// flashmla_split_pair_probe: page time of a schedule that splits each page's channels between the
// two CTAs of a cluster, weighed against today's wide kernel before it is built (docs/perf-log.md,
// entry 54).
//
// Why: a 64-row tile's O (64 x 512 fp32) fills two warpgroups' registers, so one SM cannot hold the
// two copies of O that a ping-pong of its consumers needs, and Q (72 KiB) leaves room for only two
// 72 KiB page stages. If CTA r of a pair holds only V channels 256r..256r+255 and RoPE channels
// 512 + 32r..+31 of Q and of every page, each SM needs half of Q (36 KiB) and half of each page
// (36 KiB): four page stages fit, and O of its 256 channels is 128 registers per thread, so each of
// its two consumers can keep its own O and take every other page alone (ping-pong: one scores or
// multiplies while the other exponentiates).
//
//   Per page, consumer w = page & 1 of both CTAs: partial scores over the CTA's 288 channels
//   (m64n64, 18 k-steps as two 9-step chunks, the wide kernel's precision rule), the 64 x 64 fp32
//   partial sent to the same consumer of the other CTA with st.async (16 KiB, counted on the peer's
//   mbarrier) and the peer's added to it, so that both CTAs hold the same scores, the fast-path
//   softmax of 32 scores a thread, P from registers into the CTA's 256 output channels (4 k-steps
//   m64n256k16), and the stage released once that has completed.
//
// Variants:
// - pages resident (compute and exchange only); pages streamed from HBM, each pair its own pages
//   (as at R = 64); two pairs streaming the same pages (the two row tiles of R = 128);
// - each of those without the exchange (each CTA takes its own partial as the scores), to price it;
// - ordered: the consumers take turns issuing their scores (named barriers), as FlashAttention-3's
//   ping-pong orders its GEMMs;
// - the exchange as one bulk copy from a local buffer, or as plain remote stores with a cluster
//   fence, instead of st.async;
// - pipelined: the next page's first score chunk issued before this page's partial comes back;
// - the exchange alone, no MMAs, at 2 to 16 KiB a consumer, to separate its latency from its bytes;
// - phase clocks of the ordered st.async schedule.
// One CTA of three warpgroups per SM on every SM, clusters of two; thread 0 of each consumer times
// its pages with clock64 and globaltimer. The figure to compare with flashmla_seesaw_probe's
// "cycles per page" is SM-cycles per page: two SMs take a page together, so a pair's elapsed
// cycles over the pages each consumer took.
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "cuda_check.h"
#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/wgmma_ops.cuh"
#include "probe_cluster.cuh"
#include "probe_page_loop.cuh"

namespace {

using namespace flashmla::sm90;
using namespace probe;
using T = __nv_bfloat16;

constexpr uint32_t kChunk = 8192;                 // 64 rows x 64 channels, 128-byte swizzled rows
constexpr uint32_t kRopeHalf = 4096;              // 64 rows x 32 channels, 64-byte swizzled rows
constexpr uint32_t kHalf = 4 * kChunk + kRopeHalf;   // a CTA's share of Q or of a page: 36 KiB
constexpr uint32_t kPageBytes = 2 * kHalf;        // the whole page in global memory
constexpr int kStages = 4;
constexpr uint32_t kQOff = 0;
constexpr uint32_t kStage0 = kHalf;
constexpr uint32_t kXbuf = kStage0 + kStages * kHalf;   // two 16 KiB partial-score buffers (per consumer)
constexpr uint32_t kXbufBytes = 64 * 64 * 4;
constexpr uint32_t kBars = kXbuf + 2 * kXbufBytes;
constexpr uint32_t kSmemBytes = kBars + 256;
static_assert(kSmemBytes <= 227 * 1024, "one CTA per SM");

__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr) { return smem_desc_sw128(addr, 16, 1024); }
// 64-byte swizzle, K-major: 8-row groups 512 B apart.
__device__ __forceinline__ uint64_t desc_sw64(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (1ull << 16) | (static_cast<uint64_t>(512 >> 4) << 32) |
         (2ull << 62);
}
__device__ __forceinline__ uint64_t vdesc(uint32_t stage, int kk) {
  return smem_desc_sw128(stage + kk * 16 * 128, kChunk, 1024);
}

// mbarrier addresses, computed where used (an array of them indexed by page went to local memory).
struct Bars {
  uint32_t base;
  __device__ __forceinline__ uint32_t full(int s) const { return base + 8 * s; }
  __device__ __forceinline__ uint32_t empty(int s) const { return base + 64 + 8 * s; }
  __device__ __forceinline__ uint32_t xfull(int w) const { return base + 128 + 8 * w; }
  __device__ __forceinline__ uint32_t xempty(int w) const { return base + 160 + 8 * w; }
};

// --- the consumer's page ------------------------------------------------------------------------

// Score k-step j (0..17) of the CTA's channels: V steps 0..15 in four 128-byte-swizzled chunks,
// RoPE steps 16, 17 in the 64-byte-swizzled half chunk.
template <int kFirst>
__device__ __forceinline__ void score_chunk(float (&acc)[32], uint32_t sQ, uint32_t stage) {
  wgmma_fence();
#pragma unroll
  for (int i = 0; i < 9; ++i) {
    const int j = kFirst + i;
    if (j < 16) {
      const uint32_t off = j / 4 * kChunk + j % 4 * 32;
      Wgmma<T, 64, 0, 0>::mma(acc, desc_sw128(sQ + off), desc_sw128(stage + off), i != 0);
    } else {
      const uint32_t off = 4 * kChunk + (j - 16) * 32;
      Wgmma<T, 64, 0, 0>::mma(acc, desc_sw64(sQ + off), desc_sw64(stage + off), i != 0);
    }
  }
  wgmma_commit();
}

// This thread's 32 partial scores into the same thread's slots of the peer's buffer (st.async).
__device__ __forceinline__ void send_partial(const float (&s)[32], uint32_t peer_xbuf, int t, uint32_t peer_xfull) {
#pragma unroll
  for (int v = 0; v < 8; ++v) {
    st_async_f32x4(peer_xbuf + (v * 128 + t) * 16, s[4 * v], s[4 * v + 1], s[4 * v + 2], s[4 * v + 3], peer_xfull);
  }
}

// s += the peer's partial, rank 0's partial first in both CTAs: the same bits on both sides.
__device__ __forceinline__ void add_peer_partial(float (&s)[32], uint32_t my_xbuf, int t, uint32_t rank) {
#pragma unroll
  for (int v = 0; v < 8; ++v) {
    const float4 x = ld_shared_f32x4(my_xbuf + (v * 128 + t) * 16);
    if (rank == 0) {
      s[4 * v] += x.x, s[4 * v + 1] += x.y, s[4 * v + 2] += x.z, s[4 * v + 3] += x.w;
    } else {
      s[4 * v] = x.x + s[4 * v], s[4 * v + 1] = x.y + s[4 * v + 1];
      s[4 * v + 2] = x.z + s[4 * v + 2], s[4 * v + 3] = x.w + s[4 * v + 3];
    }
  }
}

// A consumer thread's place, and the exchange buffer and barriers of its consumer and of the same
// consumer in the other CTA.
struct Peer {
  int t, w, lane;
  uint32_t sQ, my_xbuf, peer_xbuf, peer_xfull, peer_xempty;
};

__device__ __forceinline__ Peer peer_of(uint32_t sbase, const Bars& bars, uint32_t rank) {
  Peer x;
  x.t = threadIdx.x % 128;
  x.w = threadIdx.x / 128;
  x.lane = x.t % 32;
  x.sQ = sbase + kQOff;
  x.my_xbuf = sbase + kXbuf + x.w * kXbufBytes;
  x.peer_xbuf = peer_addr(x.my_xbuf, rank ^ 1);
  x.peer_xfull = peer_addr(bars.xfull(x.w), rank ^ 1);
  x.peer_xempty = peer_addr(bars.xempty(x.w), rank ^ 1);
  return x;
}

// Waits for the peer's partial of this consumer's page k, adds it, and tells the peer its buffer
// is free again; mark(3) / mark(4) end the wait and the rest (phase clocks).
template <typename M>
__device__ __forceinline__ void receive_partial(float (&s)[32], const Peer& pr, uint32_t xfull, int k, uint32_t rank,
                                                M&& mark) {
  mbar_wait_cluster(xfull, k & 1);
  mark(3);
  add_peer_partial(s, pr.my_xbuf, pr.t, rank);
  __syncwarp();
  if (pr.lane == 0) mbar_arrive_remote(pr.peer_xempty);
  mark(4);
}

// The fast-path softmax and its raise vote over the consumer's 128 threads.
__device__ __forceinline__ void softmax_and_vote(float (&s)[32], RowState& st, float sl2, int w) {
  const bool raise = softmax_fast(s, st, sl2);
  if (named_barrier_sync_or(1 + w, 128, raise)) st.m[0] += 1.f;   // never taken with this data
}

enum Mode : int { kResident, kLoads, kPairs, kLoadsNoExchange, kPairsNoExchange, kResidentNoExchange };
__host__ __device__ constexpr bool has_loads(int m) { return m != kResident && m != kResidentNoExchange; }
__host__ __device__ constexpr bool has_exchange(int m) {
  return m == kResident || m == kLoads || m == kPairs;
}
__host__ __device__ constexpr bool shares_pages(int m) { return m == kPairs || m == kPairsNoExchange; }

// Consumer w's pages n = 2k + w, k = k0 .. k0 + iters - 1; stage n % kStages.
// Phase clocks of a consumer's pages (thread 0 of each consumer, kClocks builds only): where its
// chain goes. 0: waiting for the page; 1: scores issued to completed; 2: waiting until our partial
// may be sent, and sending it; 3: waiting for the peer's; 4: adding it; 5: softmax and its
// barrier; 6: P @ V issued to completed.
constexpr int kPhases = 7;
struct Clocks {
  unsigned long long acc[kPhases];
  unsigned long long last;
  __device__ __forceinline__ void start() { last = clock64(); }
  __device__ __forceinline__ void mark(int p) {
    const unsigned long long now = clock64();
    acc[p] += now - last;
    last = now;
  }
};

// kOrdered: the consumers take turns issuing their scores (named barriers 4 and 5), so that one
// scores while the other exchanges and exponentiates, instead of both scoring at once.
// kStores: the partial goes out as plain remote stores, a cluster fence per thread and one
// arrival per warp, instead of st.async with a transaction count per 16 bytes.
// kBulk: the partial is written to a local buffer (in the fourth stage's room, so three stages
// remain) and one thread sends it with a single bulk copy.
// A phase's end (kClocks builds only); kClockStart starts the clocks of a run.
constexpr int kClockStart = -1;
template <bool kClocks>
__device__ __forceinline__ void clock_mark(Clocks* clk, int p) {
  if constexpr (kClocks) {
    if (p == kClockStart) {
      clk->start();
    } else {
      clk->mark(p);
    }
  }
}

template <int kMode, bool kClocks = false, bool kOrdered = false, bool kStores = false, bool kBulk = false>
__device__ __forceinline__ float run_consumer(uint32_t sbase, const Bars& bars, int k0, int iters, float sl2,
                                              uint32_t rank, Clocks* clk = nullptr) {
  auto mark = [&](int p) { clock_mark<kClocks>(clk, p); };
  mark(kClockStart);
  const Peer pr = peer_of(sbase, bars, rank);
  const int t = pr.t, w = pr.w, lane = pr.lane;
  float o[128] = {};
  RowState st{};
  for (int k = k0; k < k0 + iters; ++k) {
    const int n = 2 * k + w;
    constexpr int kRing = kBulk ? 3 : kStages;
    const uint32_t stage = sbase + kStage0 + (n % kRing) * kHalf;
    if constexpr (has_loads(kMode)) mbar_wait(bars.full(n % kRing), (n / kRing) & 1);
    mark(0);
    float s[32], part[32];
    if constexpr (kOrdered) {
      if (w == 1 || k > 0) named_barrier_sync(4 + w, 256);
    }
    score_chunk<0>(s, pr.sQ, stage);
    score_chunk<9>(part, pr.sQ, stage);
    if constexpr (kOrdered) named_barrier_arrive(4 + (1 - w), 256);
    wgmma_wait<0>();
    mark(1);
    fence_registers(s);
    fence_registers(part);
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] += part[i];
    if constexpr (has_exchange(kMode)) {
      if (!kStores && t == 0) mbar_arrive_expect_tx(bars.xfull(w), kXbufBytes);
      if (k > 0) mbar_wait(bars.xempty(w), (k - 1) & 1);
      if constexpr (kBulk) {
        const uint32_t send = sbase + kStage0 + 3 * kHalf + w * kXbufBytes;
#pragma unroll
        for (int v = 0; v < 8; ++v) {
          st_shared_f32x4(send + (v * 128 + t) * 16, s[4 * v], s[4 * v + 1], s[4 * v + 2], s[4 * v + 3]);
        }
        fence_proxy_async_smem();
        named_barrier_sync(6 + w, 128);
        if (t == 0) bulk_to_peer(pr.peer_xbuf, send, kXbufBytes, pr.peer_xfull);
      } else if constexpr (kStores) {
#pragma unroll
        for (int v = 0; v < 8; ++v) {
          st_cluster_f32x4(pr.peer_xbuf + (v * 128 + t) * 16, s[4 * v], s[4 * v + 1], s[4 * v + 2], s[4 * v + 3]);
        }
        fence_cluster();
        __syncwarp();
        if (lane == 0) mbar_arrive_remote(pr.peer_xfull);
      } else {
        send_partial(s, pr.peer_xbuf, t, pr.peer_xfull);
      }
      mark(2);
      receive_partial(s, pr, bars.xfull(w), k, rank, mark);
    }
    softmax_and_vote(s, st, sl2, w);
    mark(5);
    uint32_t hi[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) hi[i] = HalfOps<T>::pack(s[2 * i], s[2 * i + 1]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      WgmmaRs<T, 256>::mma(o, hi[4 * kk], hi[4 * kk + 1], hi[4 * kk + 2], hi[4 * kk + 3], vdesc(stage, kk), 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    mark(6);
    if constexpr (has_loads(kMode)) {
      if (lane == 0) mbar_arrive(bars.empty(n % kRing));
    }
  }
  fence_registers(o);
  return sink_of(o, st);
}

// The same page sequence, software-pipelined: the next page's first score chunk is issued before
// this page's partial comes back from the peer, so the exchange runs under it (and under the other
// consumer's MMAs); its second chunk goes once this page's P is packed. Consumers get 240 registers
// (O, this page's scores and the next page's accumulators); it still spills ~100 B.
template <int kMode, bool kClocks, bool kOrdered>
__device__ __forceinline__ float run_consumer_pipelined(uint32_t sbase, const Bars& bars, int k0, int iters, float sl2,
                                                        uint32_t rank, Clocks* clk = nullptr) {
  auto mark = [&](int p) { clock_mark<kClocks>(clk, p); };
  mark(kClockStart);
  const Peer pr = peer_of(sbase, bars, rank);
  const int t = pr.t, w = pr.w, lane = pr.lane;
  float o[128] = {};
  RowState st{};
  auto stage_of = [&](int k) { return sbase + kStage0 + ((2 * k + w) % kStages) * kHalf; };
  // `real`: false on the last page, where the MMAs rescore the current page and go unused (an MMA
  // issued under a condition makes ptxas serialize every wgmma: C7514).
  auto issue_first_chunk = [&](int k, float (&a)[32], bool real) {
    const int n = 2 * k + w;
    if (has_loads(kMode) && real) mbar_wait(bars.full(n % kStages), (n / kStages) & 1);
    if (kOrdered && real) {
      if (w == 1 || k > 0) named_barrier_sync(4 + w, 256);
    }
    score_chunk<0>(a, pr.sQ, stage_of(k));
  };
  auto issue_second_chunk = [&](int k, float (&b)[32], bool real) {
    score_chunk<9>(b, pr.sQ, stage_of(k));
    if (kOrdered && real) named_barrier_arrive(4 + (1 - w), 256);
  };
  auto release = [&](int k) {
    if constexpr (has_loads(kMode)) {
      if (lane == 0) mbar_arrive(bars.empty((2 * k + w) % kStages));
    }
  };
  float s[32], part[32];
  issue_first_chunk(k0, s, true);
  issue_second_chunk(k0, part, true);
  wgmma_wait<0>();
  fence_registers(s);
  fence_registers(part);
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] += part[i];
  for (int k = k0; k < k0 + iters; ++k) {
    mark(0);
    // s: this CTA's partial scores of page k; P @ V of page k - 1 may still run.
    if (t == 0) mbar_arrive_expect_tx(bars.xfull(w), kXbufBytes);
    if (k > 0) mbar_wait(bars.xempty(w), (k - 1) & 1);
    send_partial(s, pr.peer_xbuf, t, pr.peer_xfull);
    mark(2);
    wgmma_wait<0>();
    if (k > k0) release(k - 1);
    const bool more = k + 1 < k0 + iters;
    float s2[32];
    // The next page's first score chunk goes now, its second once this page's P is packed: both
    // accumulators at once next to this page's scores would not fit.
    const int kn = more ? k + 1 : k;
    issue_first_chunk(kn, s2, more);
    mark(1);
    receive_partial(s, pr, bars.xfull(w), k, rank, mark);
    softmax_and_vote(s, st, sl2, w);
    uint32_t hi[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) hi[i] = HalfOps<T>::pack(s[2 * i], s[2 * i + 1]);
    mark(5);
    issue_second_chunk(kn, part, more);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      WgmmaRs<T, 256>::mma(o, hi[4 * kk], hi[4 * kk + 1], hi[4 * kk + 2], hi[4 * kk + 3], vdesc(stage_of(k), kk), 1);
    }
    wgmma_commit();
    wgmma_wait<1>();   // the next page's score chunks (issued before this P @ V)
    fence_registers(s2);
    fence_registers(part);
#pragma unroll
    for (int i = 0; i < 32; ++i) s[i] = s2[i] + part[i];
    mark(6);
  }
  wgmma_wait<0>();
  release(k0 + iters - 1);
  fence_registers(o);
  return sink_of(o, st);
}

// The exchange alone, no MMAs: kVecs 16-byte vectors per thread (kVecs * 2 KiB per consumer)
// sent to the peer with st.async and the peer's read back, as in run_consumer; both consumers at
// once. Prices the round trip against its size.
template <int kVecs>
__device__ __forceinline__ float run_exchange_only(uint32_t sbase, const Bars& bars, int k0, int iters, uint32_t rank) {
  const Peer pr = peer_of(sbase, bars, rank);
  const int t = pr.t, w = pr.w, lane = pr.lane;
  float s[4 * kVecs];
#pragma unroll
  for (int i = 0; i < 4 * kVecs; ++i) s[i] = float(i + t);
  for (int k = k0; k < k0 + iters; ++k) {
    if (t == 0) mbar_arrive_expect_tx(bars.xfull(w), kVecs * 2048);
    if (k > 0) mbar_wait(bars.xempty(w), (k - 1) & 1);
#pragma unroll
    for (int v = 0; v < kVecs; ++v) {
      st_async_f32x4(pr.peer_xbuf + (v * 128 + t) * 16, s[4 * v], s[4 * v + 1], s[4 * v + 2], s[4 * v + 3], pr.peer_xfull);
    }
    mbar_wait_cluster(bars.xfull(w), k & 1);
#pragma unroll
    for (int v = 0; v < kVecs; ++v) {
      const float4 x = ld_shared_f32x4(pr.my_xbuf + (v * 128 + t) * 16);
      s[4 * v] += x.x, s[4 * v + 1] += x.y, s[4 * v + 2] += x.z, s[4 * v + 3] += x.w;
    }
    __syncwarp();
    if (lane == 0) mbar_arrive_remote(pr.peer_xempty);
  }
  float sink = 0.f;
#pragma unroll
  for (int i = 0; i < 4 * kVecs; ++i) sink += s[i];
  return sink;
}

// Pages n = 0 .. pages - 1 of this CTA's stream into stage n % kStages: its half of each page.
template <int kRing>
__device__ __forceinline__ void produce(const Bars& bars, uint32_t sbase, int pages, const uint8_t* src,
                                        size_t src_pages, size_t first_page, uint32_t rank) {
  for (int n = 0; n < pages; ++n) {
    const int s = n % kRing;
    if (n >= kRing) mbar_wait(bars.empty(s), (n / kRing - 1) & 1);
    mbar_arrive_expect_tx(bars.full(s), kHalf);
    const uint8_t* page = src + ((first_page + size_t(n)) % src_pages) * kPageBytes + rank * kHalf;
    const uint32_t dst = sbase + kStage0 + s * kHalf;
#pragma unroll 1
    for (int ch = 0; ch < 4; ++ch) bulk_load(dst + ch * kChunk, page + ch * kChunk, kChunk, bars.full(s));
    bulk_load(dst + 4 * kChunk, page + 4 * kChunk, kRopeHalf, bars.full(s));
  }
}

template <int kMode, bool kClocks = false, bool kOrdered = false, bool kStores = false, bool kBulk = false,
          bool kPipelined = false, int kExchangeOnlyVecs = 0>
__global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(384, 1)
    split_pair_probe_kernel(int iters, unsigned long long* cycles, unsigned long long* ns, float* sink,
                            const uint8_t* src, size_t src_pages, unsigned long long* phases) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t rank = cluster_rank();
  const Bars bars{sbase + kBars};
  // Small values: scores near zero, so no reference maximum moves (the fast path throughout). The
  // global pages hold the byte 0x3c (bf16 0.0115) for the same reason.
  for (uint32_t i = threadIdx.x; i < kBars / 4; i += blockDim.x) {
    reinterpret_cast<uint32_t*>(smem)[i] = 0x3c003c00u ^ (i * 2654435761u & 0x007f007fu);
  }
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bars.full(s), 1);
      mbar_init(bars.empty(s), 4);   // the consuming warpgroup's warps
    }
    for (int w = 0; w < 2; ++w) {
      mbar_init(bars.xfull(w), kStores ? 4 : 1);   // the peer's warps, or our expect_tx plus its st.async bytes
      mbar_init(bars.xempty(w), 4);   // the peer consumer's warps, once they have read our partial
    }
    fence_barrier_init();
  }
  fence_proxy_async_smem();
  __syncthreads();
  cluster_sync_all();   // the peer's barriers exist before anything reaches them
  const int wg = threadIdx.x / 128;
  constexpr int kWarm = 4;   // pages per consumer before the timed run
  float v = 0.f;
  if (wg == 2) {
    if constexpr (kPipelined) {
      regs_decrease<24>();
    } else {
      regs_decrease<40>();
    }
    if constexpr (has_loads(kMode)) {
      if (threadIdx.x == 256) {
        const int pair = blockIdx.x / 2;
        const int stream = shares_pages(kMode) ? pair / 2 : pair;
        const int pages = 2 * (kWarm + iters);
        produce<kBulk ? 3 : kStages>(bars, sbase, pages, src, src_pages, size_t(stream) * (pages + 8), rank);
      }
    }
  } else {
    if constexpr (kPipelined) {
      regs_increase<240>();
    } else {
      regs_increase<232>();
    }
    const float sl2 = 1e-6f;
    if constexpr (kExchangeOnlyVecs > 0) {
      (void)run_exchange_only<kExchangeOnlyVecs>(sbase, bars, 0, kWarm, rank);
    } else if constexpr (kPipelined) {
      (void)run_consumer_pipelined<kMode, false, kOrdered>(sbase, bars, 0, kWarm, sl2, rank);
    } else {
      (void)run_consumer<kMode, false, kOrdered, kStores, kBulk>(sbase, bars, 0, kWarm, sl2, rank);
    }
    named_barrier_sync(3, 256);
    const unsigned long long t0 = clock64(), n0 = global_ns();
    Clocks clk{};
    if constexpr (kExchangeOnlyVecs > 0) {
      v = run_exchange_only<kExchangeOnlyVecs>(sbase, bars, kWarm, iters, rank);
    } else if constexpr (kPipelined) {
      v = run_consumer_pipelined<kMode, kClocks, kOrdered>(sbase, bars, kWarm, iters, sl2, rank, &clk);
    } else {
      v = run_consumer<kMode, kClocks, kOrdered, kStores, kBulk>(sbase, bars, kWarm, iters, sl2, rank, &clk);
    }
    const unsigned long long t1 = clock64(), n1 = global_ns();
    if (kOrdered && wg == 0) named_barrier_sync(4, 256);   // consumer 1's last turn signal
    if (kClocks && threadIdx.x % 128 == 0) {
      for (int p = 0; p < kPhases; ++p) phases[(blockIdx.x * 2 + wg) * kPhases + p] = clk.acc[p];
    }
    if (threadIdx.x % 128 == 0) {
      cycles[blockIdx.x * 2 + wg] = t1 - t0;
      ns[blockIdx.x * 2 + wg] = n1 - n0;
    }
  }
  // Neither CTA leaves while the other may still write to its shared memory or barriers.
  __syncwarp();
  cluster_sync_all();
  if (v == 12345.f) sink[threadIdx.x] = v;
}

int run_probe(int iters) {
  struct Case {
    const char* name;
    void (*kernel)(int, unsigned long long*, unsigned long long*, float*, const uint8_t*, size_t, unsigned long long*);
    bool unique_pages;
    bool clocks = false;   // every pair reads its own pages (bandwidth column counts them)
  } cases[] = {
      {"st.async: pages resident", split_pair_probe_kernel<kResident>, false},
      {"no exchange: pages resident", split_pair_probe_kernel<kResidentNoExchange>, false},
      {"no exchange, ordered: pages resident", split_pair_probe_kernel<kResidentNoExchange, false, true>, false},
      {"st.async, ordered: pages resident", split_pair_probe_kernel<kResident, false, true>, false},
      {"st.async, ordered: pages from HBM", split_pair_probe_kernel<kLoads, false, true>, true},
      {"no exchange, ordered: pages from HBM", split_pair_probe_kernel<kLoadsNoExchange, false, true>, true},
      {"st.async, ordered: two pairs on the same pages", split_pair_probe_kernel<kPairs, false, true>, false},
      {"no exchange, ordered: two pairs on the same pages", split_pair_probe_kernel<kPairsNoExchange, false, true>, false},
      {"bulk copy, ordered: pages resident", split_pair_probe_kernel<kResident, false, true, false, true>, false},
      {"remote stores + fence, ordered: pages resident", split_pair_probe_kernel<kResident, false, true, true>, false},
      {"pipelined, ordered: pages resident", split_pair_probe_kernel<kResident, false, true, false, false, true>, false},
      {"pipelined, ordered: two pairs on the same pages", split_pair_probe_kernel<kPairs, false, true, false, false, true>, false},
      {"clocks, ordered: pages resident", split_pair_probe_kernel<kResident, true, true>, false, true},
      {"clocks, ordered: two pairs on the same pages", split_pair_probe_kernel<kPairs, true, true>, false, true},
      {"exchange only, 16 KiB a consumer", split_pair_probe_kernel<kResident, false, false, false, false, false, 8>, false},
      {"exchange only, 8 KiB a consumer", split_pair_probe_kernel<kResident, false, false, false, false, false, 4>, false},
      {"exchange only, 4 KiB a consumer", split_pair_probe_kernel<kResident, false, false, false, false, false, 2>, false},
      {"exchange only, 2 KiB a consumer", split_pair_probe_kernel<kResident, false, false, false, false, false, 1>, false},
  };
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int ctas = sms & ~3;   // whole clusters, and whole pairs of clusters
  const size_t src_pages = (size_t(4) << 30) / kPageBytes;
  uint8_t* d_src = nullptr;
  BENCH_CUDA(cudaMalloc(&d_src, src_pages * kPageBytes));
  BENCH_CUDA(cudaMemset(d_src, 0x3c, src_pages * kPageBytes));
  unsigned long long *d_cycles = nullptr, *d_ns = nullptr;
  float* d_sink = nullptr;
  BENCH_CUDA(cudaMalloc(&d_cycles, sizeof(unsigned long long) * 2 * ctas));
  BENCH_CUDA(cudaMalloc(&d_ns, sizeof(unsigned long long) * 2 * ctas));
  BENCH_CUDA(cudaMalloc(&d_sink, sizeof(float) * 384));
  unsigned long long* d_phases = nullptr;
  BENCH_CUDA(cudaMalloc(&d_phases, sizeof(unsigned long long) * 2 * ctas * kPhases));
  unsigned long long* hp = new unsigned long long[2 * ctas * kPhases];
  unsigned long long* h = new unsigned long long[2 * ctas];
  unsigned long long* hn = new unsigned long long[2 * ctas];
  std::printf("CTAs: %d (clusters of 2), pages per consumer: %d\n\n", ctas, iters);
  std::printf("| schedule | SM-cycles per page (wg0) | (wg1) | tensor work per page | work / time | SM GHz | SM-ns per page | unique page bytes / time, GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    BENCH_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    c.kernel<<<ctas, 384, kSmemBytes>>>(iters, d_cycles, d_ns, d_sink, d_src, src_pages, d_phases);
    BENCH_CUDA(cudaGetLastError());
    BENCH_CUDA(cudaDeviceSynchronize());
    BENCH_CUDA(cudaMemcpy(h, d_cycles, sizeof(unsigned long long) * 2 * ctas, cudaMemcpyDeviceToHost));
    BENCH_CUDA(cudaMemcpy(hn, d_ns, sizeof(unsigned long long) * 2 * ctas, cudaMemcpyDeviceToHost));
    // Each consumer took `iters` pages, each page half of it on each CTA of the pair: a pair's
    // elapsed time over iters is the time of one page on two SMs, i.e. SM-cycles per page.
    double per[2] = {0, 0}, cyc = 0, nsec = 0;
    for (int b = 0; b < ctas; ++b) {
      for (int w = 0; w < 2; ++w) {
        per[w] += double(h[2 * b + w]) / double(iters) / ctas;
        cyc += double(h[2 * b + w]);
        nsec += double(hn[2 * b + w]);
      }
    }
    const double ghz = cyc / nsec, ns_page = nsec / (2.0 * ctas) / double(iters);
    const double work = 2176.0;   // scores 1,152 + P @ V (hi) 1,024 tensor cycles a page
    const double tmax = per[0] > per[1] ? per[0] : per[1];
    // Pages per second over the grid: ctas / 2 pairs, each finishing 2 pages per consumer period.
    const double pages_per_ns = (ctas / 2.0) * 2.0 * iters / (nsec / (2.0 * ctas));
    if (c.clocks) {
      BENCH_CUDA(cudaMemcpy(hp, d_phases, sizeof(unsigned long long) * 2 * ctas * kPhases, cudaMemcpyDeviceToHost));
      std::printf("| %s: cycles per page by phase (page wait, scores, send, peer wait, add, softmax, P @ V) |", c.name);
      for (int p = 0; p < kPhases; ++p) {
        double a = 0;
        for (int b = 0; b < 2 * ctas; ++b) a += double(hp[b * kPhases + p]);
        std::printf(" %.0f", a / (2.0 * ctas) / iters);
      }
      std::printf(" | total %.0f |\n", tmax);
      continue;
    }
    if (c.unique_pages) {
      std::printf("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f | %.0f |\n", c.name, per[0], per[1], work, work / tmax,
                  ghz, ns_page, pages_per_ns * kPageBytes);
    } else {
      std::printf("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f | - |\n", c.name, per[0], per[1], work, work / tmax,
                  ghz, ns_page);
    }
  }
  delete[] h;
  delete[] hn;
  delete[] hp;
  BENCH_CUDA(cudaFree(d_phases));
  BENCH_CUDA(cudaFree(d_src));
  BENCH_CUDA(cudaFree(d_cycles));
  BENCH_CUDA(cudaFree(d_ns));
  BENCH_CUDA(cudaFree(d_sink));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 400;   // pages per consumer
  try {
    return run_probe(iters);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashmla_split_pair_probe: %s\n", e.what());
    return 1;
  }
}
