// Launchers shared between the SM90 translation units (each decode kernel family and dtype is
// its own .cu so the heavy instantiations compile in parallel). Chosen by launch_decode alone.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "common/decode_params.h"

namespace flashmla::sm90 {

// 64-row tiles (decode_wgmma_kernel.cuh).
void launch_decode_wide_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_wide_fp16(const DecodeParams& params, cudaStream_t stream);
// 64-row tiles, seesaw schedule (decode_seesaw_kernel.cuh; DecodeParams::seesaw).
void launch_decode_seesaw_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_seesaw_fp16(const DecodeParams& params, cudaStream_t stream);
// 16- and 32-row tiles, transposed products (decode_narrow_kernel.cuh).
void launch_decode_narrow16_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow32_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow16_fp16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow32_fp16(const DecodeParams& params, cudaStream_t stream);

// The decode kernels' TMA descriptors, one kernel parameter. kv: k_cache as 64-channel x 64-token
// boxes. q: q as 64-channel x q_rows-row boxes (one per chunk of a Q tile), valid only when
// q_by_tma; otherwise the kernel loads Q tiles with cp.async.
struct DecodeMaps {
  CUtensorMap kv;
  CUtensorMap q;
  int q_by_tma;
  // The seesaw's view of k_cache: boxes of two 64-channel chunks x 64 tokens, chunk-major in
  // shared memory (the same layout as two of kv's boxes side by side). Encoded only for calls that
  // run the seesaw (64-row tiles, DecodeParams::seesaw); zeros otherwise.
  CUtensorMap kv_pairs;
};

// Throws flashmla::Error if k_cache cannot be encoded. q_rows: the kernel's rows per Q tile.
DecodeMaps make_decode_maps(const DecodeParams& params, int q_rows);

// A 4-D map of 16-bit elements (strides in bytes, dims 1-3), stored with the 128-byte swizzle the
// kernels' tile layouts expect; CUDA_ERROR_NOT_FOUND when the driver lacks cuTensorMapEncodeTiled.
CUresult encode_swizzled_4d(CUtensorMap& map, DType dtype, const void* base, const cuuint64_t (&dims)[4],
                            const cuuint64_t (&strides)[3], const cuuint32_t (&box)[4]);

// Merges split partials into out/lse for every request with more than one split.
void launch_combine(const DecodeParams& params, cudaStream_t stream);

}  // namespace flashmla::sm90
