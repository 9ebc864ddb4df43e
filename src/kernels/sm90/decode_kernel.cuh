// Split-KV MLA decode kernel (mma.sync version), templated on the 16-bit dtype.
//
// Grid (num_sm_parts, num_row_tiles, num_heads_kv), 256 threads, one CTA per SM. A CTA owns 64
// query rows m = token * q_heads_per_kv + head_in_group of one kv head and walks the KV tiles
// its metadata row assigns (common/split_plan.h). Warp w computes S for rows 16*(w%4)..+16 and
// keys 32*(w/4)..+32 of each 64-key tile, the two key halves agree on the row max through shared
// memory, P goes through shared memory, and warp w accumulates O for the same 16 rows and
// channels 256*(w/4)..+256. For bf16, P enters the P@V MMA as hi + lo bf16 terms (lo lives in
// the K stage's RoPE chunk, dead after S), because one bf16 rounding of P misses SPEC's
// tolerance on short rows. Unsplit requests write out/lse; splits write float partials that
// combine_kernel merges.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>

#include "common/decode_params.h"
#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/ptx.cuh"
#include "kernels/sm90/smem_layout.cuh"

namespace flashmla::sm90 {

inline constexpr int kDecodeThreads = 256;
inline constexpr int kMaxDevices = 64;   // devices whose smem opt-in is remembered

// Issues the cp.asyncs of one 64 x 576 tile: 4608 16-byte units, 18 per thread, consecutive
// threads on consecutive units of a row so each warp reads contiguous global memory.
// row_src(row) returns the row's global address, or nullptr to zero-fill the row.
// A zero-filled row still needs a legal source address: `dummy` (never read).
template <typename RowSrc>
__device__ __forceinline__ void load_tile_async(uint32_t tile_base, int tid, const char* dummy, RowSrc row_src) {
#pragma unroll
  for (int k = 0; k < kTileRows * kUnitsPerRow / kDecodeThreads; ++k) {
    const int u = tid + k * kDecodeThreads;
    const int row = u / kUnitsPerRow;
    const int col = (u % kUnitsPerRow) * 8;
    const char* src = row_src(row);
    const uint32_t dst = tile_base + swizzled_offset(row, col);
    if (src != nullptr) {
      cp_async_16(dst, src + col * 2, 16);
    } else {
      cp_async_16(dst, dummy, 0);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kDecodeThreads, 1) mla_decode_kernel(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQ = sbase + DecodeSmem::kQ;
  const uint32_t sP = sbase + DecodeSmem::kP;
  float* s_row_max = reinterpret_cast<float*>(smem + DecodeSmem::kRowMax);
  float* s_row_sum = reinterpret_cast<float*>(smem + DecodeSmem::kRowSum);

  const int part = blockIdx.x;
  const int row_tile = blockIdx.y;
  const int kv_head = blockIdx.z;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;        // accumulator row within the 8-row group
  const int tq = lane & 3;        // accumulator column pair
  const int row0 = 16 * (warp & 3);
  const int key_half = warp >> 2;
  const int key0 = 32 * key_half;
  const int chan0 = 256 * key_half;
  const int m_base = row_tile * kTileRows;

  // ldmatrix x4 lane roles: which 8-row block and which 8-column half this lane addresses.
  const int lm_row = lane & 7;
  const int lm_sel = lane >> 3;

  const int32_t* fields = p.tile_metadata + static_cast<int64_t>(part) * kMetadataFields;
  const int req_begin = fields[plan::kReqBegin];
  const int req_end = fields[plan::kReqEnd];
  const long long max_keys = static_cast<long long>(p.max_blocks_per_seq) * plan::kBlockN;

  const char* q_base = static_cast<const char*>(p.q);
  const char* k_base = static_cast<const char*>(p.k_cache);

  for (int r = req_begin; r <= req_end; ++r) {
    int seqlen = p.cache_seqlens[r];
    if (seqlen < 0) seqlen = 0;
    if (seqlen > max_keys) seqlen = static_cast<int>(max_keys);
    const int nblk = plan::num_kv_blocks(seqlen);
    const plan::PartWork w = plan::part_work(fields, r, nblk);
    if (!w.active) continue;   // uniform across the CTA: depends only on the metadata row
    const int blk_begin = w.blk_begin;
    const int blk_end = w.blk_end < nblk ? w.blk_end : nblk;
    const int32_t* table = p.block_table + static_cast<int64_t>(r) * p.block_table_stride;

    // The previous request's last tile and epilogue must be done before sQ/sK are refilled.
    __syncthreads();
    const bool has_tiles = blk_begin < blk_end;
    if (has_tiles) {
      load_tile_async(sQ, tid, q_base, [&](int row) -> const char* {
        const int m = m_base + row;
        if (m >= p.rows_per_kv) return nullptr;
        const int i = m / p.q_heads_per_kv;
        const int h = kv_head * p.q_heads_per_kv + (m - i * p.q_heads_per_kv);
        return q_base + 2 * (r * p.q_stride_b + i * p.q_stride_s + h * p.q_stride_h);
      });
    }
    auto load_kv = [&](int blk, uint32_t stage_base) {
      const int page = table[blk];
      const bool page_ok = page >= 0 && page < p.num_blocks;
      const int valid_rows = seqlen - blk * plan::kBlockN;   // rows past seqlen hold garbage
      const char* page_base =
          k_base + 2 * (static_cast<int64_t>(page_ok ? page : 0) * p.k_stride_block + kv_head * p.k_stride_head);
      load_tile_async(stage_base, tid, k_base, [&](int row) -> const char* {
        if (!page_ok || row >= valid_rows) return nullptr;
        return page_base + 2 * (row * p.k_stride_token);
      });
    };
    if (has_tiles) load_kv(blk_begin, sbase + DecodeSmem::kK0);
    cp_async_commit();

    // Per-thread rows: row0 + g and row0 + g + 8. Keys at or past lim are invisible.
    int lim[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int m = m_base + row0 + g + 8 * e;
      const int i = m / p.q_heads_per_kv;
      int l = seqlen;
      if (p.causal) {
        const int c = seqlen - p.seqlen_q + i + 1;
        l = c < l ? c : l;
      }
      lim[e] = l;
    }

    float row_max[2] = {-INFINITY, -INFINITY};   // running max of raw scores
    float row_sum[2] = {0.f, 0.f};               // this thread's share of the running sum
    float o[32][4];
#pragma unroll
    for (int n = 0; n < 32; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] = 0.f;
    }

    for (int blk = blk_begin; blk < blk_end; ++blk) {
      const uint32_t sK = sbase + (((blk - blk_begin) & 1) ? DecodeSmem::kK1 : DecodeSmem::kK0);
      cp_async_wait_all();
      __syncthreads();   // tile blk visible; every warp has left the previous tile's P@V
      if (blk + 1 < blk_end) {
        load_kv(blk + 1, sbase + (((blk + 1 - blk_begin) & 1) ? DecodeSmem::kK1 : DecodeSmem::kK0));
        cp_async_commit();
      }

      // S = Q K^T for 16 rows x 32 keys, k over 576.
      float s[4][4];
#pragma unroll
      for (int n = 0; n < 4; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = 0.f;
      }
#pragma unroll 4
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, sQ + swizzled_offset(row0 + (lm_sel & 1) * 8 + lm_row, kk * 16 + (lm_sel >> 1) * 8));
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          uint32_t b[4];
          ldmatrix_x4(b, sK + swizzled_offset(key0 + hf * 16 + (lm_sel >> 1) * 8 + lm_row,
                                              kk * 16 + (lm_sel & 1) * 8));
          // Each 16-channel step goes into a fresh accumulator and is then added with a
          // round-to-nearest FADD: the tensor core's own accumulation truncates, and over 36 steps
          // that bias reached 3e-6 in the lse of one-key rows (SPEC allows 1e-6).
          float part0[4] = {0.f, 0.f, 0.f, 0.f};
          float part1[4] = {0.f, 0.f, 0.f, 0.f};
          HalfOps<T>::mma(part0, a, b[0], b[1]);
          HalfOps<T>::mma(part1, a, b[2], b[3]);
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[2 * hf][e] += part0[e];
            s[2 * hf + 1][e] += part1[e];
          }
        }
      }

