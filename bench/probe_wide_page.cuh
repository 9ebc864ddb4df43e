// The wide kernel's page as the page-loop probes (seesaw_probe.cu, split_roles_probe.cu) lay it
// out in shared memory, and the MMAs, P stores and page stream they build their schedules from:
// Q (64 rows) and two page buffers (64 keys), each nine 64-channel chunks of 128-byte swizzled
// rows, as TMA writes them for the decode kernel.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

#include "kernels/sm90/async_ptx.cuh"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/wgmma_ops.cuh"
#include "probe_page_loop.cuh"

namespace probe {

using namespace flashmla::sm90;
using T = __nv_bfloat16;

constexpr uint32_t kChunk = 8192;       // 64 rows x 64 channels, 128-byte swizzled rows
constexpr uint32_t kPage = 9 * kChunk;  // 64 rows (Q) or keys (a page) x 576 channels
constexpr uint32_t kQOff = 0, kPage0 = kPage, kPage1 = 2 * kPage;

__device__ __forceinline__ uint64_t kdesc(uint32_t addr) { return smem_desc_sw128(addr, 16, 1024); }
__device__ __forceinline__ uint64_t vdesc(uint32_t page, int half, int kk) {
  return smem_desc_sw128(page + 4 * half * kChunk + kk * 16 * 128, kChunk, 1024);
}

// Score k-step j (0..35) of a page: its byte offset in Q and in the page.
__device__ __forceinline__ uint32_t step_off(int j) { return j / 4 * kChunk + j % 4 * 32; }

// m64nN over `steps` k-steps starting at `first`, one group: A = Q, B = kN keys (a page, or a
// half page of the half-page seesaw), whose 64-channel chunks lie kN x 128 B apart.
template <int kSteps, int kN = 64>
__device__ __forceinline__ void score_chunk(float (&acc)[kN / 2], uint32_t sQ, uint32_t keys, int first) {
  const uint64_t q = kdesc(sQ), k = kdesc(keys);
  wgmma_fence();
#pragma unroll
  for (int i = 0; i < kSteps; ++i) {
    const int j = first + i;
    const uint32_t off = step_off(j);
    const uint32_t key_off = kN == 64 ? off : j / 4 * (kN * 128u) + j % 4 * 32;
    Wgmma<T, kN, 0, 0>::mma(acc, desc_add_at_use(q, off), desc_add_at_use(k, key_off), i != 0);
  }
  wgmma_commit();
}

// Waits until at most kPendingAfter MMA groups are in flight (those issued after chunk accumulator
// `acc`), then adds `acc` to the score with round-to-nearest FADDs.
template <int kPendingAfter, int N>
__device__ __forceinline__ void add_chunk(float (&s)[N], float (&acc)[N]) {
  wgmma_wait<kPendingAfter>();
  fence_registers(acc);
#pragma unroll
  for (int i = 0; i < N; ++i) s[i] += acc[i];
}

// A consumer's accumulator O (64 rows x its 256 channels) at the start of a run.
__device__ __forceinline__ void zero_o(float (&o)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.f;
}

template <int N>
__device__ __forceinline__ void pack(const float (&s)[N], uint32_t (&w)[N / 2]) {
#pragma unroll
  for (int i = 0; i < N / 2; ++i) w[i] = HalfOps<T>::pack(s[2 * i], s[2 * i + 1]);
}

// A thread's words of P (64 x 64 keys tile, or its 32-key half from col_unit0 = 4c) into the
// K-major swizzled tile at base: word 2*jn + e is row row0 + 8e, keys 8*jn + 2tq.. .
template <int kWords>
__device__ __forceinline__ void store_p(uint32_t base, const uint32_t (&w)[kWords], int row0, int col_unit0, int tq) {
  const uint32_t a = base + row0 * 128 + (((col_unit0 ^ (row0 & 7)) * 16) | (4 * tq));
#pragma unroll
  for (int jn = 0; jn < kWords / 2; ++jn) {
    st_shared_b32(a ^ (16 * jn), w[2 * jn]);
    st_shared_b32((a ^ (16 * jn)) + 8 * 128, w[2 * jn + 1]);
  }
}

// O (channels 256*half..) += P_regs (keys 16*kk0..) V, k-steps kk0..kk0+kSteps-1, one group.
template <int kSteps>
__device__ __forceinline__ void pv_regs(float (&o)[128], const uint32_t* w, uint32_t page, int half, int kk0) {
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < kSteps; ++k) {
    WgmmaRs<T, 256>::mma(o, w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3], vdesc(page, half, kk0 + k), 1);
  }
  wgmma_commit();
}

template <int kSteps>
__device__ __forceinline__ void pv_smem(float (&o)[128], uint32_t p, uint32_t page, int half, int kk0) {
  wgmma_fence();
#pragma unroll
  for (int k = 0; k < kSteps; ++k) {
    Wgmma<T, 256, 0, 1>::mma(o, kdesc(p + (kk0 + k) * 32), vdesc(page, half, kk0 + k), 1);
  }
  wgmma_commit();
}

// A CTA's page stream: fill k of buffer b is page first + 2k + b of the source (pairs: both CTAs of
// a pair have the same `first`).
struct PageStream {
  const uint8_t* src;
  size_t src_pages, first;
  int fills;   // pages each buffer takes in the whole run (the consumer-loaded schedules)
  const int* table = nullptr;   // a block table over the source's pages (seesaw_probe's kDutyTma)
  // The stream's position of fill `fill` of buffer `buf`, in the source's pages.
  __device__ __forceinline__ size_t index(int buf, int fill) const { return (first + 2 * size_t(fill) + buf) % src_pages; }
  // The source page there, through the block table if there is one.
  __device__ __forceinline__ int page_id(int buf, int fill) const {
    const int i = static_cast<int>(index(buf, fill));
    return table != nullptr ? table[i] : i;
  }
  __device__ __forceinline__ const uint8_t* page(int buf, int fill) const { return src + index(buf, fill) * kPage; }
};

// Fill k of buffer `buf` (at dst), counted on its full mbarrier. Without `load` the buffer is only
// signalled full: its pages stay resident, and a schedule keeps its ring's coupling without moving a
// byte.
__device__ __forceinline__ void fill_page(uint32_t full, uint32_t dst, int buf, int k, const PageStream& ps,
                                          bool load = true) {
  if (!load) {
    mbar_arrive(full);
    return;
  }
  mbar_arrive_expect_tx(full, kPage);
  const uint8_t* page = ps.page(buf, k);
#pragma unroll 1
  for (int ch = 0; ch < 9; ++ch) bulk_load(dst + ch * kChunk, page + ch * kChunk, kChunk, full);
}

// Fills buffer `buf` `fills` times behind its full / empty mbarriers; the first fill needs no free
// buffer.
__device__ __forceinline__ void produce_pages(uint32_t full, uint32_t empty, uint32_t dst, int buf, int fills,
                                              const PageStream& ps) {
  for (int k = 0; k < fills; ++k) {
    if (k > 0) mbar_wait(empty, (k - 1) & 1);
    fill_page(full, dst, buf, k, ps);
  }
}

}  // namespace probe
