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
// 16- and 32-row tiles, transposed products (decode_narrow_kernel.cuh).
void launch_decode_narrow16_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow32_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow16_fp16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_narrow32_fp16(const DecodeParams& params, cudaStream_t stream);

// TMA descriptor of k_cache for the decode kernel; throws flashmla::Error if it cannot be encoded.
CUtensorMap make_kv_tensor_map(const DecodeParams& params);

// Merges split partials into out/lse for every request with more than one split.
void launch_combine(const DecodeParams& params, cudaStream_t stream);

}  // namespace flashmla::sm90
