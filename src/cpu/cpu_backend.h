// The CPU backend: the reference that defines the semantics of every GPU path.
#pragma once

#include "common/decode_params.h"
#include "flashmla/decode.h"

namespace flashmla::cpu {

// The split plan on host memory; identical, field for field, to the GPU metadata kernel's.
void compute_metadata(const MetadataParams& params);

// Attention with float64 accumulation on host memory, parallel over (request, kv head).
// Ignores the split plan: every row is computed in one pass.
void reference_decode(const DecodeArgs& args);

}  // namespace flashmla::cpu