      // Mask, then this warp's max over its 32 keys for each of its rows.
      float tile_max[2] = {-INFINITY, -INFINITY};
      const int key_base = blk * plan::kBlockN + key0 + 2 * tq;
#pragma unroll
      for (int n = 0; n < 4; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = key_base + 8 * n + (e & 1);
          if (key >= lim[e >> 1]) s[n][e] = -INFINITY;
          tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[n][e]);
        }
      }
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], 1));
        tile_max[e] = fmaxf(tile_max[e], __shfl_xor_sync(0xffffffffu, tile_max[e], 2));
      }
      if (tq == 0) {
        s_row_max[key_half * 64 + row0 + g] = tile_max[0];
        s_row_max[key_half * 64 + row0 + g + 8] = tile_max[1];
      }
      __syncthreads();   // both key halves' maxima visible

      // Both warps of a row pair see the same maxima, so they keep identical running maxima.
      float rescale[2];
      float base[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float other = s_row_max[(key_half ^ 1) * 64 + row0 + g + 8 * e];
        const float m_new = fmaxf(row_max[e], fmaxf(tile_max[e], other));
        // A row with no visible key so far keeps max -inf: exponentiate against 0 (all
        // terms are exp2(-inf) = 0) and leave the (zero) accumulators alone.
        const bool empty = m_new == -INFINITY;
        rescale[e] = empty ? 1.f : exp2f((row_max[e] - m_new) * p.scale_log2);
        base[e] = empty ? 0.f : m_new * p.scale_log2;
        row_max[e] = m_new;
        row_sum[e] *= rescale[e];
      }
