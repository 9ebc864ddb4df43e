// Per-dtype launchers shared between the SM90 translation units (each dtype of the decode
// kernel is its own .cu so the two heavy instantiations compile in parallel).
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "common/decode_params.h"

namespace flashmla::sm90 {

void launch_decode_bf16(const DecodeParams& params, cudaStream_t stream);
void launch_decode_fp16(const DecodeParams& params, cudaStream_t stream);

// TMA descriptor of k_cache for the decode kernel; throws flashmla::Error if it cannot be encoded.
CUtensorMap make_kv_tensor_map(const DecodeParams& params);

// Merges split partials into out/lse for every request with more than one split.
void launch_combine(const DecodeParams& params, cudaStream_t stream);

}  // namespace flashmla::sm90
