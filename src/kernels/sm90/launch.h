// Entry points of the SM90 kernels, called only by the host dispatch (src/host/api.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include "common/decode_params.h"

namespace flashmla::sm90 {

// One CTA builds the split plan from cache_seqlens (see common/split_plan.h).
void launch_metadata(const MetadataParams& params, cudaStream_t stream);

// Split-KV decode over the plan, then (when num_sm_parts > 1) the combine of split partials.
void launch_decode(const DecodeParams& params, cudaStream_t stream);

}  // namespace flashmla::sm90