#pragma unroll
      for (int n = 0; n < 4; ++n) {
        float pv[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          pv[e] = exp2f(fmaf(s[n][e], p.scale_log2, -base[e >> 1]));
          row_sum[e >> 1] += pv[e];
        }
        const int col = key0 + 8 * n + 2 * tq;
        const uint32_t off0 = swizzled_offset(row0 + g, col);
        const uint32_t off1 = swizzled_offset(row0 + g + 8, col);
        st_shared_b32(sP + off0, HalfOps<T>::pack(pv[0], pv[1]));
        st_shared_b32(sP + off1, HalfOps<T>::pack(pv[2], pv[3]));
        if constexpr (HalfOps<T>::kSplitP) {
          // The residual goes to chunk 8 (RoPE channels) of this K stage, dead once S is done.
          const uint32_t sPlo = sK + 8 * kChunkBytes;
          st_shared_b32(sPlo + off0, HalfOps<T>::pack(pv[0] - HalfOps<T>::round_trip(pv[0]),
                                                      pv[1] - HalfOps<T>::round_trip(pv[1])));
          st_shared_b32(sPlo + off1, HalfOps<T>::pack(pv[2] - HalfOps<T>::round_trip(pv[2]),
                                                      pv[3] - HalfOps<T>::round_trip(pv[3])));
        }
      }
#pragma unroll
      for (int n = 0; n < 32; ++n) {
        o[n][0] *= rescale[0];
        o[n][1] *= rescale[0];
        o[n][2] *= rescale[1];
        o[n][3] *= rescale[1];
      }
      __syncthreads();   // P of both key halves visible (every warp is past S: chunk 8 of sK is free)

      // O[16 rows x 256 channels] += P[16 x 64] V[64 x 256]; V = first 512 channels of the tile.
#pragma unroll
      for (int ks = 0; ks < plan::kBlockN / 16; ++ks) {
        const uint32_t a_off = swizzled_offset(row0 + (lm_sel & 1) * 8 + lm_row, ks * 16 + (lm_sel >> 1) * 8);
        // hi and lo passes reuse one A fragment and reload V: holding both fragments across
        // the channel loop costs the 8 registers that keep the kernel spill-free.
#pragma unroll
        for (int pass = 0; pass < (HalfOps<T>::kSplitP ? 2 : 1); ++pass) {
          uint32_t a[4];
          ldmatrix_x4(a, (pass == 0 ? sP : sK + 8 * kChunkBytes) + a_off);
#pragma unroll
          for (int np = 0; np < 16; ++np) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, sK + swizzled_offset(ks * 16 + (lm_sel & 1) * 8 + lm_row,
                                                      chan0 + np * 16 + (lm_sel >> 1) * 8));
            HalfOps<T>::mma(o[2 * np], a, b[0], b[1]);
            HalfOps<T>::mma(o[2 * np + 1], a, b[2], b[3]);
          }
        }
      }
    }

    cp_async_wait_all();   // nothing may still be landing in shared memory when the next request refills it

    // Row sums: over the quad, then over the two key halves in a fixed order (both warps of a
    // pair get the same bits, and the result does not depend on warp timing).
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      row_sum[e] += __shfl_xor_sync(0xffffffffu, row_sum[e], 1);
      row_sum[e] += __shfl_xor_sync(0xffffffffu, row_sum[e], 2);
    }
    if (tq == 0) {
      s_row_sum[key_half * 64 + row0 + g] = row_sum[0];
      s_row_sum[key_half * 64 + row0 + g + 8] = row_sum[1];
    }
    __syncthreads();

    const int n_slots = p.num_splits[r + 1] - p.num_splits[r];
    const bool split = n_slots > 0;
    const int slot = p.num_splits[r] + w.split_idx;
    const bool slot_ok = w.split_idx < n_slots && slot >= 0 && slot < p.max_partial_slots;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int rl = row0 + g + 8 * e;
      const int m = m_base + rl;
      if (m >= p.rows_per_kv) continue;
      const float l = s_row_sum[rl] + s_row_sum[64 + rl];
      const bool empty = !(l > 0.f);
      const float inv = empty ? 0.f : 1.f / l;
      const float lse = empty ? (split ? -INFINITY : INFINITY) : row_max[e] * p.softmax_scale + logf(l);
      const int i = m / p.q_heads_per_kv;
      const int h = kv_head * p.q_heads_per_kv + (m - i * p.q_heads_per_kv);
      if (!split) {
        T* out = static_cast<T*>(p.out) + r * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h;
#pragma unroll
        for (int n = 0; n < 32; ++n) {
          const int c = chan0 + 8 * n + 2 * tq;
          *reinterpret_cast<uint32_t*>(out + c) = HalfOps<T>::pack(o[n][2 * e] * inv, o[n][2 * e + 1] * inv);
        }
        if (key_half == 0 && tq == 0) p.lse[r * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s] = lse;
      } else if (slot_ok) {
        const int64_t prow = (static_cast<int64_t>(slot) * p.num_heads_kv + kv_head) * p.rows_per_kv + m;
        float* po = p.partial_o + prow * kDimV;
#pragma unroll
        for (int n = 0; n < 32; ++n) {
          const int c = chan0 + 8 * n + 2 * tq;
          *reinterpret_cast<float2*>(po + c) = make_float2(o[n][2 * e] * inv, o[n][2 * e + 1] * inv);
        }
        if (key_half == 0 && tq == 0) p.partial_lse[prow] = lse;
      }
    }
  }
}

// Decode, then the combine of split partials, on one stream with no host synchronisation.
template <typename T>
void launch_decode_typed(const DecodeParams& params, cudaStream_t stream) {
  const dim3 grid(params.num_sm_parts, params.num_row_tiles, params.num_heads_kv);
  // Opting in to > 48 KiB of dynamic shared memory is per kernel and per device. Done once per
  // device, so the calls a serving engine captures into a CUDA graph (after warm-up) are launches only.
  static std::atomic<bool> configured[kMaxDevices] = {};
  int device = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  if (device >= kMaxDevices || !configured[device].load(std::memory_order_acquire)) {
    cuda_check(cudaFuncSetAttribute(mla_decode_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(DecodeSmem::kBytes)),
               "cudaFuncSetAttribute(mla_decode_kernel)");
    if (device < kMaxDevices) configured[device].store(true, std::memory_order_release);
  }
  mla_decode_kernel<T><<<grid, kDecodeThreads, DecodeSmem::kBytes, stream>>>(params);
  cuda_check(cudaGetLastError(), "mla_decode_kernel launch");
  if (params.num_sm_parts > 1) launch_combine(params, stream);
}

}  // namespace flashmla::sm90
